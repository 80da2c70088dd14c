"""The aisfx encoder inside models (`xval.training.encoder`): an embedding store's fold models
take audio; `front_end="aisfx"` on a waveform store trains the same head on the encoder's
layers (frozen: the store path's scores; fine-tuned: its last blocks move, the others do
not); `predict` needs no store; and the errors a user meets before anything trains."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from preprocessing.features import encoders
from tests.conftest import write_config
from tests.test_encoders import write_audio
from tests.test_export import RUNNER, _check_card_program
from xval import Output
from xval.core.errors import ConfigurationError

pytest.importorskip("torch")

PATTERN = r"(?P<label>[a-z]+)_(?P<item>s\d)_\d\.wav$"
HEAD = {"architecture": "pretrained_pool", "reshaping_type": "rnn", "projection": 0,
        "pooling": "meanmax", "hidden_units": 0, "comment_1": "aisfx", "comment_2": "linear"}
PLAIN = {"epochs": 2, "patience": 2, "batch_size": 8, "mixup_alpha": 0.0, "time_masks": 0,
         "freq_masks": 0, "freq_warp": 0.0, "time_warp": 0.0, "label_smoothing": 0.0}


def _require():
    if not encoders.installed("aisfx"):
        pytest.fail("aisfx is not installed: " + encoders.BUILT_IN["aisfx"].install) \
            if __import__("os").environ.get("XVAL_REQUIRE_ENCODERS") else \
            pytest.skip("aisfx is not installed")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """An aisfx embedding store and a 44.1 kHz waveform store of the same 16 files (4
    speakers, 2 classes, 2.5 s: one block each)."""
    _require()
    from xval.cli.preprocess import main as preprocess_main
    from xval.config.loader import load_config

    root = tmp_path_factory.mktemp("encoder_models")
    config = load_config(write_config(root))
    paths = write_audio(root / "audio", sample_rate=44100, seconds=(2.5, 2.5))
    common = ["regex", str(root / "audio"), "--pattern", PATTERN, "--config",
              str(config.path), "--no-progress", "-q"]
    assert preprocess_main([*common, "--out", "emb", "--encoders", "aisfx"]) == 0
    assert preprocess_main([*common, "--out", "wave", "--feature", "waveform",
                            "--sample-rate", "44100", "--segment-seconds", "2.5",
                            "--dtype", "float32"]) == 0
    return config, paths


def _run(config, number, instances, dataset="emb", **params):
    from xval import Experiment

    experiment = Experiment(description="encoder", dataset=dataset, number=number,
                            num_folds=2, parameters={**PLAIN, **params},
                            config=str(config.path))
    for k, instance in instances.items():
        experiment[k] = instance
    return experiment.run(config=config, output=Output(out=lambda *a: None))


def _predictions(config, number, instance, dataset="emb"):
    root = config.results_dir / dataset / f"experiment_{number}" / f"instance_{instance}"
    return pd.concat([pd.read_csv(root / f"predictions_fold_{i}.csv") for i in (0, 1)])


@pytest.fixture(scope="module")
def audio_instance(stores):
    """Instance 1 of experiment 1: the linear head on the aisfx store, 2 folds."""
    config, _ = stores
    outcome = _run(config, 1, {1: HEAD})
    assert outcome.exit_code == 0 and outcome.failed == []
    return config.results_dir / "emb" / "experiment_1" / "instance_1"


def test_embedding_store_models_take_audio_and_predict_without_the_store(
        stores, audio_instance, tmp_path):
    import keras

    from xval.inference.predict import predict_files

    config, paths = stores
    instance = audio_instance
    model = keras.saving.load_model(instance / "fold_0.keras", compile=False)
    assert model.inputs[0].name == "audio" and model.inputs[0].shape[1:] == (110250, 1)
    store = shutil.move(str(config.data_dir / "emb"), str(tmp_path / "moved"))
    try:
        results = {r["file"]: r for r in predict_files(instance, paths)}
    finally:
        shutil.move(store, str(config.data_dir / "emb"))
    assert len(results) == len(paths)
    for path in paths:
        clip = results[str(path)]["clip"]
        assert clip["predicted"] in ("noise", "tone")


def test_front_end_aisfx_frozen_matches_the_store_path(stores):
    config, _ = stores
    assert _run(config, 2, {1: HEAD, 2: {**HEAD, "dataset": "wave",
                                         "front_end": "aisfx"}}).exit_code == 0
    store = _predictions(config, 2, 1).sort_values(["item", "clip"])
    audio = _predictions(config, 2, 2).sort_values(["item", "clip"])
    scores = [c for c in store.columns if c.startswith("p_")]
    assert scores and len(store) == len(audio) == 16
    np.testing.assert_allclose(audio[scores].to_numpy(), store[scores].to_numpy(), atol=2e-3)


def test_front_end_aisfx_fine_tunes_its_last_block_only(stores):
    import keras

    from architectures.encoders import build_encoder

    config, _ = stores
    params = {**HEAD, "dataset": "wave", "front_end": "aisfx", "encoder_trainable_blocks": 1,
              "encoder_lr_scale": 0.5, "learning_rate": 0.01, "time_masks": 1,
              "freq_masks": 1}
    assert _run(config, 3, {1: params}).exit_code == 0
    root = config.results_dir / "emb" / "experiment_3" / "instance_1"
    model = keras.saving.load_model(root / "fold_0.keras", compile=False)
    trained = {w.path: w.numpy() for w in model.get_layer("front_end").weights}
    fresh = {w.path: w.numpy() for w in build_encoder("aisfx", 110250, hop_length=51200,
                                                      model_name="front_end").weights}
    moved = {p for p in trained if not np.allclose(trained[p], fresh[p])}
    assert moved and all("block4" in p for p in moved)
    assert any("block4_conv" in p for p in moved)
    assert "spec_augment" in [layer.name for layer in model.get_layer("front_end").layers]


LR_SCRIPT = """
import json
import keras
import numpy as np
from xval.training.encoder import LAYER_NAME, scale_encoder_rate

