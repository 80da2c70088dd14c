"""The built-in feature types: STFT magnitude, mel, MFCC and CQT (librosa), oriented
`(frames, bins)`.

Each is one function registered in `preprocessing.features.registry`; see its docstring for
how to add a type.
"""

from collections.abc import Callable, Mapping
from typing import Any

import librosa
import numpy as np

import xval.config.schema as schema
from architectures.filters import mel_filters
from preprocessing.features.registry import Params, register


def compress(S: np.ndarray, *, compression: str, power: float,
             power_exponent: float, sample_rate: int | None = None,
             hop_length: int | None = None) -> np.ndarray:
    """Compresses a magnitude or power spectrogram.

    Args:
        S: `np.ndarray [shape=(..., bins, frames)]` of magnitudes (`power=1`) or powers
            (`power=2`).
        compression: `"db"` (decibels relative to 1, no floor but `amin=1e-10`), `"log"`
            (`log1p`), `"power"` (`S ** power_exponent`), `"pcen"` (`librosa.pcen` of the
            magnitudes scaled to 32-bit integer range, its defaults: each band divided by
            its own smoothed energy of the last 0.4 s, so that a steady background falls
            towards a constant) or `"none"`.
        power: `1.0` for magnitudes, `2.0` for powers (which decibel conversion applies).
        power_exponent: the exponent of `"power"` compression.
        sample_rate: rate of the signal (`"pcen"`'s time constant; needed for it).
            Defaults to `None`.
        hop_length: samples between frames (`"pcen"`'s time constant; needed for it).
            Defaults to `None`.

    Returns:
        `np.ndarray`, the shape of `S`.

    Raises:
        ValueError: for an unknown compression, or `"pcen"` without the rate and hop.
    """
    if compression not in schema.COMPRESSIONS:
        raise ValueError(
            f"compression={compression!r}: expected one of {', '.join(schema.COMPRESSIONS)}."
        )
    if compression == "db":
        to_db = librosa.power_to_db if power == 2.0 else librosa.amplitude_to_db
        return to_db(S, ref=1.0, top_db=None, amin=1e-10)
    if compression == "log":
        return np.log1p(S)
    if compression == "power":
        return np.power(S, power_exponent)
    if compression == "pcen":
        if sample_rate is None or hop_length is None:
            raise ValueError("compression='pcen' needs sample_rate and hop_length (its "
                             "smoother's time constant is in seconds); pass both.")
        magnitude = S if power == 1.0 else np.sqrt(S)
        return librosa.pcen(magnitude * 2.0 ** 31, sr=sample_rate, hop_length=hop_length)
    return S


def mel_power(y: np.ndarray, *, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
              fmin: float, fmax: float | None) -> np.ndarray:
    """`librosa.feature.melspectrogram` (power 2) with the cached filter bank of
    `architectures.filters.mel_filters` (the in-model front end's).

    Returns:
        `np.ndarray [shape=(n_mels, frames)]`.
    """
    power_spec = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2
    return mel_filters(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                       fmax=fmax) @ power_spec


def _stft_frequencies(params: Params) -> np.ndarray:
    return librosa.fft_frequencies(sr=params.sample_rate, n_fft=params.n_fft)


def _mel_frequencies(params: Params) -> np.ndarray:
    # The centres of librosa.filters.mel's triangles: n_mels + 2 edges, the inner ones.
    fmax = params.fmax or params.sample_rate / 2
    return librosa.mel_frequencies(params.n_mels + 2, fmin=params.fmin, fmax=fmax)[1:-1]


def _cqt_frequencies(params: Params) -> np.ndarray:
    return librosa.cqt_frequencies(params.n_bins, fmin=params.fmin,
                                   bins_per_octave=params.bins_per_octave)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _mfcc_within_mels(values: Mapping[str, Any], name: Callable[[str], str]) -> str:
    """MFCCs are computed from the mel bands: n_mfcc at most n_mels."""
    if not all(k in values for k in ("n_mfcc", "n_mels")) \
            or values["n_mfcc"] <= values["n_mels"]:
        return ""
    return (f"{name('n_mfcc')}: expected at most n_mels = {values['n_mels']} (MFCCs are "
            "computed from the mel bands).")


# librosa.filters.window_bandwidth("hann"), for the CQT's Nyquist check.
_HANN_BANDWIDTH = 1.50018310546875


def _cqt_below_nyquist(values: Mapping[str, Any], name: Callable[[str], str]) -> str:
    """librosa.cqt's own limit: fmin > 0, and the top bin's Hann filter ends below
    sample_rate / 2."""
    if not all(k in values for k in ("fmin", "n_bins", "bins_per_octave", "sample_rate")):
        return ""
    if values["fmin"] <= 0:
        return f"{name('fmin')}: the CQT needs fmin > 0."
    top = values["fmin"] * 2 ** ((values["n_bins"] - 1) / values["bins_per_octave"])
    ratio = 2 ** (2 / values["bins_per_octave"])
    cutoff = top * (1 + 0.5 * _HANN_BANDWIDTH * (ratio - 1) / (ratio + 1))
    if cutoff < values["sample_rate"] / 2:
        return ""
    return (f"{name('n_bins')}: the top CQT bin ({top:.0f} Hz, from fmin="
            f"{_num(values['fmin'])} and bins_per_octave={values['bins_per_octave']}) has "
            f"a filter reaching {cutoff:.0f} Hz, not below sample_rate / 2 = "
            f"{_num(values['sample_rate'] / 2)}; lower n_bins or fmin.")


