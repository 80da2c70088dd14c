"""Waveform stores and the front end inside the model (issue 36, point 1): `feature =
waveform` stores the samples, `front_end = mel|stft|mfcc` computes the librosa feature of
the same name inside the model, normalised with statistics of the fold's training rows,
`random_crop_seconds` trains on random windows; the fold models predict from audio files."""

import json

import librosa
import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_config
from xval import Experiment, Output
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, ParameterError

SR = 8000
SETTINGS = {"sample_rate": SR, "n_fft": 256, "hop_length": 64, "n_mels": 24, "n_mfcc": 13,
            "fmin": 50.0, "fmax": None, "power_exponent": 0.3}
SMALL_CNN = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 4, "blocks": 2,
             "dense_units": 8, "comment_1": "", "comment_2": ""}
FAST = {"epochs": 2, "patience": 2, "batch_size": 16}


@pytest.fixture(scope="module")
def signal():
    """A chirp in noise with a silent tail (the floor of the compressions is exercised)."""
    y = 0.5 * librosa.chirp(fmin=100, fmax=3500, sr=SR, duration=1.0)
    y = y + 0.05 * np.random.default_rng(0).standard_normal(SR)
    y[6000:] = 0.0
    return y.astype(np.float32)


@pytest.mark.parametrize("feature,compression,atol", [
    ("mel", "db", 1e-3), ("mel", "log", 1e-5), ("mel", "power", 1e-4), ("mel", "none", 1e-4),
    ("stft", "db", 1e-2), ("stft", "log", 1e-5), ("mfcc", "db", 1e-2)])
