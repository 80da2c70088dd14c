"""Label-union mixing (`union_mix`), the multi-label counterpart of mixup: per batch and
epoch, a share of the rows each get another row of the batch added at a gain, and the labels
of both (`Tagging`'s `Targets.mixing`, applied by the training batches on the host or the
device alike)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["UNION_GAIN_DB", "union_draws", "unite"]

UNION_GAIN_DB = (-10.0, 0.0)
"""The range of the gain (dB) of the row mixed into another by label-union mixing, drawn
per row (the second source of a mixture 0 to 10 dB down)."""


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
