"""Quiet framework logs: TensorFlow's C++ lines, absl's and JAX's warnings, TensorFlow Lite's
notices.

A leaf module (it imports nothing of the project). Every entry point calls
`quiet_framework_logs()` before anything may import TensorFlow (Keras imports it for
serialisation whenever it is installed, whatever the backend); with `-v` it calls it with
`verbose=True`, and every framework line is shown.
"""

import contextlib
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["framework_logs_shown", "quiet_framework_logs", "quiet_native_notices"]

_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_LOGGERS = ("jax", "absl", "tensorflow")
"""Python loggers of the frameworks, set to errors only: JAX's backend discovery ("An
NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is not installed"),
absl's warnings, TensorFlow's ("5 out of the last 9 calls to ... triggered tf.function
retracing")."""
_SET_HERE = [False]
"""Whether this process set `TF_CPP_MIN_LOG_LEVEL` (the user did not)."""


def quiet_framework_logs(verbose: bool = False, backend: str | None = None) -> None:
    """Silences the frameworks' log lines, unless `verbose`.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` (errors only) when it is not already set, which must
    happen before TensorFlow is imported, and the Python loggers of JAX and absl to
    errors. TensorFlow 2.21 prints its oneDNN notice before absl's logging starts, which
    no log level hides; when TensorFlow is not the backend (Keras imports it only to save
    models), its oneDNN kernels are turned off (`TF_ENABLE_ONEDNN_OPTS=0`), which also
    removes the notice and costs nothing; when it is, the notice is filtered from its import
    (`quiet_native_notices`, `xval.core.backend.import_paused`) and its C++ lines are
    fatal ones only (`TF_CPP_MIN_LOG_LEVEL=3`, unless the user set the level). TensorFlow Lite's notices, which no setting
    hides, are filtered where its interpreter starts (`quiet_native_notices`).

    With `verbose` (`-v`), `TF_CPP_MIN_LOG_LEVEL=0` and the loggers are left at their own
    levels: every line is shown, also by a later call without `verbose` in this process
    (`xval.core.backend.use_backend`'s) and in the processes it starts.

    Args:
        verbose: show every framework line. Defaults to `False`.
        backend: the Keras backend in use, when known. Defaults to `None`.
    """
    if verbose:
        os.environ[_LEVEL] = "0"
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        return
    if _LEVEL not in os.environ:
        os.environ[_LEVEL] = "2"
        _SET_HERE[0] = True
    if backend is not None and backend != "tensorflow":
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    elif backend == "tensorflow" and _SET_HERE[0]:
        # Its oneDNN kernels log their fallbacks as errors ("oneDNN supports DT_INT64 only
        # on platforms with AVX-512. Falling back ..."): fatal lines only. A failing
        # operation still raises, with its message.
        os.environ[_LEVEL] = "3"
    if not framework_logs_shown():
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    if importlib.util.find_spec("absl") is not None and not framework_logs_shown():
        from absl import logging as absl_logging  # noqa: PLC0415  (comes with TensorFlow)

        absl_logging.set_verbosity(absl_logging.ERROR)


def framework_logs_shown() -> bool:
    """Whether framework log lines are shown in this process: `TF_CPP_MIN_LOG_LEVEL` unset
    or `0` (a command's `-v`, or a process that no command started)."""
    return os.environ.get(_LEVEL, "0").strip() in ("", "0")


_NOTICE = re.compile(r"INFO: (Created TensorFlow Lite|Initialized TensorFlow Lite)"
                     r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                     r"|I\d{4} [\d:. ]+ \d+ port\.cc:\d+\] oneDNN custom operations are on")
"""TensorFlow Lite's notices ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."),
printed by its native logger whatever the log level, and TensorFlow's oneDNN notice, printed
on its import before absl's logging starts."""


@contextlib.contextmanager
def quiet_native_notices() -> Iterator[None]:
    """Drops TensorFlow Lite's notices that native code prints to stderr while the block
    runs (its interpreter's first allocation), unless `framework_logs_shown()`.

    What else reaches stderr meanwhile (the process's own lines, a native error) is written
    there when the block ends, in order.
    """
    if framework_logs_shown():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr descriptor: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(True)
                    if not _NOTICE.match(line)]
            if kept:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.write("".join(kept))
                    sys.stderr.flush()
