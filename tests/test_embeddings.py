"""Embedding classifiers (issue 12, item 4): a scikit-learn SVM or logistic regression fit per
fold on embeddings of the fold's own model or of saved models, C chosen on the validation
rows, scored on every split, saved with skops and used by `predict`."""

import json

import numpy as np
import pytest

from tests.conftest import (
    ROOT,
    resolve,
    run_here,
    run_script,
    run_script_here,
    write_config,
    write_script,
)
from tests.test_training import DEFAULTS, job
from xval.config import embedding
from xval.core.errors import ConfigurationError, ParameterError, TrainingError
from xval.core.hashing import seal
from xval.core.storage import RESULTS_STORE
from xval.running.planner import embedding_items
from xval.training import embeddings
from xval.training.fold import run_fold

SPEC = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
        "comment_2": ""}


def planned(spec):
    """A job spec with what the planner reads for it: the items its saved embedding models
    were trained on (a job reads no result file)."""
    return {**spec, "embedding_items": embedding_items(spec["params"], spec["fold"], RESULTS_STORE)}


def _fold(store, tmp_path, **params):
    result = run_fold(planned(job(store, tmp_path, **params)))
    assert result.status.value == "ok", result.message
    return result


def test_svm_on_the_folds_own_embeddings(store, tmp_path):
    result = _fold(store, tmp_path, embedding_classifier="svm", epochs=4)
    info = result.embedding_classifier
    assert info["kind"] == "svm" and info["layer"] == "auto"
    assert info["sources"] == [{"model": "self", "dims": info["sources"][0]["dims"]}]
    assert info["sources"][0]["dims"] > 0
    # C was chosen on the validation rows among the grid, by macro recall.
    assert set(info["val_recall"]) == {str(c) for c in embedding.C_GRID}
    assert info["val_recall"][str(info["C"])] == max(info["val_recall"].values())
    for split in ("train", "val", "test"):
        block = result.metrics[split]
        assert {"embedding_accuracy", "embedding_f1", "embedding_recall"} <= set(block)
        assert "accuracy" in block  # the network's own metrics are kept beside them
        assert {"embedding_accuracy"} <= set(result.clip_metrics[split])  # 2 segments a clip
    assert result.metrics["test"]["embedding_accuracy"] > 0.5  # 3 learnable classes
    # Fit on the training rows only: the saved pipeline's scaler saw exactly them.
    pipeline = embeddings.load_classifier(_write(tmp_path / "c.skops", result.classifier_bytes))
    assert pipeline[0].n_samples_seen_ == result.n_rows["train"]
    assert pipeline[-1].shape_fit_[0] == result.n_rows["train"]


def _write(path, data):
    path.write_bytes(data)
    return path


def test_saved_classifier_reloads_with_the_same_scores(store, tmp_path, rng):
    result = _fold(store, tmp_path, embedding_classifier="logreg", embedding_c=1.0)
    assert result.embedding_classifier["C"] == 1.0
    assert list(result.embedding_classifier["val_recall"]) == ["1.0"]  # no search
    path = _write(tmp_path / "fold_0.skops", result.classifier_bytes)
    assert path.read_bytes()[:2] == b"PK"  # a skops zip, not a pickle
    loaded = embeddings.load_classifier(path)
    x = rng.normal(size=(7, result.embedding_classifier["sources"][0]["dims"]))
    refit = embeddings.make_classifier("logreg", 1.0).fit(x, np.arange(7) % 3)
    assert embeddings.scores(loaded, x).shape == (7, 3)
    assert embeddings.scores(refit, x).shape == (7, 3)
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"not a skops file")
    with pytest.raises(ConfigurationError, match="bad.skops is not a readable skops file"):
        embeddings.load_classifier(bad)


