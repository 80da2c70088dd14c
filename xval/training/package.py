"""What a trained fold gives: its model scored on every split (`evaluate_model`), its bytes,
the device it ran on, and the `FoldResult` that carries them (`package`)."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from xval.core.records import FoldResult, Status
from xval.training import devices, embeddings
from xval.training.encoder import audio_model
from xval.training.evaluation import (
    Evaluation,
    check_finite,
    check_ranges,
    evaluate_splits,
    predictions_csv,
    validation_predictions_csv,
)
from xval.training.fit import Fitted
from xval.training.prepare import PreparedFold


def evaluate_model(model: Any, fold: PreparedFold, fitted: Fitted
                   ) -> tuple[Evaluation, bytes | None, dict[str, Any] | None]:
    """Scores the trained model on every split, checks it did not diverge, and fits the
    embedding classifier (whose metrics join the network's).

    Returns:
        `(evaluation, classifier bytes, classifier info)` (no classifier: `None`s).

    Raises:
        TrainingError: when outputs or losses are not finite (diverged), or a metric is
            outside the range its task declares (`check_ranges`).
    """
    # The training and validation rows `fit` put on the device are scored there; the
    # others are copied when they fit the memory free once the fit's cached blocks are
    # returned (`release_memory`), else fed from pinned memory.
    devices.release_memory()
    evaluation = evaluate_splits(
        model, fold.task, fold.store, params=fold.params, splits=fold.splits,
        rows=fold.rows, source=fold.source, n_outputs=fold.n_outputs,
        train_original=fold.train_original, target_fn=fold.target_fn,
        batch_size=fold.batch_size,
        placement=lambda features: fitted.placement if fitted.placement != devices.DEVICE
        else devices.choose(np.asarray(features).nbytes, fold.job.device_data_mb,
                            generator=False, jobs_per_gpu=fold.job.jobs_per_gpu),
        on_device=fitted.on_device)
    check_finite(fold.fold, evaluation.outputs, evaluation.metrics)
    check_ranges(fold.fold, fold.task, evaluation.metrics, evaluation.clip_metrics)
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
    """The fold's `FoldResult`: its records, the model's bytes, the test and validation
    predictions and plot data; the Keras session is cleared.

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
    # On an in-model encoder's embedding store, the saved model takes audio.
    saved = model_bytes(audio_model(model, fold.store.info) or model, fold.fold)
    test = "test" in fold.splits
    rows, outputs, context = fold.rows, evaluation.outputs, evaluation.context
    predictions = predictions_csv(fold.store, rows["test"], outputs["test"], fold.task,
                                  context) if test else None
    held_out = validation_predictions_csv(fold.store, rows, outputs, fold.task, context)
    plot_data = fold.task.scoring.fold_plot_data(
        fold.store.targets[rows["test"]], outputs["test"], fold.store.meta.iloc[rows["test"]],
        context) if test else None
    backend = keras.backend.backend()
    # The next fold's start collects this one's model (`collect_garbage`): still in use here.
    keras.backend.clear_session(free_memory=False)
    return FoldResult(
        instance=job.instance, fold=fold.fold, status=Status.OK, items=job.items,
        params_hash=job.params_hash, task_type=job.task_type, metrics=evaluation.metrics,
        clip_metrics=evaluation.clip_metrics or None, history=fitted.history,
        best_epoch=fitted.best_epoch, epochs_run=fitted.epochs_run,
        epochs=None if fold.refit else int(fold.params.epochs), monitor=fitted.monitor,
        monitor_mode=fitted.mode,
        timings={"fit_seconds": round(fitted.seconds, 3),
                 "eval_seconds": round(eval_seconds, 3),
                 "total_seconds": round(time.perf_counter() - t_start, 3)},
        n_rows={**{k: int(len(v)) for k, v in rows.items()},
                "train_original": int(len(fold.train_original))},
        classes=fold.store.classes, backend=backend, keras_version=keras.__version__,
        device=device(), device_settings=devices.device_settings(fitted.placement),
        host=socket.gethostname(), pid=os.getpid(),
        model_bytes=saved, predictions_csv=predictions, val_predictions_csv=held_out,
        plot_data=plot_data,
        embedding_classifier=classifier[1], classifier_bytes=classifier[0],
        postprocessing=evaluation.postprocessing,
    )
