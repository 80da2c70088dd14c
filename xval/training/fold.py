"""One job: train and evaluate one (instance, fold), in four steps: prepare (the fold's rows
and statistics), fit (the model, with its best epoch kept), evaluate (every split, at the
segment and the clip level) and package (the `FoldResult`, with the model's bytes).

Imports Keras where used: set the backend first.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing.store import FeatureStore
from xval import tasks
from xval.config import embedding
from xval.config.selection import metric_direction
from xval.core.errors import TrainingError
from xval.core.interrupts import interrupt_check
from xval.core.records import FoldResult, Job, Status
from xval.tasks.base import Task, with_context
from xval.training import embeddings
from xval.training.batches import fold_rows, make_batches, normalization_stats
from xval.training.evaluation import (
    Evaluation,
    Normalizer,
    check_finite,
    evaluate_splits,
    normalizer,
    predictions_csv,
)
from xval.training.front_end import crop_frames, front_end_layer, front_end_stats
from xval.training.model import build_model, make_optimizer, store_frequencies

EpochHook = Callable[[int, int, Mapping[str, float]], None]
"""`(epoch, epochs, logs) -> None`, called after every epoch (for progress display)."""


def run_fold(job: Job | Mapping[str, Any], on_epoch: EpochHook | None = None) -> FoldResult:
    """Trains and evaluates one (instance, fold).

    With `refit_with_val`, the fold trains twice: the first model picks the best epoch on
    the validation items (its training and validation scores are the fold's), then a fresh
    model trains on the training plus validation items for that many epochs; its test
    scores, predictions and `.keras` file are the fold's.

    Args:
        job: a `xval.core.records.Job` (or its dict form).
        on_epoch: optional `(epoch, epochs, logs) -> None`, called after every epoch (for
            progress display).

    Returns:
        A `FoldResult` with status `ok`, the metrics of every split, the history,
        timings, and the best model's `.keras` bytes and test predictions (written by the
        recorder, not here); with `refit_with_val`, the second model's, and its epochs,
        rows, training scores and history in `refit`.

    Raises:
        TrainingError: when a fold set has no rows, or the trained model's outputs or loss
            are not finite on some split (training diverged). Other exceptions of the
            framework pass through; executors turn them into failed results.
    """
    if not isinstance(job, Job):
        job = Job.from_dict(job)
    result = train_and_evaluate(job, on_epoch)
    if job.refit_epochs is None and job.params.get("refit_with_val"):
        result = refit_with_val(job, result, on_epoch)
    return result


def refit_with_val(job: Job, result: FoldResult, on_epoch: EpochHook | None) -> FoldResult:
    """`result` with the test scores, predictions and model of a fresh model trained on the
    fold's training plus validation items for `result.best_epoch` epochs."""
    items = {"train": [*job.items["train"], *job.items["val"]], "val": [],
             "test": list(job.items["test"])}
    log_dir = str(Path(job.log_dir) / "refit") if job.log_dir else None
    # The second model has no validation rows: it is scored with the first one's choice.
    params = result.postprocessing.apply(job.params) if result.postprocessing else job.params
    second = train_and_evaluate(dataclasses.replace(
        job, params=params, items=items, refit_epochs=result.best_epoch, log_dir=log_dir),
        on_epoch)
    first_metrics, second_metrics = result.metrics or {}, second.metrics or {}
    first_metrics["test"] = second_metrics["test"]
    if second.clip_metrics and "test" in second.clip_metrics and result.clip_metrics:
        result.clip_metrics["test"] = second.clip_metrics["test"]
    result.model_bytes = second.model_bytes
    result.predictions_csv = second.predictions_csv
    result.plot_data = second.plot_data
    result.refit = {"epochs": second.epochs_run, "n_items": len(items["train"]),
                    "rows": second.n_rows["train"],
                    "train_original": second.n_rows["train_original"],
                    "train": second_metrics["train"], "history": second.history,
                    "timings": second.timings}
    result.timings = {k: round(v + second.timings.get(k, 0.0), 3)
                      for k, v in result.timings.items()}
    return result


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
    params: dict[str, Any]
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
        return int(self.params["batch_size"])

    @property
    def uses_embeddings(self) -> bool:
        """Whether an embedding classifier is fit after the network (never for a refit)."""
        return embedding.enabled(self.params) and not self.refit


