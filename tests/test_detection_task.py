"""The detection task end to end: annotated recordings -> store with frame targets -> a
speaker-independent experiment with sed_eval metrics, on torch and tensorflow."""

import json

import numpy as np
import pandas as pd
import pytest

from preprocessing.__main__ import main as preprocessing_main
from preprocessing.store import FeatureStore, write_store
from tests.conftest import run_script, write_config, write_script
from tests.test_synth_events import fsdd, make  # noqa: F401  (the fake FSDD fixture)
from xval import tasks
from xval.errors import ConfigurationError, DatasetError

FEATURES = ["--sample-rate", "8000", "--n-mels", "16", "--segment-seconds", "1",
            "--segment-hop-seconds", "1", "--workers", "1"]


@pytest.fixture
def events_store(fsdd, tmp_path):  # noqa: F811
    raw = tmp_path / "raw"
    make(fsdd, raw, files_per_speaker=3, seconds=3.0, snr_min=10, snr_max=20)
    # Three speakers' worth of items: split bob's recordings into two items.
    items = pd.read_csv(raw / "items.csv")
    items.loc[items["file"].str.endswith("_002.wav"), "item"] = "carol"
    items.to_csv(raw / "items.csv", index=False)
    data = tmp_path / "data"
    code = preprocessing_main(["detection", str(raw), "--annotations",
                               str(raw / "annotations.csv"), "--items", str(raw / "items.csv"),
                               "--out", str(data / "sed"), "--no-progress", *FEATURES])
    assert code == 0
    return FeatureStore(data / "sed")


def test_detection_store_holds_frame_targets_on_the_feature_grid(events_store):
    store = events_store
    assert store.task_type == "detection" and store.classes == ["digit"]
    targets = store.targets
    assert targets.shape == (len(store), store.features.shape[1], 1)
    assert set(np.unique(targets)) <= {0, 1}
    # A window is labelled "event" exactly when one of its frames is active.
    active = np.asarray(targets).any(axis=(1, 2))
    np.testing.assert_array_equal(active, store.meta["label"].to_numpy() == "event")
    assert active.any() and not active.all()
    # Each event of the annotation covers about its 0.25 s of frames (hop 20 ms).
    events = pd.read_csv(store.path.parent.parent / "raw" / "events.csv")
    assert np.asarray(targets).sum() == pytest.approx(len(events) * 0.25 / 0.02, rel=0.2)
    assert set(store.items) == {"alice", "bob", "carol"}
    assert (store.path / "frame_targets.npy").is_file()


def test_write_store_checks_the_tasks_arrays(tmp_path):
    meta = pd.DataFrame({"item": ["a", "b"], "label": ["event", "background"]})
    with pytest.raises(DatasetError, match=r"keeps the arrays \['frame_targets.npy'\]"):
        write_store(tmp_path / "s", np.zeros((2, 4, 3)), meta, task_type="detection",
                    classes=["x"])
    with pytest.raises(DatasetError, match="frame_targets.npy has 3 rows but the metadata 2"):
        write_store(tmp_path / "s", np.zeros((2, 4, 3)), meta, task_type="detection",
                    classes=["x"], arrays={"frame_targets.npy": np.zeros((3, 4, 1))})
    with pytest.raises(DatasetError, match="labelled 'event' or 'background'"):
        write_store(tmp_path / "s", np.zeros((2, 4, 3)), meta.assign(label=["x", "y"]),
                    task_type="detection", classes=["x"],
                    arrays={"frame_targets.npy": np.zeros((2, 4, 1))})
    assert not (tmp_path / "s").exists()


def test_detection_metrics_of_the_task_on_hand_made_windows():
    task = tasks.get("detection")
    y = np.zeros((2, 50, 1), np.float32)
    y[0, 10:20] = 1  # one event 0.2-0.4 s in window 0 (frames of 20 ms)
    logits = np.full_like(y, -8.0)
    logits[0, 11:21] = 8.0  # detected 20 ms late: inside the collar
    metrics = task.evaluate(y, logits, 1, frame_seconds=0.02, classes=["digit"])
    assert metrics["event_f1"] == pytest.approx(1.0)
    assert metrics["frame_precision"] == pytest.approx(0.9)
    assert metrics["frame_recall"] == pytest.approx(0.9)
    logits[1, 30:40] = 8.0  # a false alarm in window 1
    metrics = task.evaluate(y, logits, 1, frame_seconds=0.02, classes=["digit"])
    assert metrics["event_precision"] == pytest.approx(0.5)
    assert metrics["event_f1"] == pytest.approx(2 / 3)


