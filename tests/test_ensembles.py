"""Ensembles of instances (issue 58): a derived instance computed from the members' recorded
predictions on the same folds and clips, its weights chosen on validation rows only, refused
with one line for other folds or clips, reported (terminal, workbook, compare), predicting
as the weighted mean of its members, exported; and `rank_split`, the validation items that
rank instances without choosing an epoch."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_here, run_script_here, tiny_store, write_config, write_script
from xval import Ensemble, Experiment, Output
from xval.cli.main import main
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError

CNN = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 4, "blocks": 2,
       "dense_units": 8, "comment_1": "cnn", "comment_2": "ensemble test"}
AUDIO = {**CNN, "dataset": "wave", "front_end": "mel"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Experiment 1 on the demo recordings of 4 speakers, 3 folds of 2 epochs: instances 1
    and 4 take audio (a waveform store, the mel front end inside), 2 reads the log-mel
    store, 6 a log-mel store lacking one file (the same items: the same folds, other
    clips); 3 = Ensemble(1, 2, weights="validation"), 5 = Ensemble(1, 4) (the default: equal
    weights). Experiment 2: other folds (2)."""
    from preprocessing import build_store, regex_source
    from preprocessing.demo import CLASSES, PATTERN, _demo_params, write_demo_audio

    base = tmp_path_factory.mktemp("ensembles")
    config = load_config(write_config(base))
    write_demo_audio(base / "audio")
    rows, _ = regex_source(base / "audio", PATTERN)
    rows = rows[rows["item"].isin(["spk0", "spk1", "spk2", "spk3"])
                & rows["path"].str.contains("_[01].wav")].reset_index(drop=True)
    for name, extra, kept in (("mel", {}, rows), ("wave", {"feature": "waveform"}, rows),
                              ("mel_less", {}, rows.iloc[1:])):
        build_store(kept.reset_index(drop=True), config.data_dir / name,
                    params={**_demo_params(), **extra}, workers=1, classes=list(CLASSES),
                    progress=False, info={"source": "demo recordings, 4 speakers"})
    exp = Experiment(description="ensembles", dataset="mel", number=1, num_folds=3,
                     parameters={"epochs": 2, "batch_size": 16}, config=str(config.path))
    exp[1] = AUDIO
    exp[2] = {**CNN, "comment_1": "log-mel store"}
    exp[3] = Ensemble(1, 2, weights="validation")
    exp[4] = {**AUDIO, "learning_rate": 0.003, "comment_1": "audio, lr 3e-3"}
    exp[5] = Ensemble(1, 4)
    exp[6] = {**CNN, "dataset": "mel_less", "comment_1": "one file fewer"}
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    other = Experiment(description="other folds", dataset="mel", number=2, num_folds=2,
                       parameters={"epochs": 1, "batch_size": 16}, config=str(config.path))
    other[1] = {**CNN, "comment_1": "2 folds"}
    assert other.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    return config, config.results_dir / "mel" / "experiment_1", base


def _record(root, k):
    return json.loads((root / f"instance_{k}" / "ensemble.json").read_text())


def test_ensemble_run_installed_by_the_entry_points_and_refused_where_not(monkeypatch):
    """The running layer never imports the ensembles: `from xval import Experiment` installs
    them; a process that has not refuses an experiment declaring one, naming the fix, and
    runs one that declares none."""
    from xval.ensembles import run as ensembles_run
    from xval.running import derived

    exp = Experiment(description="d", dataset="mel", number=1)
    exp[1], exp[2], exp[3] = CNN, CNN, Ensemble(1, 2)
    assert derived.derived_run(exp) is ensembles_run
    assert derived.derived_run(exp).split_selection(exp, [1, 3]) == ([1], [3])
    monkeypatch.setattr(derived, "_INSTALLED", [])
    with pytest.raises(ConfigurationError, match=r"declares ensembles \(instances \[3\]\).*"
                                                 r"xval\.ensembles\.run\.install\(\)"):
        derived.derived_run(exp)
    plain = Experiment(description="d", dataset="mel", number=2)
    plain[1] = CNN
    assert derived.derived_run(plain).split_selection(plain, [1]) == ([1], [])


