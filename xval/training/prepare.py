"""A fold made ready to train: its store opened and checked, its rows, normalisation
statistics and batches, its model assembled (`PreparedFold`)."""

from __future__ import annotations

import dataclasses
import gc
from typing import Any

import numpy as np

from preprocessing import features
from preprocessing.store import FeatureStore
from xval import tasks
from xval.core.backend import import_paused
from xval.core.errors import TrainingError
from xval.core.parameters import InstanceParams
from xval.core.records import Job
from xval.tasks.base import Task
from xval.training import devices
from xval.training.batches import fold_rows, make_batches
from xval.training.front_end import crop_frames, front_end_layer, front_end_stats
from xval.training.host_mixing import mixed_batches
from xval.training.model import build_model, store_frequencies
from xval.training.normalization import Normalizer, normalization_stats, normalizer


@dataclasses.dataclass
class PreparedFold:
    """A fold ready to train: its parameters, rows, statistics and targets.

    Attributes:
        job: the job.
        params: its parameters (a refit's `epochs` replaced by `refit_epochs`).
        refit: whether the job is a refit (no validation, fixed epochs).
        splits: the splits it is scored on.
        task: the task.
        store: the store.
        rows: split -> rows (the training rows with their augmented copies).
        train_original: the original (not augmented) training rows.
        n_outputs: units of the output head.
        seed: the fold's seed (`seed + fold`).
        mean, variance: per-bin statistics of the original training rows.
        source: split -> `(features, indices)`: the memory-mapped store and rows (streamed,
            `generator`), or the split's rows in memory and their positions.
        target_fn: an autoencoder's target (its normalised input), or `None`.
    """

    job: Job
    params: InstanceParams
    refit: bool
    splits: tuple[str, ...]
    task: Task
    store: FeatureStore
    rows: dict[str, np.ndarray]
    train_original: np.ndarray
    n_outputs: int
    seed: int
    mean: np.ndarray
    variance: np.ndarray
    source: dict[str, tuple[Any, np.ndarray]]
    target_fn: Normalizer | None

    @property
    def fold(self) -> int:
        return self.job.fold

    @property
    def batch_size(self) -> int:
        return int(self.params.batch_size)

    @property
    def uses_embeddings(self) -> bool:
        """Whether an embedding classifier is fit after the network (never for a refit)."""
        return self.params.embeds and not self.refit


def prepare_fold(job: Job) -> PreparedFold:
    """Opens the fold's store (checking it is the planned one) and gathers its rows,
    statistics and features.

    Raises:
        TrainingError: when the store changed since the run was planned, or a split to
            score has no rows.
    """
    params = job.params
    # A refit trains on every item of items["train"] for fixed epochs, without validation:
    # the final model of an instance (no test items), or a fold's refit_with_val model.
    refit = job.refit_epochs is not None
    if job.refit_epochs is not None:
        params = params.replace(epochs=int(job.refit_epochs))
    splits = (("train", "test") if job.items.get("test") else ("train",)) if refit \
        else ("train", "val", "test", *(["rank"] if job.items.get("rank") else []))
    store = FeatureStore(job.store)
    if job.store_hash and store.content_hash != job.store_hash:
        raise TrainingError(
            f"The store at {job.store} has content hash {store.content_hash[:12]}, but the "
            f"job was planned on {job.store_hash[:12]}: the dataset changed under the run."
        )
    rows = fold_rows(store, job.items)
    for key, value in rows.items():
        if len(value) == 0 and key in splits:
            raise TrainingError(f"Fold {job.fold} has no {key} rows.")
    task = tasks.get(job.task_type)
    # Augmented copies train and do nothing else: statistics and scores use the originals.
    train_original = rows["train"][~store.augmented[rows["train"]]]
    layer = front_end_layer(params, store.info)
    mean, variance = normalization_stats(store.features, train_original) if layer is None \
        else front_end_stats(layer, store.features, train_original)
    if job.generator:
        source = {k: (store.features, v) for k, v in rows.items()}
    else:
        source = {k: (np.asarray(store.features[v], dtype=np.float32), np.arange(len(v)))
                  for k, v in rows.items()}
    # The task's targets from the rows (an autoencoder's: its normalised input), if any.
    target_fn = task.targets.of_rows(normalizer(mean, variance))
    return PreparedFold(job=job, params=params, refit=refit, splits=splits, task=task,
                        store=store, rows=rows, train_original=train_original,
                        n_outputs=task.targets.num_outputs(store), seed=params.seed + job.fold,
                        mean=mean, variance=variance, source=source, target_fn=target_fn)


