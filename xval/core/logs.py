"""Quiet framework logs: TensorFlow's C++ lines and absl warnings.

A leaf module (it imports nothing of the project). Every entry point calls
`quiet_framework_logs()` before anything may import TensorFlow (Keras imports it for
serialisation whenever it is installed, whatever the backend).
"""

import importlib.util
import os

__all__ = ["quiet_framework_logs"]


def quiet_framework_logs(verbose: bool = False, backend: str | None = None) -> None:
    """Silences TensorFlow's C++ log lines and absl's warnings, unless `verbose`.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` (errors only) when it is not already set, which must
    happen before TensorFlow is imported, and absl's verbosity to errors when absl is
    installed. TensorFlow 2.21 prints its oneDNN notice before absl's logging starts, which
    no log level hides; when TensorFlow is not the backend (Keras imports it only to save
    models), its oneDNN kernels are turned off (`TF_ENABLE_ONEDNN_OPTS=0`), which also
    removes the notice and costs nothing.

    Args:
        verbose: leave the logs as they are. Defaults to `False`.
        backend: the Keras backend in use, when known. Defaults to `None`.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend is not None and backend != "tensorflow":
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if importlib.util.find_spec("absl") is not None:
        from absl import logging as absl_logging  # noqa: PLC0415  (comes with TensorFlow)

        absl_logging.set_verbosity(absl_logging.ERROR)
