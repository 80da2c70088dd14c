"""Training one fold's model: its callbacks (best-on-validation checkpoint, early stopping
after `min_epochs`, the learning-rate schedule, epoch lines) and `fit_model`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from xval.config.selection import metric_direction
from xval.core.errors import TrainingError
from xval.core.interrupts import interrupt_check
from xval.training import devices, embeddings
from xval.training.model import make_optimizer
from xval.training.prepare import PreparedFold, fold_batches, fold_placement

EpochHook = Callable[[int, int, Mapping[str, float]], None]
"""`(epoch, epochs, logs) -> None`, called after every epoch (for progress display)."""


@dataclasses.dataclass
class Fitted:
    """A fold's model after training.

    Attributes:
        history: metric -> value per epoch.
        best_epoch: the epoch whose weights the model holds (1-based).
        epochs_run: epochs trained.
        monitor: the metric that chose the best epoch; `mode` its direction.
        seconds: the time `fit` took.
        sources: the embedding sources (`embeddings.prepare`), or `None`.
        placement: where the batches were gathered (`xval.training.devices`).
        on_device: split -> its rows on the device, which scoring reuses (`"train"`,
            `"val"`: where `placement` put them there).
    """

    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    monitor: str
    mode: str
    seconds: float
    sources: list[embeddings.Source] | None
    placement: str = devices.HOST
    on_device: dict[str, Any] = dataclasses.field(default_factory=dict)


def fold_callbacks(fold: PreparedFold, on_epoch: EpochHook | None
                   ) -> tuple[list[Any], str, str, int]:
    """The callbacks of `fit`, and the monitored metric, its direction and the first epoch
    the best-epoch choice looks at.

    EarlyStopping keeps the best epoch's weights in memory and restores them when training
    ends (Keras 3 restores even when no early stop happened, and when another callback
    stopped training); the best model is then saved once. A ModelCheckpoint would write a
    .keras file at every improving epoch, which costs more than the training of a small
    model. A non-finite loss stops a diverged run within a batch or two (`nan_stop`).
    min_epochs: neither stopping nor the best-epoch choice looks at the first epochs, whose
    weights are still far from trained (a lucky early validation score would otherwise end
    training and keep an untrained model).

    No callback of the engine reads a batch's logs in the training loop's thread, so Keras
    keeps its asynchronous callback dispatch on (torch and JAX): a step never waits for its
    loss to reach the host. Only `[training] tensorboard`, whose callback writes per-batch
    logs, turns it off.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    params = fold.params
    monitor = params.save_model_metric
    mode = metric_direction(monitor, params.save_model_mode, fold.task)
    min_epochs = 0 if fold.refit else params.min_epochs
    callbacks = [nan_stop(), interrupt_check()]
    if fold.refit:  # no validation rows: no early stopping, no best-epoch restore
        monitor, mode = "loss", "min"
    else:
        callbacks.insert(0, keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=params.patience,
            restore_best_weights=True, start_from_epoch=min_epochs))
    if on_epoch is not None:
        callbacks.append(epoch_callback(on_epoch, params.epochs))
    if params.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=0.5, patience=max(1, params.patience // 2)))
    if params.tensorboard and fold.job.log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=fold.job.log_dir))
    return callbacks, monitor, mode, min_epochs


def nan_stop() -> Any:
    """Keras's `TerminateOnNaN`, safe for asynchronous dispatch and silent.

    `TerminateOnNaN` reads every batch's loss, so Keras (torch and JAX backends) would turn
    its asynchronous callback dispatch off for the whole callback list: each step would then
    wait on the main thread for its loss and metrics to reach the host before the next batch
    is gathered. Marked `async_safe`, the check runs in Keras's callback thread instead, one
    batch behind the device at most, and `model.stop_training` (which it sets) is read by
    the training loop after the following batch: a diverged run still stops within a batch
    or two, and an epoch whose loss is not finite is never chosen as the best. It prints
    nothing (Keras's prints a line to stdout, even under `-q`): the fold's failure says why.

    Returns:
        A `keras.callbacks.TerminateOnNaN`.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    class NanStop(keras.callbacks.TerminateOnNaN):
        async_safe = True

        def on_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(loss):
                self.model.stop_training = True

    return NanStop()


def epoch_callback(on_epoch: EpochHook, epochs: int) -> Any:
    """A Keras callback calling `on_epoch(epoch, epochs, logs)` after every epoch."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            on_epoch(epoch + 1, epochs, {k: float(v) for k, v in (logs or {}).items()})

    return _Progress()


def fit_model(model: Any, fold: PreparedFold, on_epoch: EpochHook | None) -> Fitted:
    """Compiles and trains the model; its weights end as those of the best epoch.

    The embedding sources are loaded and checked before the network trains (a missing
    model, a leak or an unknown layer costs no training).

    Raises:
        TrainingError: when no epoch produced a finite monitored value (diverged).
    """
    params = fold.params
    (train, val), placement = devices.placed(lambda where: fold_batches(fold, where),
                                             fold_placement(fold), f"fold {fold.fold}")
    # Weighted metrics: an evaluation batch's padding has weight 0 (`FoldBatches`).
    model.compile(optimizer=make_optimizer(params, len(train), model),
                  loss=fold.task.head.loss(params, fold.store.targets[fold.rows["train"]]),
                  weighted_metrics=fold.task.head.metrics(params))
    callbacks, monitor, mode, min_epochs = fold_callbacks(fold, on_epoch)
    sources = embeddings.prepare(params, model, fold.store, fold.job.items, fold.fold,
                                 fold.job.embedding_items) \
        if fold.uses_embeddings else None
    started = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=params.epochs,
                        callbacks=callbacks, verbose=params.verbose)
    seconds = time.perf_counter() - started
    hist = {k: [float(v) for v in values] for k, values in history.history.items()}
    curve = np.asarray(hist.get(monitor, []), dtype=float)
    if not np.isfinite(curve).any():
        raise TrainingError(
            f"Fold {fold.fold}: no epoch produced a finite {monitor}, so there is no best "
            "model (training diverged). Lower learning_rate."
        )
    curve = np.where(np.isfinite(curve), curve, np.inf if mode == "min" else -np.inf)
    start = min(min_epochs, len(curve) - 1)  # EarlyStopping's start_from_epoch
    later = curve[start:]
    best_epoch = start + int(np.argmin(later) if mode == "min" else np.argmax(later)) + 1
    if fold.refit:
        best_epoch = len(curve)  # the model of the last epoch is the one kept
    on_device = {key: getattr(batches, "rows_on_device", None)
                 for key, batches in (("train", train), ("val", val))}
    return Fitted(history=hist, best_epoch=best_epoch, epochs_run=len(curve),
                  monitor=monitor, mode=mode, seconds=seconds, sources=sources,
                  placement=placement,
                  on_device={k: v for k, v in on_device.items() if v is not None})
