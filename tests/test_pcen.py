"""`compression = "pcen"` (issue 66): librosa's per-channel energy normalisation of a
store's magnitudes, computed over the whole file; a store-only compression (a model's
front end and event mixing refuse it, naming why)."""

import librosa
import numpy as np
import pytest

from preprocessing.features.spectral import compress, mel, mel_power, stft
from xval.core.errors import ParameterError


def _signal(rate=16000, seconds=3.0):
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * seconds)) / rate
    return (0.05 * rng.normal(size=t.size) + 0.3 * np.sin(2 * np.pi * 440 * t)
            * (t > 1.5)).astype(np.float32)


def test_pcen_is_librosas_on_the_magnitudes():
    y = _signal()
    power = mel_power(y, sample_rate=16000, n_fft=1024, hop_length=320, n_mels=64,
                      fmin=32.7, fmax=None)
    expected = librosa.pcen(np.sqrt(power) * 2.0 ** 31, sr=16000, hop_length=320)
    got = mel(y, sample_rate=16000, n_fft=1024, hop_length=320, compression="pcen")
    np.testing.assert_allclose(got, expected.T, rtol=1e-5)
    magnitude = np.abs(librosa.stft(y, n_fft=512, hop_length=160))
    np.testing.assert_allclose(
        stft(y, sample_rate=16000, compression="pcen"),
        librosa.pcen(magnitude * 2.0 ** 31, sr=16000, hop_length=160).T, rtol=1e-5)
    # The tone's onset (frame 75) stands out of the noise; once steady, it falls back.
    frames = got.mean(axis=1)
    assert frames[74:80].max() > 1.4 * frames[60:70].mean()
    assert frames[120:].mean() < 1.1 * frames[60:70].mean()
    with pytest.raises(ValueError, match="expected one of"):
        compress(power, compression="pcen2", power=2.0, power_exponent=0.3)


def test_pcen_is_refused_where_it_cannot_be_computed():
    from architectures.front_end import SpectralFrontEnd
    from preprocessing import features
    from xval.tasks.detection.mixing import EventMixer

    with pytest.raises(ValueError, match="pcen, a recursive filter over time, is computed "
                                         "by a store"):
        SpectralFrontEnd("mel", sample_rate=16000, compression="pcen")
    with pytest.raises(ParameterError, match="compression='pcen'"):
        EventMixer(0.5, feature="mel", compression="pcen", features=features)


def test_the_model_cards_librosa_lines_compute_the_stores_pcen(tmp_path):
    """The recipe a model card shows for a pcen store, run as written in a fresh Python,
    gives the store's features."""
    import subprocess
    import sys

    import soundfile as sf

    from preprocessing.features.recipes import librosa_recipe
    from xval.core.parameters import FeatureParams

    y = _signal()
    path = tmp_path / "a.wav"
    sf.write(path, y, 16000, subtype="FLOAT")
    fp = FeatureParams(feature="mel", sample_rate=16000, n_fft=1024, hop_length=320,
                       n_mels=64, compression="pcen")
    lines = librosa_recipe(fp)
    assert any("librosa.pcen(np.sqrt(S) * 2.0 ** 31, sr=16000, hop_length=320)" in line
               for line in lines)
    program = "\n".join([f"path = {str(path)!r}", *lines,
                         f"np.save({str(tmp_path / 'out.npy')!r}, features)"])
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = mel(y, sample_rate=16000, n_fft=1024, hop_length=320, n_mels=64,
                   compression="pcen")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-4)


def test_a_changed_task_default_names_the_value_to_pin():
    """Detection results made before `boundary_weight=2` became the task's default are
    told the value to pin, not only `--overwrite`."""
    from xval.running.planner import defaults_hint

    hint = defaults_hint({"boundary_weight": 0.0})
    assert "the task's own default of boundary_weight changed" in hint
    assert "parameters={'boundary_weight': 0.0}" in hint
    assert defaults_hint({"filters": 16}) == ""


def test_a_pcen_store_is_refused_by_a_spectral_front_end_before_training():
    from xval.core.dataset_info import DatasetInfo
    from xval.core.errors import ConfigurationError
    from xval.core.parameters import FeatureParams, InstanceParams
    from xval.training.front_end import check_front_end

    info = DatasetInfo.from_dict({"feature_params": FeatureParams(
        feature="waveform", compression="pcen").to_dict(), "task_type": "classification"})
    with pytest.raises(ConfigurationError, match="compression='pcen'.*front_end='none'"):
        check_front_end(InstanceParams(front_end="mel"), info, "instance 1")
    check_front_end(InstanceParams(front_end="mfcc"), info, "instance 1")  # mfcc ignores compression
