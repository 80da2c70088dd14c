"""The fixed matrices of the spectral features: librosa's mel filter bank, the DCT of MFCCs
and the DFT kernels of a Hann-windowed STFT.

One definition for the stores (`preprocessing.features.spectral`) and for the front end a
model holds (`architectures.front_end.SpectralFrontEnd`, checked against the stores to
1e-4 dB): the store reaches the model's layer below it, never the other way round. Imports
no Keras.
"""

from functools import lru_cache
from typing import Literal

import librosa
import numpy as np
import scipy.fft
import scipy.signal

__all__ = ["dct_matrix", "dft_kernels", "mel_filters"]


@lru_cache(maxsize=16)
def mel_filters(*, sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                fmax: float | None, htk: bool = False,
                norm: Literal["slaney"] | float | None = "slaney") -> np.ndarray:
    """`librosa.filters.mel`, built once per setting (a fifth of the time of a short
    segment's features) and read-only (it is shared).

    Args:
        sample_rate: the audio's rate (Hz).
        n_fft: FFT size.
        n_mels: mel bands.
        fmin: lowest frequency (Hz).
        fmax: highest frequency (Hz), `None` for `sample_rate / 2`.
        htk: HTK's mel scale instead of Slaney's. Defaults to `False` (librosa's).
        norm: the filters' normalisation (`"slaney"`: area, a number: that norm, `None`:
            none). Defaults to `"slaney"` (librosa's).

    Returns:
        `np.ndarray [shape=(n_mels, 1 + n_fft // 2)]`, float32.
    """
    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                fmax=fmax, htk=htk, norm=norm)
    basis.flags.writeable = False
    return basis


def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """The orthonormal DCT-II that `librosa.feature.mfcc` applies over the mel axis.

    Returns:
        `np.ndarray [shape=(n_mels, n_mfcc)]`: `log_mel @ matrix` are the coefficients.
    """
    return scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc].T


def dft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """The real and imaginary DFT kernels of a periodic Hann window, as
    `keras.layers.STFTSpectrogram` lays them out, computed in double precision.

    Returns:
        Two `np.ndarray [shape=(n_fft, 1, n_fft // 2 + 1)]`, float32.
    """
    window = scipy.signal.get_window("hann", n_fft, fftbins=True)
    n = np.arange(n_fft)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    angle = -2.0 * np.pi * ((n * k) % n_fft) / n_fft
    real = (np.cos(angle) * window[:, None])[:, None, :]
    imag = (np.sin(angle) * window[:, None])[:, None, :]
    return real.astype("float32"), imag.astype("float32")
