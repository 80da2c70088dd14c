"""The representation task: a convolutional autoencoder trained to reconstruct its normalised
input on any store (labels unused), scored against the mean-row baseline; `embed` takes the
bottleneck by default."""

import json

import numpy as np
import pytest

from tests.conftest import (
    python_here,
    run_script,
    run_script_here,
    tiny_store,
    write_config,
    write_script,
)
from xval.core.errors import ParameterError

_EXPERIMENT = """
from xval import Experiment

experiment = Experiment(description="autoencoder", dataset="tiny", number=1, num_folds=3,
                        task_type="representation")
experiment[1] = {"architecture": "conv_autoencoder", "reshaping_type": "conv", "filters": 4,
                 "blocks": 1, "bottleneck_channels": 2, "epochs": 3, "patience": 3,
                 "batch_size": 8, "comment_1": "ae", "comment_2": ""}

if __name__ == "__main__":
    experiment.main()
"""


@pytest.mark.parametrize("backend", ["torch", pytest.param("tensorflow",
                                                           marks=pytest.mark.tensorflow)])
def test_autoencoder_trains_on_a_classification_store_and_is_scored(tmp_path, backend):
    config = write_config(tmp_path)
    store = tiny_store(tmp_path / "data", shape=(8, 6))
    script = write_script(tmp_path, _EXPERIMENT)
    # torch, this process's backend, runs in this process; tensorflow in its own.
    proc = (run_script_here if backend == "torch" else run_script)(
        script, "1", "1", "--config", config, "--backend", backend, "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    inst = tmp_path / "results" / "tiny" / "experiment_1" / "instance_1"
    fold = json.loads((inst / "fold_0.json").read_text())
    assert fold["task_type"] == "representation" and fold["backend"] == backend
    assert not (inst / "val_predictions_fold_0.csv").exists()  # ensembles fuse vectors only
    for split in ("train", "val", "test"):
        metrics = fold["metrics"][split]
        assert set(metrics) >= {"mse", "mae", "baseline_mse", "baseline_mae"}
        assert np.isfinite(list(metrics.values())).all()
        assert metrics["loss"] == pytest.approx(metrics["mse"])
    # The baseline predicts the mean normalised training row: on the training rows its MSE
    # is the mean variance of the normalised features around that row (below 1, as the
    # per-bin normalisation also removes the row's mean).
    assert 0.3 < fold["metrics"]["train"]["baseline_mse"] <= 1.0 + 1e-6
    if backend == "torch":
        wav = tmp_path / "x.wav"
        import soundfile as sf

        sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 4000).astype("float32"), 8000)
        info = json.loads((store.path / "dataset.json").read_text())
        assert "feature_params" not in info  # a tiny store has no audio front end
        from xval.training.layers import embedding_model
        from xval.training.loading import load

        model = load(inst / "fold_0.keras")
        code = np.asarray(embedding_model(model, "bottleneck")(
            np.asarray(store.features[:5], dtype="float32")))
        assert code.shape == (5, 4, 3, 2)  # 8x6 halved once, 2 channels


def test_embed_takes_the_bottleneck_by_default(tmp_path):
    """A real audio store, a real autoencoder, `python -m xval embed` without --layer (in
    this process: test_training.py runs `embed` as a real process)."""
    import soundfile as sf

    from tests.test_synth_events import fsdd, make  # noqa: F401
    from xval.cli.preprocess import main as preprocessing_main

    folders = tmp_path / "audio"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (folders / label).mkdir(parents=True)
        for k in range(6):
            tone = np.sin(2 * np.pi * (300 if label == "a" else 900) * np.arange(4000) / 8000)
            sf.write(folders / label / f"s{k % 3}_{k}.wav",
                     (0.5 * tone + rng.normal(0, 0.01, 4000)).astype("float32"), 8000)
    config = write_config(tmp_path)
    assert preprocessing_main(["folders", str(folders), "--out", "ae", "--config", str(config),
                               "--sample-rate", "8000", "--n-mels", "16", "--workers", "1",
                               "--item-pattern", r"(?P<item>s\d)_", "--no-progress"]) == 0
    script = write_script(tmp_path, _EXPERIMENT.replace('dataset="tiny"', 'dataset="ae"'))
    proc = run_script_here(script, "1", "1", "--config", config, "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = tmp_path / "results" / "ae" / "experiment_1" / "instance_1" / "fold_0.keras"
    out = tmp_path / "emb.npy"
    proc = python_here("-m", "xval", "embed", model, folders / "a" / "s0_0.wav", "--out", out,
                       "--config", config)
    assert proc.returncode == 0, proc.stderr[-2000:]
    emb = np.load(out)
    assert emb.shape[0] == 1 and emb.shape[1] > 0


def test_representation_refuses_labels_options_and_classifiers(tmp_path):
    from tests.conftest import resolve
    from xval.config.loader import load_config

    defaults = load_config(write_config(tmp_path)).training
    spec = {"architecture": "conv_autoencoder", "reshaping_type": "conv", "comment_1": "",
            "comment_2": ""}
    assert resolve(1, spec, training_defaults=defaults,
                   task_type="representation")["bottleneck_channels"] == 8
    with pytest.raises(ParameterError, match="label_smoothing=0.1 needs a task with classes"):
        resolve(1, {**spec, "label_smoothing": 0.1}, training_defaults=defaults,
                task_type="representation")
    with pytest.raises(ParameterError, match="makes vector outputs, but task_type "
                                             "'representation' needs input outputs"):
        resolve(1, {**spec, "architecture": "example_cnn"}, training_defaults=defaults,
                task_type="representation")
