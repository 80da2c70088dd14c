"""`python -m xval init AUDIO_DIR --annotations CSV` (issue 66): annotated recordings to a
detection store with the detection defaults and a detection experiment whose instance
names only the stock detector, so that every other value is the measured default."""

import json

import pytest

from preprocessing.store import FeatureStore
from xval import tasks
from xval.cli.main import main
from xval.cli.scripts import load_experiment
from xval.config.loader import load_config
from xval.core.storage import RESULTS_STORE
from xval.running.planner import make_plan


def test_init_on_annotated_recordings_writes_a_detection_experiment(scenes, tmp_path,
                                                                     capsys):
    project = tmp_path / "project"
    project.mkdir()
    args = ["init", str(scenes), "--annotations", str(scenes / "annotations.csv"),
            "--items", str(scenes / "items.csv"), "--project", str(project),
            "--no-progress"]
    assert main([*args, "--dry-run"]) == 0
    assert "Nothing was written" in capsys.readouterr().out
    assert not (project / "data").exists()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 annotated recordings" in out and "4 items (--items)" in out and "Ready." in out
    store = FeatureStore(project / "data" / "scenes")
    assert store.info.task_type == "detection" and store.classes
    params = json.loads((store.path / "dataset.json").read_text())["feature_params"]
    assert (params["segment_seconds"], params["segment_hop_seconds"]) == (5.0, 5.0)
    assert store.info.frame_seconds == pytest.approx(0.02)  # the detection store defaults
    experiment = load_experiment(project / "experiments" / "scenes.py")
    assert experiment.task_type == "detection" and experiment.num_folds == 4
    assert experiment[1]["architecture"] == "fast_detector"
    assert set(experiment[1]) == {"architecture", "reshaping_type", "comment_1", "comment_2"}
    # The instance takes the task's measured training defaults, as any detection instance.
    config = load_config(project / "config.ini")
    resolved = make_plan(experiment, config, [1], {}, False,
                         results_store=RESULTS_STORE).resolved[1]
    for name, value in tasks.get("detection").training_defaults.items():
        assert resolved[name] == value, name


def test_init_refuses_annotations_with_options_that_find_labels_in_files(scenes, tmp_path,
                                                                         capsys):
    project = tmp_path / "project"
    project.mkdir()
    code = main(["init", str(scenes), "--annotations", str(scenes / "annotations.csv"),
                 "--pattern", "fsdd", "--project", str(project)])
    assert code == 2
    assert "--pattern cannot be used with --annotations" in capsys.readouterr().err
    assert not any(project.iterdir())
