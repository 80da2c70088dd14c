"""The tagging task (issue 65): stores of several labels per clip, the sources that give them
(a manifest column with a separator, FSD50K's layout, Lhotse, Hugging Face `Sequence`
labels), the errors, a real run (folds, thresholds chosen on the validation clips, the
workbook's Labels sheet, an ensemble, compare) and `init` to a run in three commands."""

import io
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from openpyxl import load_workbook

from preprocessing import sources
from preprocessing.sources.labels import parse_separator
from preprocessing.store import FeatureStore, write_store
from tests.conftest import python_here, resolve, run_script_here, write_config, write_script
from xval import tasks
from xval.core.errors import ConfigurationError, DatasetError, ParameterError
from xval.core.parameters import InstanceParams, TrainingParams
from xval.tasks.tagging.labels import TAG_SEPARATOR, multi_hot, split_tags
from xval.tasks.tagging.metrics import choose_thresholds

CLASSES = ["a", "b", "c", "d"]
SR = 8000


def tag_store(data_dir, name="tags", *, n_items=6, clips=6, seed=0, shape=(8, 6)):
    """A small learnable tagging store: 1-2 labels per clip, each shifting its own bin; two
    segments per clip."""
    rng = np.random.default_rng(seed)
    feats, rows = [], []
    for i in range(n_items):
        for k in range(clips):
            tags = sorted(rng.choice(len(CLASSES), size=1 + k % 2, replace=False).tolist())
            for s in range(2):
                x = rng.normal(0, 1, shape).astype(np.float32)
                x[:, tags] += 2.5
                feats.append(x)
                rows.append({"item": f"item{i}", "clip": f"item{i}/c{k}",
                             "label": ";".join(CLASSES[t] for t in tags), "start": 0.5 * s,
                             "source": f"item{i}_{k}.wav", "augmented": False})
    return write_store(data_dir / name, np.stack(feats), pd.DataFrame(rows),
                       task_type="tagging", overwrite=True)


# -- the store and its errors ----------------------------------------------------------


def test_tag_store_keeps_label_sets_and_gives_zero_one_rows(tmp_path):
    store = tag_store(tmp_path)
    assert store.task_type == "tagging" and store.classes == CLASSES
    y = store.targets
    assert y.shape == (len(store), 4) and set(np.unique(y)) == {0.0, 1.0}
    first = store.meta.iloc[0]
    assert y[0].tolist() == [float(c in split_tags(first["label"])) for c in CLASSES]
    assert tasks.get("tagging").targets.stratify(store).shape == y.shape
    assert multi_hot(["0;3", 2], 4).tolist() == [[1, 0, 0, 1], [0, 0, 1, 0]]


@pytest.mark.parametrize("labels,match", [
    (["dog", "cat", "dog", "bird"], "single label .3 different ones.: this is classification"),
    (["dog;cat", "", "cat"], "have no label .the first: row 2.*--empty-label none"),
    (["dog;cat", "cat;dog", "dog; cat"], "has the labels 'cat;dog': there is nothing to learn"),
])
def test_tag_store_refuses_labels_it_cannot_learn(tmp_path, labels, match):
    meta = pd.DataFrame({"item": ["x", "y", "z", "w"][:len(labels)], "label": labels,
                         "clip": [f"c{i}" for i in range(len(labels))]})
    with pytest.raises(DatasetError, match=match):
        write_store(tmp_path / "s", np.zeros((len(labels), 4, 3), np.float32), meta,
                    task_type="tagging")
    assert not (tmp_path / "s").exists()