def test_saved_models_by_fold_concatenated_and_checked_for_leaks(store, tmp_path):
    first = run_fold(job(store, tmp_path, fold=0))
    saved = tmp_path / "ae" / "fold_0.keras"
    saved.parent.mkdir()
    saved.write_bytes(first.model_bytes)
    (saved.parent / "fold_0.json").write_text(json.dumps(seal(first.to_dict())))
    template = str(saved.parent / "fold_{fold}.keras")
    result = _fold(store, tmp_path, embedding_classifier="svm",
                   embedding_models=[template, "self"])
    sources = result.embedding_classifier["sources"]
    assert [s["model"] for s in sources] == [str(saved), "self"]
    assert all(s["dims"] > 0 for s in sources)
    assert sources[0]["leak_checked"] is True and len(sources[0]["sha256"]) == 64
    embeddings.check_unchanged(sources[0])
    # The saved model is retrained (changed) after the classifier was fit: refused.
    saved.write_bytes(first.model_bytes + b"\0")
    with pytest.raises(ConfigurationError, match="changed since the embedding classifier"):
        embeddings.check_unchanged(sources[0])
    saved.write_bytes(first.model_bytes)
    # Checked before the network trains: no model for this fold, an unknown layer.
    with pytest.raises(TrainingError, match="fold_1.keras does not exist.*no model for this "
                                            "fold"):
        run_fold(planned(job(store, tmp_path, fold=1, embedding_classifier="svm",
                             embedding_models=template, epochs=50)))
    with pytest.raises(ConfigurationError, match="No layer named 'nope'"):
        run_fold(job(store, tmp_path, embedding_classifier="svm", embedding_layer="nope",
                     epochs=50))
    # A model that was trained on this fold's test item is refused.
    spec = job(store, tmp_path, embedding_classifier="svm", embedding_models=template)
    spec["items"] = {"train": ["item0", "item1", "item5", "item4"], "val": ["item3"],
                     "test": ["item2"]}
    with pytest.raises(TrainingError, match=r"trained on item2, which are test items"):
        run_fold(planned(spec))
    # The job reads no result file: without what the planner read (the fold record beside
    # the saved model), the leak check cannot be made, and the record says so.
    unplanned = run_fold(job(store, tmp_path, embedding_classifier="svm",
                             embedding_models=template))
    assert unplanned.embedding_classifier["sources"][0]["leak_checked"] is False


@pytest.mark.parametrize("spec,message", [
    ({"embedding_classifier": "knn"}, r"embedding_classifier='knn'.*none, svm, logreg"),
    ({"embedding_models": ["self"]}, r"embedding_models=\['self'\] needs embedding_classifier"),
    ({"embedding_classifier": "svm", "embedding_c": -1.0}, r"embedding_c=-1.0"),
    ({"embedding_classifier": "svm", "embedding_models": "missing/fold_{fold}.keras"},
     r"missing/fold_0.keras does not exist"),
    ({"embedding_classifier": "svm", "embedding_models": "m_{item}.keras"},
     r"the only placeholder allowed is \{fold\}"),
    ({"embedding_classifier": "svm", "embedding_models": ["a.h5"]}, r"expected a .keras file"),
    ({"embedding_classifier": "svm", "embedding_models": [3]}, r"expected None"),
])
def test_bad_embedding_parameters(spec, message):
    with pytest.raises(ParameterError, match=message):
        resolve(1, {**SPEC, **spec}, training_defaults=DEFAULTS)


def test_embedding_classifier_needs_labels():
    with pytest.raises(ParameterError, match="task_type .regression. has none. Use task_type .classification. or .representation."):
        resolve(1, {**SPEC, "embedding_classifier": "svm"}, training_defaults=DEFAULTS,
                task_type="regression")


_TF = """
import json
import sys

from tests.test_training import job
from preprocessing.store import FeatureStore
from xval.training.fold import run_fold
from pathlib import Path

store = FeatureStore(sys.argv[1])
r = run_fold(job(store, Path(sys.argv[2]), embedding_classifier="logreg"))
print(json.dumps({"backend": r.backend, "acc": r.metrics["test"]["embedding_accuracy"],
                  "bytes": len(r.classifier_bytes)}))
"""