def collect_garbage() -> None:
    """Frees what the last fold left before the next is built: its model, whose layers
    refer to each other, so that only the cyclic collector frees it (Keras's
    `clear_session()` collects too, but the fold's model is still in use when that runs).
    On a GPU, what the framework caches is then returned
    (`xval.training.devices.release_memory`). In a job process the modules were frozen
    before its first job (`xval.executors.job_process.settle`), so the collection walks only
    what came after.
    """
    import_paused("keras")
    gc.collect()
    devices.release_memory()


def assemble_model(fold: PreparedFold) -> Any:
    """Seeds the fold (`keras.utils.set_random_seed(seed + fold)`) and builds its model
    (with mixed precision when asked)."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    if fold.params.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    shape = tuple(fold.store.features.shape[1:])
    if fold.params.random_crop_seconds:
        shape = (None, *shape[1:])  # crops in training, whole rows otherwise
    try:
        front_end = front_end_layer(fold.params, fold.store.info)
        # Seeded after the front end is built (an encoder's layers draw initial weights
        # before its wheel's replace them): the rest starts as it would on a store of the
        # front end's output, so a frozen encoder trains as its embedding store does.
        keras.utils.set_random_seed(fold.seed)
        return build_model(fold.params, shape, fold.n_outputs, fold.job.task_type,
                           fold.mean, fold.variance,
                           frequencies=store_frequencies(fold.store, fold.params),
                           front_end=front_end)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


PREFETCH_WORKERS = 2
"""Threads that prefetch batches gathered on the host when a job trains on an accelerator
(pinned memory, or generator mode with `generator_workers = 0`)."""


def fold_placement(fold: PreparedFold) -> str:
    """Where the fold's batches come from (`xval.training.devices.choose`): its training
    and validation rows on the device when they fit `[backend] device_data_mb`."""
    nbytes = 0 if fold.job.generator else sum(
        fold.source[k][0].nbytes for k in ("train", "val") if k in fold.source)
    return devices.choose(nbytes, fold.job.device_data_mb, generator=fold.job.generator,
                          jobs_per_gpu=fold.job.jobs_per_gpu)


def fold_batches(fold: PreparedFold, placement: str = devices.HOST) -> tuple[Any, Any]:
    """The training batches (shuffled, weighted, mixed up, label-union or event-mixed as
    asked) and the validation batches (`None` for a refit).

    Args:
        fold: the prepared fold.
        placement: where the batches are gathered (`fold_placement`). Defaults to numpy
            (`xval.training.devices.HOST`).
    """
    params = fold.params
    targets = fold.store.targets
    # class_weights: balanced sample weights (classification) or a weighted loss
    # (detection), from the fold's training rows only.
    weights = fold.task.targets.sample_weights(targets[fold.rows["train"]], params)
    workers = params.generator_workers if fold.job.generator else 0
    if not workers and placement == devices.PINNED:  # gathered on the host for a device
        workers = PREFETCH_WORKERS
    # Mixup and label smoothing need soft targets (the task makes them one-hot).
    fit_targets = {k: fold.task.targets.for_keras(targets[v], params, fold.n_outputs)
                   for k, v in fold.rows.items()}
    # A task's mixer (detection's events) mixes numpy batches: gathered on the host, then
    # copied.
    mixer = fold.task.targets.mixer(params, fold.store.info.feature_params, features, fold.seed)
    host = placement if mixer is None else \
        devices.PINNED if placement != devices.HOST and devices.accelerator() is not None \
        else devices.HOST
    train = make_batches(*fold.source["train"], fit_targets["train"],
                         batch_size=fold.batch_size, shuffle=True, seed=fold.seed,
                         weights=weights, workers=workers,
                         mixup_alpha=params.mixup_alpha,
                         mixing=fold.task.targets.mixing(params),
                         target_fn=fold.target_fn,
                         crop=crop_frames(params, fold.store.info.feature_params),
                         placement=devices.HOST if mixer is not None else placement)
    if mixer is not None:
        train = mixed_batches(train, mixer, host)
    val = None if fold.refit else make_batches(
        *fold.source["val"], fit_targets["val"], batch_size=fold.batch_size, shuffle=False,
        workers=workers, target_fn=fold.target_fn, placement=placement)
    return train, val