def test_tag_head_losses_and_parameter_checks():
    import keras

    task = tasks.get("tagging")
    y = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=np.float32)
    z = np.array([[2.0, -1.0, 0.5], [0.1, 0.3, -2.0], [1.0, -0.5, 0.2]], dtype=np.float32)
    plain = task.head.loss(TrainingParams(label_smoothing=0.0))
    expected = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    assert float(plain(y, z)) == pytest.approx(expected, rel=1e-5)
    weighted = task.head.loss(TrainingParams(class_weights=True), train_targets=y)
    assert weighted.positive_weights == [1.0, 2.0, 2.0]  # negatives / positives, at least 1
    assert float(weighted(y, z)) > float(plain(y, z))
    focal = task.head.loss(InstanceParams(label_smoothing=0.0).replace(focal_gamma=2.0))
    assert isinstance(focal, keras.losses.BinaryFocalCrossentropy)
    assert float(focal(y, z)) < float(plain(y, z))  # easy labels weigh less
    with pytest.raises(ParameterError, match="focal_gamma=2.0 and class_weights=True"):
        task.check_params(InstanceParams(class_weights=True).replace(focal_gamma=2.0),
                          "instance 1")
    with pytest.raises(ParameterError, match="focal_gamma=2.0 .from instance 1. is a parameter "
                                             "of task_type='tagging'"):
        resolve(1, {"architecture": "mlp", "focal_gamma": 2.0}, task_type="classification",
                training_defaults=TrainingParams())


# -- sources ---------------------------------------------------------------------------


def _tones(folder, names_per_clip, *, items=None, seconds=0.6):
    """WAV files of summed tones (one frequency per label); returns their file names."""
    hz = {"low": 300.0, "mid": 800.0, "high": 1800.0, "top": 3000.0, "none": 0.0}
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    files = []
    for k, names in enumerate(names_per_clip):
        item = items[k] if items else k % 3
        y = 0.01 * rng.standard_normal(len(t))
        for name in names:
            y += 0.2 * np.sin(2 * np.pi * hz[name] * (1 + 0.03 * item) * t)
        files.append(f"clip{k}.wav")
        sf.write(folder / files[-1], y.astype(np.float32), SR)
    return files


def test_manifest_source_reads_label_sets_and_refuses_what_it_cannot(tmp_path):
    files = _tones(tmp_path, [["low", "mid"], ["mid"], ["high", "low"], []])
    table = pd.DataFrame({"path": files, "label": ["mid;low", "mid", "high; low", ""]})
    table.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DatasetError, match=r"the row of 'clip3.wav' in .*m.csv: label='' holds "
                                           "no label.*--empty-label none"):
        sources.manifest_source(tmp_path / "m.csv", label_separator=";")
    rows, _ = sources.manifest_source(tmp_path / "m.csv", label_separator=";",
                                      empty_label="none")
    assert rows["label"].tolist() == ["low;mid", "mid", "high;low", "none"]
    assert rows.attrs["multi_label"] is True
    with pytest.raises(DatasetError, match=r"No label of the column 'label' holds the "
                                           r"separator '\|' \(pipe\).*this is classification"):
        sources.manifest_source(tmp_path / "m.csv", label_separator="|", empty_label="none")
    plain, _ = sources.manifest_source(tmp_path / "m.csv")
    assert plain.attrs["multi_label"] is False and plain["label"].iloc[0] == "mid;low"


def test_manifest_source_recognises_fsd50k_ground_truth(tmp_path):
    files = _tones(tmp_path / "dev_audio", [["low", "mid"], ["mid"], ["high"]])
    pd.DataFrame({"fname": [f[:-4] for f in files],
                  "labels": ["Bark,Dog", "Dog", "Speech"],
                  "mids": ["/m/05tny_,/m/0bt9lr", "/m/0bt9lr", "/m/09x0r"],
                  "split": ["train", "val", "train"]}).to_csv(tmp_path / "dev.csv", index=False)
    rows, skipped = sources.manifest_source(tmp_path / "dev.csv", root=tmp_path / "dev_audio")
    assert skipped == [] and rows["label"].tolist() == ["Bark;Dog", "Dog", "Speech"]
    assert rows["path"].str.endswith(".wav").all() and "split" not in rows


