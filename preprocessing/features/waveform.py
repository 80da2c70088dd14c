"""The `waveform` feature type: the audio samples themselves, for models that compute their
features inside (the `front_end` instance parameter: `architectures.SpectralFrontEnd`).

A row of a `waveform` store is `(samples, 1)`: the segment's samples, resampled to
`sample_rate` and segmented with clip ids like every store, so that every consumer of
`(time, frequency)` rows (the folds, the batches, `predict`) reads it unchanged. The store
keeps the `[features]` values of the spectral types (`n_fft`, `hop_length`, `n_mels`,
`fmin`, `fmax`, `compression`, `power_exponent`, `n_mfcc`): a model's front end reads its
settings there, so that `front_end = "mel"` computes what `feature = mel` would have
stored. Segment starts fall on the `hop_length` grid as for the spectral types.

Storage (`[features] dtype`): `float16` by default (`auto`; half the size of float32, about
11 bits of precision relative to each sample), or `int16` (16-bit PCM: the samples times
32768, rounded and clipped to the 16-bit range; exact for 16-bit sources at their own rate).
"""

import numpy as np

from preprocessing.features.registry import Params, register


def samples(n_samples: int, params: Params) -> int:
    """The frames of a waveform row: one per sample.

    Args:
        n_samples: length of the segment in samples.
        params: the feature parameters (unused).

    Returns:
        `n_samples`.
    """
    return int(n_samples)


@register("waveform", bins=lambda params: 1, frames=samples, dtype="float16", waveform=True,
          neighbouring_bins=False, summary="the samples (a model's front_end computes features)")
def waveform(y: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """The samples of a signal as a one-bin feature matrix.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz (the signal is already at the store's rate).

    Returns:
        `np.ndarray [shape=(n, 1)]`.
    """
    return np.asarray(y, dtype=np.float32)[:, None]
