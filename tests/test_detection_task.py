"""The detection task end to end: annotated recordings -> store with frame targets -> a
speaker-independent experiment with sed_eval metrics, on torch and tensorflow."""

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from preprocessing.store import FeatureStore, write_store
from tests.conftest import (
    python_here,
    run_here,
    run_script,
    run_script_here,
    write_config,
    write_script,
)
from tests.test_synth_events import fsdd, make  # noqa: F401  (the fake FSDD fixture)
from xval import Output, tasks
from xval.cli.preprocess import main as preprocessing_main
from xval.core.errors import ConfigurationError, DatasetError
from xval.tasks import Context
from xval.tasks.detection.task import PLOT_WINDOWS

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
    metrics = task.scoring.evaluate(y, logits, 1, Context(frame_seconds=0.02, classes=["digit"]))
    assert metrics["event_f1"] == pytest.approx(1.0)
    assert metrics["frame_precision"] == pytest.approx(0.9)
    assert metrics["frame_recall"] == pytest.approx(0.9)
    logits[1, 30:40] = 8.0  # a false alarm in window 1
    metrics = task.scoring.evaluate(y, logits, 1, Context(frame_seconds=0.02, classes=["digit"]))
    assert metrics["event_precision"] == pytest.approx(0.5)
    assert metrics["event_f1"] == pytest.approx(2 / 3)


def test_two_classes_scored_with_the_per_class_thresholds_a_fold_chose():
    task = tasks.get("detection")
    y = np.zeros((1, 50, 2), np.float32)
    y[0, 10:20, 0] = 1  # a dog bark 0.2-0.4 s
    y[0, 30:40, 1] = 1  # a voice 0.6-0.8 s
    prob = np.full_like(y, 0.01)
    prob[0, 10:20, 0] = 0.35  # the dog class is scored low: found at 0.3, not at 0.5
    prob[0, 30:40, 1] = 0.9
    logits = np.log(prob / (1 - prob))
    chosen = task.scoring.evaluate(y, logits, 2, Context(
        frame_seconds=0.02, classes=["dog", "voice"], params={"detection_threshold": [0.3, 0.5]}))
    assert chosen["frame_recall"] == pytest.approx(1.0) and chosen["event_f1"] == 1.0
    plain = task.scoring.evaluate(y, logits, 2, Context(frame_seconds=0.02,
                                                        classes=["dog", "voice"]))
    assert plain["frame_recall"] == pytest.approx(0.5) and plain["event_f1"] < 1.0


