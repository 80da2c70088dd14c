"""Long recordings read window by window (`preprocessing.streaming`): the features, silence
and no-signal decisions of the whole-file extraction, a batch of windows at a time, and the
commands' results unchanged (issue 54, item 5). `LONG_SECONDS` and `GROUP_SECONDS` are made
small here, so that a 20 s file is "long" and is read in seven groups; real lengths were
measured by `git show 4619a5e:benchmarks/long_recordings.py` (docs/performance.md)."""

import json

import numpy as np
import pytest
import soundfile as sf

from preprocessing import streaming
from preprocessing.build import extract_file, feature_params
from preprocessing.features import feature_shape
from tests.conftest import ROOT
from xval.config.loader import load_config
from xval.core.errors import DatasetError
from xval.inference.models import read_features
from xval.inference.predict import predict_files

BASE = load_config(ROOT / "config.ini").features


@pytest.fixture
def small_groups(monkeypatch):
    monkeypatch.setattr(streaming, "LONG_SECONDS", 5.0)
    monkeypatch.setattr(streaming, "GROUP_SECONDS", 3.0)


def _recording(path, rate, seconds=20.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    y = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.2 * t) > 0) \
        + 0.01 * rng.normal(size=t.size)
    y[int(rate * 3):int(rate * 6)] = 0.0  # digital silence: silent segments
    sf.write(path, y.astype(np.float32), rate, subtype="PCM_16")
    return path


def _params(**given):
    return feature_params(BASE, **{"segment_seconds": 1.0, "segment_hop_seconds": 0.5,
                                   **given})


@pytest.mark.parametrize(("file_rate", "given"), [
    (16000, {"sample_rate": 16000, "feature": "mel"}),
    (44100, {"sample_rate": 16000, "feature": "mel"}),  # resampled as it is read
    (16000, {"sample_rate": 16000, "feature": "mel", "compression": "pcen"}),  # 6 s context
    (8000, {"sample_rate": 8000, "feature": "stft", "peak_normalize": True}),
    (16000, {"sample_rate": 8000, "feature": "waveform"}),
])
def test_a_long_file_gives_the_features_of_the_whole_file_exactly(
        small_groups, tmp_path, file_rate, given):
    path = _recording(tmp_path / "long.wav", file_rate)
    params = _params(**given)
    assert streaming.is_long(path)
    whole = extract_file(path, params)
    real = ~np.asarray(whole["silent"])
    chunks = list(streaming.stream_features(path, params))
    assert len(chunks) > 5  # read group by group
    # Equal to float32 rounding: the mel filterbank's product is summed by BLAS in blocks
    # that depend on how many frames a call holds (numpy 2.4.6's OpenBLAS: 4e-6 dB apart).
    np.testing.assert_allclose(np.concatenate([c["features"] for c in chunks]),
                               whole["features"][real], rtol=1e-6, atol=1e-5)
    assert [s for c in chunks for s in c["starts"]] == \
        [s for s, keep in zip(whole["starts"], real) if keep]
    assert chunks[-1]["duration"] == whole["duration"]
    every = list(streaming.stream_features(path, params, real_only=False))
    assert [s for c in every for s in c["silent"]] == list(whole["silent"])


def test_a_short_file_is_read_whole_as_before(tmp_path):
    path = _recording(tmp_path / "short.wav", 16000, seconds=4.0)
    params = _params(sample_rate=16000)
    assert not streaming.is_long(path)
    [chunk] = read_features(path, params)
    whole = extract_file(path, params)
    real = ~np.asarray(whole["silent"])
    assert np.array_equal(chunk["features"], whole["features"][real])


def test_a_long_file_is_refused_as_the_whole_file_is(small_groups, tmp_path):
    params = _params(sample_rate=8000)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000 * 12, np.float32), 8000)
    assert extract_file(silent, params)["error"].startswith("no signal")
    with pytest.raises(DatasetError, match=r"silent\.wav: no signal: its loudest frame holds "
                                           r"no energy in the feature band"):
        list(read_features(silent, params))
    bad = tmp_path / "nan.wav"
    y = np.full(8000 * 12, 0.1, np.float32)
    y[100] = np.nan
    sf.write(bad, y, 8000, subtype="FLOAT")
    with pytest.raises(DatasetError, match=r"1 of its 96000 samples are not finite"):
        list(read_features(bad, params))


def test_predict_on_a_long_file_reads_it_in_windows_with_the_same_answer(
        small_groups, tmp_path, monkeypatch):
    import keras

    params = _params(sample_rate=8000)
    folder = tmp_path / "experiment_1"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({
        "task_type": "classification", "classes": ["a", "b"],
        "feature_params": params.to_dict()}))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(feature_shape(params)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    model.save(folder / "m.keras")
    path = _recording(tmp_path / "long.wav", 16000)
    windowed = predict_files(folder / "m.keras", [path])
    monkeypatch.setattr(streaming, "LONG_SECONDS", float("inf"))  # the whole file at once
    whole = predict_files(folder / "m.keras", [path])
    assert _flat(windowed[0]["segments"]) == pytest.approx(_flat(whole[0]["segments"]))
    assert _flat(windowed[0]["clip"]) == pytest.approx(_flat(whole[0]["clip"]))


def _flat(value, key=""):
    """A nested answer of `predict_files` as {path: value}, its numbers compared with
    `pytest.approx` (the features agree to float32 rounding)."""
    if isinstance(value, dict):
        return {k: v for name, item in value.items()
                for k, v in _flat(item, f"{key}.{name}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{key}[{i}]").items()}
    return {key: value}
