"""On a GPU: folds train there, under mixed precision too, and with two slots on one GPU.

Skipped where the backend sees no GPU (CI has none); `python -m pytest -m gpu` on a GPU
machine runs them. The CPU paths of the same options are tested elsewhere
(`tests/test_training.py::test_mixed_precision`, `tests/test_front_end.py`,
`tests/test_executors.py`).
"""

import json

import numpy as np
import pytest

from tests.conftest import tiny_store, write_config
from xval import Experiment
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
    assert exp.run(config=config, out=lambda *a: None).exit_code == 0
    folds = _folds(config, number)
    assert len(folds) == 3
    for fold in folds:
        assert fold["status"] == "ok" and not fold["device"].startswith("cpu")
        assert np.isfinite([v for v in fold["history"]["loss"]]).all()


def test_process_executor_runs_two_slots_on_one_gpu(config):
    exp = Experiment(description="gpu sharing", dataset="tiny", number=3, num_folds=3,
                     parameters={"epochs": 2, "patience": 2})
    for k in (1, 2):
        exp[k] = {"architecture": "example_cnn", "reshaping_type": "conv", "filters": 4,
                  "comment_1": str(k), "comment_2": ""}
    assert exp.run(config=config, executor="process", gpus=["0"],
                   out=lambda *a: None).exit_code == 0
    folds = _folds(config, 3)
    assert len(folds) == 6
    assert all(f["status"] == "ok" and not f["device"].startswith("cpu") for f in folds)