@register("stft", bins=lambda params: params.n_fft // 2 + 1, in_model=True,
          frequencies=_stft_frequencies, summary="magnitude", magnitude_power=1.0)
def stft(y: np.ndarray, *, sample_rate: int, n_fft: int = 512, hop_length: int = 160,
         compression: str = "db", power_exponent: float = 0.3) -> np.ndarray:
    """STFT magnitude (Hann window, centred frames), compressed.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        n_fft: FFT size. Defaults to `512`.
        hop_length: hop in samples. Defaults to `160`.
        compression: `"db"`, `"log"`, `"power"`, `"pcen"` or `"none"` (see `compress`).
            Defaults to `"db"`.
        power_exponent: exponent of power-law compression. Defaults to `0.3`.

    Returns:
        `np.ndarray [shape=(frames, 1 + n_fft // 2)]`.
    """
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
    return compress(S, compression=compression, power=1.0, power_exponent=power_exponent,
                    sample_rate=sample_rate, hop_length=hop_length).T


MEL = "mel"
"""The mel feature type's name (the demo dataset's features)."""


@register(MEL, bins=lambda params: params.n_mels, frequencies=_mel_frequencies,
          in_model=True, magnitude_power=2.0)
def mel(y: np.ndarray, *, sample_rate: int, n_fft: int = 512, hop_length: int = 160,
        n_mels: int = 64, fmin: float = 32.7, fmax: float | None = None,
        compression: str = "db", power_exponent: float = 0.3) -> np.ndarray:
    """Mel power spectrogram, compressed.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        n_fft: FFT size. Defaults to `512`.
        hop_length: hop in samples. Defaults to `160`.
        n_mels: mel bands. Defaults to `64`.
        fmin: lowest frequency of the mel bands (Hz). Defaults to `32.7`.
        fmax: highest frequency (Hz), `None` for `sample_rate / 2`. Defaults to `None`.
        compression: `"db"`, `"log"`, `"power"`, `"pcen"` or `"none"` (see `compress`).
            Defaults to `"db"`.
        power_exponent: exponent of power-law compression. Defaults to `0.3`.

    Returns:
        `np.ndarray [shape=(frames, n_mels)]`.
    """
    S = mel_power(y, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                  n_mels=n_mels, fmin=fmin, fmax=fmax)
    return compress(S, compression=compression, power=2.0, power_exponent=power_exponent,
                    sample_rate=sample_rate, hop_length=hop_length).T


@register("mfcc", bins=lambda params: params.n_mfcc, check=_mfcc_within_mels,
          in_model=True)
def mfcc(y: np.ndarray, *, sample_rate: int, n_fft: int = 512, hop_length: int = 160,
         n_mels: int = 64, n_mfcc: int = 20, fmin: float = 32.7,
         fmax: float | None = None) -> np.ndarray:
    """MFCCs of the mel power spectrogram in decibels (no compression applies).

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        n_fft: FFT size. Defaults to `512`.
        hop_length: hop in samples. Defaults to `160`.
        n_mels: mel bands the coefficients are computed from. Defaults to `64`.
        n_mfcc: coefficients. Defaults to `20`.
        fmin: lowest frequency of the mel bands (Hz). Defaults to `32.7`.
        fmax: highest frequency (Hz), `None` for `sample_rate / 2`. Defaults to `None`.

    Returns:
        `np.ndarray [shape=(frames, n_mfcc)]`.
    """
    S = mel_power(y, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                  n_mels=n_mels, fmin=fmin, fmax=fmax)
    return librosa.feature.mfcc(S=librosa.power_to_db(S), sr=sample_rate, n_mfcc=n_mfcc).T


@register("cqt", bins=lambda params: params.n_bins, frequencies=_cqt_frequencies,
          check=_cqt_below_nyquist, magnitude_power=1.0)
def cqt(y: np.ndarray, *, sample_rate: int, hop_length: int = 160, fmin: float = 32.7,
        n_bins: int = 84, bins_per_octave: int = 12, compression: str = "db",
        power_exponent: float = 0.3) -> np.ndarray:
    """Constant-Q transform magnitude, compressed.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        hop_length: hop in samples. Defaults to `160`.
        fmin: frequency of the lowest bin (Hz). Defaults to `32.7`.
        n_bins: bins. Defaults to `84`.
        bins_per_octave: bins per octave. Defaults to `12`.
        compression: `"db"`, `"log"`, `"power"`, `"pcen"` or `"none"` (see `compress`).
            Defaults to `"db"`.
        power_exponent: exponent of power-law compression. Defaults to `0.3`.

    Returns:
        `np.ndarray [shape=(frames, n_bins)]`.
    """
    S = np.abs(librosa.cqt(y, sr=sample_rate, hop_length=hop_length, fmin=fmin,
                           n_bins=n_bins, bins_per_octave=bins_per_octave))
    return compress(S, compression=compression, power=1.0, power_exponent=power_exponent,
                    sample_rate=sample_rate, hop_length=hop_length).T