def test_ensemble_is_recorded_as_an_instance(trained):
    from xval.report.results import ExperimentResults

    _, root, _ = trained
    results = ExperimentResults(root)
    ensemble = results[3]
    assert ensemble.status == "complete" and ensemble.ensemble.instances == [1, 2]
    record = _record(root, 3)
    assert [f["chosen_on"] for f in record["folds"]] == ["val"] * 3
    for fold in record["folds"]:
        assert sum(fold["weights"]) == pytest.approx(1.0)
    assert _record(root, 5)["weighting"] == "equal"
    assert all(f["weights"] == [0.5, 0.5] for f in _record(root, 5)["folds"])
    # The fold records hold the fused scores; the predictions one row per clip.
    test = pd.read_csv(root / "instance_3" / "predictions_fold_0.csv")
    assert test["clip"].is_unique and ensemble.folds[0].n_rows["test"] == len(test)
    assert np.allclose(test.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)
    val = pd.read_csv(root / "instance_1" / "val_predictions_fold_0.csv")
    # Each member kept its validation rows' predictions (one row per segment).
    assert set(val["split"]) == {"val"} and len(val) == results[1].folds[0].n_rows["val"]


def results_of(root):
    from xval.report.results import ExperimentResults

    return ExperimentResults(root)


def test_ensemble_fold_records_hold_clip_scores_only(trained, tmp_path):
    """An ensemble fuses its members' clip scores: its fold records hold them as clip
    metrics, with no segment-level metrics, epoch or history; ensembles recorded before,
    with their clip scores under `metrics`, are read the same way."""
    from xval.core.records import FoldResult
    from xval.core.storage import RESULTS_STORE

    _, root, _ = trained
    written = json.loads((root / "instance_3" / "fold_0.json").read_text())
    assert written["metrics"] is None and "accuracy" in written["clip_metrics"]["test"]
    assert written["best_epoch"] is None and written["history"] is None
    copy = _copy(trained, tmp_path)
    for i in range(3):  # as ensembles were recorded before: clip scores under `metrics`
        path = copy / "instance_3" / f"fold_{i}.json"
        record = FoldResult.from_dict(json.loads(path.read_text()))
        record.metrics, record.clip_metrics = record.clip_metrics, None
        RESULTS_STORE.write(path, record)
    assert json.loads(path.read_text())["clip_metrics"] is None
    expected = results_of(root)[3].metric("accuracy", "test", "clip")
    for folder in (root, copy):
        ensemble = results_of(folder)[3]
        assert ensemble.status == "complete" and not ensemble.invalid
        assert ensemble.summary.levels() == ["clip"]
        assert ensemble.metric("accuracy", "test", "clip") == pytest.approx(expected)
        assert ensemble.metric("accuracy", "test", "segment") is None
    record.metrics = None  # fold 2 scored at neither level: not believed
    RESULTS_STORE.write(path, record)
    assert results_of(copy)[3].invalid == {2: "it has no test metrics"}


def _copy(trained, tmp_path):
    _, root, _ = trained
    copy = tmp_path / "experiment_1"
    shutil.copytree(root, copy)
    return copy


def _ensemble(copy, members=(1, 2), weighting="validation"):
    from xval.core.layout import ExperimentLayout
    from xval.core.storage import RESULTS_STORE
    from xval.ensembles.compute import compute_ensemble, members_of

    return compute_ensemble(3, members_of(copy, list(members), RESULTS_STORE),
                            RESULTS_STORE.manifest(ExperimentLayout(copy)), weighting)


def _rewrite(path, change, reseal=True):
    """Changes a predictions file; with `reseal`, records its new SHA-256 in its fold record
    (as a fold that wrote these predictions would have), else leaves it edited by hand."""
    from xval.core.layout import InstanceLayout
    from xval.core.records import FoldResult
    from xval.core.storage import RESULTS_STORE

    table = pd.read_csv(path, dtype={"item": str, "clip": str})
    change(table)
    path.write_text(table.to_csv(index=False))
    if reseal:
        layout = InstanceLayout.parse(path.parent)
        fold = int(path.stem.rsplit("_", 1)[1])
        record = FoldResult.from_dict(json.loads(layout.fold_file(fold).read_text()))
        record.outputs_sha256[path.name] = RESULTS_STORE.digest(path)
        RESULTS_STORE.write(layout.fold_file(fold), record)


