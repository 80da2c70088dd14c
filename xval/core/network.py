"""Addresses reached before a run relies on them (a Ray cluster, an MLflow server): one
connection attempt with a short timeout, so that a wrong address is one clear error at
once instead of minutes of silent retries."""

from __future__ import annotations

import socket
import urllib.parse

from xval.core.errors import ConfigurationError

# Seconds one connection attempt may take.
CONNECT_TIMEOUT = 5.0


def host_port(address: str, default_port: int | None = None) -> tuple[str, int] | None:
    """`(host, port)` of `host:port`, `scheme://host:port/...`, or `None` when `address`
    names no network endpoint (`auto`, `local`, a file URI).

    Args:
        address: the address as the user gave it.
        default_port: the port of a URI without one (e.g. 80 for `http`).
    """
    parsed = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parsed.port or default_port
    except ValueError:  # a port that is not a number: the library's own error says so
        return None
    if not parsed.hostname or port is None:
        return None
    return parsed.hostname, port


def check_reachable(address: str, what: str, fix: str, *, default_port: int | None = None,
                    timeout: float = CONNECT_TIMEOUT) -> None:
    """Connects once to `address` (a TCP connection, closed at once).

    Args:
        address: `host:port` or a URI.
        what: what is there, for the message (`"the Ray cluster"`).
        fix: what to do about it, for the message.
        default_port: the port of a URI without one.
        timeout: seconds to wait. Defaults to `CONNECT_TIMEOUT`.

    Raises:
        ConfigurationError: when nothing answers there within `timeout` seconds.
    """
    endpoint = host_port(address, default_port)
    if endpoint is None:
        return
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ConfigurationError(
            f"{what} at {address!r} cannot be reached ({endpoint[0]}:{endpoint[1]}: "
            f"{reason}, within {timeout:g} s); {fix}") from e