_EXPERIMENT = """
from xval import Experiment

experiment = Experiment(description="detection", dataset="sed", number=1, num_folds=3,
                        task_type="detection")
experiment[1] = {"architecture": "crnn_detector", "reshaping_type": "conv", "filters": 4,
                 "units": 4, "conv_blocks": 2, "epochs": 2, "patience": 2, "batch_size": 4,
                 "comment_1": "crnn", "comment_2": ""}
experiment[2] = {"architecture": "gru_detector", "reshaping_type": "rnn", "units": 4,
                 "num_layers": 1, "epochs": 2, "patience": 2, "batch_size": 4,
                 "median_filter_seconds": 0.1, "comment_1": "gru", "comment_2": ""}

if __name__ == "__main__":
    experiment.main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", pytest.param("tensorflow",
                                                           marks=pytest.mark.tensorflow)])
def test_detection_experiment_runs_and_reports(events_store, tmp_path, backend):
    import openpyxl

    config = write_config(tmp_path, paths={"data_dir": str(events_store.path.parent),
                                           "results_dir": str(tmp_path / "results")})
    script = write_script(tmp_path, _EXPERIMENT)
    proc = run_script(script, "1", "2", "--config", config, "--backend", backend, "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "results" / "sed" / "experiment_1"
    for k in (1, 2):
        params = json.loads((exp / f"instance_{k}" / "params.json").read_text())
        assert params.get("task_type") == "detection"
        fold = json.loads((exp / f"instance_{k}" / "fold_0.json").read_text())
        assert fold["status"] == "ok" and fold["backend"] == backend
        for name in ("event_f1", "segment_f1", "segment_error_rate", "frame_f1"):
            assert name in fold["metrics"]["test"]
        table = pd.read_csv(exp / f"instance_{k}" / "predictions_fold_0.csv")
        assert {"predicted", "max_probability"} <= set(table.columns)
        json.loads(table["predicted"].iloc[0])  # the events of each window, as JSON
    if backend == "torch":  # python -m xval detect on the instance's fold models
        import subprocess
        import sys

        wav = sorted((events_store.path.parent.parent / "raw").glob("*.wav"))[0]
        plots = tmp_path / "plots"
        proc = subprocess.run([sys.executable, "-m", "xval", "detect",
                               str(exp / "instance_1"), str(wav), "--format", "csv",
                               "--plot", str(plots), "--config", str(config)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = proc.stdout.strip().splitlines()
        assert lines[0] == "file,onset_s,offset_s,label"
        assert all(line.endswith(",digit") for line in lines[1:])
        assert (plots / f"{wav.stem}_activity.png").stat().st_size > 1000
        from xval.predict import detect_files

        info = json.loads((events_store.path / "dataset.json").read_text())
        with pytest.raises(ConfigurationError, match="is a classification model; `detect` "
                                                     "needs a detection model"):
            detect_files(exp / "instance_1" / "fold_0.keras", [wav],
                         dataset_info={**info, "task_type": "classification"})
    book = openpyxl.load_workbook(exp / "experiment_1.xlsx")
    text = " ".join(str(c.value) for row in book["Summary"].iter_rows() for c in row
                    if c.value is not None)
    assert "event" in text.lower()


def test_detector_refused_for_classification_and_classifier_for_detection(tmp_path):
    from xval.config import load_config
    from xval.errors import ParameterError
    from xval.params import resolve

    defaults = load_config(write_config(tmp_path)).training
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": ""}
    with pytest.raises(ParameterError, match="task_type 'detection' needs frames outputs; "
                                             "choose one of crnn_detector, gru_detector"):
        resolve(1, spec, training_defaults=defaults, task_type="detection")





def test_long_layout_with_named_columns_from_the_command_line(events_store, tmp_path):
    raw = events_store.path.parent.parent / "raw"
    events = pd.read_csv(raw / "events.csv")
    events.rename(columns={"file": "wav", "start_sample": "begin_at",
                           "end_sample": "end_at"})[["wav", "begin_at", "end_at"]].to_csv(
        tmp_path / "renamed.csv", index=False)
    args = ["detection", str(raw), "--annotations", str(tmp_path / "renamed.csv"),
            "--layout", "long", "--items", str(raw / "items.csv"), "--no-progress",
            *FEATURES]
    assert preprocessing_main([*args, "--out", str(tmp_path / "unnamed")]) == 2
    assert not (tmp_path / "unnamed").exists()
    assert preprocessing_main([*args, "--out", str(tmp_path / "named"), "--file-column", "wav",
                               "--onset-column", "begin_at", "--offset-column",
                               "end_at"]) == 0
    named = FeatureStore(tmp_path / "named")
    assert named.classes == ["event"]  # no label column: one class
    np.testing.assert_array_equal(np.asarray(named.targets), np.asarray(events_store.targets))


def test_detect_refuses_an_unwritable_plot_folder_first(tmp_path, capsys):
    from xval.__main__ import main

    code = main(["detect", str(tmp_path / "missing.keras"), str(tmp_path / "x.wav"),
                 "--plot", "/proc/no/such/folder"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--plot '/proc/no/such/folder': cannot create the folder" in err