def test_label_separator_must_be_known():
    assert parse_separator("semicolon") == ";" and parse_separator("|") == "|"
    with pytest.raises(ValueError, match=r"--label-separator '/': unknown separator; "
                                         r"expected one of ';' \(semicolon\)"):
        parse_separator("/")


def test_lhotse_multi_label_cut_is_the_set_of_its_supervisions(tmp_path):
    lhotse = pytest.importorskip("lhotse")
    files = _tones(tmp_path, [["low", "mid"], ["high"]], seconds=1.0)
    recordings = [lhotse.Recording.from_file(tmp_path / f, recording_id=f"r{k}")
                  for k, f in enumerate(files)]
    cuts = []
    for k, rec in enumerate(recordings):
        tags = [["low", "mid"], ["high"]][k]
        supervisions = [lhotse.SupervisionSegment(id=f"s{k}{j}", recording_id=rec.id, start=0,
                                                  duration=1.0, speaker=f"spk{k}",
                                                  custom={"sound": tag})
                        for j, tag in enumerate(tags)]
        cuts.append(lhotse.MonoCut(id=f"cut{k}", start=0, duration=1.0, channel=0,
                                   recording=rec, supervisions=supervisions))
    lhotse.CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    single, skipped = sources.get("lhotse").rows([tmp_path / "cuts.jsonl.gz"],
                                                 {"label_field": "sound"})
    assert len(single) == 1 and "several labels" in skipped[0]["reason"]
    rows, _ = sources.get("lhotse").rows([tmp_path / "cuts.jsonl.gz"],
                                         {"label_field": "sound", "multi_label": True})
    assert rows["label"].tolist() == ["low;mid", "high"] and rows.attrs["multi_label"]


def test_hf_sequence_of_class_labels_gives_label_sets(tmp_path):
    datasets = pytest.importorskip("datasets")

    def wav(seed):
        buffer = io.BytesIO()
        sf.write(buffer, np.random.default_rng(seed).normal(0, 0.1, 4000), SR, format="WAV")
        return buffer.getvalue()

    dataset = datasets.Dataset.from_dict({"audio": [wav(k) for k in range(3)],
                                          "tags": [[0, 2], [1], [2, 0]],
                                          "speaker_id": ["p", "q", "r"]})
    dataset = dataset.cast_column("audio", datasets.Audio()).cast_column(
        "tags", datasets.Sequence(datasets.ClassLabel(names=["dog", "cat", "bird"])))
    dataset.save_to_disk(str(tmp_path / "ds"))
    rows, _ = sources.get("hf").rows([tmp_path / "ds"], {"label_column": "tags"})
    assert rows["label"].tolist() == ["bird;dog", "cat", "bird;dog"]
    assert rows.attrs["multi_label"] and rows.attrs["classes"] == ["dog", "cat", "bird"]


def test_hf_example_without_a_label_is_refused_by_name(tmp_path):
    """An example whose `Sequence` label column holds an empty list is refused, naming it,
    as the manifest source refuses a clip without a label (it was dropped without a word,
    issue 74)."""
    datasets = pytest.importorskip("datasets")

    def wav(seed):
        buffer = io.BytesIO()
        sf.write(buffer, np.random.default_rng(seed).normal(0, 0.1, 4000), SR, format="WAV")
        return buffer.getvalue()

    dataset = datasets.Dataset.from_dict({"audio": [wav(k) for k in range(3)],
                                          "tags": [[0], [], [1]],
                                          "speaker_id": ["p", "q", "r"]})
    dataset = dataset.cast_column("audio", datasets.Audio()).cast_column(
        "tags", datasets.Sequence(datasets.ClassLabel(names=["dog", "cat"])))
    dataset.save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DatasetError, match=r"train example 1 of .*ds: tags=\[\] holds no label; a "
                                           r"clip needs one label at least"):
        sources.get("hf").rows([tmp_path / "ds"], {"label_column": "tags"})