def test_ensemble_weights_come_from_validation_rows_only(trained, tmp_path):
    copy = _copy(trained, tmp_path)
    before = _ensemble(copy)
    weights = [f["weights"] for f in before.record.folds]

    def wrong(table):  # every test row of member 1 now says the first class for sure
        p = [c for c in table.columns if c.startswith("p_")]
        table[p] = 0.0
        table[p[0]] = 1.0

    for i in range(3):
        _rewrite(copy / "instance_1" / f"predictions_fold_{i}.csv", wrong)
    moved = _ensemble(copy)
    assert [f["weights"] for f in moved.record.folds] == weights
    assert [f.clip_metrics["test"] for f in moved.folds] != \
        [f.clip_metrics["test"] for f in before.folds]

    def right(table):  # member 1 now answers every validation row correctly
        p = [c for c in table.columns if c.startswith("p_")]
        table[p] = np.eye(len(p))[table["target"].to_numpy()]

    for i in range(3):
        _rewrite(copy / "instance_1" / f"val_predictions_fold_{i}.csv", right)
    assert all(f["weights"] == [1.0, 0.0] for f in _ensemble(copy).record.folds)


def test_ensemble_without_validation_predictions_takes_equal_weights(trained, tmp_path):
    copy = _copy(trained, tmp_path)
    for path in (copy / "instance_2").glob("val_predictions_fold_*.csv"):
        path.unlink()  # results recorded before validation predictions were kept
    done = _ensemble(copy)
    assert all(f["weights"] == [0.5, 0.5] for f in done.record.folds)
    assert "instance 2 recorded no validation predictions" in done.record.notes[0]


