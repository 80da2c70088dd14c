"""The right culprit in every message (issue 54, item 4): what is wrong is named, not what
the failure looked like further on. Fold models are checked against their records before
anything is loaded or any shape compared; a fold model whose record is gone is named; a
file too short is said in its own samples and rate; a loop of links is a loop; no phrase
is said twice."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from preprocessing.audio import unreadable_reason
from preprocessing.build import extract_file
from xval import Experiment, Output
from xval.core.errors import ConfigurationError
from xval.core.outputs import check_output_folder
from xval.folds import ItemKFold
from xval.inference.models import resolve_models
from xval.report.results import ExperimentResults

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1", "comment_2": "c2",
        "num_layers": 1, "epochs": 1, "batch_size": 32}


def _run(config, number, hidden):
    exp = Experiment(description="culprits", dataset="tiny", number=number, num_folds=3,
                     config=str(config.path))
    exp[1] = {**BASE, "hidden_units": hidden}
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    return config.results_dir / "tiny" / f"experiment_{number}" / "instance_1"


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory):
    from tests.conftest import tiny_store, write_config
    from xval.config.loader import load_config

    folder = tmp_path_factory.mktemp("culprits")
    config = load_config(write_config(folder))
    tiny_store(config.data_dir)
    return _run(config, 1, 8), _run(config, 2, 4)


@pytest.fixture
def instance(two_experiments, tmp_path):
    """A copy of experiment 1's instance 1 (its folder name kept), and experiment 2's."""
    one, two = two_experiments
    copy = tmp_path / "experiment_1" / "instance_1"
    shutil.copytree(one, copy)
    shutil.copy(one.parent / "folds.json", copy.parent / "folds.json")
    return copy, two


def test_a_fold_of_another_experiment_is_named_before_any_shape(instance):
    # Experiment 2's fold 0 (record and model, each consistent with the other) copied into
    # experiment 1's instance: predict blamed a --dataset-info nobody gave.
    mine, other = instance
    for suffix in ("json", "keras"):
        shutil.copy(other / f"fold_0.{suffix}", mine / f"fold_0.{suffix}")
    said = (r"fold_0\.keras cannot be used: its fold record fold_0\.json is not believed "
            r"\(it was trained with other parameters than the instance's params\.json\); "
            r"restore the file from a backup, or rerun the instance")
    for kwargs in ({}, {"fold": 0}):
        with pytest.raises(ConfigurationError, match=said):
            resolve_models(mine, **kwargs)
    with pytest.raises(ConfigurationError, match=said):
        resolve_models(mine / "fold_0.keras")
    assert resolve_models(mine, fold=1).paths == [mine / "fold_1.keras"]  # its own folds
    results = ExperimentResults(mine.parent)
    assert results[1].invalid == {0: "it was trained with other parameters than the "
                                     "instance's params.json"}


def test_a_fold_model_whose_record_is_gone_is_named(instance):
    mine, _ = instance
    (mine / "fold_1.json").unlink()
    orphan = ("fold_1.keras has no fold record beside it (fold_1.json is missing: deleted, or "
              "not written yet by a run that is training it or stopped), so nothing says "
              "which fold trained it or how it scored")
    result = ExperimentResults(mine.parent)[1]
    assert result.status == "partial" and result.invalid == {1: orphan}
    with pytest.raises(ConfigurationError, match=r"fold_1\.keras cannot be used: fold_1\.keras "
                                                 r"has no fold record beside it"):
        resolve_models(mine)
    with pytest.raises(ConfigurationError, match=r"has no fold record beside it"):
        resolve_models(mine, fold=1)
    assert resolve_models(mine, fold=0).paths == [mine / "fold_0.keras"]


def test_too_short_is_said_in_the_files_own_samples_and_rate(tmp_path):
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.5], np.float32), 8000)
    error = extract_file(path, {"sample_rate": 44100, "feature": "mel"})["error"]
    assert error.startswith("too short: 1 sample at 8000 Hz (")
    assert error.endswith(" at 44100 Hz once resampled), fewer than one analysis frame "
                          "(n_fft=512)")
    sf.write(path, np.full(100, 0.5, np.float32), 44100)
    assert extract_file(path, {"sample_rate": 44100, "feature": "mel"})["error"] == (
        "too short: 100 samples at 44100 Hz, fewer than one analysis frame (n_fft=512)")


def test_a_loop_of_links_is_called_a_loop(tmp_path):
    a, b, gone = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "gone.wav"
    a.symlink_to(b)
    b.symlink_to(a)
    gone.symlink_to(tmp_path / "nothing.wav")
    assert unreadable_reason(a) == ("a loop of symbolic links ('a.wav' -> "
                                    f"'{b}' leads back to itself): never opened")
    assert unreadable_reason(gone).startswith("a dangling link (to ")
    folder = tmp_path / "out"
    folder.symlink_to(folder)
    with pytest.raises(ConfigurationError, match=r"is a loop of symbolic links"):
        check_output_folder(folder / "x")
    with pytest.raises(ConfigurationError, match=r"\(it is a loop of symbolic links"):
        resolve_models(a)


@pytest.mark.parametrize(("n_items", "ending"), [
    (2, r"there are 2\. Add items\.$"),
    (4, r"there are 4\. Use num_folds 1 or 2 or 3 or 4 \(leave one item out: 4\), or add "
        r"items\.$"),
])
def test_too_few_items_for_the_folds_says_each_thing_once(n_items, ending):
    groups = np.repeat([f"i{k}" for k in range(n_items)], 2)
    with pytest.raises(ConfigurationError, match=ending) as error:
        ItemKFold(5).split_items(groups)
    assert str(error.value).lower().count("add items") == 1
