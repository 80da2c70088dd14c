"""A final model: predict with the fold ensemble of an instance, evaluate on new labelled
audio, refit an instance on all its items."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tests.conftest import ROOT, run_here, run_script_here, write_config, write_script
from xval import Experiment, Output
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, DatasetError

SPEAKERS = ("ann", "bob", "cat", "dan")


def _tone(freq, seconds=0.6):
    import librosa

    return 0.5 * librosa.tone(freq, sr=8000, duration=seconds)


def _declaration(config_path):
    return dict(description="tones", dataset="tones", number=1, num_folds=2,
                parameters={"epochs": 8, "patience": 4, "batch_size": 8,
                            "learning_rate": 0.01},
                config=str(config_path))


INSTANCE_1 = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="a"',
              'comment_2="b"', "filters=4"]

SCRIPT = """
from xval import Experiment

experiment = Experiment(**{declaration!r})
experiment[1] = {instance!r}
experiment[2] = {instance2!r}

if __name__ == "__main__":
    experiment.main()
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two folds of instance 1 trained on tones (low 300 Hz, high 1200 Hz) of 4 speakers,
    plus an experiment script declaring it (and an instance 2 never run)."""
    from preprocessing import build_store, feature_params, regex_source

    folder = tmp_path_factory.mktemp("final")
    config = load_config(write_config(folder))
    audio = folder / "audio"
    audio.mkdir()
    for s, speaker in enumerate(SPEAKERS):
        for label, freq in (("low", 300), ("high", 1200)):
            for k in range(4):
                sf.write(audio / f"{label}_{speaker}_{k}.wav",
                         _tone(freq * (1 + 0.03 * s + 0.01 * k)), 8000)
    rows, _ = regex_source(audio, r"(?P<label>[a-z]+)_(?P<item>[a-z]+)_\d+\.wav$")
    params = feature_params(config.features, sample_rate=8000, n_fft=256, hop_length=128, n_mels=16,
                            segment_seconds=0.25, segment_hop_seconds=0.25)
    build_store(rows, config.data_dir / "tones", params=params, workers=1, progress=False)
    exp = Experiment(**_declaration(config.path))
    exp[1] = INSTANCE_1
    exp[2] = INSTANCE_1 + ["learning_rate=0.02"]
    exp.run([1], config=config, output=Output(out=lambda *a: None))
    script = write_script(folder, SCRIPT.format(declaration=_declaration(config.path),
                                                instance=INSTANCE_1,
                                                instance2=INSTANCE_1 + ["learning_rate=0.02"]))
    # New labelled data: a class-folder tree of an unseen speaker.
    new = folder / "new"
    for label, freq in (("low", 310), ("high", 1250)):
        (new / label).mkdir(parents=True)
        for k in range(3):
            sf.write(new / label / f"{label}_eve_{k}.wav", _tone(freq * (1 + 0.01 * k)), 8000)
    inst = config.results_dir / "tones" / "experiment_1" / "instance_1"
    return {"inst": inst, "audio": audio, "new": new, "script": script, "config": config,
            "folder": folder}


def _process(*args, cwd=ROOT):
    """`python -m xval ARGS` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "xval", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "KERAS_BACKEND": "torch"})


def _cli(*args, cwd=ROOT):
    """`python -m xval ARGS` in this process (`run_here`): predict and evaluate each keep a
    run in their own process (`_process`) below."""
    from xval.cli.main import main

    return run_here(main, *args, cwd=cwd)