def test_ensemble_of_members_on_other_folds_is_refused_in_one_line(trained):
    config, root, _ = trained
    other = root.parent / "experiment_2"
    proc = run_here(main, "ensemble", root, "1", f"{other}:1", "--config", config.path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "other folds (folds.json hash" in proc.stderr
    assert not (root / "instance_7").exists()


def test_ensemble_of_members_on_other_clips_is_refused_in_one_line(trained):
    config, root, _ = trained
    proc = run_here(main, "ensemble", root, "2", "6", "--config", config.path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "instance 6 fold 0 scored other" in proc.stderr
    assert "clips than instance 2 (1 differ, e.g. 'spk0/fall_0.wav')" in proc.stderr
    assert not (root / "instance_7").exists()


def test_ensemble_command_writes_a_new_instance(trained, tmp_path):
    config, _, _ = trained
    copy = _copy(trained, tmp_path)
    proc = run_here(main, "ensemble", copy, "2", "4", "--weights", "equal", "--config",
                    config.path)
    assert proc.returncode == 0, proc.stderr
    assert "Wrote instance 7" in proc.stdout and "ensemble of 2 + 4" in proc.stdout
    assert _record(copy, 7)["weighting"] == "equal"
    for bad in ("-2", "0"):  # refused before anything is written
        before = sorted(p.name for p in copy.iterdir())
        proc = run_here(main, "ensemble", copy, "2", "4", "--as", bad, "--config", config.path)
        assert proc.returncode == 2 and f"--as {bad}: an instance id is a whole number, 1 or " \
            "more" in proc.stderr, proc.stderr
        assert sorted(p.name for p in copy.iterdir()) == before


def test_ensemble_declaration_is_checked():
    with pytest.raises(ConfigurationError, match="two different instances at least"):
        Ensemble(1)
    with pytest.raises(ConfigurationError, match="weights='best'"):
        Ensemble(1, 2, weights="best")
    exp = Experiment(description="x", dataset="d", number=1)
    with pytest.raises(ConfigurationError, match="names itself"):
        exp[3] = Ensemble(1, 3)


def test_ensemble_of_undeclared_member_is_refused_before_anything_is_written(tmp_path):
    config = load_config(write_config(tmp_path))
    tiny_store(config.data_dir)
    exp = Experiment(description="x", dataset="tiny", number=1, num_folds=3,
                     config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none"}
    exp[3] = Ensemble(1, 2)
    with pytest.raises(ConfigurationError, match="instance 2 is not a declared"):
        exp.run(config=config, output=Output(out=lambda *a: None))
    assert not (config.results_dir / "tiny").exists()


def test_ensemble_predict_is_the_weighted_mean_of_its_members(trained):
    from xval.inference.predict import predict_files

    _, root, base = trained
    wavs = sorted(base.glob("audio/spk1/*_0.wav"))[:3]
    for fold in (None, 1):
        got = predict_files(root / "instance_3", wavs, fold=fold)
        record = _record(root, 3)
        weights = (np.mean([f["weights"] for f in record["folds"]], axis=0) if fold is None
                   else record["folds"][fold]["weights"])
        members = [predict_files(root / f"instance_{k}", wavs, fold=fold) for k in (1, 2)]
        for j, answer in enumerate(got):
            for name, value in answer["clip"]["scores"].items():
                expected = sum(w * m[j]["clip"]["scores"][name]
                               for w, m in zip(weights, members))
                assert value == pytest.approx(expected, abs=1e-6)
            assert answer["clip"]["predicted"] == max(answer["clip"]["scores"],
                                                      key=answer["clip"]["scores"].get)


def test_ensemble_refuses_to_predict_with_a_member_trained_again(trained, tmp_path):
    """A member whose parameters changed since the ensemble was made (`exp.py 2 2
    --overwrite` with another declaration, the ensemble not fused again) would answer with
    models the weights were not chosen for: `predict` and `export` refuse, saying how to
    compute the ensemble again; the line under the table says so."""
    from xval.core.records import EnsembleRecord
    from xval.core.storage import RESULTS_STORE
    from xval.inference.predict import predict_files

    _, _, base = trained
    copy = _copy(trained, tmp_path)
    path = copy / "instance_3" / "ensemble.json"
    record = EnsembleRecord.from_dict(json.loads(path.read_text()))
    record.members[1]["params_hash"] = "0" * 64  # made from another instance 2
    RESULTS_STORE.write(path, record)
    wavs = sorted(base.glob("audio/spk1/*_0.wav"))[:1]
    with pytest.raises(ConfigurationError, match=r"instance_2, a member of the ensemble .* was "
                       r"trained again with other parameters .* python -m xval ensemble "
                       r".* 1 2 --as 3 --overwrite\)"):
        predict_files(copy / "instance_3", wavs)
    from xval.ensembles.tables import ensemble_note  # the table and the workbook say so

    note = next(x for x in ensemble_note(results_of(copy)) if x.startswith("Instance 3 "))
    assert "Instance(s) 2 were trained again since (instance 2: other parameters)" in note
    assert not any("trained again" in x for x in ensemble_note(results_of(trained[1])))


def test_ensemble_refuses_to_predict_with_a_fold_record_edited_by_hand(trained, tmp_path):
    """A fold record of the ensemble edited by hand (not sealed again) is refused by
    `predict`, naming the file, before any member's model is loaded (issue 74: it answered,
    while `report` marked the ensemble partial and a trained instance is refused)."""
    from xval.inference.predict import predict_files

    _, _, base = trained
    copy = _copy(trained, tmp_path)
    path = copy / "instance_3" / "fold_1.json"
    record = json.loads(path.read_text())
    record["clip_metrics"]["test"]["accuracy"] = 1.0
    path.write_text(json.dumps(record))
    wavs = sorted(base.glob("audio/spk1/*_0.wav"))[:1]
    with pytest.raises(ConfigurationError, match=r"instance_3/fold_1.json was edited after it "
                                                 r"was written.* 1 2 --as 3 --overwrite\)"):
        predict_files(copy / "instance_3", wavs)


def test_ensemble_row_in_the_workbook_and_the_table(trained):
    import openpyxl

    config, root, _ = trained
    proc = run_here(main, "report", root, "--config", config.path)
    assert proc.returncode == 0, proc.stderr
    assert "Instance 3 is an ensemble of instances 1 + 2" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.lstrip("* ").startswith("3 "))
    assert line.count("±") == 2, line  # validation and test clip scores; no segment score
    book = openpyxl.load_workbook(root / "experiment_1.xlsx")
    summary = [row for row in book["Summary"].iter_rows(values_only=True)]
    row = next(r for r in summary if r[0] == 3)
    assert "ensemble of 1 + 2" in row
    header = list(summary[1])  # the test group's columns come last
    test_clip, test_segment = (len(header) - 1 - header[::-1].index(f"{level} accuracy mean")
                               for level in ("clip", "segment"))
    assert row[test_clip] == pytest.approx(
        np.mean([f.clip_metrics["test"]["accuracy"] for f in results_of(root)[3].folds]))
    assert row[test_segment] is None  # not the clip score again
    sheet = [r for r in book["Ensembles"].iter_rows(values_only=True)]
    assert sheet[0][:5] == ("ID", "fold", "members", "weighting", "weights")
    record = _record(root, 3)
    ours = [r for r in sheet[1:] if r[0] == 3]
    assert [r[4] for r in ours] == [" / ".join(f"{w:.2f}" for w in f["weights"])
                                    for f in record["folds"]]


def test_compare_an_ensemble_with_its_members(trained):
    config, root, _ = trained
    proc = run_here(main, "compare", f"{root}:1", f"{root}:2", f"{root}:3", "--no-workbook",
                    "--config", config.path)
    assert proc.returncode == 0, proc.stderr
    assert "corrected" in proc.stdout.lower() and ":3" in proc.stdout


def test_export_an_ensemble_whose_member_takes_features_exports_members_apart(trained,
                                                                              tmp_path):
    _, root, _ = trained
    out = tmp_path / "export"
    proc = run_here(main, "export", root / "instance_3", "--format", "keras", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "member_1", "member_2"]
    assert "instance 2 takes store features" in proc.stdout
    card = (out / "MODEL_CARD.md").read_text()
    weights = np.mean([f["weights"] for f in _record(root, 3)["folds"]], axis=0)
    assert f"instance 1: weight {weights[0]:.2f}" in card and "## Ensemble" in card
    assert (out / "member_2" / "model.keras").is_file()
    # What chose what: the weights, on each fold's validation clips; an ensemble has no epoch.
    assert "chose the best epoch" not in card and "trains nothing and has no epoch: its " \
        "weights were chosen on each fold's validation clips" in card
    assert "| clip | accuracy |" in card and "| segment |" not in card


def test_export_an_ensemble_of_audio_models_as_one_onnx(trained, tmp_path, recwarn):
    pytest.importorskip("onnx")
    _, root, _ = trained
    out = tmp_path / "onnx"
    proc = run_here(main, "export", root / "instance_5", "--format", "onnx", "--out", out)
    assert proc.returncode == 0, proc.stderr
    # Tracing for ONNX warns on every export (torch's TracerWarning): silenced without -v.
    assert not [w for w in recwarn if type(w.message).__name__ == "TracerWarning"]
    assert "TracerWarning" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "model.onnx"]
    assert "as one onnx model" in proc.stdout
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Ensemble" in card and "member_scores" in card
    assert "Front end: inside the model (`mel`, " in card  # the members' (the ensemble has none)
    # Equal weights, chosen on nothing; the fold table counts clips and has no best epoch.
    assert "chose the best epoch" not in card and "| None |" not in card
    assert "its members have equal weights in every fold" in card
    assert "- Weighting: equal (the same weight for every member in every fold)." in card
    assert "| fold | train items | val items | test items | train clips | val clips | test " \
        "clips | classes (train/test) |\n" in card


def test_split_validation_keeps_the_fold_and_is_the_same_for_every_instance():
    from xval.folds import split_validation

    fold = {"train": ["a", "b"], "val": ["c", "d", "e", "f"], "test": ["g"]}
    split = split_validation(fold, 0.5, 3)
    assert sorted(split["val"] + split["rank"]) == fold["val"]
    assert len(split["rank"]) == 2 and not set(split["val"]) & set(split["rank"])
    assert split == split_validation(fold, 0.5, 3) and split_validation(fold, 0, 3) is fold
    with pytest.raises(ConfigurationError, match="fold 0 has 1 validation item"):
        split_validation({**fold, "val": ["c"]}, 0.5, 0)


def test_rank_split_ranks_instances_on_items_that_chose_no_epoch(tmp_path):
    from xval.report.results import ExperimentResults
    from xval.report.tables import Selection, report_note

    config = load_config(write_config(tmp_path, folds={"val_fraction": 0.4}))
    tiny_store(config.data_dir, n_items=8)
    exp = Experiment(description="rank", dataset="tiny", number=1, num_folds=2,
                     parameters={"epochs": 2, "batch_size": 16, "rank_split": 0.5},
                     config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8}
    exp[2] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 16}
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    results = ExperimentResults(config.results_dir / "tiny" / "experiment_1")
    for fold in results[1].folds:
        assert fold.items["rank"] and not set(fold.items["rank"]) & set(fold.items["val"])
        assert "rank" in fold.metrics
    selection = Selection.of(results, config)
    assert selection.split == "rank"
    assert "kept out of the epoch choice" in report_note(results, config)