def step(scale, kind):
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="enc")],
                             name=LAYER_NAME)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(inner(inputs)))
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    optimizer = getattr(keras.optimizers, kind)(0.1)
    model.compile(optimizer=scale_encoder_rate(optimizer, model, scale), loss="mse")
    model.fit(np.ones((4, 3), np.float32), np.ones((4, 1), np.float32), epochs=1,
              batch_size=4, verbose=0)
    return {w.path: (before[w.path] - w.numpy()).tolist() for w in model.trainable_weights}

def steps():
    return {kind: [step(1.0, kind), step(0.25, kind)] for kind in ("SGD", "Adam")}

if __name__ == "__main__":
    print(json.dumps(steps()))
"""


@pytest.mark.parametrize("backend", ["torch", "tensorflow", "jax"])
def test_encoder_learning_rate_is_scaled_for_the_encoder_only(backend, tmp_path):
    import os
    import runpy
    import subprocess
    import sys

    import keras

    pytest.importorskip(backend)
    if backend == keras.backend.backend():  # this process's: no process to start
        (tmp_path / "lr.py").write_text(LR_SCRIPT)
        steps = runpy.run_path(str(tmp_path / "lr.py"))["steps"]()
    else:
        done = subprocess.run([sys.executable, "-c", LR_SCRIPT], capture_output=True,
                              text=True, env={**os.environ, "KERAS_BACKEND": backend},
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        steps = json.loads(done.stdout.strip().splitlines()[-1])
    for kind, (full, scaled) in steps.items():
        assert set(full) == set(scaled) and any("enc/" in p for p in full)
        for path in full:
            # The first step of SGD and of Adam is proportional to the rate.
            expected = np.asarray(full[path]) * (0.25 if "enc/" in path else 1.0)
            assert np.abs(full[path]).max() > 0, (kind, path)
            np.testing.assert_allclose(scaled[path], expected, rtol=1e-4, atol=1e-7,
                                       err_msg=f"{kind} {path}")


@pytest.mark.parametrize("instance, match", [
    ({**HEAD, "front_end": "aisfx"},
     r"instance 1: front_end='aisfx' puts the aisfx encoder inside the model, which reads "
     r"audio, but the store holds pretrained features; build a waveform store at 44100 Hz"),
    ({**HEAD, "encoder_trainable_blocks": 2},
     r"instance 1: encoder_trainable_blocks=2 trains the blocks of an encoder inside the "
     r"model, but front_end='none'; set front_end to one of aisfx"),
    ({**HEAD, "dataset": "wave", "front_end": "aisfx", "encoder_trainable_blocks": 5},
     r"encoder_trainable_blocks=5, but aisfx has 4 blocks; use 0 to 4"),
])
def test_encoder_instances_are_refused_before_training(stores, instance, match):
    config, _ = stores
    with pytest.raises(ConfigurationError, match=match):
        _run(config, 4, {1: instance})
    assert not (config.results_dir / "emb" / "experiment_4" / "instance_1").exists()


def test_waveform_store_at_another_rate_is_refused(stores, tmp_path):
    from xval.cli.preprocess import main as preprocess_main

    config, _ = stores
    write_audio(tmp_path / "audio16", sample_rate=16000, seconds=(2.5, 2.5))
    assert preprocess_main(["regex", str(tmp_path / "audio16"), "--pattern", PATTERN,
                            "--config", str(config.path), "--no-progress", "-q", "--out",
                            "wave16", "--feature", "waveform", "--segment-seconds",
                            "2.5"]) == 0
    with pytest.raises(ConfigurationError, match=r"front_end='aisfx' reads 44100 Hz audio, "
                                                  r"but the store's rows are at 16000 Hz"):
        _run(config, 5, {1: {**HEAD, "front_end": "aisfx"}}, dataset="wave16")


def test_store_whose_encoder_weights_differ_is_refused(stores, tmp_path):
    config, _ = stores
    info = json.loads((config.data_dir / "emb" / "dataset.json").read_text())
    assert info["front_end"]["peak"] == "segment"
    copy = config.data_dir / "emb_other"
    shutil.copytree(config.data_dir / "emb", copy)
    info["front_end"]["weights_sha256"] = "0" * 64
    (copy / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ConfigurationError, match=r"the aisfx weights installed here "
                                                  r"\(sha256 [0-9a-f]{12}\) are not those the "
                                                  r"store was built with \(000000000000\)"):
        _run(config, 6, {1: HEAD}, dataset="emb_other")




def test_export_onnx_takes_a_waveform_and_matches_predict_outside_the_project(
        stores, audio_instance, tmp_path, onnx_python):
    import subprocess

    from xval.cli.main import main
    from xval.inference.models import extract_features, feature_params_of, info_for, resolve_models
    from xval.inference.predict import predict_files

    _, paths = stores
    out = tmp_path / "onnx"
    assert main(["export", str(audio_instance), "--format", "onnx", "--out", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "the `aisfx` encoder's layers" in card and "at 44100 Hz" in card
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert json.loads(props["classes"]) == ["noise", "tone"]
    assert props["sample_rate"] == "44100" and props["segment_seconds"] == "2.5"
    assert props["input"].startswith("audio") and "softmax" in props["clip_rule"]
    assert "ends at the file's end" in props["segment_rule"] and props["encoder"] == "aisfx"
    models = resolve_models(audio_instance)
    feature = feature_params_of(info_for(models, None), models)
    assert feature["feature"] == "waveform" and feature["sample_rate"] == 44100
    files = paths[:3]
    segments = np.concatenate([f["features"][:, :, 0]
                               for f in extract_features(files, feature)])
    np.save(tmp_path / "x.npy", segments.astype(np.float32))
    (tmp_path / "run.py").write_text(RUNNER)
    run = subprocess.run([onnx_python, tmp_path / "run.py", out / "model.onnx",
                          tmp_path / "x.npy", tmp_path / "y.npy"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    got = np.load(tmp_path / "y.npy")
    predicted = predict_files(audio_instance, files)
    expected = np.array([[s["scores"][c] for c in ("noise", "tone")]
                         for r in predicted for s in r["segments"]])
    assert got.shape == expected.shape == (3, 2)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The card's program, with numpy and onnxruntime alone, gives predict's clip scores: its
    # rows are predict's to the bit; the encoder's depth leaves onnxruntime about 3e-5 from
    # Keras per window (1e-5 for the spectral front end, tests/test_export.py).
    (tmp_path / "card").mkdir()
    _check_card_program(audio_instance, out, onnx_python, tmp_path / "card", paths[:2],
                        atol=1e-4)
