"""The per-epoch draws of a fold's batches: random crops, mixup partners and weights, drawn
from `(seed, epoch, batch)` so that any thread may gather any batch in any order, and mixup
itself (numpy arrays or the backend's tensors alike). A task's own mixing of a batch's rows
(`Targets.mixing`) is drawn and computed the same way."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["crop_starts", "mix", "mix_draws", "random_crops"]

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
