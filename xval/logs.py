"""Quiet framework logs: TensorFlow's C++ lines and absl warnings.

A leaf module (it imports nothing of the project). Every entry point calls
`quiet_framework_logs()` before anything may import TensorFlow (Keras imports it for
serialisation whenever it is installed, whatever the backend).
"""

import importlib.util
import os

__all__ = ["quiet_framework_logs"]


def quiet_framework_logs(verbose=False):
    """Silences TensorFlow's C++ log lines and absl's warnings, unless `verbose`.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` (errors only) when it is not already set, which must
    happen before TensorFlow is imported, and absl's verbosity to errors when absl is
    installed.

    Args:
        verbose: leave the logs as they are. Defaults to `False`.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if importlib.util.find_spec("absl") is not None:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