def test_spectral_front_end_computes_the_librosa_feature(signal, feature, compression, atol):
    import keras

    from architectures import SpectralFrontEnd
    from preprocessing.features import compute_features

    expected = compute_features(signal, feature=feature, compression=compression, **SETTINGS)
    layer = SpectralFrontEnd(feature, compression=compression, **SETTINGS)
    got = keras.ops.convert_to_numpy(layer(signal[None, :, None]))[0]
    assert got.shape == expected.shape == (1 + SR // 64, layer.bins)
    np.testing.assert_allclose(got, expected, atol=atol, rtol=1e-4)
    assert not layer.trainable and not layer.trainable_weights


@pytest.mark.parametrize("feature", ["mel", "stft", "mfcc"])
def test_spectral_front_end_computes_in_float32_under_mixed_precision(signal, feature):
    """A power spectrum overflows float16 (65,504): under mixed_float16 (a GPU's
    `mixed_precision`) the layer still computes, and returns, float32."""
    import keras

    from architectures import SpectralFrontEnd

    x = 4.0 * signal[None, :, None]  # loud: its power spectrum passes 65,504
    expected = keras.ops.convert_to_numpy(SpectralFrontEnd(feature, **SETTINGS)(x))
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        layer = SpectralFrontEnd(feature, **SETTINGS)
        got = keras.ops.convert_to_numpy(layer(x))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_spectral_front_end_rejects_bad_settings():
    from architectures import SpectralFrontEnd

    with pytest.raises(ValueError, match=r"feature='cqt': expected one of stft, mel, mfcc"):
        SpectralFrontEnd("cqt")
    with pytest.raises(ValueError, match=r"compression='dB': expected one of"):
        SpectralFrontEnd("mel", compression="dB")
    with pytest.raises(ValueError, match="n_mfcc=30 must be at most n_mels=24"):
        SpectralFrontEnd("mfcc", n_mels=24, n_mfcc=30)


def test_spectral_front_end_saves_and_loads_with_its_settings(tmp_path, signal):
    import keras

    from architectures import SpectralFrontEnd
    from xval.training.loading import load

    inputs = keras.Input((SR, 1))
    model = keras.Model(inputs, SpectralFrontEnd("mfcc", input_scale=0.5, **SETTINGS)(inputs))
    model.save(tmp_path / "front.keras")
    loaded = load(tmp_path / "front.keras")
    x = signal[None, :, None]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    assert loaded.layers[1].get_config()["input_scale"] == 0.5


def _rows(folder, speakers=4, clips=3):
    """Source rows of a subset of the demo recordings: `speakers` speakers (the items), every
    class, `clips` clips each."""
    from preprocessing import regex_source
    from preprocessing.demo import PATTERN, write_demo_audio

    if not folder.is_dir():
        write_demo_audio(folder)
    rows, _ = regex_source(folder, PATTERN)
    keep = rows["item"].isin([f"spk{s}" for s in range(speakers)]) & \
        rows["path"].str.contains("|".join(f"_{k}.wav" for k in range(clips)))
    return rows[keep].reset_index(drop=True)


def _params(**overrides):
    from preprocessing.demo import _demo_params

    return {**_demo_params(), **overrides}


def test_waveform_store_holds_the_samples_as_float16_or_pcm16(tmp_path):
    from preprocessing import build_store, feature_params
    from preprocessing.audio import load_audio
    from preprocessing.demo import CLASSES

    rows = _rows(tmp_path / "audio", speakers=2, clips=1)
    half, _ = build_store(rows, tmp_path / "half", params=_params(feature="waveform",
                                                                  dtype="auto"),
                          workers=1, classes=list(CLASSES), progress=False)
    pcm, _ = build_store(rows, tmp_path / "pcm", params=_params(feature="waveform",
                                                                dtype="int16"),
                         workers=1, classes=list(CLASSES), progress=False)
    assert half.features.dtype == np.float16 and pcm.features.dtype == np.int16
    assert half.features.shape[1:] == pcm.features.shape[1:] == (4000, 1)  # 0.5 s at 8 kHz
    first = half.meta.iloc[0]
    y, _ = load_audio(first["source"], sample_rate=8000, peak_normalize=True)
    start = int(round(first["start"] * 8000))
    np.testing.assert_allclose(half.features[0, :, 0], y[start:start + 4000], atol=1e-3)
    np.testing.assert_allclose(pcm.features[0, :, 0] / 32768.0, y[start:start + 4000],
                               atol=1.0 / 32768)
    assert list(half.meta["clip"]) == list(pcm.meta["clip"])  # segmented as every store
    with pytest.raises(ConfigurationError, match=r"dtype='int16' stores audio samples.*"
                                                 r"feature='mel' is not a waveform type"):
        feature_params(_params(dtype="int16"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A config, and the mel store and waveform stores (float16, int16) of the same demo
    recordings: 4 speakers, 48 files."""
    from preprocessing import build_store
    from preprocessing.demo import CLASSES

    base = tmp_path_factory.mktemp("front_end")
    config = load_config(write_config(base))
    rows = _rows(base / "audio")
    for name, params in (("mel", _params()), ("wave", _params(feature="waveform")),
                         ("wave16", _params(feature="waveform", dtype="int16"))):
        build_store(rows, config.data_dir / name, params=params, workers=1,
                    classes=list(CLASSES), progress=False)
    return config


def _experiment(config, number, **instance):
    exp = Experiment(description="front end", dataset="mel", number=number, num_folds=2,
                     parameters=FAST, config=str(config.path))
    exp[1] = {**SMALL_CNN, **instance}
    return exp


def test_front_end_is_refused_on_a_store_of_features(stores):
    exp = _experiment(stores, 1, front_end="mel")
    with pytest.raises(ConfigurationError, match=r"instance 1: front_end='mel' computes mel "
                                                 r"features from audio, but the store holds "
                                                 r"mel features; build a waveform store"):
        exp.run(config=stores, output=Output(out=lambda *a: None))
    assert not (stores.results_dir / "mel" / "experiment_1").exists()


def test_unknown_front_end_and_bad_crops_are_refused_before_training(stores):
    with pytest.raises(ParameterError, match=r"front_end.*'melspec'.*mel"):
        _experiment(stores, 2, dataset="wave", front_end="melspec").run(
            config=stores, output=Output(out=lambda *a: None))
    with pytest.raises(ConfigurationError, match=r"random_crop_seconds=0.5 must be shorter "
                                                 r"than the store's segments"):
        _experiment(stores, 2, dataset="wave", front_end="mel", random_crop_seconds=0.5).run(
            config=stores, output=Output(out=lambda *a: None))
    with pytest.raises(ParameterError, match=r"time_warp=0.1 needs rows of a fixed length"):
        _experiment(stores, 2, dataset="wave", front_end="mel", random_crop_seconds=0.3,
                    time_warp=0.1).run(config=stores, output=Output(out=lambda *a: None))
    with pytest.raises(ConfigurationError, match=r"reshaping_type 'conv' or 'rnn'"):
        exp = Experiment(description="front end", dataset="mel", number=2, num_folds=2,
                         parameters=FAST, config=str(stores.path))
        exp[1] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                  "comment_2": "", "dataset": "wave", "front_end": "mel",
                  "random_crop_seconds": 0.3}
        exp.run(config=stores, output=Output(out=lambda *a: None))
    assert not (stores.results_dir / "mel" / "experiment_2").exists()


def test_front_end_statistics_come_from_the_training_rows_through_the_front_end(stores):
    import keras

    from preprocessing.store import FeatureStore
    from xval.core.parameters import InstanceParams
    from xval.training.front_end import front_end_layer, front_end_stats

    store = FeatureStore(stores.data_dir / "wave16")
    rows = np.arange(0, len(store), 3)
    layer = front_end_layer(InstanceParams(front_end="mel"), store.info)
    mean, variance = front_end_stats(layer, store.features, rows, batch_rows=7)
    feats = keras.ops.convert_to_numpy(layer(np.asarray(store.features[rows], np.float32)))
    np.testing.assert_allclose(mean, feats.reshape(-1, 32).mean(axis=0), rtol=1e-4,
                               atol=1e-3)
    np.testing.assert_allclose(variance, feats.reshape(-1, 32).var(axis=0), rtol=1e-3)
    assert layer.input_scale == 1 / 32768  # int16 rows are scaled back to [-1, 1)


def test_random_crops_are_windows_drawn_per_row_and_epoch():
    from xval.training.batches import make_batches

    x = np.tile(np.arange(100, dtype=np.float32)[None, :, None], (6, 1, 1))
    batches = make_batches(x, np.arange(6), np.zeros(6), batch_size=6, shuffle=False, seed=3,
                           crop=40)
    first = batches[0][0]
    assert first.shape == (6, 40, 1)
    assert np.all(np.diff(first[:, :, 0], axis=1) == 1)  # contiguous windows
    starts = first[:, 0, 0]
    assert len(set(starts)) > 1 and starts.max() <= 60
    np.testing.assert_array_equal(batches[0][0], first)  # the same batch, the same crops
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0][:, 0, 0], starts)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inline", "process",
                                      pytest.param("ray", marks=pytest.mark.ray)])
def test_waveform_experiment_runs_and_its_models_predict_from_audio(stores, executor, request):
    from xval.inference.predict import predict_files

    if executor == "ray":
        request.getfixturevalue("local_ray")  # the session's Ray (tests/conftest.py)
    number = {"inline": 3, "process": 4, "ray": 5}[executor]
    exp = _experiment(stores, number, comment_1="librosa mel")
    exp[2] = {**SMALL_CNN, "comment_1": "in-model mel", "dataset": "wave", "front_end": "mel"}
    exp[3] = {**SMALL_CNN, "comment_1": "pcm16, crops", "dataset": "wave16",
              "front_end": "mel", "random_crop_seconds": 0.3}
    # Every instance inline; through the process and Ray executors, the in-model mel (the
    # executors treat the three alike: one of them is enough there, and keeps the suite short).
    selected = None if executor == "inline" else [2]
    outcome = exp.run(selected, config=stores, executor=executor, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0 and outcome.failed == []
    root = stores.results_dir / "mel" / f"experiment_{number}"
    audio = sorted(stores.data_dir.parent.glob("audio/spk0/*.wav"))[:2]
    checked = ((2, (4000, 1)), (3, (None, 1))) if executor == "inline" else ((2, (4000, 1)),)
    if executor == "inline":
        params = json.loads((root / "instance_3" / "params.json").read_text())["params"]
        assert params["front_end"] == "mel" and params["time_warp"] == 0.0  # crops: dropped
    for k, takes in checked:
        folder = root / f"instance_{k}"
        answers = predict_files(folder, audio)
        assert [a["file"] for a in answers] == [str(p) for p in audio]
        scores = answers[0]["clip"]["scores"]
        assert set(scores) == {"fall", "flat", "rise", "vibrato"}
        assert abs(sum(scores.values()) - 1) < 1e-5
        assert json.loads((folder / "dataset.json").read_text())["feature_params"][
            "feature"] == "waveform"
        from xval.training.loading import load

        assert load(folder / "fold_0.keras").input_shape[1:] == takes
    frame = pd.read_csv(root / "instance_2" / "predictions_fold_0.csv")
    assert len(frame) > 0
