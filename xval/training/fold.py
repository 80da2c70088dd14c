"""One job: train and evaluate one (instance, fold), in four steps: prepare (the fold's rows
and statistics), fit (the model, with its best epoch kept), evaluate (every split, at the
segment and the clip level) and package (the `FoldResult`, with the model's bytes).

Imports Keras where used: set the backend first."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xval.core.backend import import_paused
from xval.core.records import FoldResult, Job
from xval.training.compilation import (
    cache_notes,
    compile_count,
    is_compiled,
    use_cache,
)
from xval.training.device_constants import constants_on_device
from xval.training.fit import EpochHook, fit_model
from xval.training.keras_settings import keras_settings_kept
from xval.training.package import evaluate_model, package
from xval.training.prepare import PreparedFold as PreparedFold
from xval.training.prepare import assemble_model, collect_garbage, prepare_fold


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

    Keras's process-wide settings (`keras.config.set_floatx` and the others) are restored
    when the job ends (`xval.training.keras_settings`): a warm worker's next job starts
    from the same ones. On torch, the Python numbers Keras's ops meet are made on the device
    while the job runs, not copied from the host (`xval.training.device_constants`).

    Raises:
        TrainingError: when a fold set has no rows, or the trained model's outputs or loss
            are not finite on some split (training diverged), or the job changed the Keras
            backend. Other exceptions of the
            framework pass through; executors turn them into failed results.
    """
    if not isinstance(job, Job):
        job = Job.from_dict(job)
    import_paused("keras")  # the settings are read before the job and restored after it
    with keras_settings_kept(), constants_on_device():
        result = train_and_evaluate(job, on_epoch)
        if job.refit_epochs is None and job.params.refit_with_val:
            result = refit_with_val(job, result, on_epoch)
    result.cache_notes = cache_notes() or None  # for the driver to say
    return result


def refit_with_val(job: Job, result: FoldResult, on_epoch: EpochHook | None) -> FoldResult:
    """`result` with the test scores, predictions and model of a fresh model trained on the
    fold's training plus validation items for `result.best_epoch` epochs."""
    items = {"train": [*job.items["train"], *job.items["val"], *job.items.get("rank", [])],
             "val": [],
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
    if result.compilation and second.compilation:
        result.compilation = {k: round(v + second.compilation.get(k, 0), 3)
                              for k, v in result.compilation.items()}
    return result


def train_and_evaluate(job: Job, on_epoch: EpochHook | None = None) -> FoldResult:
    """`run_fold` without `refit_with_val`: one model, prepared, fitted, evaluated and
    packaged."""
    t_start = time.perf_counter()
    collect_garbage()  # the last fold's model, before this one's
    use_cache(job.compile_cache)
    compiled_before = compile_count()
    fold = prepare_fold(job)
    model = assemble_model(fold)
    fitted = fit_model(model, fold, on_epoch)
    t_eval = time.perf_counter()
    evaluation, classifier, info = evaluate_model(model, fold, fitted)
    compiled = is_compiled(model)
    result = package(model, fold, fitted, evaluation, (classifier, info), (t_start, t_eval))
    result.compiled, result.compilation = compiled, (compile_count() - compiled_before).to_dict()
    return result
