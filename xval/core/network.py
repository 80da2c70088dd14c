"""Addresses reached before a run relies on them (a Ray cluster, an MLflow server): one
connection attempt with a short timeout, so that a wrong address is one clear error at
once instead of minutes of silent retries."""

from __future__ import annotations

import socket
import urllib.parse

from xval.core.errors import ConfigurationError

# Seconds one connection attempt may take.
CONNECT_TIMEOUT = 5.0
MAX_PORT = 65535
# The port of a Ray client address given without one (`ray://host`).
RAY_PORT = 10001


def host_port(address: str, default_port: int | None = None) -> tuple[str, int] | None:
    """`(host, port)` of `host:port`, `scheme://host:port/...`, or `None` when `address`
    names no network endpoint (`auto`, `local`, a file URI).

    Args:
        address: the address as the user gave it.
        default_port: the port of a URI without one (e.g. 80 for `http`).

    Raises:
        ConfigurationError: for a port that is not a number from 1 to 65535
            (`127.0.0.1:70000`), before anything tries to reach it.
    """
    parsed = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        given_port = parsed.port
    except ValueError as e:
        given = parsed.netloc.rpartition(":")[2]
        raise ConfigurationError(
            f"{address!r}: its port {given!r} is not a port number ({e}); expected "
            f"HOST:PORT with a port from 1 to {MAX_PORT}, e.g. 127.0.0.1:10001.") from None
    port = default_port if given_port is None else given_port
    if port == 0:
        raise ConfigurationError(
            f"{address!r}: port 0 is no port to connect to; expected HOST:PORT with a port "
            f"from 1 to {MAX_PORT}, e.g. 127.0.0.1:10001.")
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
        ConfigurationError: for a port out of range (`host_port`), or when nothing answers
            there within `timeout` seconds.
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