def test_predict_instance_folder_averages_fold_logits(trained):
    from xval.inference.models import dataset_info_for, extract_features
    from xval.inference.predict import predict_files
    from xval.tasks.metrics import softmax
    from xval.training.loading import load

    inst, audio = trained["inst"], trained["audio"]
    files = [audio / "high_ann_0.wav", audio / "low_dan_3.wav"]
    results = predict_files(inst, files)
    assert results[0]["model"] == "ensemble of 2 fold models of instance_1"
    info = dataset_info_for(inst / "fold_0.keras")
    feats = extract_features(files[:1], info["feature_params"])[0]["features"]
    logits = [np.asarray(load(inst / f"fold_{i}.keras").predict(feats, verbose=0))
              for i in range(2)]
    mean = (logits[0] + logits[1]) / 2
    expected = softmax(mean.mean(axis=0, keepdims=True))[0]
    got = [results[0]["clip"]["scores"][c] for c in info["classes"]]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    seg = [results[0]["segments"][0]["scores"][c] for c in info["classes"]]
    np.testing.assert_allclose(seg, softmax(mean)[0], atol=1e-5)
    # --fold keeps a single model: the same as predicting with that .keras file.
    single = predict_files(inst, files, fold=1)
    direct = predict_files(inst / "fold_1.keras", files)
    assert single[0]["model"] == "fold 1 model of instance_1"
    assert direct[0]["model"] == "model fold_1.keras of instance_1"
    assert single[0]["clip"]["scores"] == pytest.approx(direct[0]["clip"]["scores"])
    assert [r["clip"]["predicted"] for r in results] == ["high", "low"]


def test_predict_command_says_ensemble(trained):
    inst, audio = trained["inst"], trained["audio"]
    text = _process("predict", inst, audio / "high_bob_1.wav")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == "ensemble of 2 fold models of instance_1"
    csv = _cli("predict", inst, audio / "high_bob_1.wav", "--format", "csv", "--fold", "0")
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines()[0] == "# fold 0 model of instance_1"
    table = pd.read_csv(io.StringIO(csv.stdout), comment="#")
    assert list(table.columns) == ["file", "level", "start", "predicted", "high", "low"]
    assert table["level"].tolist()[-1] == "clip"


def test_predict_model_choice_errors(trained, tmp_path):
    from xval.inference.models import resolve_models

    inst = trained["inst"]
    with pytest.raises(ConfigurationError, match=r"--fold 7: .* no fold_7.keras; its fold "
                                                 r"models are \[0, 1\]"):
        resolve_models(inst, fold=7)
    with pytest.raises(ConfigurationError, match="--fold 0 and --ensemble contradict"):
        resolve_models(inst, fold=0, ensemble=True)
    with pytest.raises(ConfigurationError, match="is not a folder. Pass its instance_<k>"):
        resolve_models(inst / "fold_0.keras", fold=0)
    with pytest.raises(ConfigurationError, match="holds no fold_<i>.keras models"):
        resolve_models(tmp_path)
    # While `--overwrite` trains it again (its previous results set aside), the ensemble of
    # the folds done so far is not one run's; one fold's model still answers.
    previous = inst.with_name(inst.name + ".previous")
    previous.mkdir()
    try:
        with pytest.raises(ConfigurationError, match=r"is being trained again: `--overwrite` "
                                                     r"keeps its previous results in "
                                                     r"instance_1\.previous"):
            resolve_models(inst)
        assert resolve_models(inst, fold=0).paths == [inst / "fold_0.keras"]
    finally:
        previous.rmdir()
    proc = _cli("predict", inst, trained["audio"] / "high_bob_1.wav", "--fold", "5")
    assert proc.returncode == 2 and "no fold_5.keras" in proc.stderr


