"""Only the project's lines (`xval.core.logs`): the frameworks' log lines are silenced by every
command unless `-v`: TensorFlow Lite's notices, which no log level hides, and JAX's logger."""

import logging
import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.test_encoders import _require
from xval.core.logs import framework_logs_shown, quiet_framework_logs, quiet_native_notices

NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def test_native_notices_are_dropped_and_other_lines_kept_unless_verbose(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # what a command sets without -v
    with quiet_native_notices():
        os.write(2, NOTICE + b"a native error line\n")
    assert capfd.readouterr().err == "a native error line\n"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # -v
    assert framework_logs_shown()
    with quiet_native_notices():
        os.write(2, NOTICE)
    assert capfd.readouterr().err == NOTICE.decode()


def test_jax_logger_quiet_unless_verbose(monkeypatch):
    jax_logger = logging.getLogger("jax")
    monkeypatch.setattr(jax_logger, "level", jax_logger.level)  # restored afterwards
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_framework_logs(backend="jax")
    assert not jax_logger.isEnabledFor(logging.WARNING)  # "CUDA-enabled jaxlib is not ..."
    quiet_framework_logs(verbose=True)
    assert jax_logger.isEnabledFor(logging.WARNING) and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    quiet_framework_logs(backend="jax")  # use_backend's call after -v keeps every line
    assert jax_logger.isEnabledFor(logging.WARNING)


BIRDNET = """
import numpy as np
from xval.core.logs import quiet_framework_logs
from preprocessing.features.encoders.birdnet import BirdnetEncoder

quiet_framework_logs()  # what every command does first, without -v
print(BirdnetEncoder(threads=1).embed(np.zeros((1, 144000), np.float32)).shape, flush=True)
"""


def test_tensorflow_lite_says_nothing_when_birdnet_starts():
    """The interpreter's first allocation prints "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU." from native code, once per process: a fresh one."""
    _require("birdnet")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", BIRDNET], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "(1, 1024)\n" and "TensorFlow Lite" not in done.stderr, done.stderr