def test_stitch_windows_averages_overlaps_and_merges_targets():
    from xval.tasks.detection.events import stitch_windows

    windows = np.zeros((2, 4, 1))
    windows[0, :, 0] = [0.2, 0.4, 0.6, 0.8]
    windows[1, :, 0] = [1.0, 1.0, 0.0, 0.0]
    line = stitch_windows(windows, [0.0, 0.04], 0.02)  # window 1 starts at frame 2
    np.testing.assert_allclose(line[:, 0], [0.2, 0.4, 0.8, 0.9, 0.0, 0.0])
    merged = stitch_windows(windows, [0.0, 0.04], 0.02, reduce="max")
    np.testing.assert_allclose(merged[:, 0], [0.2, 0.4, 1.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one start per window"):
        stitch_windows(windows, [0.0], 0.02)
    with pytest.raises(ValueError, match="expected seconds >= 0"):
        stitch_windows(windows, [0.0, -1.0], 0.02)
    with pytest.raises(ValueError, match="frame_seconds=0: expected a time above 0"):
        stitch_windows(windows, [0.0, 0.04], 0)


def test_recording_level_counts_an_event_cut_by_a_window_border_once():
    """Two 1 s windows tile a 2 s recording; its one event is cut by the border. Scored
    window by window it is two events; stitched back into the recording, one."""
    task = tasks.get("detection")
    frame, frames = 0.02, 50
    digit = Context(frame_seconds=frame, classes=["digit"])
    y = np.zeros((2, frames, 1), np.float32)
    y[0, 40:] = 1
    y[1, :10] = 1
    logits = np.where(y > 0, 8.0, -8.0)
    windows = task.scoring.evaluate(y, logits, 1, digit)
    clips = np.array(["rec", "rec"])
    ids, clip_logits, clip_y = task.scoring.pool_by_clip(logits, y, clips, starts=[0.0, 1.0],
                                                         frame_seconds=frame)
    assert list(ids) == ["rec"] and clip_logits[0].shape == (100, 1)
    np.testing.assert_array_equal(clip_y[0][:, 0], np.r_[np.zeros(40), np.ones(20),
                                                          np.zeros(40)])
    recording = task.scoring.evaluate(clip_y, clip_logits, 1, digit)
    assert recording["event_f1"] == pytest.approx(1.0)
    assert windows["event_f1"] == pytest.approx(1.0)  # per window: 2 of 2 halves
    # An event 0.8-1.06 s leaves a 60 ms stub in window 1 that the detector misses: per
    # window a missed event (recall 0.5); in the recording, 0.8-1.0 s matches 0.8-1.06 s.
    y[1, 3:10] = 0
    stub_missed = logits.copy()
    stub_missed[1, :10] = -8.0
    windows = task.scoring.evaluate(y, stub_missed, 1, digit)
    _, clip_logits, clip_y = task.scoring.pool_by_clip(stub_missed, y, clips,
                                                       starts=[0.0, 1.0], frame_seconds=frame)
    recording = task.scoring.evaluate(clip_y, clip_logits, 1, digit)
    assert windows["event_recall"] == pytest.approx(0.5)
    assert recording["event_recall"] == pytest.approx(1.0)
    assert task.scoring.pool_by_clip(logits, y, clips) is None  # no window starts: no stitching


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


def _check_experiment(exp, instances, backend):
    """Each instance's fold 0 of a detection experiment: trained on `backend`, its
    post-processing chosen on validation, its events and PSDS scored, its predictions."""
    for k in instances:
        params = json.loads((exp / f"instance_{k}" / "params.json").read_text())
        assert params.get("task_type") == "detection"
        fold = json.loads((exp / f"instance_{k}" / "fold_0.json").read_text())
        assert fold["status"] == "ok" and fold["backend"] == backend
        # Post-processing chosen on the validation recordings, per fold, from the rule of
        # the training annotations; the record says what it was chosen on.
        assert fold["postprocessing"]["split"] == "val"
        assert len(fold["postprocessing"]["values"]["detection_threshold"]) == 1
        assert len(fold["postprocessing"]["values"]["min_gap_seconds"]) == 1
        assert "rule: training annotations" in fold["postprocessing"]["chosen_on"]
        test = fold["clip_metrics"]["test"]  # what lost the test recordings' events
        assert test["events_annotated"] == test["events_found"] + sum(
            test[f"events_{k}"] for k in ("missed", "confused", "merged", "split", "onset",
                                          "offset"))
        for name in ("event_f1", "onset_f1", "segment_f1", "segment_error_rate", "frame_f1"):
            assert name in fold["metrics"]["test"]
            # 3 s recordings in 1 s windows: each also scored stitched back whole
            assert name in fold["clip_metrics"]["test"]
        _check_psds(fold)
        table = pd.read_csv(exp / f"instance_{k}" / "predictions_fold_0.csv")
        assert {"predicted", "max_probability"} <= set(table.columns)
        json.loads(table["predicted"].iloc[0])  # the events of each window, as JSON


@pytest.mark.slow
def test_detection_experiment_runs_and_reports(events_store, tmp_path):
    """Both instances (a CRNN and a GRU detector) in this process (torch), then `python -m
    xval detect` and `evaluate` on the instance's fold models. The same on TensorFlow:
    `test_detection_on_tensorflow`."""
    from xval.inference.detect import detect_files

    config = write_config(tmp_path, paths={"data_dir": str(events_store.path.parent),
                                           "results_dir": str(tmp_path / "results")},
                          report={"plots": True})
    script = write_script(tmp_path, _EXPERIMENT)
    proc = run_script_here(script, 1, 2, "--config", config, "--backend", "torch", "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "results" / "sed" / "experiment_1"
    _check_experiment(exp, (1, 2), "torch")
    wav = sorted((events_store.path.parent.parent / "raw").glob("*.wav"))[0]
    plots = tmp_path / "plots"
    proc = python_here("-m", "xval", "detect", exp / "instance_1", wav, "--format", "csv",
                       "--plot", plots, "--config", config)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "file,onset_s,offset_s,label"
    assert all(line.endswith(",digit") for line in lines[1:])
    assert (plots / f"{wav.stem}_activity.png").stat().st_size > 1000
    _check_evaluate_on_annotated_recordings(exp, wav.parent, config)
    info = json.loads((events_store.path / "dataset.json").read_text())
    with pytest.raises(ConfigurationError, match="these are classification models, which "
                                                 "find no events"):
        detect_files(exp / "instance_1" / "fold_0.keras", [wav],
                     dataset_info={**info, "task_type": "classification"})
    _check_workbook(exp, (1, 2))


_ON_TENSORFLOW = """
import json, runpy, sys

experiment = runpy.run_path(sys.argv[1])["experiment"]
try:
    code = experiment.main(["1", "1", "--config", sys.argv[2], "--backend", "tensorflow",
                            "-q"])
except SystemExit as exit_:
    code = exit_.code
measure = runpy.run_path(sys.argv[3])["measure"]
print(json.dumps({"code": code or 0,
                  "weighting": measure(sys.argv[4], sys.argv[5], json.loads(sys.argv[6]),
                                       sys.argv[7])}))
"""


@pytest.mark.slow
@pytest.mark.tensorflow
def test_detection_on_tensorflow(events_store, tmp_path):
    """On TensorFlow, in one process of its own: the CRNN (convolutions and a GRU) through
    an experiment, as `test_detection_experiment_runs_and_reports` on torch; and the class
    weights' measurement of `test_class_weights_raise_recall_of_rare_events_torch`."""
    from tests.conftest import ROOT

    config = write_config(tmp_path, paths={"data_dir": str(events_store.path.parent),
                                           "results_dir": str(tmp_path / "results")},
                          report={"plots": True})
    script = write_script(tmp_path, _EXPERIMENT)
    store = sparse_store(tmp_path / "data" / "sparse")
    driver = write_script(tmp_path, _ON_TENSORFLOW, name="on_tensorflow.py")
    proc = run_script(driver, script, config, _weighting_script(tmp_path), store.path, ROOT,
                      json.dumps(ITEMS), tmp_path, env={"KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    assert said["code"] == 0, proc.stderr[-3000:]
    exp = tmp_path / "results" / "sed" / "experiment_1"
    _check_experiment(exp, (1,), "tensorflow")
    _check_workbook(exp, (1,))
    assert said["weighting"]["backend"] == "tensorflow"
    _check_weighting(said["weighting"], store)


def _check_workbook(exp, instances):
    """The workbook of a detection experiment: event and PSDS headlines, each fold's activity
    plots named, the selected instance's embedded."""
    import openpyxl

    book = openpyxl.load_workbook(exp / "experiment_1.xlsx")
    text = " ".join(str(c.value) for row in book["Summary"].iter_rows() for c in row
                    if c.value is not None)
    assert "recording event F1" in text and "window event F1" in text
    assert "recording PSDS1 mean" in text and "recording PSDS2 mean" in text
    assert "test events over 3 folds" in text  # the errors summed, under the table
    from xval.report.terminal import terminal_table

    assert "instance 1, test events over 3 folds:" in terminal_table(exp)  # and the terminal's
    events = list(book["Events"].values)  # per fold, what lost the events
    assert events[0][:4] == ("ID", "fold", "event F1", "annotated")
    assert [row[1] for row in events[1:4]] == [0, 1, 2]
    # Per fold, a few test windows' activity against the annotation, named in the workbook.
    folds_sheet = list(book["Folds"].values)
    plots_column = folds_sheet[0].index("plots")
    for k in instances:
        for i in range(3):
            check_activity_plot(exp / f"instance_{k}", i)
        named = [row[plots_column] for row in folds_sheet[1:] if row[0] == k]
        assert named == [f"instance_{k}/plots/activity_fold_{i}.png" for i in range(3)]
    # The Plots sheet embeds the selected instance's activity plots after its own plots.
    plots = book["Plots"]
    from xval import ExperimentResults
    from xval.report.tables import Selection

    best = Selection.of(ExperimentResults(exp)).selected  # [report] at its defaults
    assert plots["A1"].value.startswith(f"instance {best.id} ★ selected")
    names = [c.value for c in plots[2] if c.value]
    assert names[-3:] == [f"activity_fold_{i}.png" for i in range(3)]
    assert len(plots._images) >= len(names)


def _check_psds(fold):
    """PSDS at the recording level (the stitched recordings), validation and test only."""
    for name in ("psds1", "psds2"):
        for split in ("val", "test"):
            value = fold["clip_metrics"][split][name]
            assert value is None or 0 <= value <= 1
        assert name not in fold["metrics"]["test"] and name not in fold["clip_metrics"]["train"]


def _check_evaluate_on_annotated_recordings(exp, raw, config):
    """`python -m xval evaluate --annotations`: the experiment's recording metrics of the
    detected events; without --annotations, one error line saying how. (Run in this process;
    `evaluate`'s own process is tested in test_final_model.py.)"""
    from xval.cli.main import main
    from xval.inference.evaluate import evaluate_recordings

    def evaluate(*args):
        return run_here(main, "evaluate", exp / "instance_1", *args, "--config", config)

    proc = evaluate(str(raw), "--annotations", str(raw / "annotations.csv"), "--format", "csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(io.StringIO(proc.stdout), comment="#")
    overall = table[table["label"].isna()].set_index("metric")["value"]
    for name in ("segment_error_rate", "frame_f1", "psds1", "psds2", "events_annotated",
                 "events_missed", "events_inserted"):
        assert np.isfinite(overall[name]), name
    assert 0 <= overall["psds1"] <= 1 and 0 <= overall["psds2"] <= 1
    assert overall["events_annotated"] == 9  # every annotated event, found or lost
    # A 2-epoch model under the annotations' rule (too few validation events to choose a
    # threshold on: 0.5) may find no event; event and segment F1 are then undefined
    # (sed_eval's nan: no precision without a detection).
    if np.isfinite(overall["event_f1"]):
        assert 0 <= overall["event_f1"] <= overall["onset_f1"] <= 1  # onsets match more
        assert 0 <= overall["segment_f1"] <= 1
    assert table[table["label"] == "digit"]["metric"].tolist() == ["event_f1"]
    annotated = pd.read_csv(raw / "annotations.csv")
    report = evaluate_recordings(exp / "instance_1", raw / "annotations.csv", raw, fold=0)
    assert report["files"] == annotated.iloc[:, 0].nunique()
    assert report["levels"]["recording"]["event_f1"] == pytest.approx(
        report["levels"]["recording"]["class_f1"]["digit"], nan_ok=True)  # one class
    proc = evaluate(str(raw))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--annotations" in proc.stderr and "detection model" in proc.stderr
    # Read as the store read its annotations (recorded in dataset.json); an unusable
    # recording (silent) is skipped and listed, the others scored.
    import soundfile as sf

    info = json.loads((exp / "dataset.json").read_text())
    assert info["annotation_options"]["context"] == "keep"
    broken = exp.parent / "broken_recordings"
    shutil.copytree(raw, broken)
    first = sorted(broken.glob("*.wav"))[0]
    audio, rate = sf.read(first)
    sf.write(first, np.zeros_like(audio), rate)
    report = evaluate_recordings(exp / "instance_1", broken / "annotations.csv", broken)
    assert report["files"] == annotated.iloc[:, 0].nunique() - 1
    assert [s["path"] for s in report["skipped"]] == [str(first)]


def check_activity_plot(instance_dir, fold):
    """The fold's activity plot is a real PNG, drawn from its plot data: test windows with
    their frame probabilities and annotation."""
    import matplotlib.image

    png = instance_dir / "plots" / f"activity_fold_{fold}.png"
    image = matplotlib.image.imread(png)
    assert png.stat().st_size > 1000 and image.shape[0] > 100 and image.shape[1] > 100
    data = json.loads((instance_dir / f"plot_data_fold_{fold}.json").read_text())
    assert 1 <= len(data["windows"]) <= PLOT_WINDOWS
    for window in data["windows"]:
        assert np.asarray(window["probability"]).shape == np.asarray(window["target"]).shape
        assert np.asarray(window["target"]).any() == data["with_events"]


def test_detector_refused_for_classification_and_classifier_for_detection(tmp_path):
    from tests.conftest import resolve
    from xval.config.loader import load_config
    from xval.core.errors import ParameterError

    defaults = load_config(write_config(tmp_path)).training
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": ""}
    with pytest.raises(ParameterError, match="task_type 'detection' needs frames outputs; "
                                             "choose one of conformer_detector, crnn_detector, "
                                             "fast_detector, gru_detector, "
                                             "pretrained_detector, resnet_detector"):
        resolve(1, spec, training_defaults=defaults, task_type="detection")


def test_a_median_filter_longer_than_ten_seconds_is_refused_before_training(tmp_path):
    """A median filter erases every event shorter than half its length, and a long one
    makes each fold's scoring minutes slower: over 10 s it is a typo, refused when the
    instance is resolved (the dry run included)."""
    from tests.conftest import resolve
    from xval.config.loader import load_config
    from xval.core.errors import ParameterError

    defaults = load_config(write_config(tmp_path)).training
    spec = {"architecture": "fast_detector", "reshaping_type": "conv", "comment_1": "",
            "comment_2": ""}
    with pytest.raises(ParameterError, match=r"median_filter_seconds=1000.0: expected a "
                                             r"number in \[0, 10\]"):
        resolve(1, {**spec, "median_filter_seconds": 1000}, training_defaults=defaults,
                task_type="detection")
    assert resolve(1, {**spec, "median_filter_seconds": 10}, training_defaults=defaults,
                   task_type="detection")["median_filter_seconds"] == 10


def test_the_detection_default_is_the_configuration_measured_best():
    """`fast_detector` named with nothing else, under the shipped config, is the
    configuration docs/results.md measured on both detection sets (the "default" of the
    detection study, `git show 4619a5e:benchmarks/detect_research.py`): a change of any of
    these moves the documented figures."""
    from tests.conftest import ROOT, resolve
    from xval.config.loader import load_config

    defaults = load_config(ROOT / "config.ini").training
    spec = {"architecture": "fast_detector", "reshaping_type": "conv", "comment_1": "",
            "comment_2": ""}
    params = resolve(1, spec, training_defaults=defaults, task_type="detection")
    measured = {"filters": 16, "conv_blocks": 3, "freq_pool": 2, "time_pool": 4, "units": 64,
                "rnn_layers": 2, "dropout": 0.2, "learning_rate": 0.003,
                "lr_schedule": "cosine", "epochs": 60, "patience": 10, "batch_size": 32,
                "time_masks": 0, "freq_masks": 0, "mixup_alpha": 0.0,
                "detection_threshold": None, "median_filter_seconds": None}
    assert {name: params[name] for name in measured} == measured


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
    from xval.cli.main import main

    code = main(["detect", str(tmp_path / "missing.keras"), str(tmp_path / "x.wav"),
                 "--plot", "/proc/no/such/folder"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--plot '/proc/no/such/folder': cannot create the folder" in err


# -- class weighting of rare events, per-fold activity plots ------------------------------

ITEMS = {"train": ["item0", "item1", "item2", "item3"], "val": ["item4"], "test": ["item5"]}


def sparse_store(path, *, windows=10, frames=40, bins=6, seed=0):
    """A detection store whose training items have events in 3% of their frames (a 3-frame
    event in 2 of every 5 windows of 40 frames), while the validation and test items have
    a 6-frame event in every window: weights from all rows would differ from the training
    rows' 97/3. Active frames raise three frequency bins."""
    rng = np.random.default_rng(seed)
    feats, targets, rows = [], [], []
    for i in range(6):
        dense = f"item{i}" not in ITEMS["train"]
        for w in range(windows):
            x = rng.normal(0, 1, (frames, bins)).astype(np.float32)
            y = np.zeros((frames, 1), np.float32)
            if dense or w % 5 in (0, 2):
                length = 6 if dense else 3
                onset = int(rng.integers(0, frames - length))
                y[onset:onset + length] = 1
                x[onset:onset + length, :3] += 2.0
            feats.append(x)
            targets.append(y)
            rows.append({"item": f"item{i}", "label": "event" if y.any() else "background",
                         "clip": f"item{i}/w{w}", "source": f"item{i}.wav",
                         "start": w * frames * 0.02})
    return write_store(path, np.stack(feats), pd.DataFrame(rows), task_type="detection",
                       classes=["call"], overwrite=True,
                       info={"feature_params": {"hop_length": 160, "sample_rate": 8000}},
                       arrays={"frame_targets.npy": np.stack(targets)})


# Trains one fold of the sparse store without and with class_weights and reports, as JSON,
# the training rows' frame recall, the loss a compiled reload of the saved model gets, and
# whether the engine's loader reads it. Runs in this process (torch) and in a subprocess
# (tensorflow).
_WEIGHTING = """
import io
import json
import shutil
import sys

import numpy as np

from xval.config.loader import load_config
from xval.core.records import Job
import architectures
from xval.config import params as _params
from xval.training.fold import run_fold


def resolve(*args, **kwargs):
    return _params.resolve(*args, architectures=architectures, **kwargs)


def measure(store_path, root, items, tmp):
    import keras

    import xval.tasks.losses  # noqa: F401  (registers the loss, for a compiled reload)
    from xval.training.loading import load

    out = {"backend": keras.backend.backend()}
    for weighted in (False, True):
        spec = {"architecture": "gru_detector", "reshaping_type": "rnn", "units": 8,
                "num_layers": 1, "epochs": 4, "patience": 4, "batch_size": 8,
                "learning_rate": 0.01, "class_weights": weighted, "comment_1": "",
                "comment_2": "", "lr_schedule": "constant", "warmup_epochs": 0,
                "min_epochs": 0, "time_masks": 0, "freq_masks": 0, "mixup_alpha": 0.0,
                "boundary_weight": 0.0}  # the class weights alone (the task's default is 2)
        params = resolve(1, spec, training_defaults=load_config(f"{root}/config.ini").training,
                         task_type="detection")
        result = run_fold(Job(instance=1, fold=0, params=params, items=items,
                              task_type="detection", generator=False, store=store_path))
        path = f"{tmp}/weighted_{weighted}.keras"
        with open(path, "wb") as f:
            f.write(result.model_bytes)
        compiled = keras.saving.load_model(path, compile=True, safe_mode=True)
        model = load(path)  # the engine's loader: compile=False, safe mode
        x = np.zeros((2, *model.input_shape[1:]), np.float32)
        out["weighted" if weighted else "plain"] = {
            "recall": result.metrics["train"]["frame_recall"],
            "first_loss": result.history["loss"][0],
            "loss": type(compiled.loss).__name__,
            "positive_weights": getattr(compiled.loss, "positive_weights", None),
            "output_shape": list(model.predict(x, verbose=0).shape),
            "plot_windows": len(result.plot_data["windows"]),
        }
    return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4])))
"""


def _check_weighting(scores, store):
    from xval.tasks.weights import positive_weights
    from xval.training.batches import fold_rows

    plain, weighted = scores["plain"], scores["weighted"]
    assert plain["loss"] == "BinaryCrossentropy" and plain["positive_weights"] is None
    assert weighted["loss"] == "WeightedFrameCrossentropy"
    # The weights come from the training rows only: 97 inactive frames per 3 active ones
    # there, about 12 over all rows (validation and test have longer events everywhere).
    rows = fold_rows(store, ITEMS)
    targets = np.asarray(store.targets)
    assert weighted["positive_weights"] == pytest.approx(
        positive_weights(targets[rows["train"]]))
    assert weighted["positive_weights"] == pytest.approx([97 / 3], rel=1e-4)
    assert positive_weights(targets)[0] < 15
    # Same seed, same first batches: the weighted loss differs, and rare events are found.
    assert weighted["first_loss"] != pytest.approx(plain["first_loss"], rel=0.05)
    assert weighted["recall"] > plain["recall"] + 0.3, scores
    for run in (plain, weighted):
        assert run["output_shape"] == [2, 40, 1]
        assert run["plot_windows"] == PLOT_WINDOWS


def _weighting_script(folder):
    return write_script(folder, _WEIGHTING, name="measure_weighting.py")


def test_class_weights_raise_recall_of_rare_events_torch(tmp_path):
    import importlib.util

    from tests.conftest import ROOT

    store = sparse_store(tmp_path / "data" / "sparse")
    spec = importlib.util.spec_from_file_location("measure_weighting",
                                                  _weighting_script(tmp_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scores = module.measure(str(store.path), str(ROOT), ITEMS, str(tmp_path))
    assert scores["backend"] == "torch"
    _check_weighting(scores, store)


def test_positive_weights_per_class_clipped():
    from xval.tasks.weights import MAX_POSITIVE_WEIGHT, positive_weights

    y = np.zeros((10, 100, 4), np.uint8)
    y[:, :3, 0] = 1  # 3% active: 97/3
    y[0, 0, 1] = 1  # 1 frame in 1000: clipped
    y[:, :60, 2] = 1  # active more often than not: 1
    # class 3 never active: 1
    assert positive_weights(y) == pytest.approx([97 / 3, MAX_POSITIVE_WEIGHT, 1.0, 1.0],
                                                rel=1e-5)
    assert positive_weights(y, max_weight=10.0)[1] == 10.0
    assert positive_weights(y, chunk=3) == positive_weights(y)  # read in chunks


def test_detection_loss_needs_the_training_targets_for_class_weights():
    import keras

    from xval.core.parameters import TrainingParams

    task = tasks.get("detection")
    assert isinstance(task.head.loss(TrainingParams()), keras.losses.BinaryCrossentropy)
    with pytest.raises(ValueError, match="class_weights=True or boundary_weight: the "
                                         "detection loss weights frames .* pass train_targets="):
        task.head.loss(TrainingParams(class_weights=True))
    y = np.zeros((4, 50, 1), np.float32)
    y[:, :5] = 1
    loss = task.head.loss(TrainingParams(class_weights=True), train_targets=y)
    assert loss.positive_weights == pytest.approx([9.0])


def test_class_weights_accepted_for_detection(tmp_path):
    from tests.conftest import resolve
    from xval.config.loader import load_config

    defaults = load_config(write_config(tmp_path)).training
    spec = {"architecture": "gru_detector", "reshaping_type": "rnn", "comment_1": "",
            "comment_2": "", "class_weights": True}
    assert resolve(1, spec, training_defaults=defaults,
                   task_type="detection")["class_weights"] is True


def test_detection_fold_plots_in_process_and_none_for_classification(tmp_path):
    """The recorder writes each detection fold's plot data and the activity plots; a
    classification experiment writes neither, and its Folds sheet has no plots column."""
    import openpyxl

    from tests.conftest import tiny_store
    from xval import Experiment
    from xval.config.loader import load_config

    config_path = write_config(tmp_path, report={"plots": True})
    config = load_config(config_path)
    sparse_store(config.data_dir / "sparse")
    tiny_store(config.data_dir)
    detection = Experiment(description="sparse", dataset="sparse", number=1, num_folds=3,
                           task_type="detection", config=str(config_path))
    detection[1] = {"architecture": "gru_detector", "reshaping_type": "rnn", "units": 4,
                    "num_layers": 1, "epochs": 1, "patience": 1, "batch_size": 8,
                    "class_weights": True, "comment_1": "", "comment_2": ""}
    assert detection.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    inst = config.results_dir / "sparse" / "experiment_1" / "instance_1"
    for i in range(3):
        check_activity_plot(inst, i)
    classification = Experiment(description="tiny", dataset="tiny", number=1, num_folds=3,
                                config=str(config_path))
    classification[1] = {"architecture": "example_cnn", "reshaping_type": "conv",
                         "filters": 4, "epochs": 1, "patience": 1, "batch_size": 16,
                         "comment_1": "", "comment_2": ""}
    assert classification.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    exp = config.results_dir / "tiny" / "experiment_1"
    assert (exp / "instance_1" / "plots" / "learning_curves.png").is_file()
    assert not list((exp / "instance_1").rglob("*activity*"))
    assert not list((exp / "instance_1").glob("plot_data_fold_*"))
    header = next(openpyxl.load_workbook(exp / "experiment_1.xlsx")["Folds"].values)
    assert "plots" not in header


def test_activity_plot_draws_per_class_thresholds(tmp_path):
    """A multi-class fold chooses a threshold per class on validation; its activity plot
    draws one dashed line per class (it used to fail, and the run lost its plots)."""
    import matplotlib.image

    from xval.report import activity as figures

    rng = np.random.default_rng(0)
    window = {"probability": rng.uniform(size=(50, 3)).tolist(),
              "target": (rng.uniform(size=(50, 3)) > 0.7).astype(int).tolist(),
              "start": 0.0, "events": [(0.1, 0.2, "a")], "source": "rec.wav", "item": "x",
              "row": 0}
    for threshold in ([0.4, 0.4, 0.7], [0.5, 0.5, 0.5], 0.5, None):
        data = {"classes": ["a", "b", "c"], "frame_seconds": 0.01, "threshold": threshold,
                "windows": [window]}
        png = figures.activity_windows(data, tmp_path / f"{threshold}.png")
        assert matplotlib.image.imread(png).shape[0] > 100
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    figures.draw_activity(ax, np.arange(50) * 0.01, np.asarray(window["probability"]),
                          ["a", "b", "c"], threshold=[0.4, 0.4, 0.7])
    dashed = sorted(line.get_ydata()[0] for line in ax.get_lines()
                    if line.get_linestyle() == "--")
    assert dashed == [0.4, 0.4, 0.7]