def test_evaluate_folders_text_and_csv(trained):
    from sklearn.metrics import accuracy_score

    from xval.inference.predict import predict_files

    inst, new = trained["inst"], trained["new"]
    proc = _process("evaluate", inst, new)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[0] == "ensemble of 2 fold models of instance_1"
    assert "6 files, 18 segments" in out
    assert "Clip level (one row per file: its segment logits averaged; tagging: their " \
        "probabilities)" in out
    assert "Segment level" in out and "precision" in out and "support" in out
    assert "Confusion matrix (rows: true, columns: predicted):" in out
    files = sorted(new.rglob("*.wav"))
    preds = predict_files(inst, files)
    truth = [f.parent.name for f in files]
    accuracy = accuracy_score(truth, [p["clip"]["predicted"] for p in preds])
    assert f"accuracy {accuracy:.3f}" in out
    csv = _cli("evaluate", inst, new, "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    table = pd.read_csv(io.StringIO(csv.stdout), comment="#", keep_default_na=False)
    assert list(table.columns) == ["level", "label", "metric", "value"]
    clip = table[table.level == "clip"].set_index(["label", "metric"])["value"]
    assert clip[("", "accuracy")] == pytest.approx(accuracy)
    support = clip[("high", "support")] + clip[("low", "support")]
    assert support == 6
    counts = sum(clip[(t, f"predicted_{p}")] for t in ("high", "low") for p in ("high", "low"))
    assert counts == 6
    segment = table[table.level == "segment"].set_index(["label", "metric"])["value"]
    assert segment[("macro avg", "support")] == 18


def test_evaluate_regex_and_manifest_match_folders(trained, tmp_path):
    from xval.inference.evaluate import evaluate_rows, source_rows

    inst, new = trained["inst"], trained["new"]
    by_folders = evaluate_rows(inst, source_rows([new])[0], fold=0)
    rows, _ = source_rows([new], source="regex", pattern=r"(?P<label>[a-z]+)_eve_\d\.wav$")
    by_regex = evaluate_rows(inst, rows, fold=0)
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"file": [f"{p.parent.name}/{p.name}" for p in sorted(new.rglob("*.wav"))],
                  "class": [p.parent.name for p in sorted(new.rglob("*.wav"))]}) \
        .to_csv(manifest, index=False)
    rows, _ = source_rows([manifest], source="manifest", path_column="file",
                          label_column="class", root=new)
    by_manifest = evaluate_rows(inst, rows, fold=0)
    for other in (by_regex, by_manifest):
        for level in ("clip", "segment"):
            assert other["levels"][level]["confusion_matrix"] == \
                by_folders["levels"][level]["confusion_matrix"]
    proc = _cli("evaluate", inst, manifest, "--source", "manifest", "--path-column", "file",
                "--label-column", "class", "--root", new, "--fold", "0")
    assert proc.returncode == 0, proc.stderr
    assert f"accuracy {by_folders['levels']['clip']['accuracy']:.3f}" in proc.stdout
    # `--manifest` is init's CSV file; evaluate names its sources with --source.
    refused = _cli("evaluate", inst, manifest, "--manifest", "--path-column", "file")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: --manifest: python -m xval evaluate takes --source manifest (SOURCE a CSV "
        "manifest).")
    with pytest.raises(ConfigurationError, match="--pattern goes with the regex source"):
        source_rows([new], source="folders", pattern="x")