def test_validation_predictions_travel_with_a_fold_result_but_not_in_its_file():
    from xval.core.records import FoldResult, Status

    result = FoldResult(instance=1, fold=0, status=Status.OK, predictions_csv="row\n",
                        val_predictions_csv="split,row\nval,3\n")
    assert "val_predictions_csv" not in result.to_dict()
    back = FoldResult.from_transport(json.loads(json.dumps(result.to_transport())))
    assert back.val_predictions_csv == "split,row\nval,3\n"


def _copy_declared(config, folder):
    """The trained experiment's declaration, for a copy of its results under `folder`."""
    exp = Experiment(description="ensembles", dataset="mel", number=1, num_folds=3,
                     parameters={"epochs": 2, "batch_size": 16}, config=str(config.path),
                     experiment_folder=str(folder))
    exp[1] = AUDIO
    exp[2] = {**CNN, "comment_1": "log-mel store"}
    exp[3] = Ensemble(1, 2, weights="validation")
    return exp


def test_rerunning_a_member_fuses_its_ensemble_again(trained, tmp_path):
    config, root, _ = trained
    copy = tmp_path / "mel" / "experiment_1"
    shutil.copytree(root, copy)
    exp = _copy_declared(config, tmp_path)
    before = (copy / "instance_3" / "ensemble.json").stat().st_mtime_ns
    lines = []
    outcome = exp.run([2], config=config, output=Output(out=lines.append))  # 2 is complete: nothing trains
    assert outcome.exit_code == 0, lines
    assert any(line.startswith("instance 3: ensemble of") for line in lines)
    assert (copy / "instance_3" / "ensemble.json").stat().st_mtime_ns > before


