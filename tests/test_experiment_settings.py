"""Checks of an experiment's declaration: `Experiment(...)` and `experiment[k] = ...`."""

import pytest

from xval import Experiment, Output
from xval.core.errors import ConfigurationError


def settings(**kwargs):
    return {"description": "d", "dataset": "tiny", "number": 1, **kwargs}


@pytest.mark.parametrize("kwargs,match", [
    ({"experiment_folder": 5}, r"experiment_folder=5: expected a path string .*got int"),
    ({"dataset": "../x"}, r"dataset='../x' leads outside config.ini \[paths\] data_dir.*"
                          "allow_outside_data_dir=True"),
    ({"dataset": "/abs/store"}, "dataset='/abs/store' leads outside"),
    ({"dataset": "a/../../b"}, "leads outside"),
    ({"dataset": ""}, "dataset='': expected the name of a feature store"),
    ({"dataset": ".."}, "dataset='..': expected the name of a feature store"),
    ({"gpu_ID": "abc"}, "gpu_ID='abc': expected a GPU number"),
    ({"gpu_ID": 1.5}, "gpu_ID=1.5: expected a GPU number"),
    ({"gpu_ID": -2}, "gpu_ID=-2: expected a GPU number"),
    ({"num_repeats": 0}, "num_repeats=0: expected an integer >= 1"),
    ({"number": -1}, "number=-1: expected an integer >= 0"),
    ({"parameters": "epochs=3"}, "parameters='epochs=3': expected a dict or a list"),
    ({"config": 3}, "config=3: expected the path of a config.ini"),
    ({"allow_outside_data_dir": "yes"}, "allow_outside_data_dir='yes': expected bool"),
])
def test_experiment_bad_settings(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        Experiment(**settings(**kwargs))


def test_experiment_outside_data_dir_when_allowed(tmp_path):
    exp = Experiment(**settings(dataset=str(tmp_path / "store"), allow_outside_data_dir=True))
    assert exp.dataset == str(tmp_path / "store")
    assert Experiment(**settings(dataset="nested/store")).dataset == "nested/store"


@pytest.mark.parametrize("gpu", [None, 0, 1, "0", "2", -1, "-1", "cpu"])
def test_experiment_valid_gpu_ids(gpu):
    assert Experiment(**settings(gpu_ID=gpu)).gpu_ID == gpu


def test_experiment_folder_accepts_paths(tmp_path):
    assert Experiment(**settings(experiment_folder=tmp_path)).experiment_folder == tmp_path
    assert Experiment(**settings(experiment_folder="out")).experiment_folder == "out"


def test_experiment_instance_assigned_twice_is_an_error():
    exp = Experiment(**settings())
    exp[1] = {"learning_rate": 0.1}
    with pytest.raises(ConfigurationError, match="instance 1 is assigned twice"):
        exp[1] = {"learning_rate": 0.2}
    assert exp[1] == {"learning_rate": 0.1}


def test_an_absolute_dataset_path_sends_results_to_the_results_folder(tmp_path):
    """Issue 26: an absolute `dataset=` with `experiment_folder=` set used to send the
    results into the feature store (the planner joined the results root with the absolute
    path, which yields the store). They go under the results folder, named by the store's
    folder name."""
    from tests.conftest import tiny_store, write_config
    from xval.config.loader import load_config
    from xval.core.layout import ExperimentLayout

    config = load_config(write_config(tmp_path / "project"))
    store = tiny_store(tmp_path / "elsewhere", "mystore")
    out = tmp_path / "out"
    exp = Experiment(description="abs", dataset=str(store.path), number=1, num_folds=3,
                     experiment_folder=str(out), allow_outside_data_dir=True,
                     config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
              "comment_2": "", "epochs": 1}
    lines = []
    assert exp.run(config=config, dry_run=True, output=Output(out=lines.append)).exit_code == 0
    assert f"Results would go to {out / 'mystore' / 'experiment_1'}" in lines
    assert ExperimentLayout.of(out, str(store.path), 1).root == out / "mystore" / "experiment_1"
    before = sorted(p.name for p in store.path.iterdir())
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    assert (out / "mystore" / "experiment_1" / "instance_1" / "fold_0.json").is_file()
    assert sorted(p.name for p in store.path.iterdir()) == before  # the store is untouched
