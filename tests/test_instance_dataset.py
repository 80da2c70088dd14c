"""An instance may train on another store of the same items (`dataset=...`): e.g. an
encoder's embeddings beside the experiment's log-mel store, compared on the same folds."""

import json

import pytest

from tests.conftest import tiny_store, write_config
from xval import Experiment, Output
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.storage import RESULTS_STORE

FAST = {"epochs": 2, "patience": 2, "batch_size": 16}
CNN = {"architecture": "example_cnn", "reshaping_type": "conv", "filters": 4,
       "comment_1": "cnn", "comment_2": "experiment's store"}
MLP = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "mlp",
       "comment_2": "another store"}


@pytest.fixture
def config(tmp_path):
    config = load_config(write_config(tmp_path))
    tiny_store(config.data_dir, "mel", shape=(8, 6))
    tiny_store(config.data_dir, "emb", shape=(1, 12), seed=1)  # same items, other features
    return config


def experiment(config, **instance):
    exp = Experiment(description="two stores", dataset="mel", number=1, num_folds=3,
                     parameters=FAST, config=str(config.path))
    exp[1] = CNN
    exp[2] = {**MLP, **instance}
    return exp


def test_instance_trains_on_its_own_store_with_the_experiments_folds(config):
    outcome = experiment(config, dataset="emb").run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0 and outcome.failed == []
    root = config.results_dir / "mel" / "experiment_1"
    own = json.loads((root / "instance_2" / "dataset.json").read_text())
    assert own["store"].endswith("emb") and own["feature_shape"] == [1, 12]
    assert not (root / "instance_1" / "dataset.json").exists()
    assert json.loads((root / "dataset.json").read_text())["store"].endswith("mel")
    params = json.loads((root / "instance_2" / "params.json").read_text())["params"]
    assert params["dataset"] == "emb"
    assert "dataset" not in json.loads((root / "instance_1" / "params.json").read_text())[
        "params"]
    for fold in range(3):
        first = json.loads((root / "instance_1" / f"fold_{fold}.json").read_text())["items"]
        second = json.loads((root / "instance_2" / f"fold_{fold}.json").read_text())["items"]
        assert first == second


def test_the_experiments_own_dataset_named_changes_nothing(config):
    from xval.running.planner import make_plan

    exp = experiment(config, dataset="mel")
    plan = make_plan(exp, config, [1, 2], {}, overwrite=False, results_store=RESULTS_STORE)
    assert plan.stores == {} and "dataset" not in plan.resolved[2]
    plain = make_plan(experiment(config), config, [1, 2], {}, overwrite=False,
                      results_store=RESULTS_STORE)
    assert plan.hashes == plain.hashes


def test_set_dataset_applies_to_every_instance(config):
    from xval.running.planner import make_plan

    exp = Experiment(description="two stores", dataset="mel", number=1, num_folds=3,
                     parameters=FAST, config=str(config.path))
    exp[1] = MLP
    exp[2] = {**MLP, "comment_1": "mlp 2"}
    plan = make_plan(exp, config, [1, 2], {"dataset": "emb"}, overwrite=False,
                     results_store=RESULTS_STORE)
    assert {k: s.path.name for k, s in plan.stores.items()} == {1: "emb", 2: "emb"}
    assert plan.job(1, 0).store.endswith("emb")


def test_store_on_other_items_is_refused_before_training(config):
    tiny_store(config.data_dir, "fewer", n_items=5, shape=(1, 12))
    with pytest.raises(ConfigurationError, match=r"instance 2: dataset='fewer' holds other "
                                                 r"items.*missing 1: item5"):
        experiment(config, dataset="fewer").run(config=config, output=Output(out=lambda *a: None))
    assert not (config.results_dir / "mel").exists()


def test_store_with_other_classes_is_refused(config):
    tiny_store(config.data_dir, "two", n_classes=2, shape=(1, 12))
    with pytest.raises(ConfigurationError, match="has classes"):
        experiment(config, dataset="two").run(config=config, output=Output(out=lambda *a: None))


@pytest.mark.parametrize("name, error, match", [
    ("nope", DatasetError, "nope"),
    ("../elsewhere", ConfigurationError, "instance 2: dataset='../elsewhere' leads outside"),
    ("", ConfigurationError, "dataset=..: expected the name"),
    (3, ConfigurationError, "dataset"),
])
def test_bad_instance_dataset(config, name, error, match):
    with pytest.raises(error, match=match):
        experiment(config, dataset=name).run(config=config, output=Output(out=lambda *a: None))
    assert not (config.results_dir / "mel").exists()