def test_ensemble_never_writes_into_a_folder_it_did_not_write(trained, tmp_path):
    config, _, _ = trained
    copy = _copy(trained, tmp_path)
    mine = copy / "instance_7"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    for extra in ([], ["--overwrite"]):
        proc = run_here(main, "ensemble", copy, "1", "2", "--as", "7", *extra, "--config",
                        config.path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_an_ensemble_has_no_parameters_to_show_nor_a_model_to_refit(tmp_path):
    config = load_config(write_config(tmp_path))
    exp = Experiment(description="x", dataset="tiny", number=1, config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none"}
    exp[2] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8}
    exp[3] = Ensemble(1, 2)
    with pytest.raises(ConfigurationError, match="--refit 3: instance 3 is Ensemble"):
        exp.refit(3, config=config, output=Output(out=lambda *a: None))


def test_a_regression_ensemble_averages_values_weighted_on_validation(tmp_path):
    from xval.report.results import ExperimentResults

    config = load_config(write_config(tmp_path))
    tiny_store(config.data_dir, task_type="regression")
    exp = Experiment(description="regression", dataset="tiny", number=1, num_folds=3,
                     task_type="regression", parameters={"epochs": 2, "batch_size": 16},
                     config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8}
    exp[2] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 16}
    exp[3] = Ensemble(1, 2, weights="validation")
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    root = config.results_dir / "tiny" / "experiment_1"
    record = _record(root, 3)
    assert record["objective"] == "squared error"
    fold = record["folds"][0]
    members = [pd.read_csv(root / f"instance_{k}" / "predictions_fold_0.csv")
               .groupby("clip")["predicted"].mean() for k in (1, 2)]
    fused = pd.read_csv(root / "instance_3" / "predictions_fold_0.csv").set_index("clip")
    expected = fold["weights"][0] * members[0] + fold["weights"][1] * members[1]
    np.testing.assert_allclose(fused["predicted"], expected[fused.index], atol=1e-5)
    assert {"rmse", "mae", "r2"} <= set(
        ExperimentResults(root)[3].folds[0].clip_metrics["test"])


def test_an_ensemble_not_computed_says_why_on_stderr(capsys):
    """An ensemble that could not be computed fails the run with its own reason on stderr
    (it writes no error.txt); one left to another runner is pending (exit 3)."""
    from xval.running.runner import EXIT_PENDING_ELSEWHERE, exit_code

    why = {3: "ensemble Ensemble(1, 2) not computed: instance(s) 2 are not complete"}
    assert exit_code([3], [], None, why) == 1
    err = capsys.readouterr().err
    assert "instance 3: ensemble Ensemble(1, 2) not computed" in err
    assert "no reason recorded" not in err and "error.txt" not in err
    assert exit_code([1, 3], [], None, why) == 1
    assert "see error.txt in the folders of [1]." in capsys.readouterr().err
    assert exit_code([], [3], None) == EXIT_PENDING_ELSEWHERE


def test_weight_grid_sums_to_one_and_stays_bounded_with_many_members():
    from xval.ensembles.fusion import GRID_POINTS, weight_grid

    two = weight_grid(2)
    assert len(two) == 11 and np.allclose(two[0], [0.5, 0.5])  # equal weights first
    assert {tuple(w) for w in weight_grid(3).round(6)} == {
        (a / 10, b / 10, (10 - a - b) / 10) for a in range(11) for b in range(11 - a)}
    many = weight_grid(20)  # 11^20 points by brute force; a coarser grid here
    assert len(many) <= GRID_POINTS and np.allclose(many.sum(axis=1), 1.0)
    assert (many >= 0).all() and len({tuple(w) for w in many.round(6)}) == len(many)


