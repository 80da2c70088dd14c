"""Feeding a fold's rows to Keras: in memory, or streamed from the memory-mapped store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from preprocessing.store import FeatureStore
from xval.folds import rows_of


def fold_rows(store: FeatureStore, fold: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """Row indices of a fold's sets.

    Augmented rows are used for training only: validation and test take only original
    rows of their items.

    Args:
        store: a `FeatureStore`.
        fold: `{"train": items, "val": items, "test": items}` (and `"rank"`: validation
            items kept out of the epoch choice, `rank_split`).

    Returns:
        dict of set name to sorted `np.ndarray` of rows.
    """
    items = store.items
    original = ~store.augmented
    rows = {"train": rows_of(items, fold["train"])}
    for key in ("val", "test", *(["rank"] if "rank" in fold else [])):
        candidates = rows_of(items, fold[key])
        rows[key] = candidates[original[candidates]]
    return rows


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


def random_crops(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A window of `length` frames of every row, at an offset drawn from `rng`.

    Args:
        x: `np.ndarray [shape=(rows, time, ...)]`.
        length: the window's frames (at most `time`).
        rng: the generator of the offsets.

    Returns:
        `np.ndarray [shape=(rows, length, ...)]`.
    """
    starts = rng.integers(0, x.shape[1] - length + 1, size=len(x))
    return np.stack([row[start:start + length] for row, start in zip(x, starts)])


def make_batches(features: Any, rows: np.ndarray, targets: Any, *, batch_size: int,
                 shuffle: bool, seed: int = 0, weights: np.ndarray | None = None,
                 workers: int = 0, mixup_alpha: float = 0.0, crop: int = 0,
                 target_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> Any:
    """A `keras.utils.PyDataset` of a fold's rows.

    Both modes go through it: in memory, `features` is an array already loaded; in
    generator mode it is the store's memmap and each batch is read from disk, so peak
    memory does not grow with the store. Shuffling is seeded per epoch.

    Args:
        features: `np.ndarray [shape=(n, time, frequency)]` or memmap.
        rows: the rows to serve, as indices into `features`.
        targets: target of each of `rows`.
        batch_size: rows per batch.
        shuffle: reshuffle the rows every epoch.
        seed: shuffle seed. Defaults to `0`.
        weights: sample weight of each of `rows`, or `None`.
        workers: worker threads (0: the main thread). Defaults to `0`.
        mixup_alpha: when > 0, every batch is mixed with a shuffled copy of itself (mixup,
            Zhang et al. 2018): row `i` becomes `lam * x_i + (1 - lam) * x_j`, and so do its
            target (one-hot for classification) and weight, with `lam ~ Beta(alpha, alpha)`
            drawn per row. Defaults to `0.0` (off).
        target_fn: when given, each batch's targets are `target_fn(x)` (an autoencoder's
            normalised input) instead of `targets`. Defaults to `None`.
        crop: when > 0, every row is cut to `crop` frames (samples of a waveform store) at
            an offset drawn per row, epoch and batch. Defaults to `0` (whole rows).

    Returns:
        A `keras.utils.PyDataset`.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    class _Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            kwargs = {"workers": workers, "use_multiprocessing": False} if workers else {}
            super().__init__(**kwargs)
            self.rows = np.asarray(rows)
            self.targets = np.asarray(targets)
            self.weights = None if weights is None else np.asarray(weights, np.float32)
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(self.rows))
            self.epoch = 0
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self) -> int:
            return -(-len(self.rows) // batch_size)

        def __getitem__(self, index: int) -> tuple[Any, ...]:
            pick = np.sort(self.order[index * batch_size:(index + 1) * batch_size])
            x = np.asarray(features[self.rows[pick]], dtype=np.float32)
            if crop:  # drawn per row, epoch and batch: any thread, any order
                x = random_crops(x, crop, np.random.default_rng((seed, self.epoch, index, 1)))
            y = self.targets[pick] if target_fn is None else target_fn(x)
            w = None if self.weights is None else self.weights[pick]
            if mixup_alpha > 0:
                x, y, w = self._mix(x, y, w, index)
            return (x, y) if w is None else (x, y, w)

        def _mix(self, x: np.ndarray, y: Any, w: np.ndarray | None, index: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            rng = np.random.default_rng((seed, self.epoch, index))  # any thread, any order
            partner = rng.permutation(len(x))
            lam = rng.beta(mixup_alpha, mixup_alpha, size=len(x)).astype(np.float32)
            lam_x = lam.reshape(-1, *([1] * (x.ndim - 1)))
            x = lam_x * x + (1 - lam_x) * x[partner]
            y = np.asarray(y, dtype=np.float32)
            lam_y = lam.reshape(-1, *([1] * (y.ndim - 1)))
            y = lam_y * y + (1 - lam_y) * y[partner]
            if w is not None:
                w = lam * w + (1 - lam) * w[partner]
            return x, y, w

        def on_epoch_end(self) -> None:
            self.epoch += 1
            if shuffle:
                self.rng.shuffle(self.order)

    return _Batches()
