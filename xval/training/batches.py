"""Feeding a fold's rows to Keras: in memory, or streamed from the memory-mapped store, on
the host or gathered on the device (the statistics: `xval.training.normalization`; the
per-epoch crops and mixup: `xval.training.draws`; a task's own mixing: `Targets.mixing`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from preprocessing.store import FeatureStore
from xval.folds import rows_of
from xval.tasks.parts import Mixing
from xval.training import devices
from xval.training.draws import crop_starts, mix, mix_draws, random_crops
from xval.training.normalization import Normalizer


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


class DeviceRows:
    """A fold split's rows on the device, and the batches gathered from them.

    The draws that make an epoch's batches (the shuffled order, sorted within each batch;
    crop offsets; mixup or label-union partners and weights) are made in numpy, exactly as
    the numpy path makes them, once per epoch, and copied to the device in one go; each step
    then only slices and gathers device tensors.

    Args:
        features: `np.ndarray [shape=(n, time, ...)]`, the split's rows.
        rows: indices into `features` of the rows served.
        targets: target of each of `rows`.
        weights: sample weight of each of `rows`, or `None`.
        target_fn: an autoencoder's target (its `mean` and `scale` are used on the
            device), or `None`.
        mixup: whether batches are mixed (mixup or label union: the targets are then kept
            as float32).
        on_device: `features` already on the device (another split's copy: the fold's
            training rows, scored after `fit`), or `None`: copied here.
    """

    def __init__(self, features: np.ndarray, rows: np.ndarray, targets: np.ndarray,
                 weights: np.ndarray | None, target_fn: Normalizer | None, *,
                 mixup: bool, on_device: Any = None) -> None:
        self.features = on_device if on_device is not None else devices.to_device(
            np.asarray(features, dtype=np.float32))
        self.rows = np.asarray(rows)
        self.targets = devices.to_device(np.asarray(targets, dtype=np.float32) if mixup
                                         else np.asarray(targets))
        self.weights = None if weights is None else devices.to_device(weights)
        self.norm = None if target_fn is None else (devices.to_device(target_fn.mean),
                                                    devices.to_device(target_fn.scale))
        self.epoch_plan: dict[str, Any] = {}
        self.planned: int | None = None

    def plan(self, epoch: int, picks: list[np.ndarray], crop: int,
             crop_draw: Callable[[int, int], np.ndarray] | None,
             mix_draw: Callable[[int, int], tuple[np.ndarray, np.ndarray]] | None) -> None:
        """Copies epoch `epoch`'s draws to the device (once per epoch).

        Args:
            epoch: the epoch.
            picks: per batch, the positions (into `rows`) it serves, in order.
            crop: frames per crop (`0`: whole rows).
            crop_draw: `(index, size) -> starts` of batch `index`'s crops.
            mix_draw: `(index, size) -> (partner, lam)` of batch `index`'s mixup (or the
                draws of the task's own mixing).
        """
        if self.planned == epoch:
            return
        picks_all = np.concatenate(picks) if picks else np.zeros(0, np.int64)
        plan = {"pick": devices.to_device(picks_all.astype(np.int64)),
                "row": devices.to_device(self.rows[picks_all].astype(np.int64)),
                "bounds": np.cumsum([0, *(len(p) for p in picks)])}
        if crop:
            assert crop_draw is not None
            time = int(self.features.shape[1])
            starts = np.concatenate([crop_draw(i, len(p)) for i, p in enumerate(picks)])
            frames = self.rows[picks_all] * time + starts
            plan["frame"] = devices.to_device(frames.astype(np.int64))
            plan["offsets"] = devices.to_device(np.arange(crop, dtype=np.int64))
        if mix_draw is not None:
            draws = [mix_draw(i, len(p)) for i, p in enumerate(picks)]
            partner = np.concatenate([d[0] for d in draws]).astype(np.int64)
            plan["partner"] = devices.to_device(partner)
            plan["lam"] = devices.to_device(np.concatenate([d[1] for d in draws]).astype(np.float32))
        self.epoch_plan, self.planned = plan, epoch

    def batch(self, index: int, crop: int, combine: Callable[..., tuple[Any, Any, Any]] | None
              ) -> tuple[Any, ...]:
        """Batch `index` of the planned epoch, gathered on the device: `(x, y)` or
        `(x, y, w)`, as the numpy path makes it (`combine`: `mix`, the task's own, or
        `None`)."""
        plan = self.epoch_plan
        lo, hi = (int(b) for b in plan["bounds"][index:index + 2])
        pick = plan["pick"][lo:hi]
        if crop:
            flat = self.features.reshape((-1, *self.features.shape[2:]))
            frames = plan["frame"][lo:hi].reshape((-1, 1)) + plan["offsets"].reshape((1, -1))
            x = flat[frames.reshape((-1,))].reshape((hi - lo, crop, *flat.shape[1:]))
        else:
            x = self.features[plan["row"][lo:hi]]
        if self.norm is None:
            y = self.targets[pick]
        else:
            y = (x - self.norm[0]) * self.norm[1]
        w = None if self.weights is None else self.weights[pick]
        if combine is not None:
            x, y, w = combine(x, y, w, plan["partner"][lo:hi], plan["lam"][lo:hi])
        return (x, y) if w is None else (x, y, w)


class FoldBatches:
    """The batches of a fold split, epoch by epoch: what `make_batches`'s `PyDataset` serves
    (see `make_batches` for the arguments).

    Every draw (the shuffled order, crops, mixup, label union) is made per epoch and batch,
    so the batches are the same whatever the placement, the threads and the order they are
    asked for in.

    Every batch holds `batch_size` rows, so that a compiled step meets one shape (`pad`):
    a shuffled split's last batch is filled from the start of the epoch's order (a few rows
    are seen twice in an epoch, each epoch others); an unshuffled one's (validation,
    prediction) is padded with copies of its first rows, whose weight is 0, and every
    other row's weight is `n_padded / n`, so that Keras's mean of the batches' losses
    (each divided by `batch_size`) is the mean over the real rows, and its weighted metrics
    count the real rows only. Unshuffled batches always carry weights.
    """

    def __init__(self, features: Any, rows: np.ndarray, targets: Any, *, batch_size: int,
                 shuffle: bool, seed: int, weights: np.ndarray | None, mixup_alpha: float,
                 crop: int, target_fn: Normalizer | None, placement: str,
                 on_device: Any = None, mixing: Mixing | None = None) -> None:
        self.features = features
        self.rows = np.asarray(rows)
        self.targets = np.asarray(targets)
        self.weights = None if weights is None else np.asarray(weights, np.float32)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.real = len(self.rows)
        self.crop, self.target_fn = crop, target_fn
        if not shuffle:
            self._pad()
        if mixup_alpha > 0 and mixing is not None:
            raise ValueError(f"mixup_alpha={mixup_alpha} and the task's own mixing: two "
                             "mixings of the same rows; set mixup_alpha to 0.")
        # The batches' mixing (`mix` or the task's) and its draws `(seed, epoch, index, size)`.
        self.mixing: Mixing | None = mixing if mixing is not None else \
            (mix, functools.partial(mix_draws, alpha=mixup_alpha)) if mixup_alpha > 0 else None
        self.placement = placement
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(self.rows))
        self.epoch = 0
        if shuffle:
            self.rng.shuffle(self.order)
        self.device = None if placement != devices.DEVICE else DeviceRows(
            features, self.rows, self.targets, self.weights, target_fn,
            mixup=self.mixing is not None, on_device=on_device)

    def _pad(self) -> None:
        """Pads the rows to whole batches with copies of the first rows, of weight 0 (the
        real rows' weights scaled by `n_padded / n`): see the class."""
        n = self.real
        padded = -(-max(n, 1) // self.batch_size) * self.batch_size
        copies = np.arange(padded - n) % max(n, 1)
        weights = np.ones(n, np.float32) if self.weights is None else self.weights
        weights = np.concatenate([weights * np.float32(padded / max(n, 1)),
                                  np.zeros(len(copies), np.float32)])
        # Sequence targets (rows, frames, classes): the loss is per row and frame.
        shape = self.targets.shape
        if self.target_fn is not None and n:  # an autoencoder's targets: its cropped input
            first = np.asarray(self.features[self.rows[:1]], dtype=np.float32)
            shape = np.shape(self.target_fn(first[:, :self.crop] if self.crop else first))
        frames = tuple(shape[1:-1]) if len(shape) >= 3 else ()
        self.weights = np.broadcast_to(weights.reshape(-1, *[1] * len(frames)),
                                       (len(weights), *frames)).copy()
        if n:
            self.rows = np.concatenate([self.rows, self.rows[copies]])
            self.targets = np.concatenate([self.targets, self.targets[copies]])

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def _pick(self, index: int) -> np.ndarray:
        size = self.batch_size
        positions = (index * size + np.arange(size)) % max(len(self.rows), 1)
        return np.sort(self.order[positions])

    def batch(self, index: int) -> tuple[Any, ...]:
        """Batch `index` of the current epoch: `(x, y)` or `(x, y, w)`."""
        if self.device is not None:
            return self._on_device(index)
        pick, seed, crop = self._pick(index), self.seed, self.crop
        x = np.asarray(self.features[self.rows[pick]], dtype=np.float32)
        if crop:
            x = random_crops(x, crop, crop_starts(seed, self.epoch, index, len(x),
                                                  x.shape[1], crop))
        y = self.targets[pick] if self.target_fn is None else self.target_fn(x)
        w = None if self.weights is None else self.weights[pick]
        if self.mixing is not None:
            combine, draws = self.mixing
            x, y, w = combine(x, np.asarray(y, dtype=np.float32), w,
                              *draws(seed, self.epoch, index, len(x)))
        batch = (x, y) if w is None else (x, y, w)
        return tuple(devices.to_device(a) for a in batch) \
            if self.placement == devices.PINNED else batch

    def _on_device(self, index: int) -> tuple[Any, ...]:
        assert self.device is not None
        seed, epoch, crop, mixing = self.seed, self.epoch, self.crop, self.mixing
        if self.device.planned != epoch:  # once per epoch: the picks are n_batches sorts
            time = int(np.shape(self.features)[1])
            self.device.plan(
                epoch, [self._pick(i) for i in range(len(self))], crop,
                lambda i, size: crop_starts(seed, epoch, i, size, time, crop),
                None if mixing is None else lambda i, size: mixing[1](seed, epoch, i, size))
        return self.device.batch(index, crop, None if mixing is None else mixing[0])

    def next_epoch(self) -> None:
        """Moves to the next epoch (a new order when shuffled)."""
        self.epoch += 1
        if self.shuffle:
            self.rng.shuffle(self.order)


def make_batches(features: Any, rows: np.ndarray, targets: Any, *, batch_size: int,
                 shuffle: bool, seed: int = 0, weights: np.ndarray | None = None,
                 workers: int = 0, mixup_alpha: float = 0.0, crop: int = 0,
                 target_fn: Normalizer | None = None, placement: str = devices.HOST,
                 on_device: Any = None, mixing: Mixing | None = None) -> Any:
    """A `keras.utils.PyDataset` of a fold's rows (`FoldBatches`); its `rows_on_device`
    is `features` on the device (`placement` `DEVICE`), else `None`.

    Every mode goes through it: in memory, `features` is an array already loaded; in
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
        mixing: the task's own mixing of a batch's rows (`Targets.mixing`: `(combine,
            draws)`), which replaces mixup; not with `mixup_alpha`. Defaults to `None`.
        target_fn: when given, each batch's targets are `target_fn(x)` (an autoencoder's
            normalised input) instead of `targets`. Defaults to `None`.
        crop: when > 0, every row is cut to `crop` frames (samples of a waveform store) at
            an offset drawn per row, epoch and batch. Defaults to `0` (whole rows).
        placement: where the rows live while training (`xval.training.devices`): `HOST`
            (numpy batches), `PINNED` (numpy batches copied to the device without
            blocking) or `DEVICE` (the rows copied to the device once, batches gathered
            there). Defaults to `HOST`.
        on_device: with `DEVICE`, `features` already on the device (`rows_on_device` of
            the batches that trained on them), or `None`: copied. Defaults to `None`.

    Returns:
        A `keras.utils.PyDataset`.

    Raises:
        ValueError: for `mixup_alpha` above 0 with `mixing`.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    batches = FoldBatches(features, rows, targets, batch_size=batch_size, shuffle=shuffle,
                          seed=seed, weights=weights, mixup_alpha=mixup_alpha, crop=crop,
                          target_fn=target_fn, placement=placement, on_device=on_device,
                          mixing=mixing)

    class _Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            kwargs = {"workers": workers, "use_multiprocessing": False} if workers else {}
            super().__init__(**kwargs)
            self.rows_on_device = None if batches.device is None else batches.device.features

        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, index: int) -> tuple[Any, ...]:
            return batches.batch(index)

        def on_epoch_end(self) -> None:
            batches.next_epoch()

    return _Batches()
