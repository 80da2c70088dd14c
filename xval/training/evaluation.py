"""Evaluating a fold's trained model: its outputs on every split, the task's metrics at the
segment and the clip level, the divergence checks, and the tables of the test and the
validation predictions."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from preprocessing.store import FeatureStore
from xval.core.errors import TrainingError
from xval.core.parameters import TrainingParams
from xval.core.records import Metrics, Postprocessing
from xval.tasks import Context, Task
from xval.training import devices
from xval.training.batches import make_batches
from xval.training.normalization import Normalizer

PREDICT_BATCH = 1024
"""Rows per batch when a fold's model scores its splits (at least the training batch
size): few, large batches keep a GPU busy."""


def predict_rows(model: Any, features: Any, rows: np.ndarray, batch_size: int,
                 placement: str = devices.HOST, on_device: Any = None,
                 tail_size: int | None = None) -> np.ndarray:
    """The model's outputs on `features[rows]`, in batches.

    Every batch has one of two shapes, so that a compiled step meets at most two programs:
    `batch_size` rows, and `tail_size` rows for what is left after the last whole batch
    (padded with copies, dropped here). A split of a few rows is then scored in a batch or
    two of `tail_size` rows, not padded to `batch_size`: a model that costs seconds per row
    (an encoder inside it, on a CPU) scores 8 rows, not 1,024.

    With the rows on the device (`placement` `DEVICE`: copied there once, every batch
    gathered there), Keras's `predict` keeps each batch's outputs on the device and reads
    them back after the last batch is queued: the device never waits for the host between
    batches.

    Args:
        model: a `keras.Model`.
        features: `np.ndarray [shape=(n, ...)]` (a memmap in generator mode).
        rows: the rows of `features` to score.
        batch_size: rows per batch.
        placement: where the batches are gathered (`xval.training.devices`). Defaults to
            numpy (`HOST`).
        on_device: with `DEVICE`, `features` already on the device (the rows the model
            trained on), or `None`: copied. Defaults to `None`.
        tail_size: rows per batch of the rows after the last whole batch (the training
            batch size: the fold's other shape). Defaults to `batch_size`.

    Returns:
        `np.ndarray [shape=(len(rows), outputs)]`, float64.
    """
    if len(rows) == 0:
        return np.zeros((0, 1))
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    tail_size = min(tail_size or batch_size, batch_size)
    whole = len(rows) - len(rows) % batch_size if tail_size < batch_size else len(rows)
    outputs = []
    # Every row is scored: Keras's debug cap on steps (`keras.config.set_max_steps_per_epoch`,
    # which a builder may set) would score the first batches alone.
    cap = keras.config.max_steps_per_epoch()
    keras.config.set_max_steps_per_epoch(None)
    try:
        for part, size in ((rows[:whole], batch_size), (rows[whole:], tail_size)):
            if not len(part):
                continue
            batches = make_batches(features, part, np.zeros(len(part)), batch_size=size,
                                   shuffle=False, placement=placement, on_device=on_device)
            on_device = batches.rows_on_device  # copied once, shared by the second shape
            # The last batch is padded to `size` (one compiled program): its copies dropped.
            outputs.append(np.asarray(model.predict(batches, verbose=0),
                                      dtype=np.float64)[:len(part)])
    finally:
        keras.config.set_max_steps_per_epoch(cap)
    return np.concatenate(outputs)


def check_finite(fold: int, outputs: Mapping[str, np.ndarray], metrics: Metrics) -> None:
    """Raises TrainingError when any split's outputs or loss are not finite."""
    for key, out in outputs.items():
        bad = int(np.size(out) - np.isfinite(out).sum())
        if bad:
            raise TrainingError(
                f"Fold {fold}: the best model gives {bad} non-finite output value(s) on the "
                f"{key} rows (training diverged). Lower learning_rate, or use "
                "lr_schedule='plateau' or a different optimizer."
            )
        loss = metrics[key].get("loss")
        if loss is None or not np.isfinite(loss):
            raise TrainingError(
                f"Fold {fold}: the best model's {key} loss is {loss} (training diverged). "
                "Lower learning_rate, or use a different optimizer."
            )


def check_ranges(fold: int, task: Task, *levels: Metrics | None) -> None:
    """Refuses a fold whose metrics (segment and clip level) leave the ranges its task
    declares (`Task.metric_ranges`): its file would never be believed, and a rerun scores
    the same, so the fold fails now, saying so.

    Raises:
        TrainingError: naming the metric, the split, the value and the range.
    """
    for metrics in levels:
        for split, values in (metrics or {}).items():
            for name, value in values.items():
                low, high = task.metric_ranges.get(name.removeprefix("embedding_"),
                                                   (-np.inf, np.inf))
                if isinstance(value, (int, float)) and np.isfinite(value) \
                        and not low <= value <= high:
                    raise TrainingError(
                        f"Fold {fold}: the task {task.name!r} scored {split} {name} = "
                        f"{value!r}, outside the range it declares for it, [{low}, {high}] "
                        "(Task.metric_ranges), so the fold could never be believed; a rerun "
                        "scores the same. Fix the task: its metric, or the range it "
                        "declares.")


def frame_seconds(store: FeatureStore) -> float | None:
    """The feature hop in seconds, from the store's feature parameters (`None` if unknown)."""
    return store.info.frame_seconds


def mean_row(features: Any, rows: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The mean of `features[rows]` over rows, read in chunks."""
    total = np.zeros(features.shape[1:], dtype=np.float64)
    for start in range(0, len(rows), chunk):
        total += np.asarray(features[rows[start:start + chunk]], dtype=np.float64).sum(axis=0)
    return (total / max(len(rows), 1)).astype(np.float32)


@dataclasses.dataclass
class Evaluation:
    """A fold's model evaluated.

    Attributes:
        outputs: split -> the model's outputs on its (original) rows.
        metrics: split -> the task's metrics.
        clip_metrics: split -> the metrics of the outputs pooled by clip (stores whose
            files were cut into segments), else empty.
        context: what the task's scoring was given (parameters, frame seconds, classes,
            an autoencoder's reference and test targets).
        multi_segment: whether the store's files were cut into several segments.
        postprocessing: what the task chose on the validation rows (applied to
            `context.params`), or `None`.
    """

    outputs: dict[str, np.ndarray]
    metrics: Metrics
    clip_metrics: Metrics
    context: Context
    multi_segment: bool
    postprocessing: Postprocessing | None = None


def evaluate_splits(model: Any, task: Task, store: FeatureStore, *, params: TrainingParams,
                    splits: tuple[str, ...], rows: Mapping[str, np.ndarray],
                    source: Mapping[str, tuple[Any, np.ndarray]], n_outputs: int,
                    train_original: np.ndarray, target_fn: Normalizer | None,
                    batch_size: int, placement: Callable[[Any], str] | None = None,
                    on_device: Mapping[str, Any] | None = None) -> Evaluation:
    """Scores the model on every split at the segment level and, for a store whose files
    were cut into segments, at the clip level (every fold then gets both, so that clip-level
    means and paired tests cover all folds).

    Args:
        model: the trained `keras.Model` (the best epoch's weights).
        task: the fold's task.
        store: the fold's store.
        params: the instance parameters.
        splits: the splits to score.
        rows: split -> the rows of the fold (the training rows with augmented copies).
        source: split -> `(features, indices)` the model reads (see `run_fold`).
        n_outputs: units of the output head.
        train_original: the original (not augmented) training rows: the train split is
            scored on them.
        target_fn: an autoencoder's target function (normalised input), or `None`.
        batch_size: the fold's training batch size: the rows are scored in batches of
            `max(batch_size, PREDICT_BATCH)`, and those left after the last whole one in
            batches of `batch_size` (`predict_rows`).
        placement: a split's features -> where its batches are gathered
            (`xval.training.devices`), or `None`: numpy. Defaults to `None`.
        on_device: split -> its features already on the device (the training and
            validation rows `fit` gathered its batches from): scored there, not copied
            again. Defaults to `None`.

    Returns:
        An `Evaluation`.
    """
    targets = store.targets
    clips = store.clips
    original = ~store.augmented
    multi_segment = len(np.unique(clips[original])) < int(original.sum())
    starts = row_starts(store)
    context = _context(store, params, target_fn, train_original)
    original_train = ~store.augmented[rows["train"]]
    scored = {**rows, "train": train_original}
    scored_source = {**source,
                     "train": (source["train"][0], source["train"][1][original_train])}
    result = Evaluation(outputs={}, metrics={}, clip_metrics={}, context=context,
                        multi_segment=multi_segment)
    truth, extra = {}, {}
    for key in splits:
        result.outputs[key] = _split_outputs(model, key, scored_source[key], batch_size,
                                             placement, (on_device or {}).get(key))
        truth[key] = targets[scored[key]]
        if target_fn is not None:
            truth[key] = target_fn(np.asarray(store.features[scored[key]], dtype=np.float32))
            if key == "test":
                result.context = result.context.replace(targets=truth[key])
        if multi_segment:
            extra[key] = overlap_outputs(model, task, store, scored[key], truth[key], starts,
                                         context, batch_size)

    def pooled(key: str) -> Any:
        if not multi_segment:
            return None
        outputs, targets_, clip_ids, window_starts = with_overlap(
            (result.outputs[key], truth[key], clips[scored[key]],
             None if starts is None else starts[scored[key]]), extra.get(key))
        return task.scoring.pool_by_clip(outputs, targets_, clip_ids, window_starts,
                                         context.frame_seconds)

    result.postprocessing = choose_postprocessing(task, result, truth, pooled, n_outputs)
    for key in splits:
        out, y = result.outputs[key], truth[key]
        finite = bool(np.isfinite(out).all())
        split = result.context.replace(split=key)
        result.metrics[key] = task.scoring.evaluate(
            y, out, n_outputs, split.replace(whole_files=not multi_segment)) \
            if finite else {"loss": float("nan")}
        clip = pooled(key) if finite else None
        if clip is not None:
            _, clip_out, clip_y = clip
            result.clip_metrics[key] = task.scoring.evaluate(
                clip_y, clip_out, n_outputs, split.replace(whole_files=True))
    return result


def _split_outputs(model: Any, key: str, source: tuple[Any, np.ndarray], batch_size: int,
                   placement: Callable[[Any], str] | None, on_device: Any) -> np.ndarray:
    """The model's outputs on split `key`'s rows (`source`): from its rows already on the
    device when `on_device` holds them, else where `placement` says (numpy without it)."""
    features, indices = source
    where = devices.DEVICE if on_device is not None else \
        devices.HOST if placement is None else placement(features)
    return devices.placed(functools.partial(predict_rows, model, features, indices,
                                            max(batch_size, PREDICT_BATCH),
                                            on_device=on_device, tail_size=batch_size),
                          where, f"{key} rows")[0]


def row_starts(store: FeatureStore) -> np.ndarray | None:
    """Each row's start in its recording (seconds; NaN where unknown), or `None` for a store
    without starts."""
    if "start" not in store.meta:
        return None
    return pd.to_numeric(store.meta["start"], errors="coerce").to_numpy(np.float64)


def _context(store: FeatureStore, params: TrainingParams, target_fn: Normalizer | None,
             train_original: np.ndarray) -> Context:
    """What scoring a fold needs besides the outputs: the parameters, the frame length, the
    classes and, for an autoencoder, its baseline (the mean normalised training row)."""
    context = Context(params=params, frame_seconds=frame_seconds(store), classes=store.classes)
    if target_fn is None:
        return context
    return context.replace(reference=target_fn(mean_row(store.features, train_original)))


def overlap_outputs(model: Any, task: Task, store: FeatureStore, rows: np.ndarray,
                    truth: np.ndarray, starts: np.ndarray | None, context: Context,
                    batch_size: int) -> tuple[Any, np.ndarray] | None:
    """The rows a task reads besides the stored ones of a split (`Scoring.overlap_windows`:
    detection's windows between a recording's windows, `prediction_hop`) and the model's
    outputs on them, or `None` when it reads none.

    Args:
        model: the fold's model.
        task: the fold's task.
        store: the fold's store.
        rows: the split's (original) rows.
        truth: their targets.
        starts: every row's start in its clip (seconds), or `None`.
        context: the parameters and the feature hop.
        batch_size: the fold's training batch size (see `evaluate_splits`).
    """
    if starts is None or not len(rows):
        return None
    windows = task.scoring.overlap_windows(
        np.asarray(store.features[rows], dtype=np.float32), truth, store.clips[rows],
        starts[rows], context)
    if windows is None:
        return None
    return windows, predict_rows(model, windows.features, np.arange(len(windows.features)),
                                 max(batch_size, PREDICT_BATCH), tail_size=batch_size)


def with_overlap(stored: tuple[np.ndarray, Any, np.ndarray, np.ndarray | None],
                 extra: tuple[Any, np.ndarray] | None
                 ) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray | None]:
    """`(outputs, targets, clips, starts)` of a split's stored rows, followed by those of
    the rows read besides them (`overlap_outputs`: windows between the stored ones), if
    any."""
    if extra is None or stored[3] is None:
        return stored
    (out, y, clips, starts), (windows, more) = stored, extra
    return (np.concatenate([out, more]), np.concatenate([y, windows.targets]),
            np.concatenate([clips, windows.clips]), np.concatenate([starts, windows.starts]))


def choose_postprocessing(task: Task, result: Evaluation, truth: Mapping[str, Any],
                          pooled: Callable[[str], Any], n_outputs: int
                          ) -> Postprocessing | None:
    """The task's post-processing chosen on the validation rows alone (stitched by clip
    where they can be), with the training rows' targets to learn from (never a test row),
    applied to `result.context.params`; `None` without validation rows (a refit) or when
    the task chooses nothing.

    Args:
        task: the fold's task.
        result: the evaluation so far (outputs of every split, the context).
        truth: split -> targets.
        pooled: split -> `(clips, outputs, targets)` stitched by clip, or `None`.
        n_outputs: units of the output head.

    Returns:
        The choice, or `None`.
    """
    if not task.chosen_on_validation or "val" not in result.outputs \
            or not np.isfinite(result.outputs["val"]).all():
        return None
    clip = pooled("val")
    level = "clip" if clip is not None else "segment"
    y, out = (clip[2], clip[1]) if clip is not None else (truth["val"], result.outputs["val"])
    training = pooled("train") if "train" in truth else None
    context = result.context.replace(training_targets=training[2] if training is not None
                                     else truth.get("train"))
    choice = task.scoring.choose_postprocessing(y, out, n_outputs, context)
    if choice is None:
        return None
    choice.level = level
    result.context = result.context.replace(params=choice.apply(result.context.params or {}))
    return choice


def prediction_table(store: FeatureStore, rows: np.ndarray, outputs: np.ndarray, task: Task,
                     context: Context) -> pd.DataFrame:
    """The predictions of `rows`: row, item, clip, label, target, then the task's columns
    (`Scoring.prediction_columns`: predicted, scores)."""
    meta = store.meta.iloc[rows]
    table = pd.DataFrame({"row": rows, "item": meta["item"].to_numpy(),
                          "clip": meta["clip"].to_numpy(), "label": meta["label"].to_numpy(),
                          "target": meta["target"].to_numpy()})
    columns = task.scoring.prediction_columns(outputs, store.classes, context)
    for name, values in columns.items():
        table[name] = values
    return table


def predictions_csv(store: FeatureStore, rows: np.ndarray, outputs: np.ndarray, task: Task,
                    context: Context) -> str:
    """The test predictions as CSV text (`prediction_table`)."""
    return prediction_table(store, rows, outputs, task, context).to_csv(index=False)


HELD_OUT = ("val", "rank")
"""The held-out splits of a fold besides its test items, whose predictions are kept
(`val_predictions_fold_<i>.csv`): the validation items, and those that rank instances
(`rank_split`)."""


def validation_predictions_csv(store: FeatureStore, rows: Mapping[str, np.ndarray],
                               outputs: Mapping[str, np.ndarray], task: Task,
                               context: Context) -> str | None:
    """The predictions of the fold's held-out rows that are not test rows (`HELD_OUT`), as
    CSV text with a `split` column first, or `None` when the fold has none (a refit).

    An ensemble of instances chooses its weights on them (`xval.ensembles`), never
    on the test rows; only a task with a fusion rule is fused (`Scoring.fusion`; `None` for
    the others)."""
    if task.scoring.fusion is None:
        return None
    tables = [prediction_table(store, rows[key], outputs[key], task, context)
              .assign(split=key) for key in HELD_OUT if key in outputs and len(rows[key])]
    if not tables:
        return None
    table = pd.concat(tables, ignore_index=True)
    return table[["split", *[c for c in table.columns if c != "split"]]].to_csv(index=False)
