"""Addresses reached before a run relies on them (a Ray cluster, an MLflow server): one
connection attempt with a short timeout, so that a wrong address is one clear error at
once instead of minutes of silent retries."""

from __future__ import annotations

import socket
import time
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
                    timeout: float = CONNECT_TIMEOUT, grpc: bool = False) -> None:
    """Connects once to `address` (a TCP connection, closed at once); with `grpc`, also
    asks it for an HTTP/2 answer, as a gRPC server (a Ray cluster) gives.

    A port where something else listens (a web server, the Ray dashboard's 8265, a silent
    listener) is refused here: Ray itself would retry such an address for a quarter of an
    hour before giving up.

    Args:
        address: `host:port` or a URI.
        what: what is there, for the message (`"the Ray cluster"`).
        fix: what to do about it, for the message.
        default_port: the port of a URI without one.
        timeout: seconds to wait. Defaults to `CONNECT_TIMEOUT`.
        grpc: also require an HTTP/2 answer within `timeout`. Defaults to `False`.

    Raises:
        ConfigurationError: for a port out of range (`host_port`), when nothing answers
            there within `timeout` seconds, or (`grpc`) when what answers is no gRPC server.
    """
    endpoint = host_port(address, default_port)
    if endpoint is None:
        return
    where = f"{endpoint[0]}:{endpoint[1]}"
    try:
        with socket.create_connection(endpoint, timeout=timeout) as connection:
            answer = _http2_answer(connection, timeout) if grpc else None
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ConfigurationError(
            f"{what} at {address!r} cannot be reached ({where}: {reason}, within "
            f"{timeout:g} s); {fix}") from e
    if answer:
        raise ConfigurationError(f"{what} at {address!r} does not answer as one ({where} "
                                 f"{answer}, within {timeout:g} s); {fix}")


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""A client's HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113, 3.4)."""
_SETTINGS = 4
"""The type of an HTTP/2 SETTINGS frame, the first frame a server sends."""


def _http2_answer(connection: socket.socket, timeout: float) -> str:
    """Sends the HTTP/2 preface and reads the first frame's header: `""` when it is the
    SETTINGS frame every HTTP/2 server sends first, else what came back instead."""
    connection.sendall(_HTTP2_PREFACE)
    deadline = time.monotonic() + timeout
    head = b""
    while len(head) < 9:
        connection.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = connection.recv(9 - len(head))
        except TimeoutError:
            return "said nothing back" if not head else "answered a few bytes, then nothing"
        except OSError as e:
            return f"closed the connection ({e.strerror or e})"
        if not chunk:
            return "closed the connection without an answer"
        head += chunk
    if head[3] == _SETTINGS:
        return ""
    if head.startswith((b"HTTP/", b"<")):
        return "answers as a web server does (HTTP/1), such as the Ray dashboard's port"
    return f"answers something else ({head[:9]!r})"
