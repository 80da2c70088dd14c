"""The no-signal check: is there anything in the band the features see?

A file is skipped as having no signal when its loudest analysis frame holds no more energy
in the feature band than `silence_threshold_db` (dBFS). The level is measured as the
features see the signal: the short-time spectrum with the store's `n_fft` and `hop_length`
(at most `n_fft / 4`: `analysis_hop`; Hann window, centred frames), over the band of the
feature's bins (the range of their centre frequencies, `preprocessing.features.bin_frequencies`;
`fmin` to `fmax` for the types whose bins have none, such as MFCCs), never the 0 Hz bin, after
the file's mean is removed.
A constant offset (DC) therefore reads as no signal, as does digital silence, while a short
quiet call in a long recording counts by its loudest frame.

0 dBFS is the level of a full-scale sine inside the band; white noise of RMS level L dBFS
reads about L + 3 dB. The waveform peak is not used: a click or a DC step has a high peak
and nothing a feature can learn from; a quiet call (bioacoustics) has a low peak and a clear
band level.
"""

from __future__ import annotations

import math

import librosa
import numpy as np

from preprocessing.features import bin_frequencies
from xval.core.parameters import FeatureParams

__all__ = ["analysis_hop", "band_frame_levels_db", "band_level_db", "feature_band",
           "no_signal_at", "no_signal_reason"]


def feature_band(params: FeatureParams) -> tuple[float, float]:
    """The band (Hz) the features of `params` see, above the 0 Hz bin.

    Args:
        params: feature parameters (`sample_rate`, `n_fft`, `feature`, `fmin`, `fmax`).

    Returns:
        `(low, high)` in Hz, `low` at least one FFT bin above 0 Hz.
    """
    sample_rate, n_fft = params.sample_rate, params.n_fft
    nyquist = sample_rate / 2
    try:
        freqs = bin_frequencies(params)
    except (KeyError, ValueError, TypeError):
        freqs = None
    if freqs is not None:
        low, high = float(np.min(freqs)), float(np.max(freqs))
    else:
        low, high = float(params.fmin or 0.0), float(params.fmax or nyquist)
    return max(low, sample_rate / n_fft), min(max(high, sample_rate / n_fft), nyquist)


def band_frame_levels_db(y: np.ndarray, *, sample_rate: int, n_fft: int, hop_length: int,
                         band: tuple[float, float], mean: float | None = None) -> np.ndarray:
    """The level (dBFS) of every analysis frame of `y` inside `band`.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        n_fft: FFT size.
        hop_length: hop between frames (samples); frame `i` is centred on sample
            `i * hop_length`.
        band: `(low, high)` in Hz.
        mean: the mean removed from `y`; `None` (the default) takes `y`'s own (a part of a
            long file is given the whole file's, `preprocessing.streaming`).

    Returns:
        `np.ndarray [shape=(frames,)]`: each frame's level in dB relative to a full-scale
        sine in the band; `-inf` for no energy (an empty `y` has no frame).
    """
    if y.size == 0:
        return np.zeros(0)
    n_fft = min(n_fft, max(2, y.size))
    y = np.asarray(y, np.float64)
    y = y - (np.mean(y) if mean is None else mean)  # a constant offset leaks into the
    # lowest bins through the window
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    keep = (freqs >= band[0]) & (freqs <= band[1]) & (freqs > 0)
    if not keep.any():
        keep = freqs > 0
    window = librosa.filters.get_window("hann", n_fft, fftbins=True)
    reference = n_fft * float(np.sum(window ** 2)) / 4  # a unit sine, one side
    energy = power[keep].sum(axis=0) / reference
    with np.errstate(divide="ignore"):
        return np.where(energy > 0, 10 * np.log10(np.maximum(energy, 1e-300)), -np.inf)


def band_level_db(y: np.ndarray, *, sample_rate: int, n_fft: int, hop_length: int,
                  band: tuple[float, float]) -> float:
    """The level (dBFS) of the loudest frame of `y` inside `band`.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        n_fft: FFT size.
        hop_length: hop between frames (samples).
        band: `(low, high)` in Hz.

    Returns:
        The level in dB relative to a full-scale sine in the band; `-inf` for no energy.
    """
    levels = band_frame_levels_db(y, sample_rate=sample_rate, n_fft=n_fft,
                                  hop_length=hop_length, band=band)
    return float(np.max(levels)) if levels.size else -math.inf


def analysis_hop(params: FeatureParams) -> int:
    """The hop of the level's analysis frames: the store's `hop_length`, at most a quarter
    of `n_fft`, so that consecutive frames overlap and no sound falls between them (an
    encoder's store hops by whole blocks: aisfx 51,200 samples, with frames of 2,048)."""
    return max(1, min(int(params.hop_length), int(params.n_fft) // 4))


def no_signal_reason(y: np.ndarray, params: FeatureParams) -> str | None:
    """Why `y` holds no signal for features of `params`, or `None` when it does.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio at `params.sample_rate`.
        params: feature parameters with `silence_threshold_db`.

    Returns:
        A reason naming the level, the band and the threshold, or `None`.
    """
    level = band_level_db(y, sample_rate=params.sample_rate, n_fft=params.n_fft,
                          hop_length=analysis_hop(params), band=feature_band(params))
    return no_signal_at(level, params)


def no_signal_at(level: float, params: FeatureParams) -> str | None:
    """Why a file whose loudest analysis frame reads `level` dBFS holds no signal for
    features of `params`, or `None` when it does (see `no_signal_reason`)."""
    band = feature_band(params)
    threshold = params.silence_threshold_db
    if level > threshold:
        return None
    shown = "no energy" if math.isinf(level) else f"{level:.1f} dBFS"
    return (f"no signal: its loudest frame holds {shown} in the feature band "
            f"{band[0]:.0f}-{band[1]:.0f} Hz (silence, or a constant offset), at or below "
            f"silence_threshold_db={threshold}")
