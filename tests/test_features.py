"""The feature-type registry: a type registered from outside the package is a first-class
feature (schema choices, feature parameters, store, experiment)."""

import json

import librosa
import numpy as np
import pytest
import soundfile as sf

import xval.config.schema as schema
from preprocessing.build import build_store, feature_params
from preprocessing.features import (
    bin_frequencies,
    compute_features,
    feature_shape,
    get,
    names,
    register,
)
from preprocessing.sources import regex_source
from tests.conftest import ROOT
from xval import Experiment, Output
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, DatasetError

SR = 8000
DEFAULTS = load_config(ROOT / "config.ini").features


@register("test_band_energy", bins=lambda params: params["n_bands"])
def band_energy(y: np.ndarray, *, sample_rate: int, n_fft: int = 512, hop_length: int = 160,
                n_bands: int = 4) -> np.ndarray:
    """Log energy of the STFT power in `n_bands` equal bands (a toy feature type).

    Args:
        y: `np.ndarray [shape=(n,)]`.
        sample_rate: rate of `y` in Hz.
        n_fft: FFT size. Defaults to `512`.
        hop_length: hop in samples. Defaults to `160`.
        n_bands: bands (an option of the type: not a [features] key). Defaults to `4`.

    Returns:
        `np.ndarray [shape=(frames, n_bands)]`.
    """
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2
    bands = np.array_split(power, n_bands, axis=0)
    return np.log1p(np.stack([b.sum(axis=0) for b in bands], axis=1))


def write_tones(folder, speakers=6, clips=2):
    """Two classes (a low and a high tone) said by `speakers` speakers, 0.5 s each."""
    for s in range(speakers):
        for label, freq in (("low", 300.0), ("high", 2500.0)):
            for k in range(clips):
                y = 0.5 * librosa.tone(freq + 20 * s + 5 * k, sr=SR, duration=0.5)
                y += 0.01 * np.random.default_rng(s * 10 + k).normal(size=len(y))
                (folder / f"spk{s}").mkdir(parents=True, exist_ok=True)
                sf.write(folder / f"spk{s}" / f"{label}_{k}.wav", y.astype(np.float32), SR)
    return folder


def test_registered_type_is_a_schema_choice_with_its_parameters_and_options():
    assert names()[:4] == ["stft", "mel", "mfcc", "cqt"] and "test_band_energy" in names()
    assert "test_band_energy" in schema.SCHEMA["features"]["feature"].options()
    kind = get("test_band_energy")
    assert kind.params == ("sample_rate", "n_fft", "hop_length")
    assert dict(kind.options) == {"n_bands": 4}
    params = feature_params(DEFAULTS, feature="test_band_energy", sample_rate=SR, n_bands=3)
    assert list(params)[-1] == "n_bands" and params["n_bands"] == 3
    assert feature_params(DEFAULTS, feature="test_band_energy")["n_bands"] == 4
    assert "n_bands" not in feature_params(DEFAULTS)  # options belong to their type only
    with pytest.raises(DatasetError, match="Unknown feature parameter 'n_bands'"):
        feature_params(DEFAULTS, feature="mel", n_bands=3)
    y = np.random.default_rng(0).normal(size=SR // 2).astype(np.float32)
    S = compute_features(y, **params)
    assert S.shape == feature_shape({**params, "segment_seconds": 0.5}) == (26, 3)
    assert bin_frequencies(params) is None


def test_feature_params_typed_record_reads_by_attribute_and_writes_the_flat_dict():
    """`feature_params` returns a `FeatureParams`: typed fields, the type's options apart,
    and the flat dict of `dataset.json` (the schema's order, then the options) when written;
    read back from JSON it is the same record."""
    from preprocessing.features import parameter_names
    from xval.core.dataset_info import DatasetInfo
    from xval.core.parameters import FeatureParams

    params = feature_params(DEFAULTS, feature="test_band_energy", sample_rate=SR, n_bands=3)
    assert isinstance(params, FeatureParams)
    assert (params.sample_rate, params.feature, params.options) == \
        (SR, "test_band_energy", {"n_bands": 3})
    assert params.dtype == "float32"  # `auto` resolved to the type's own
    assert list(params.to_dict()) == [*parameter_names(), "n_bands"] == list(params)
    text = json.dumps({"feature_params": params.to_dict()})
    read = DatasetInfo.from_dict(json.loads(text)).feature_params
    assert isinstance(read, FeatureParams) and read == params
    assert json.dumps({"feature_params": read.to_dict()}) == text
    changed = params.replace(n_bands=5, hop_length=80)
    assert (changed.options, changed.hop_length) == ({"n_bands": 5}, 80)
    assert (params.options, params.hop_length) == ({"n_bands": 3}, DEFAULTS.hop_length)
    assert params.replace(options={}).to_dict() == {k: params[k] for k in parameter_names()}
    assert params.segment_samples == round(params.segment_seconds * SR)
    assert FeatureParams.of({"sample_rate": SR}).hop_length == 160  # the schema's default
    with pytest.raises(KeyError):
        params["options"]


def test_register_refuses_bad_functions():
    with pytest.raises(ValueError, match="'mel' is already registered"):
        register("mel", bins=lambda p: 1)(band_energy)
    with pytest.raises(ValueError, match="dtype='int8': expected float32 or float16"):
        register("test_int8", bins=lambda p: 1, dtype="int8")
    with pytest.raises(TypeError, match="keyword-only parameters after the waveform"):
        register("test_positional", bins=lambda p: 1)(lambda y, sample_rate: y)

    def no_default(y, *, sample_rate, width):
        return y

    with pytest.raises(TypeError, match="width is not a \\[features\\] key, so it is an "
                                        "option of the type and needs a default"):
        register("test_no_default", bins=lambda p: 1)(no_default)
    with pytest.raises(ConfigurationError, match="feature='nope': expected one of stft"):
        get("nope")


def test_store_and_experiment_on_a_feature_type_registered_outside_the_package(tmp_path):
    from tests.conftest import write_config

    config_path = write_config(tmp_path, features={"feature": "test_band_energy"})
    config = load_config(config_path)
    assert config.features["feature"] == "test_band_energy"
    rows, skipped = regex_source(write_tones(tmp_path / "audio"),
                                 r"^(?P<item>spk\d+)/(?P<label>[a-z]+)_\d+\.wav$")
    params = feature_params(config.features, sample_rate=SR, n_fft=256, hop_length=128,
                            segment_seconds=0.5, segment_hop_seconds=0.5, n_bands=6)
    store, summary = build_store(rows, config.data_dir / "toy", params=params, workers=1,
                                 progress=False)
    assert store.features.shape == (24, 32, 6) and summary["skipped"] == []
    info = json.loads((store.path / "dataset.json").read_text())
    assert info["feature_params"]["feature"] == "test_band_energy"
    assert info["feature_params"]["n_bands"] == 6
    exp = Experiment(description="toy feature", dataset="toy", number=1, num_folds=2,
                     parameters={"epochs": 2, "patience": 2, "batch_size": 8},
                     config=str(config_path))
    exp[1] = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="toy"',
              'comment_2="feature"', "filters=4"]
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0 and outcome.failed == []
    instance = config.results_dir / "toy" / "experiment_1" / "instance_1"
    for fold in (0, 1):
        result = json.loads((instance / f"fold_{fold}.json").read_text())
        assert result["status"] == "ok", result.get("message")
        assert 0.0 <= result["metrics"]["test"]["accuracy"] <= 1.0