def test_empty_label_is_a_new_class_of_label_sets(tmp_path):
    """`--empty-label NAME` names a class of its own for clips without a label: a NAME that
    is already a class would merge them into it, and on a manifest of one label per clip it
    would do nothing; both are refused (issue 74)."""
    audio = tmp_path / "sounds"
    files = _tones(audio, [["low", "mid"], ["mid"], []])
    pd.DataFrame({"path": files, "label": ["mid;low", "mid", ""]}).to_csv(audio / "m.csv",
                                                                       index=False)
    with pytest.raises(DatasetError, match=r"--empty-label 'mid' is already a class .* "
                                           r"give a name no clip holds"):
        sources.manifest_source(audio / "m.csv", label_separator=";", empty_label="mid")
    pd.DataFrame({"path": files, "label": ["low", "mid", "high"]}).to_csv(
        audio / "single.csv", index=False)
    with pytest.raises(ConfigurationError, match=r"--empty-label 'none' goes with several "
                                                 r"labels per clip"):
        sources.manifest_source(audio / "single.csv", empty_label="none")
    init = python_here("-m", "xval", "init", audio, "--manifest", audio / "single.csv",
                       "--empty-label", "none", "--dry-run", cwd=tmp_path)
    assert init.returncode == 2 and "--empty-label 'none' goes with several" in init.stderr


def test_lhotse_multi_label_over_supervisions_is_the_set_of_each_recording(tmp_path):
    """A RecordingSet and a SupervisionSet with --multi-label: one row per recording (a cut
    of it), its label the set of its supervisions' labels; without --multi-label one row
    per supervision (issue 74: it gave one row per supervision either way)."""
    lhotse = pytest.importorskip("lhotse")
    files = _tones(tmp_path, [["low", "mid"], ["high"]], seconds=1.0)
    recordings = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(tmp_path / f, recording_id=f"r{k}")
        for k, f in enumerate(files))
    supervisions = lhotse.SupervisionSet.from_segments(
        lhotse.SupervisionSegment(id=f"s{k}{j}", recording_id=f"r{k}", start=0.1 * j,
                                  duration=0.5, speaker=f"spk{k}", custom={"sound": tag})
        for k, tags in enumerate([["low", "mid"], ["high"]]) for j, tag in enumerate(tags))
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    supervisions.to_file(tmp_path / "supervisions.jsonl.gz")
    paths = [tmp_path / "recordings.jsonl.gz", tmp_path / "supervisions.jsonl.gz"]
    plain, _ = sources.get("lhotse").rows(paths, {"label_field": "sound", "root": tmp_path})
    assert plain["label"].tolist() == ["low", "mid", "high"]
    rows, skipped = sources.get("lhotse").rows(paths, {"label_field": "sound",
                                                       "multi_label": True, "root": tmp_path})
    assert skipped == [] and rows["label"].tolist() == ["low;mid", "high"]
    assert rows.attrs["multi_label"] and rows["item"].tolist() == ["spk0", "spk1"]
    assert rows["duration"].tolist() == [1.0, 1.0]