@pytest.mark.tensorflow
def test_embedding_classifier_on_tensorflow(store, tmp_path):
    script = write_script(tmp_path, _TF, name="tf_embed.py")
    proc = run_script(script, store.path, tmp_path, env={"KERAS_BACKEND": "tensorflow",
                                                         "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "tensorflow" and 0 <= out["acc"] <= 1 and out["bytes"] > 0


_EXPERIMENT = """
from xval import Experiment

experiment = Experiment(description="autoencoder + svm", dataset="tones", number=1,
                        num_folds=3, task_type="representation")
experiment[1] = {"architecture": "conv_autoencoder", "reshaping_type": "conv", "filters": 4,
                 "blocks": 1, "bottleneck_channels": 2, "epochs": 3, "patience": 3,
                 "batch_size": 8, "embedding_classifier": "svm", "comment_1": "ae",
                 "comment_2": "svm on its codes"}

if __name__ == "__main__":
    experiment.main()
"""


def test_autoencoder_codes_svm_workbook_and_predict(tmp_path):
    """Real audio, a real autoencoder experiment with an SVM on its bottleneck codes; the
    workbook shows the SVM's metrics; `predict --embedding-classifier` answers with it."""
    import openpyxl
    import soundfile as sf

    from xval.cli.main import main as xval_main
    from xval.cli.preprocess import main as preprocessing_main

    folders = tmp_path / "audio"
    rng = np.random.default_rng(0)
    for label, hz in (("low", 300), ("high", 1500)):
        (folders / label).mkdir(parents=True)
        for k in range(9):
            tone = np.sin(2 * np.pi * hz * np.arange(4000) / 8000)
            sf.write(folders / label / f"s{k % 3}_{k}.wav",
                     (0.5 * tone + rng.normal(0, 0.02, 4000)).astype("float32"), 8000)
    config = write_config(tmp_path)
    assert preprocessing_main(["folders", str(folders), "--out", "tones", "--config",
                               str(config), "--sample-rate", "8000", "--n-mels", "16",
                               "--workers", "1", "--item-pattern", r"(?P<item>s\d)_",
                               "--no-progress"]) == 0
    script = write_script(tmp_path, _EXPERIMENT)
    # The run and the predict commands in this process (their own processes are tested in
    # test_training.py and test_install.py).
    proc = run_script_here(script, "1", "1", "--config", config, "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    experiment = tmp_path / "results" / "tones" / "experiment_1"
    inst = experiment / "instance_1"
    for i in range(3):
        fold = json.loads((inst / f"fold_{i}.json").read_text())
        assert fold["embedding_classifier"]["layer"] == "auto"
        assert (inst / f"fold_{i}.skops").is_file()
        assert fold["metrics"]["test"]["embedding_accuracy"] == 1.0  # two distinct tones
        assert "mse" in fold["metrics"]["test"]  # the autoencoder's own scores stay
    sheet = openpyxl.load_workbook(experiment / "experiment_1.xlsx")["Metrics"]
    header = [c.value for row in sheet.iter_rows(max_row=3) for c in row if c.value]
    assert any("embedding_accuracy" in str(h) for h in header)
    files = [str(folders / "low" / "s0_0.wav"), str(folders / "high" / "s1_1.wav")]
    proc = run_here(xval_main, "predict", inst, *files, "--embedding-classifier", "--format",
                    "csv", "--config", config)
    assert proc.returncode == 0, proc.stderr[-2000:]
    clips = [line.split(",") for line in proc.stdout.splitlines() if ",clip," in line]
    assert [row[3] for row in clips] == ["low", "high"]
    assert "embedding classifier (svm) of the ensemble of 3 fold models" in proc.stdout
    # Without the flag, predict answers with the network (here an autoencoder): refused
    # or not, it does not use the classifier; with a fold model lacking one, it says so.
    (inst / "fold_1.skops").unlink()
    proc = run_here(xval_main, "predict", inst, files[0], "--embedding-classifier",
                    "--config", config)
    assert proc.returncode == 2 and "fold_1.keras has no embedding classifier" in proc.stderr
    # A results folder is data, never code: a fold_<i>.skops crafted to call eval is
    # refused, and the command it holds never runs (tests/test_security.py).
    from tests.test_security import _eval_file

    marker = tmp_path / "pwned"
    (inst / "fold_1.skops").write_bytes(_eval_file(tmp_path, marker))
    proc = run_here(xval_main, "predict", inst, files[0], "--embedding-classifier",
                    "--config", config)
    assert not marker.exists()
    assert proc.returncode == 2 and "builtins.eval" in proc.stderr, proc.stderr[-2000:]