def test_evaluate_unknown_labels_are_listed(trained, tmp_path, capsys):
    from xval.cli.main import main

    # The annotation options belong to a detector's --annotations.
    assert main(["evaluate", str(trained["inst"]), str(trained["new"]), "--layout", "wide",
                 "--context", "drop"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --layout, --context go with --annotations (the annotated recordings of a "
        "model that finds events).")
    assert main(["evaluate", str(trained["inst"]), str(trained["new"]), "--annotations",
                 str(tmp_path / "annotations.csv")]) == 2
    assert "these are classification models, which find no events" in \
        capsys.readouterr().err
    tree = tmp_path / "tree"
    shutil.copytree(trained["new"], tree)
    (tree / "medium").mkdir()
    (tree / "whistle").mkdir()
    sf.write(tree / "medium" / "m.wav", _tone(600), 8000)
    sf.write(tree / "whistle" / "w.wav", _tone(3000), 8000)
    proc = _cli("evaluate", trained["inst"], tree)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: Label(s) ['medium', 'whistle'] are not classes of the model, whose classes "
        "are ['high', 'low']. Relabel or leave out those files (--label-map maps codes).")


def test_evaluate_regression_model(tmp_path):
    from preprocessing import build_store, feature_params
    from xval.inference.evaluate import evaluate_rows

    config = load_config(write_config(tmp_path))
    rows = []
    for s, speaker in enumerate(SPEAKERS):
        for k, freq in enumerate((300, 600, 900, 1200)):
            path = tmp_path / "audio" / f"{speaker}_{k}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, _tone(freq * (1 + 0.02 * s)), 8000)
            rows.append({"path": str(path), "label": float(k), "item": speaker,
                         "clip": path.name})
    params = feature_params(config.features, sample_rate=8000, n_fft=256, hop_length=128, n_mels=16,
                            segment_seconds=0.25, segment_hop_seconds=0.25)
    build_store(pd.DataFrame(rows), config.data_dir / "pitch", params=params, workers=1,
                progress=False, task_type="regression")
    exp = Experiment(description="pitch", dataset="pitch", number=1, num_folds=2,
                     task_type="regression", parameters={"epochs": 2, "batch_size": 8},
                     config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
              "comment_2": "", "hidden_units": 8, "save_model_metric": "val_loss"}
    exp.run(config=config, output=Output(out=lambda *a: None))
    inst = config.results_dir / "pitch" / "experiment_1" / "instance_1"
    report = evaluate_rows(inst, pd.DataFrame(rows[:8]))
    assert report["task_type"] == "regression"
    for level in ("clip", "segment"):
        assert set(report["levels"][level]) == {"rmse", "mae", "r2"}
        assert np.isfinite(report["levels"][level]["rmse"])
    bad = pd.DataFrame([{**rows[0], "label": "loud"}])
    with pytest.raises(DatasetError, match=r"Regression targets must be numbers; got \['loud'\]"):
        evaluate_rows(inst, bad)


def test_refit_job_trains_all_epochs_on_train_rows(tmp_path, store):
    from tests.conftest import resolve
    from tests.test_training import DEFAULTS
    from xval.core.records import Job
    from xval.training.fold import run_fold

    params = resolve(1, {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                         "comment_2": "", "hidden_units": 8, "epochs": 99, "patience": 1},
                     training_defaults=DEFAULTS, task_type="classification")
    items = sorted(set(store.items.astype(str)))
    job = Job(instance=1, fold=0, params=params, items={"train": items, "val": [], "test": []},
              task_type="classification", generator=False, store=str(store.path),
              refit_epochs=3)
    result = run_fold(job)
    assert result.ok, result.message
    # Exactly 3 epochs (not the parameters' 99), no validation, and metrics of the
    # training rows only.
    assert len(result.history["loss"]) == 3 and result.epochs_run == 3
    assert not any(k.startswith("val_") for k in result.history)
    assert set(result.metrics) == {"train"} and result.n_rows["train"] == len(store)
    assert result.predictions_csv is None and result.model_bytes


@pytest.mark.slow
def test_refit_cli_writes_final_model_and_predict_uses_it(trained):
    # The --refit command line in this process; its own process runs in test_refit.py.
    inst, script = trained["inst"], trained["script"]
    not_done = run_script_here(script, "--refit", "2")
    assert not_done.returncode == 2
    assert "error: Instance 2 is not complete (folds [0, 1] of 2 are not done" in \
        not_done.stderr
    both = run_script_here(script, "1", "--refit", "1")
    assert both.returncode == 2 and "--refit K takes no instance range" in both.stderr
    assert not (inst / "final.keras").exists()
    proc = run_script_here(script, "--refit", "1")
    assert proc.returncode == 0, proc.stderr
    final = json.loads((inst / "final.json").read_text())
    best = [json.loads((inst / f"fold_{i}.json").read_text())["best_epoch"] for i in range(2)]
    assert final["epochs"] == max(1, round(float(np.median(best))))
    assert final["fold_best_epochs"] == best
    assert final["items"] == list(SPEAKERS)
    assert len(final["history"]["loss"]) == final["epochs"]
    assert final["model_sha256"] == hashlib.sha256((inst / "final.keras").read_bytes()).hexdigest()
    assert final["model_size"] == (inst / "final.keras").stat().st_size
    params = json.loads((inst / "params.json").read_text())
    assert final["params_hash"] == params["hash"]
    audio = trained["audio"] / "high_ann_0.wav"
    default = _cli("predict", inst, audio)
    assert default.returncode == 0, default.stderr
    assert default.stdout.splitlines()[0].startswith("final model of instance_1 (refit")
    forced = _cli("predict", inst, audio, "--ensemble")
    assert forced.stdout.splitlines()[0] == "ensemble of 2 fold models of instance_1"


def test_refit_runs_through_the_process_executor(config, store):
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                     parameters={"epochs": 2, "batch_size": 16}, config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
              "comment_2": "", "hidden_units": 8}
    exp.run(config=config, output=Output(out=lambda *a: None))
    lines = []
    path = exp.refit(1, config=config, executor="process", output=Output(out=lines.append))
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    assert path == inst / "final.keras" and path.exists()
    final = json.loads((inst / "final.json").read_text())
    assert final["pid"] != os.getpid()  # trained in a worker process
    assert final["n_rows"]["train"] == len(store)
    assert lines[0].startswith(f"instance 1: refitting on all 6 items for {final['epochs']} "
                               "epochs")