def test_lhotse_multi_label_recording_of_two_speakers_is_named_with_why(tmp_path):
    """With --multi-label a recording is one row of one item: one whose supervisions name
    two speakers was dropped without a word (35 of 36 kept). `init` names it, the speakers
    and the fix."""
    lhotse = pytest.importorskip("lhotse")
    tags = [["low", "mid"], ["high"], ["mid"], ["low", "high"], ["mid", "high"]]
    files = _tones(tmp_path / "audio", tags, seconds=1.0)
    recordings = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(tmp_path / "audio" / f, recording_id=f"r{k}")
        for k, f in enumerate(files))
    speakers = ["a", "b", "c", "a", "b"]
    supervisions = lhotse.SupervisionSet.from_segments(
        lhotse.SupervisionSegment(id=f"s{k}{j}", recording_id=f"r{k}", start=0.1 * j,
                                  duration=0.5, custom={"sound": tag},
                                  speaker=speakers[k] if (k, j) != (4, 1) else "z")
        for k, names in enumerate(tags) for j, tag in enumerate(names))
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    supervisions.to_file(tmp_path / "supervisions.jsonl.gz")
    init = python_here("-m", "xval", "init", tmp_path / "recordings.jsonl.gz",
                       tmp_path / "supervisions.jsonl.gz", "--corpus", "lhotse",
                       "--label-field", "sound", "--multi-label", "--root", tmp_path / "audio",
                       "--folds", "3", "--encoders", "none", "--dry-run", cwd=tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr
    out = " ".join(init.stdout.split())
    assert "Found 4 files" in out and "Skipped 1 of the files:" in out, out
    assert ("clip4.wav: r4-4: its supervisions name 2 speakers ('b', 'z'), and with --multi-label a "
            "recording is one row of one item") in out and "--item-field recording_id" in out


# -- a run -----------------------------------------------------------------------------


RUN = """
    from xval import Ensemble, Experiment

    experiment = Experiment(description="tags", dataset="tags", number=1, num_folds=3,
                            task_type="tagging")
    experiment[1] = {"architecture": "mlp", "reshaping_type": "none", "epochs": 4,
                     "comment_1": "mlp", "comment_2": "bce"}
    experiment[2] = {"architecture": "mlp", "reshaping_type": "none", "epochs": 4,
                     "focal_gamma": 2.0, "comment_1": "mlp", "comment_2": "focal"}
    experiment[3] = Ensemble(1, 2)

    if __name__ == "__main__":
        experiment.main()
"""


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagging")
    write_config(root, report={"plots": True})
    tag_store(root / "data")
    script = write_script(root, RUN)
    dry = run_script_here(script, "--dry-run")
    proc = run_script_here(script)
    return root, dry, proc


def _pooled_val(exp, instance, fold):
    """The validation clips of a fold, from its recorded predictions: 0/1 targets and the
    mean of the segments' probabilities."""
    table = pd.read_csv(exp / f"instance_{instance}" / f"val_predictions_fold_{fold}.csv",
                        dtype={"target": str})
    table = table[table["split"] == "val"]
    clips = table.groupby("clip", sort=True)
    p = clips[[f"p_{c}" for c in CLASSES]].mean().to_numpy()
    return multi_hot(clips["target"].first().tolist(), len(CLASSES)), p


def test_run_prints_each_labels_test_rows_per_fold(tag_run):
    _, dry, _ = tag_run
    out = dry.stdout
    assert dry.returncode == 0, out + dry.stderr
    assert "Data: 72 rows, 6 items, 4 labels" in out
    assert "Test rows of each label per fold" in out
    table = out.split("Test rows of each label per fold")[1].splitlines()[1:6]
    assert table[0].split() == ["fold", "0", "fold", "1", "fold", "2", "all"]
    assert "MultilabelItemKFold(n_splits=3" in out


def test_run_scores_tags_and_chooses_thresholds_on_validation_clips(tag_run):
    root, _, proc = tag_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = root / "results" / "tags" / "experiment_1"
    record = json.loads((exp / "instance_1" / "fold_0.json").read_text())
    for level in ("metrics", "clip_metrics"):
        assert set(record[level]["test"]) == {"loss", "map", "lwlrap", "auc", "dprime",
                                              "f1_micro", "f1_macro"}
    chosen = record["postprocessing"]
    assert chosen["split"] == "val" and chosen["level"] == "clip"
    y, p = _pooled_val(exp, 1, 0)  # the fold's validation clips alone
    assert chosen["values"]["tag_threshold"] == choose_thresholds(y, p).tolist()
    test = pd.read_csv(exp / "instance_1" / "predictions_fold_0.csv")
    assert {"predicted", *(f"p_{c}" for c in CLASSES)} <= set(test.columns)
    assert (exp / "instance_1" / "plots" / "per_label_ap.png").is_file()
    ensemble = json.loads((exp / "instance_3" / "fold_0.json").read_text())
    assert ensemble["clip_metrics"]["test"]["map"] > 0.5
    assert len(ensemble["postprocessing"]["values"]["tag_threshold"]) == 4


def test_ensemble_with_a_fold_record_edited_by_hand_is_refused(tag_run, tmp_path):
    """An ensemble's fold record whose thresholds were edited (not sealed again) is not
    believed: `predict` and `export`, which read the thresholds from it, refuse naming the
    file (they answered with 0.5 thresholds, issue 74), as for a trained instance."""
    import shutil

    from xval.core.storage import ResultsStore
    from xval.ensembles.predict import ensemble_postprocessing

    root, _, proc = tag_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    copy = tmp_path / "experiment_1"
    shutil.copytree(root / "results" / "tags" / "experiment_1", copy)
    path = copy / "instance_3" / "fold_0.json"
    record = json.loads(path.read_text())
    record["postprocessing"]["values"]["tag_threshold"] = [0.05] * 4
    path.write_text(json.dumps(record))
    assert ensemble_postprocessing(copy / "instance_3", ResultsStore(), 1) is not None
    with pytest.raises(ConfigurationError, match=r"instance_3/fold_0.json was edited after it "
                                                 r"was written.*its choice \(thresholds\) "
                                                 r"cannot be believed.*--as 3 --overwrite"):
        ensemble_postprocessing(copy / "instance_3", ResultsStore())


def test_run_workbook_has_map_lwlrap_and_the_labels_sheet(tag_run):
    root, _, proc = tag_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    exp = root / "results" / "tags" / "experiment_1"
    book = load_workbook(exp / "experiment_1.xlsx")
    assert "Labels" in book.sheetnames and "Ensembles" in book.sheetnames
    summary = [c.value for c in book["Summary"][2]]
    assert "clip mAP mean" in summary and "clip lwlrap mean" in summary
    metrics = " ".join(str(c.value) for row in book["Metrics"].iter_rows(max_row=3)
                       for c in row)
    assert "lwlrap" in metrics and "dprime" in metrics
    labels = list(book["Labels"].iter_rows(values_only=True))
    assert labels[0][:7] == ("ID", "label", "test AP (mean over folds)", "AP std",
                             "folds testing it", "threshold (median over folds)",
                             "support (test clips)")
    rows = [r for r in labels[1:] if r[0] == 1]
    assert sorted(r[1] for r in rows) == CLASSES
    store = FeatureStore(root / "data" / "tags")
    clips = store.meta.drop_duplicates("clip")
    expected = {c: int(clips["label"].map(lambda t, c=c: c in split_tags(t)).sum())
                for c in CLASSES}
    assert {r[1]: r[6] for r in rows} == expected  # every clip tested once
    assert all(0 < r[2] <= 1 and 0 < r[5] < 1 for r in rows)


def test_compare_takes_a_tagging_experiment(tag_run):
    root, _, proc = tag_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    exp = root / "results" / "tags" / "experiment_1"
    out = python_here("-m", "xval", "compare", exp, "--no-workbook", cwd=root)
    assert out.returncode == 0, out.stderr
    assert "test clip map" in out.stdout and "tags/experiment_1:3" in out.stdout
    lw = python_here("-m", "xval", "compare", exp, "--metric", "lwlrap", "--no-workbook",
                     cwd=root)
    assert lw.returncode == 0 and "Test clip lwlrap (higher is better)" in lw.stdout


# -- init: a folder with a multi-label manifest, three commands ------------------------


@pytest.mark.slow
def test_init_on_a_multi_label_manifest_runs_in_three_commands(tmp_path):
    names = [["low", "mid"], ["mid"], ["high", "low"], ["top"], ["mid", "top"], ["high"]] * 6
    items = [k // 6 for k in range(len(names))]
    audio = tmp_path / "sounds"
    files = _tones(audio, names, items=items)
    pd.DataFrame({"path": files, "label": [TAG_SEPARATOR.join(n) for n in names],
                  "item": [f"spk{i}" for i in items]}).to_csv(audio / "labels.csv",
                                                              index=False)
    project = tmp_path / "project"
    project.mkdir()
    init = python_here("-m", "xval", "init", audio, "--manifest", audio / "labels.csv",
                       "--encoders", "none", "--no-progress", cwd=project)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    assert "4 classes (several per clip: a tagging experiment)" in init.stdout
    script = project / "experiments" / "sounds.py"
    assert 'task_type="tagging"' in script.read_text()
    run = python_here(script.relative_to(project), "2", "2", "--set", "epochs=3", cwd=project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    exp = project / "results" / "sounds" / "experiment_1"
    report = python_here("-m", "xval", "report", exp, cwd=project)
    assert report.returncode == 0, report.stderr
    assert "test clip map" in report.stdout or "test segment map" in report.stdout
    book = load_workbook(exp / "experiment_1.xlsx")
    assert "Labels" in book.sheetnames
    assert "mAP" in " ".join(str(c.value) for c in book["Summary"][2])
    check = python_here("-m", "preprocessing", "check", project / "data" / "sounds",
                        "--no-progress", cwd=project)  # the duplicate check follows the task
    assert check.returncode == 0, check.stderr
    assert FeatureStore(project / "data" / "sounds").task_type == "tagging"
    predicted = python_here("-m", "xval", "predict", exp / "instance_2", audio / files[0],
                            "--format", "csv", cwd=project)
    assert predicted.returncode == 0, predicted.stderr
    table = pd.read_csv(io.StringIO(predicted.stdout), comment="#", keep_default_na=False)
    clip = table[table["level"] == "clip"].iloc[0]
    assert set(split_tags(clip["predicted"])) <= {"high", "low", "mid", "top"}
    assert all(0 <= clip[c] <= 1 for c in ("high", "low", "mid", "top"))


def test_dry_run_warns_where_a_fold_side_holds_no_row_of_a_label():
    from xval.tasks.tagging.checks import label_indicators, missing_label_warnings

    meta = pd.DataFrame({"item": ["p", "q", "r", "s"],
                         "label": ["a;b", "b", "a;c", "b;c"]})
    sets = label_indicators(meta, ["a", "b", "c"], split_tags)
    fold = {"train": ["p", "s"], "val": ["q"], "test": ["r"]}
    lines = missing_label_warnings(meta, sets, [fold])
    assert any("fold 0's test items hold no row of label(s) 'b'" in line for line in lines)
    assert any("fold 0's validation items hold no row of label(s) 'a', 'c': their thresholds "
               "stay at 0.5" in line for line in lines)
    assert not any("training" in line for line in lines)


def test_preprocessing_builds_a_tagging_store_from_label_sets():
    from xval.cli.init_data import task_of_rows

    rows = pd.DataFrame({"label": ["a;b", "b"]})
    rows.attrs["multi_label"] = True
    assert task_of_rows(rows, "classification", quiet=True) == "tagging"
    assert task_of_rows(rows, "tagging", quiet=True) == "tagging"
    with pytest.raises(ConfigurationError, match="--task-type regression: the source gives "
                                                 "several labels per clip"):
        task_of_rows(rows, "regression", quiet=True)
    plain = pd.DataFrame({"label": ["a;b"]})
    assert task_of_rows(plain, "classification") == "classification"


def test_init_refuses_a_label_separator_without_a_manifest_and_an_unknown_one(tmp_path):
    audio = tmp_path / "sounds"
    _tones(audio, [["low"], ["mid"]])
    bad = python_here("-m", "xval", "init", audio, "--label-separator", ";", "--dry-run",
                      cwd=tmp_path)
    assert bad.returncode == 2
    assert "--label-separator reads the label column of a manifest" in bad.stderr
    unknown = python_here("-m", "xval", "init", audio, "--manifest", audio / "m.csv",
                          "--label-separator", "/", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown separator" in unknown.stderr
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "config.ini").exists()
