"""On a GPU: folds train there, under mixed precision too, with their rows on the device,
with two slots on one GPU in warm workers, and on JAX with two jobs sharing it.

Skipped where the backend sees no GPU (CI has none); `python -m pytest -m gpu` on a GPU
machine runs them. The CPU paths of the same options are tested elsewhere
(`tests/test_training.py::test_mixed_precision`, `tests/test_front_end.py`,
`tests/test_executors.py`).
"""

import json

import numpy as np
import pytest

from tests.conftest import tiny_store, write_config
from xval import Execution, Experiment, Output
from xval.config.loader import load_config

pytestmark = pytest.mark.gpu


def _gpu_visible() -> bool:
    from xval.training.package import device

    return not device().startswith("cpu")  # "cuda:0 (...)" on torch, "/device:GPU:0" on TF


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    if not _gpu_visible():
        pytest.skip("no GPU visible to the backend")
    root = tmp_path_factory.mktemp("gpu")
    config = load_config(write_config(root, backend={"jobs_per_gpu": 2}))
    tiny_store(config.data_dir)
    return config


def _folds(config, number):
    root = config.results_dir / "tiny" / f"experiment_{number}"
    return [json.loads(p.read_text()) for p in sorted(root.glob("instance_*/fold_*.json"))]


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_folds_train_on_the_gpu(config, mixed_precision):
    number = 1 + mixed_precision
    exp = Experiment(description="gpu", dataset="tiny", number=number, num_folds=3,
                     parameters={"epochs": 3, "patience": 3})
    exp[1] = {"architecture": "example_cnn", "reshaping_type": "conv", "filters": 4,
              "mixed_precision": mixed_precision, "comment_1": "", "comment_2": ""}
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    folds = _folds(config, number)
    assert len(folds) == 3
    for fold in folds:
        assert fold["status"] == "ok" and not fold["device"].startswith("cpu")
        assert np.isfinite([v for v in fold["history"]["loss"]]).all()


def test_process_executor_runs_two_slots_on_one_gpu_in_warm_workers(config):
    """Two slots share GPU 0 (`jobs_per_gpu = 2`); each slot's worker serves several jobs
    (warm: a CUDA context per slot, not per job); every fold's rows were on the device."""
    exp = Experiment(description="gpu sharing", dataset="tiny", number=3, num_folds=3,
                     parameters={"epochs": 2, "patience": 2})
    for k in (1, 2):
        exp[k] = {"architecture": "example_cnn", "reshaping_type": "conv", "filters": 4,
                  "comment_1": str(k), "comment_2": ""}
    assert exp.run(config=config, executor=Execution("process", gpus=["0"]),
                   output=Output(out=lambda *a: None)).exit_code == 0
    folds = _folds(config, 3)
    assert len(folds) == 6
    assert all(f["status"] == "ok" and not f["device"].startswith("cpu") for f in folds)
    assert len({f["pid"] for f in folds}) <= 2  # two warm workers served six jobs
    assert all(f["device_settings"]["batches"] == "device" for f in folds)


def test_jax_jobs_share_the_gpu(config, tmp_path):
    """Two JAX jobs on GPU 0 at once, each without preallocation and with at most 45 % of
    its memory (JAX alone takes 75 %: the second job would run out)."""
    import importlib.util
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    script = tmp_path / "jax_share.py"
    script.write_text(
        "from xval import Execution, Experiment\n"
        f"exp = Experiment(description='jax', dataset='tiny', number=4, num_folds=3,\n"
        f"                 config={str(config.path)!r}, parameters={{'epochs': 2}})\n"
        "exp[1] = {'architecture': 'example_cnn', 'reshaping_type': 'conv', 'filters': 4,\n"
        "          'comment_1': '', 'comment_2': ''}\n"
        "raise SystemExit(exp.run(executor=Execution('process', gpus=['0'])).exit_code)\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    folds = _folds(config, 4)
    assert len(folds) == 3 and all(f["backend"] == "jax" for f in folds)
    for fold in folds:
        settings = fold["device_settings"]
        assert settings["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        assert settings["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.450"
