"""The per-epoch draws of a fold's batches: random crops, mixup partners and weights, and
label-union partners and gains, drawn from `(seed, epoch, batch)` so that any thread may
gather any batch in any order, and mixup and label-union mixing themselves (numpy arrays or
the backend's tensors alike)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["UNION_GAIN_DB", "crop_starts", "mix", "mix_draws", "random_crops", "union_draws",
           "unite"]

UNION_GAIN_DB = (-10.0, 0.0)
"""The range of the gain (dB) of the row mixed into another by label-union mixing, drawn
per row (the second source of a mixture 0 to 10 dB down)."""


def crop_starts(seed: int, epoch: int, index: int, size: int, time: int, length: int
                ) -> np.ndarray:
    """The offsets of batch `index`'s crops in `epoch`: drawn per row, epoch and batch, so
    that any thread may gather any batch in any order.

    Returns:
        `np.ndarray [shape=(size,)]`, each in `[0, time - length]`.
    """
    rng = np.random.default_rng((seed, epoch, index, 1))
    return rng.integers(0, time - length + 1, size=size)


def random_crops(x: np.ndarray, length: int, starts: np.ndarray) -> np.ndarray:
    """A window of `length` frames of every row, at the offsets `starts` (`crop_starts`).

    Args:
        x: `np.ndarray [shape=(rows, time, ...)]`.
        length: the window's frames (at most `time`).
        starts: `np.ndarray [shape=(rows,)]`, each row's first frame.

    Returns:
        `np.ndarray [shape=(rows, length, ...)]`.
    """
    return np.stack([row[start:start + length] for row, start in zip(x, starts)])


def mix_draws(seed: int, epoch: int, index: int, size: int, alpha: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Batch `index`'s mixup draws in `epoch`: each row's partner (a permutation of the
    batch) and its weight `lam ~ Beta(alpha, alpha)`.

    Returns:
        `(partner, lam)`: `np.ndarray [shape=(size,)]` each, int and float32.
    """
    rng = np.random.default_rng((seed, epoch, index))
    partner = rng.permutation(size)
    return partner, rng.beta(alpha, alpha, size=size).astype(np.float32)


def mix(x: Any, y: Any, w: Any, partner: Any, lam: Any) -> tuple[Any, Any, Any]:
    """Mixup of one batch (Zhang et al. 2018): row `i` becomes `lam_i * x_i + (1 - lam_i) *
    x_partner_i`, and so do its target and weight: numpy arrays, or tensors of the backend
    on the device (`DeviceRows`), with the same operations.

    Args:
        x: the batch's rows, `[shape=(rows, ...)]`.
        y: their targets, float32.
        w: their weights, or `None`.
        partner: `[shape=(rows,)]`, each row's partner (`mix_draws`).
        lam: `[shape=(rows,)]`, float32, each row's weight.

    Returns:
        `(x, y, w)` mixed.
    """
    lam_x = lam.reshape(-1, *([1] * (x.ndim - 1)))
    x = lam_x * x + (1 - lam_x) * x[partner]
    lam_y = lam.reshape(-1, *([1] * (y.ndim - 1)))
    y = lam_y * y + (1 - lam_y) * y[partner]
    if w is not None:
        w = lam * w + (1 - lam) * w[partner]
    return x, y, w


def union_draws(seed: int, epoch: int, index: int, size: int, share: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Batch `index`'s label-union draws in `epoch`: which rows get another row of the batch
    mixed in (each with probability `share`), that row, and its gain, drawn in `UNION_GAIN_DB`
    as an amplitude; a row left as it is gets itself, at gain 0.

    Returns:
        `(partner, gain)`: `np.ndarray [shape=(size,)]` each, int and float32.
    """
    rng = np.random.default_rng((seed, epoch, index, 75))
    rows = np.arange(size)
    mixed = (rng.random(size) < share) & (size > 1)
    other = (rows + rng.integers(1, max(size, 2), size=size)) % size  # never the row itself
    gain = 10 ** (rng.uniform(*UNION_GAIN_DB, size=size) / 20)
    return np.where(mixed, other, rows), np.where(mixed, gain, 0.0).astype(np.float32)


def unite(x: Any, y: Any, w: Any, partner: Any, gain: Any) -> tuple[Any, Any, Any]:
    """Label-union mixing of one batch (the multi-label counterpart of mixup): row `i`
    becomes `(x_i + g_i * x_partner_i) / (1 + g_i)`, the sum at the partner's gain scaled
    back (as a mixture is peak-normalised), and its labels the union of both rows' (`y_i +
    y_p - y_i * y_p` of 0/1 targets); its weight is mixed as its rows are. A row whose
    partner is itself at gain 0 is left as it is. Numpy arrays, or tensors of the backend on
    the device (`DeviceRows`), with the same operations.

    Args:
        x: the batch's rows, `[shape=(rows, ...)]`.
        y: their 0/1 targets, float32, `[shape=(rows, labels)]`.
        w: their weights, or `None`.
        partner: `[shape=(rows,)]`, each row's partner (`union_draws`).
        gain: `[shape=(rows,)]`, float32, the partner's amplitude gain.

    Returns:
        `(x, y, w)` mixed.
    """
    gain_x = gain.reshape(-1, *([1] * (x.ndim - 1)))
    x = (x + gain_x * x[partner]) / (1 + gain_x)
    other = y[partner]
    y = y + other - y * other
    if w is not None:
        w = (w + gain * w[partner]) / (1 + gain)
    return x, y, w