def test_refit_with_val_scores_the_test_items_with_a_model_trained_on_train_and_val(store):
    import keras

    from tests.conftest import resolve
    from tests.test_training import DEFAULTS
    from xval.core.records import Job
    from xval.training.fold import run_fold

    items = sorted(set(store.items.astype(str)))
    fold = {"train": items[:3], "val": items[3:5], "test": items[5:]}

    def job(refit_with_val):
        params = resolve(1, {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                             "comment_2": "", "hidden_units": 8, "epochs": 6, "patience": 6,
                             "min_epochs": 2, "refit_with_val": refit_with_val},
                         training_defaults=DEFAULTS, task_type="classification")
        return Job(instance=1, fold=0, params=params, items=fold, task_type="classification",
                   generator=False, store=str(store.path))

    plain, refit = run_fold(job(False)), run_fold(job(True))
    assert plain.ok and refit.ok, (plain.message, refit.message)
    assert plain.refit is None
    # The first model is the same training as without the option: same best epoch and the
    # same training and validation scores (selection stays on held-out items).
    assert refit.best_epoch == plain.best_epoch and refit.history == plain.history
    assert refit.metrics["val"] == plain.metrics["val"]
    # The second model trained on the 5 train + val items for exactly the best epoch count.
    assert refit.refit["epochs"] == refit.best_epoch == len(refit.refit["history"]["loss"])
    per_item = len(store) // len(items)
    assert refit.refit["n_items"] == 5 and refit.refit["rows"] == 5 * per_item
    assert not any(k.startswith("val_") for k in refit.refit["history"])
    # The fold's model, test scores and predictions are the second model's.
    models = []
    for name, result in (("plain", plain), ("refit", refit)):
        path = store.path.parent / f"{name}_fold.keras"
        path.write_bytes(result.model_bytes)
        models.append(keras.saving.load_model(path, compile=False))
    assert not all(np.array_equal(a, b) for a, b in zip(models[0].get_weights(),
                                                        models[1].get_weights()))
    assert refit.metrics["test"]["loss"] != plain.metrics["test"]["loss"]
    model = models[1]
    test_rows = np.flatnonzero(np.isin(store.items.astype(str), fold["test"]))
    probs = np.asarray(model.predict(np.asarray(store.features[test_rows]), verbose=0))
    predictions = pd.read_csv(io.StringIO(refit.predictions_csv))
    assert len(predictions) == len(test_rows)
    from xval.tasks.metrics import softmax  # the model gives logits; the file, probabilities

    np.testing.assert_array_equal(predictions["row"], test_rows)
    np.testing.assert_allclose(predictions[[f"p_{c}" for c in store.classes]].to_numpy(),
                               softmax(probs), atol=1e-4)
    accuracy = float(np.mean(probs.argmax(1) == store.targets[test_rows]))
    assert refit.metrics["test"]["accuracy"] == pytest.approx(accuracy)
    assert set(refit.clip_metrics) == {"train", "val", "test"}
    # The fold's timings count both trainings; the corrected t-test's test/train ratio uses
    # the rows the test scores' model trained on.
    assert refit.timings["fit_seconds"] > refit.refit["timings"]["fit_seconds"]
    from xval.report.stats import fold_test_train_ratio

    assert fold_test_train_ratio([refit]) == pytest.approx(per_item / (5 * per_item))
    assert fold_test_train_ratio([plain]) == pytest.approx(per_item / (3 * per_item))


def test_refit_with_val_refuses_an_embedding_classifier():
    from tests.conftest import resolve
    from tests.test_training import DEFAULTS
    from xval.core.errors import ParameterError

    with pytest.raises(ParameterError, match=r"refit_with_val=True and embedding_classifier="
                                             r"'svm' cannot be combined.*set one of them off"):
        resolve(1, {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                    "comment_2": "", "refit_with_val": True, "embedding_classifier": "svm"},
                training_defaults=DEFAULTS, task_type="classification")
    with pytest.raises(ParameterError, match="refit_with_val"):
        resolve(1, {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                    "comment_2": "", "refit_with_val": "yes"},
                training_defaults=DEFAULTS, task_type="classification")