def prepare_fold(job: Job) -> PreparedFold:
    """Opens the fold's store (checking it is the planned one) and gathers its rows,
    statistics and features.

    Raises:
        TrainingError: when the store changed since the run was planned, or a split to
            score has no rows.
    """
    params = dict(job.params)
    # A refit trains on every item of items["train"] for fixed epochs, without validation:
    # the final model of an instance (no test items), or a fold's refit_with_val model.
    refit = job.refit_epochs is not None
    if job.refit_epochs is not None:
        params["epochs"] = int(job.refit_epochs)
    splits = (("train", "test") if job.items.get("test") else ("train",)) if refit \
        else ("train", "val", "test")
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
    # An autoencoder's target is its own input, normalised with the fold's statistics.
    target_fn = normalizer(mean, variance) if getattr(task, "reconstructs", False) else None
    return PreparedFold(job=job, params=params, refit=refit, splits=splits, task=task,
                        store=store, rows=rows, train_original=train_original,
                        n_outputs=task.num_outputs(store), seed=params["seed"] + job.fold,
                        mean=mean, variance=variance, source=source, target_fn=target_fn)


def assemble_model(fold: PreparedFold) -> Any:
    """Seeds the fold (`keras.utils.set_random_seed(seed + fold)`) and builds its model
    (with mixed precision when asked)."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    keras.utils.set_random_seed(fold.seed)
    if fold.params["mixed_precision"]:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    shape = tuple(fold.store.features.shape[1:])
    if fold.params.get("random_crop_seconds"):
        shape = (None, *shape[1:])  # crops in training, whole rows otherwise
    try:
        return build_model(fold.params, shape, fold.n_outputs, fold.job.task_type,
                           fold.mean, fold.variance,
                           frequencies=store_frequencies(fold.store, fold.params),
                           front_end=front_end_layer(fold.params, fold.store.info))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def fold_batches(fold: PreparedFold) -> tuple[Any, Any]:
    """The training batches (shuffled, weighted, mixed up as asked) and the validation
    batches (`None` for a refit)."""
    params = fold.params
    targets = fold.store.targets
    # class_weights: balanced sample weights (classification) or a weighted loss
    # (detection), from the fold's training rows only.
    weights = fold.task.sample_weights(targets[fold.rows["train"]], params)
    workers = params["generator_workers"] if fold.job.generator else 0
    # Mixup and label smoothing need soft targets (the task makes them one-hot).
    fit_targets = {k: fold.task.keras_targets(targets[v], params, fold.n_outputs)
                   for k, v in fold.rows.items()}
    train = make_batches(*fold.source["train"], fit_targets["train"],
                         batch_size=fold.batch_size, shuffle=True, seed=fold.seed,
                         weights=weights, workers=workers,
                         mixup_alpha=params.get("mixup_alpha", 0.0), target_fn=fold.target_fn,
                         crop=crop_frames(params, fold.store.info.get("feature_params") or {}))
    val = None if fold.refit else make_batches(
        *fold.source["val"], fit_targets["val"], batch_size=fold.batch_size, shuffle=False,
        workers=workers, target_fn=fold.target_fn)
    return train, val


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
    """

    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    monitor: str
    mode: str
    seconds: float
    sources: list[embeddings.Source] | None