def test_members_with_another_rank_split_are_refused_saying_so():
    """Members whose validation items are cut otherwise (another `rank_split`) validate the
    same items, but not the same clips choose the weights: the refusal names rank_split."""
    from types import SimpleNamespace

    from xval.core.records import FoldResult, Status
    from xval.ensembles.compute import EnsembleError, _check_items

    items = {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]}
    split = {"train": ["a", "b"], "val": ["c"], "rank": ["d"], "test": ["e"]}
    one, two = SimpleNamespace(label="instance 1"), SimpleNamespace(label="instance 2")
    plain = FoldResult(instance=1, fold=0, status=Status.OK, items=items)
    ranked = FoldResult(instance=2, fold=0, status=Status.OK, items=split)
    _check_items(one, one, plain, plain)
    with pytest.raises(EnsembleError, match=r"instance 2 fold 0 splits its validation items "
                                             r"otherwise than instance 1 .*rank_split"):
        _check_items(two, one, ranked, plain)


def _files(folder):
    """Every file under `folder` with its modification time: what a refusal must not touch."""
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _script(tmp_path, second, weights=', weights="validation"'):
    """The script of the trained experiment (instances 1 to 3) with instance 2 declared as
    `second` (and 3 with `weights`), its results under `tmp_path`."""
    return write_script(tmp_path, f"""
        from xval import Ensemble, Experiment

        experiment = Experiment(description="ensembles", dataset="mel", number=1, num_folds=3,
                                parameters={{"epochs": 2, "batch_size": 16}},
                                experiment_folder={str(tmp_path)!r})
        experiment[1] = {AUDIO!r}
        experiment[2] = {second!r}
        experiment[3] = Ensemble(1, 2{weights})

        if __name__ == "__main__":
            experiment.main()
        """)


def test_ensemble_refuses_members_made_with_other_parameters(trained, tmp_path):
    """`exp.py 3 3` fuses members complete on disk only when their recorded parameters are
    those the script declares: the check `exp.py 2 2` makes before it resumes 2, refused in
    one line (exit 2) naming the member, what differs and the fix; nothing written."""
    config, root, _ = trained
    copy = tmp_path / "mel" / "experiment_1"
    shutil.copytree(root, copy)
    made = {**CNN, "comment_1": "log-mel store"}
    script = _script(tmp_path, {**made, "filters": 8})
    before = _files(copy)
    member = run_script_here(script, "2", "2", "--config", config.path, "-q")
    assert member.returncode == 2 and "Existing results were made with other parameters: " \
        "instance 2 (filters: 4 -> 8)" in member.stderr, member.stderr
    for extra in ([], ["--overwrite"]):  # --overwrite replaces the ensemble, not its members
        proc = run_script_here(script, "3", "3", *extra, "--config", config.path, "-q")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "instance 3 = Ensemble(1, 2, weights='validation') would fuse existing " \
            "results made with other " \
            "parameters than the script declares: instance 2 (filters: 4 -> 8). Retrain " \
            "instance 2 first (the range 2 2 with --overwrite)" in proc.stderr, proc.stderr
    assert _files(copy) == before
    script = _script(tmp_path, made)  # as the members were made: fused again
    proc = run_script_here(script, "3", "3", "--config", config.path, "-q")
    assert proc.returncode == 0, proc.stderr
    assert _files(copy)["instance_3/ensemble.json"] != before["instance_3/ensemble.json"]


def _sure(table):
    """Every clip's true class at 0.98: what a hand-edited predictions file claims."""
    p = [c for c in table.columns if c.startswith("p_")]
    table[p] = 0.02 / (len(p) - 1)
    for k, column in enumerate(p):
        table.loc[table["target"] == k, column] = 0.98


