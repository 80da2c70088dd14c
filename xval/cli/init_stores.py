"""The stores of `python -m xval init`, built side by side.

`init` builds a log-mel store and, with an encoder, an encoder store. The encoder store is
the slow one (a network over every segment) and does not keep every core busy, so the
log-mel store is built beside it, in a child process forked before any framework is loaded
(`preprocessing.parallel.fork_is_safe`), instead of before it. Each store is built by the
same `build_store` call as when they were built one after the other, so their files are
the same. The child hands back its summary as JSON through a pipe; its errors come back as
the same project errors.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from preprocessing.parallel import fork_is_safe
from preprocessing.store import FeatureStore
from xval.core import errors

Built = tuple[FeatureStore, dict[str, Any]]
"""A store and the summary `build_store` returned for it."""

_ERRORS: dict[str, type[errors.XvalError]] = {
    cls.__name__: cls for cls in (errors.XvalError, errors.ConfigurationError,
                                  errors.ParameterError, errors.DatasetError,
                                  errors.StorageError)}


def can_build_beside() -> bool:
    """Whether a store can be built in a forked child beside this process's: two cores or
    more, and a process that is safe to fork (no framework loaded, no other thread)."""
    return (os.cpu_count() or 1) >= 2 and fork_is_safe()


def _child(build: Callable[[], Built], send: Connection) -> None:
    """Runs `build` in the child and sends `{"summary": ...}` or `{"error", "message"}`."""
    try:
        _, summary = build()
        payload: dict[str, Any] = {"summary": summary}
    except errors.XvalError as e:
        payload = {"error": type(e).__name__, "message": str(e)}
    except Exception as e:  # noqa: BLE001  (handed to the parent, which raises it)
        payload = {"error": "XvalError",
                   "message": f"building the store failed: {type(e).__name__}: {e}"}
    send.send_bytes(json.dumps(payload, default=str).encode())
    send.close()


class BuildBeside:
    """A store built in a forked child process while this process does something else.

    Args:
        build: builds the store (`build_store`) and returns `(store, summary)`; called in
            the child.

    Example:

    ```python
    beside = BuildBeside(lambda: build_store(rows, "data/x", params=mel))
    encoded = build_store(rows, "data/x_aisfx", params=aisfx)  # meanwhile
    store, summary = beside.result()
    ```
    """

    def __init__(self, build: Callable[[], Built]) -> None:
        context = multiprocessing.get_context("fork")  # the child inherits `build`: no pickle
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(build, send),
                                        name="xval-init-store")
        self._process.start()
        send.close()

    def result(self, path: os.PathLike[str] | str) -> Built:
        """Waits for the child; returns the store it wrote at `path` and its summary.

        Raises:
            XvalError: the child's error (the same class), or a child that died without
                an answer.
        """
        try:
            payload = json.loads(self._receive.recv_bytes())
        except EOFError:
            payload = {"error": "XvalError",
                       "message": f"building the store {path} stopped (exit code "
                                  f"{self._process.exitcode}) without an answer."}
        finally:
            self._process.join()
            self._receive.close()
        if "error" in payload:
            raise _ERRORS.get(payload["error"], errors.XvalError)(payload["message"])
        return FeatureStore(path), payload["summary"]