def fold_callbacks(fold: PreparedFold, on_epoch: EpochHook | None
                   ) -> tuple[list[Any], str, str, int]:
    """The callbacks of `fit`, and the monitored metric, its direction and the first epoch
    the best-epoch choice looks at.

    EarlyStopping keeps the best epoch's weights in memory and restores them when training
    ends (Keras 3 restores even when no early stop happened, and when another callback
    stopped training); the best model is then saved once. A ModelCheckpoint would write a
    .keras file at every improving epoch, which costs more than the training of a small
    model. TerminateOnNaN stops a diverged run at once. min_epochs: neither stopping nor the
    best-epoch choice looks at the first epochs, whose weights are still far from trained
    (a lucky early validation score would otherwise end training and keep an untrained
    model).
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    params = fold.params
    monitor = params["save_model_metric"]
    mode = metric_direction(monitor, params["save_model_mode"])
    min_epochs = 0 if fold.refit else params.get("min_epochs", 0)
    callbacks = [keras.callbacks.TerminateOnNaN(), interrupt_check()]
    if fold.refit:  # no validation rows: no early stopping, no best-epoch restore
        monitor, mode = "loss", "min"
    else:
        callbacks.insert(0, keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=params["patience"],
            restore_best_weights=True, start_from_epoch=min_epochs))
    if on_epoch is not None:
        callbacks.append(epoch_callback(on_epoch, params["epochs"]))
    if params["lr_schedule"] == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=0.5, patience=max(1, params["patience"] // 2)))
    if params["tensorboard"] and fold.job.log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=fold.job.log_dir))
    return callbacks, monitor, mode, min_epochs


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
    train, val = fold_batches(fold)
    model.compile(optimizer=make_optimizer(params, len(train)),
                  loss=with_context(fold.task.loss, params,
                                    train_targets=fold.store.targets[fold.rows["train"]]),
                  metrics=fold.task.keras_metrics(params))
    callbacks, monitor, mode, min_epochs = fold_callbacks(fold, on_epoch)
    sources = embeddings.prepare(params, model, fold.store, fold.job.items, fold.fold) \
        if fold.uses_embeddings else None
    started = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=params["epochs"],
                        callbacks=callbacks, verbose=params["verbose"])
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
    return Fitted(history=hist, best_epoch=best_epoch, epochs_run=len(curve),
                  monitor=monitor, mode=mode, seconds=seconds, sources=sources)


def evaluate_model(model: Any, fold: PreparedFold, fitted: Fitted
                   ) -> tuple[Evaluation, bytes | None, dict[str, Any] | None]:
    """Scores the trained model on every split, checks it did not diverge, and fits the
    embedding classifier (whose metrics join the network's).

    Returns:
        `(evaluation, classifier bytes, classifier info)` (no classifier: `None`s).

    Raises:
        TrainingError: when outputs or losses are not finite (diverged).
    """
    evaluation = evaluate_splits(
        model, fold.task, fold.store, params=fold.params, splits=fold.splits,
        rows=fold.rows, source=fold.source, n_outputs=fold.n_outputs,
        train_original=fold.train_original, target_fn=fold.target_fn,
        batch_size=max(fold.batch_size, 1024))
    check_finite(fold.fold, evaluation.outputs, evaluation.metrics)
    if not fold.uses_embeddings or fitted.sources is None:
        return evaluation, None, None
    classifier, info = embeddings.fit_fold_classifier(
        fold.params, fitted.sources, fold.store, fold.rows, fold.fold, fold.seed,
        evaluation.metrics, evaluation.clip_metrics, evaluation.multi_segment)
    return evaluation, classifier, info


def model_bytes(model: Any, fold: int) -> bytes:
    """The model saved as a `.keras` file, as bytes."""
    with tempfile.TemporaryDirectory(prefix="xval-model-") as tmp:
        path = Path(tmp) / f"model_{fold}.keras"
        model.save(path)
        return path.read_bytes()


def device() -> str:
    """Where this process trains: `"cpu"`, or the GPUs it sees (e.g.
    `"cuda:0 (NVIDIA H100)"`)."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        found = _gpus(keras.backend.backend())
    except Exception:  # a device query must never fail a fold  # noqa: BLE001
        found = ""
    if found:
        return found
    return "cpu" if not visible else f"cpu (CUDA_VISIBLE_DEVICES={visible} not usable)"


def _gpus(backend: str) -> str:
    """The GPUs the backend sees, in words (`""`: none)."""
    if backend == "torch":
        import torch  # noqa: PLC0415  (the backend: only when it is the one in use)

        return ", ".join(f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                         for i in range(torch.cuda.device_count())) \
            if torch.cuda.is_available() else ""
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415  (as above)

        return ", ".join(g.name for g in tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax  # noqa: PLC0415  (as above)

        return ", ".join(str(d) for d in jax.devices() if d.platform == "gpu")
    return ""


def package(model: Any, fold: PreparedFold, fitted: Fitted, evaluation: Evaluation,
            classifier: tuple[bytes | None, dict[str, Any] | None],
            times: tuple[float, float]) -> FoldResult:
    """The fold's `FoldResult`: its records, the model's bytes, the test predictions and
    plot data; the Keras session is cleared.

    Args:
        model: the trained model.
        fold: the prepared fold.
        fitted: the training's outcome.
        evaluation: the evaluation's outcome.
        classifier: the embedding classifier's bytes and info (or `None`s).
        times: `(start of the job, start of the evaluation)` (`time.perf_counter()`).
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    job, (t_start, t_eval) = fold.job, times
    eval_seconds = time.perf_counter() - t_eval
    saved = model_bytes(model, fold.fold)
    test = "test" in fold.splits
    rows, outputs, context = fold.rows, evaluation.outputs, evaluation.context
    predictions = predictions_csv(fold.store, rows["test"], outputs["test"], job.task_type,
                                  context["params"], context.get("targets")) if test else None
    plot_data = with_context(fold.task.fold_plot_data, fold.store.targets[rows["test"]],
                             outputs["test"], fold.store.meta.iloc[rows["test"]],
                             **context) if test else None
    backend = keras.backend.backend()
    keras.backend.clear_session()
    return FoldResult(
        instance=job.instance, fold=fold.fold, status=Status.OK, items=job.items,
        params_hash=job.params_hash, task_type=job.task_type, metrics=evaluation.metrics,
        clip_metrics=evaluation.clip_metrics or None, history=fitted.history,
        best_epoch=fitted.best_epoch, epochs_run=fitted.epochs_run,
        epochs=None if fold.refit else int(fold.params["epochs"]), monitor=fitted.monitor,
        monitor_mode=fitted.mode,
        timings={"fit_seconds": round(fitted.seconds, 3),
                 "eval_seconds": round(eval_seconds, 3),
                 "total_seconds": round(time.perf_counter() - t_start, 3)},
        n_rows={**{k: int(len(v)) for k, v in rows.items()},
                "train_original": int(len(fold.train_original))},
        classes=fold.store.classes, backend=backend, keras_version=keras.__version__,
        device=device(), host=socket.gethostname(), pid=os.getpid(),
        model_bytes=saved, predictions_csv=predictions, plot_data=plot_data,
        embedding_classifier=classifier[1], classifier_bytes=classifier[0],
        postprocessing=evaluation.postprocessing,
    )


def train_and_evaluate(job: Job, on_epoch: EpochHook | None = None) -> FoldResult:
    """`run_fold` without `refit_with_val`: one model, prepared, fitted, evaluated and
    packaged."""
    t_start = time.perf_counter()
    fold = prepare_fold(job)
    model = assemble_model(fold)
    fitted = fit_model(model, fold, on_epoch)
    t_eval = time.perf_counter()
    evaluation, classifier, info = evaluate_model(model, fold, fitted)
    return package(model, fold, fitted, evaluation, (classifier, info), (t_start, t_eval))
