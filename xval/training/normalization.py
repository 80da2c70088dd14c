"""A fold's input normalisation: the mean and variance per bin over its training rows, read
in chunks (`normalization_stats`), and the normalisation itself in numpy (`Normalizer`); the
model applies it as its first layer, `DeviceRows` on the device."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CANCELLATION", "Normalizer", "moments", "normalization_stats", "normalizer"]


def normalization_stats(features: Any, rows: np.ndarray, chunk_bytes: int = 16 << 20
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance per frequency bin over `rows`, read in chunks.

    Args:
        features: `np.ndarray [shape=(n, time, frequency)]` (a memmap is fine).
        rows: the rows to use (the training rows, original only).
        chunk_bytes: bytes read at once, so memory stays bounded whatever the store's size.
            Defaults to 16 MiB.

    Returns:
        `(mean, variance)`, each `np.ndarray [shape=(frequency,)]`, float32.
    """
    bins = features.shape[-1]
    total = np.zeros(bins, dtype=np.float64)
    squares = np.zeros_like(total)
    count = 0
    row_bytes = max(1, int(np.prod(features.shape[1:])) * features.dtype.itemsize)
    step = max(1, chunk_bytes // row_bytes)
    for start in range(0, len(rows), step):
        block = np.asarray(features[rows[start:start + step]]).reshape(-1, bins)
        total += block.sum(axis=0, dtype=np.float64)
        squares += np.einsum("ij,ij->j", block, block, dtype=np.float64)
        count += block.shape[0]
    return moments(total, squares, count)


CANCELLATION = 1e3 * np.finfo(np.float64).eps
"""A variance at most this times the bin's mean square is rounding: the bin is constant."""


def moments(total: np.ndarray, squares: np.ndarray, count: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance from the sums of values and squares of `count` values per bin.

    A bin constant over the training rows (a dead embedding unit, a frequency always at the
    floor, a bin constant at any value: its variance from the sums is rounding, at most
    `CANCELLATION` times its mean square) gets variance 1: centred, not scaled, as
    scikit-learn's `StandardScaler` leaves it. A variance floored near 0 instead would
    multiply any other value of it in a validation or test row by up to 10,000. A small
    real variance is kept, and scales its bin as `StandardScaler` would.

    Args:
        total: `np.ndarray [shape=(bins,)]`, the sum of the values.
        squares: `np.ndarray [shape=(bins,)]`, the sum of their squares.
        count: how many values per bin.

    Returns:
        `(mean, variance)`, each `np.ndarray [shape=(bins,)]`, float32.
    """
    n = max(count, 1)
    mean = total / n
    mean_square = squares / n
    var = np.maximum(mean_square - np.square(mean), 0.0)
    var = np.where(var <= CANCELLATION * mean_square, 1.0, var)
    return mean.astype(np.float32), var.astype(np.float32)


class Normalizer:
    """`x -> (x - mean) * scale` with `scale = 1 / sqrt(variance)`: the model's own input
    normalisation, in numpy (an autoencoder's target; `DeviceRows` applies `mean` and
    `scale` on the device).

    Args:
        mean: `np.ndarray [shape=(bins,)]`.
        variance: `np.ndarray [shape=(bins,)]`.
    """

    def __init__(self, mean: np.ndarray, variance: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = (1.0 / np.sqrt(variance)).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.mean) * self.scale).astype(np.float32)


def normalizer(mean: np.ndarray, variance: np.ndarray) -> Normalizer:
    """`x -> (x - mean) / sqrt(variance)`, the model's own input normalisation, in numpy."""
    return Normalizer(mean, variance)
