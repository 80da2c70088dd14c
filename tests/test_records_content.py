"""Records checked by their content, not by the hashes they store (issue 37, point 1b).

A run's `params.json`, `folds.json` and the store each record a hash of what they hold.
An edited file that keeps its old hash must not pass: the run stops, the report marks the
instance. Real runs (one epoch, an MLP) on a tiny store."""

import json

import numpy as np
import pytest

from xval import Experiment, Output
from xval.core.errors import DatasetError, ResultsConflictError
from xval.report.results import ExperimentResults

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1", "comment_2": "c2",
        "hidden_units": 8, "num_layers": 1, "epochs": 1, "batch_size": 32}


def quiet(*args):
    return None


def _experiment(config_path):
    exp = Experiment(description="content", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp[1] = dict(BASE)
    return exp


@pytest.fixture
def done(config_path, config, store):
    """An experiment with instance 1 complete."""
    exp = _experiment(config_path)
    assert exp.run(config=config, output=Output(out=quiet)).exit_code == 0
    return exp, config.results_dir / "tiny" / "experiment_1"


def _edit(path, change):
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_params_edited_with_its_old_hash_stops_the_run_and_marks_the_report(done, config):
    exp, folder = done
    params = folder / "instance_1" / "params.json"
    _edit(params, lambda r: r["params"].update(learning_rate=0.5))  # hash left as it was
    for name in ("fold_2.json", "fold_2.keras"):  # a fold left to run: a resume
        (folder / "instance_1" / name).unlink()
    with pytest.raises(ResultsConflictError, match="params.json.*edited"):
        exp.run(config=config, output=Output(out=quiet))
    assert not (folder / "instance_1" / "fold_2.json").exists()
    result = ExperimentResults(folder)[1]
    assert result.summary.status != "complete"
    assert set(result.summary.invalid) == {0, 1}
    assert all("edited" in why for why in result.summary.invalid.values())


def test_folds_edited_with_its_old_hash_stops_the_run(done, config):
    exp, folder = done
    manifest = folder / "folds.json"

    def leak(record):  # fold 0's test items trained on too
        record["folds"][0]["train"] += record["folds"][0]["test"]

    _edit(manifest, leak)
    (folder / "instance_1" / "fold_2.json").unlink()
    with pytest.raises(ResultsConflictError, match="folds.json.*edited"):
        exp.run(config=config, output=Output(out=quiet))
    with pytest.raises(ResultsConflictError, match="folds.json.*edited"):
        ExperimentResults(folder)


def test_store_changed_in_place_stops_the_resume(done, config, store):
    exp, folder = done
    (folder / "instance_1" / "fold_2.json").unlink()
    features = np.load(store.path / "features.npy")
    features[0, 0, 0] += 1.0  # one value of one row, the store's dataset.json untouched
    np.save(store.path / "features.npy", features)
    with pytest.raises(DatasetError, match="features.npy.*changed"):
        exp.run(config=config, output=Output(out=quiet))
    assert not (folder / "instance_1" / "fold_2.json").exists()


def test_store_meta_edited_in_place_is_refused(config_path, config, store):
    meta = store.path / "meta.csv"
    meta.write_text(meta.read_text().replace("class1", "class2", 1))
    with pytest.raises(DatasetError, match="meta.csv.*changed"):
        _experiment(config_path).run(config=config, dry_run=True, output=Output(out=quiet))


def test_untouched_records_resume(done, config):
    exp, folder = done
    (folder / "instance_1" / "fold_2.json").unlink()
    assert exp.run(config=config, output=Output(out=quiet)).exit_code == 0
    assert ExperimentResults(folder)[1].summary.status == "complete"
