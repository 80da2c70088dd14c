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


def test_init_refuses_items_that_do_not_match_the_annotated_recordings(scenes, tmp_path,
                                                                        capsys):
    """An items CSV naming a file that is no annotated recording (a typo) and leaving one
    out is refused before anything is written, the dry run included (issue 74): the
    recording left out became an item of its own."""
    project = tmp_path / "project"
    project.mkdir()
    items = tmp_path / "items.csv"
    items.write_text("file,item\nrain_000.wav,a\nwind_000.wav,a\nfire_000.wav,b\n"
                     "machin_000.wav,b\n")
    for extra in (["--dry-run"], []):
        code = main(["init", str(scenes), "--annotations", str(scenes / "annotations.csv"),
                     "--items", str(items), "--project", str(project), "--no-progress",
                     *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "1 annotated recording(s) have no item in it, e.g. 'machine_000.wav'" in err
        assert "1 of its file(s) name no recording of the folder, e.g. 'machin_000.wav'" in err
        assert not any(project.iterdir())
    # A recording of the folder left out of the annotations may be listed.
    (scenes / "annotations.csv").write_text("\n".join(
        (scenes / "annotations.csv").read_text().splitlines()[:-1]) + "\n")
    items.write_text((scenes / "items.csv").read_text())
    assert main(["init", str(scenes), "--annotations", str(scenes / "annotations.csv"),
                 "--items", str(items), "--project", str(project), "--dry-run"]) == 0, \
        capsys.readouterr().err


def test_init_refuses_a_blank_item(scenes, tmp_path, capsys):
    """A recording with a blank item would be item '' (a speaker's second recording on the
    other side of a fold from the first): refused, with its line and the fix."""
    project = tmp_path / "project"
    project.mkdir()
    items = tmp_path / "items.csv"
    lines = (scenes / "items.csv").read_text().splitlines()
    items.write_text("\n".join([*lines[:-1], lines[-1].split(",")[0] + ",  "]) + "\n")
    code = main(["init", str(scenes), "--annotations", str(scenes / "annotations.csv"),
                 "--items", str(items), "--project", str(project), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"line {len(lines)}: item is blank" in err and "Fill it in" in err
    assert not any(project.iterdir())


def test_init_names_an_annotated_recording_it_could_not_read(scenes, tmp_path, capsys):
    """An annotated recording shorter than a frame is skipped when the store is built,
    named with the reason, not only counted; its item went with it, so the experiment gets
    the folds the items read allow (it was refused: 5 folds of 4 items)."""
    import csv

    import numpy as np
    import soundfile as sf

    sf.write(scenes / "short_000.wav", np.zeros(200, np.float32), 8000)
    with (scenes / "annotations.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    rows.append(["short_000.wav", "10", "100", rows[1][3]] + [""] * (len(rows[0]) - 4))
    with (scenes / "annotations.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with (scenes / "items.csv").open("a") as f:
        f.write("short_000.wav,short\n")
    project = tmp_path / "project"
    project.mkdir()
    code = main(["init", str(scenes), "--annotations", str(scenes / "annotations.csv"),
                 "--items", str(scenes / "items.csv"), "--project", str(project),
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "1 file(s) skipped" in out
    assert "Skipped 1 of the annotated recordings:" in out
    assert f"  {scenes / 'short_000.wav'}: too short" in out
    assert "4 folds, not 5: the recordings read hold 4 items." in out
    assert load_experiment(project / "experiments" / "scenes.py").num_folds == 4


def test_init_reads_annotation_times_in_seconds(scenes, tmp_path, capsys):
    """`init --annotations` takes the options that say how the CSV is read, as `python -m
    preprocessing detection` does: times in seconds with --annotation-units seconds, which
    its refusal of seconds in a samples column names (issue 74)."""
    import pandas as pd

    events = pd.read_csv(scenes / "events.csv")
    seconds = tmp_path / "seconds.csv"
    pd.DataFrame({"file": events["file"], "onset": events["start_sample"] / 8000,
                  "offset": events["end_sample"] / 8000,
                  "label": events["label"]}).to_csv(seconds, index=False)
    project = tmp_path / "project"
    project.mkdir()
    args = ["init", str(scenes), "--annotations", str(seconds), "--items",
            str(scenes / "items.csv"), "--project", str(project), "--no-progress", "--dry-run"]
    assert main(args) == 2
    assert "pass --annotation-units seconds" in capsys.readouterr().err
    assert main([*args, "--annotation-units", "seconds"]) == 0
    assert "4 annotated recordings" in capsys.readouterr().out
    assert main(["init", str(scenes), "--annotation-units", "seconds", "--project",
                 str(project), "--dry-run"]) == 2
    assert "--annotation-units goes with --annotations" in capsys.readouterr().err


def test_init_names_the_unread_column_and_takes_label_column(scenes, tmp_path, capsys):
    """A long CSV whose classes are in a column of another name (`species`): every event
    would be one class `event`; a note names the columns not read, and `--label-column`
    (with `--annotations`, not only `--corpus hf`) reads the classes from it."""
    import pandas as pd

    events = pd.read_csv(scenes / "events.csv")
    species = tmp_path / "species.csv"
    pd.DataFrame({"filename": events["file"], "onset": events["start_sample"],
                  "offset": events["end_sample"],
                  "species": events["label"]}).to_csv(species, index=False)
    project = tmp_path / "project"
    project.mkdir()
    args = ["init", str(scenes), "--annotations", str(species), "--items",
            str(scenes / "items.csv"), "--project", str(project), "--no-progress", "--dry-run"]
    assert main(args) == 2  # as one class, two events of different classes overlap
    out, err = capsys.readouterr()
    assert "has no label column (label, event_label, class), so every event is of one class " \
           "'event'; its column(s) species are not read" in out
    assert "the 'event' event on line" in err
    assert main([*args, "--label-column", "species"]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out
    assert f"of {events['label'].nunique()} classes" in out