def test_ensemble_refuses_a_member_prediction_edited_by_hand(trained, tmp_path):
    """`python -m xval ensemble` never fuses a member's predictions edited after its fold
    wrote them (issue 64, point 1): the fold record seals their SHA-256, and the refusal is
    one line naming the file and the fix, before anything is written."""
    config, _, _ = trained
    copy = _copy(trained, tmp_path)
    for name in ("predictions_fold_1.csv", "val_predictions_fold_1.csv"):
        path = copy / "instance_1" / name
        original = path.read_bytes()
        _rewrite(path, _sure, reseal=False)
        before = _files(copy)
        proc = run_here(main, "ensemble", copy, "1", "2", "--config", config.path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert f"instance 1: {path} was changed after fold 1 wrote it (its content differs " \
            "from the SHA-256 recorded in fold_1.json)" in proc.stderr, proc.stderr
        assert "rerun the instance with --overwrite" in proc.stderr
        assert _files(copy) == before and not (copy / "instance_7").exists()
        path.write_bytes(original)
    proc = run_here(main, "ensemble", copy, "1", "2", "--config", config.path)
    assert proc.returncode == 0, proc.stderr  # restored: fused


def test_ensemble_records_its_members_models_and_refuses_them_retrained(trained, tmp_path):
    """A member trained again with the same parameters has other fold models (issue 64,
    point 6): the ensemble records each member's fold model SHA-256, so `predict` and
    `export` refuse an ensemble made from the models it replaced, naming the command that
    computes it again, and the report says so; a run that retrains a member fuses the
    ensembles it declares again."""
    from xval.core.layout import InstanceLayout
    from xval.inference.predict import predict_files

    config, _, base = trained
    copy = tmp_path / "mel" / "experiment_1"
    shutil.copytree(trained[1], copy)
    made = run_here(main, "ensemble", copy, "1", "2", "--as", "7", "--config", config.path)
    assert made.returncode == 0, made.stderr
    member = _record(copy, 7)["members"][1]
    assert member["models"] == {str(i): json.loads(
        (copy / "instance_2" / f"fold_{i}.json").read_text())["model_sha256"] for i in range(3)}
    exp = _copy_declared(config, tmp_path)
    lines = []  # the same parameters, trained again: 3 is fused again, 7 is not declared
    assert exp.run([2], config=config, overwrite=True, output=Output(out=lines.append)).exit_code == 0
    assert json.loads((copy / "instance_2" / "params.json").read_text())["hash"] == \
        json.loads((trained[1] / "instance_2" / "params.json").read_text())["hash"]
    wavs = sorted(base.glob("audio/spk1/*_0.wav"))[:1]
    predict_files(copy / "instance_3", wavs)  # fused again: its models are the new ones
    with pytest.raises(ConfigurationError, match=r"instance_2, a member of the ensemble .*"
                       r"instance_7, was trained again since the ensemble was made from it "
                       r"\(the model of fold\(s\) 0, 1, 2 is not the one it fused: another "
                       r"SHA-256\): .* python -m xval ensemble .* 1 2 --as 7 --overwrite\)"):
        predict_files(copy / "instance_7", wavs)
    out = tmp_path / "export"
    proc = run_here(main, "export", copy / "instance_7", "--format", "keras", "--out", out)
    assert proc.returncode == 2 and "was trained again since the ensemble was made from it" \
        in proc.stderr and not out.exists(), proc.stderr
    from xval.ensembles.tables import ensemble_note

    notes = ensemble_note(results_of(copy))
    assert "Instance(s) 2 were trained again since (instance 2: other models in fold(s) 0, " \
        "1, 2)" in next(x for x in notes if x.startswith("Instance 7 "))
    assert not any("trained again" in x for x in notes if x.startswith("Instance 3 "))
    assert InstanceLayout(copy / "instance_7", 7).ensemble_file.is_file()


def test_ensemble_weights_are_equal_by_default(trained, tmp_path):
    """Issue 68: `Ensemble(1, 2)` and `python -m xval ensemble` weigh their members equally
    (chosen on nothing) unless told `weights="validation"`; an ensemble made with the
    validation weights of the old default is refused by a script that now declares
    `Ensemble(1, 2)`, saying how to keep it."""
    config, root, _ = trained
    assert Ensemble(1, 2).weights == "equal" and repr(Ensemble(1, 2)) == "Ensemble(1, 2)"
    assert repr(Ensemble(1, 2, weights="validation")) == "Ensemble(1, 2, weights='validation')"
    record = _record(root, 5)  # declared Ensemble(1, 4)
    assert record["weighting"] == "equal" and all(
        f["weights"] == [0.5, 0.5] and f["chosen_on"] == "equal" for f in record["folds"])
    copy = tmp_path / "mel" / "experiment_1"
    shutil.copytree(root, copy)
    proc = run_here(main, "ensemble", copy, "1", "2", "--as", "7", "--config", config.path)
    assert proc.returncode == 0 and _record(copy, 7)["weighting"] == "equal", proc.stderr
    script = _script(tmp_path, {**CNN, "comment_1": "log-mel store"}, weights="")
    before = _files(copy)
    proc = run_script_here(script, "3", "3", "--config", config.path, "-q")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "holds other results than Ensemble(1, 2)" in proc.stderr
    assert "Its results were made with validation weights, the default of Ensemble(...) " \
        'before equal weights (docs/results.md, "The selected row against its best member"); ' \
        "to keep them, declare " \
        'Ensemble(1, 2, weights="validation").' in proc.stderr
    assert _files(copy) == before
