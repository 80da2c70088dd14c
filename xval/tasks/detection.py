"""Sound event detection: which event classes are active in every feature frame.

A detection store (`python -m preprocessing detection`) keeps, beside `features.npy`, the
frame-level targets `frame_targets.npy`, a `(rows, frames, classes)` array of 0/1 aligned to
the feature frames. A detector (`resnet_detector`, the stock one; `crnn_detector`,
`gru_detector`, `conformer_detector`) gives one logit per frame and class; training
minimises the per-frame binary cross-entropy (multi-label: several classes may be active
at once).

Evaluation turns the frame probabilities into events (`xval.events.activity_to_events`:
threshold, median filter, shortest event and gap, all instance parameters) and scores them
against the events of the frame targets with sed_eval, the DCASE reference implementation:
segment-based F1 and error rate over 1 s segments, and event-based F1 with a 200 ms onset
collar (offsets within 200 ms or half the event's length). Frame-level F1, precision and
recall come from scikit-learn. Two levels, as for classification's segments and clips:
each window (row) scored as its own file (the "segment" level, `window event F1`), and, where
recordings were cut into several windows, each recording stitched back from its windows
(`pool_by_clip`: probabilities averaged where windows overlap) and scored whole (the "clip"
level, `recording event F1`: the headline, and what instances are selected on). At the
window level an event cut by a window border counts twice; at the recording level once.

Rare events: with `class_weights=True` the per-frame cross-entropy weights every active
frame of class `c` by `negatives_c / positives_c`, counted over the fold's training rows
only and clipped to `[1, MAX_POSITIVE_WEIGHT]` (`positive_weights`); inactive frames
weigh 1 (`xval.losses.WeightedFrameCrossentropy`). The recorded `loss` metrics stay the
unweighted cross-entropy, comparable between instances; the history's `loss` and
`val_loss` are the weighted one that training minimises.

Per fold, the first `PLOT_WINDOWS` test windows holding an annotated event (the first
windows when none does) are kept with their frame probabilities (`fold_plot_data`), and
`plots` draws them against the annotation as `plots/activity_fold_<i>.png`.
"""

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import xval.tasks.figures as plots
from xval.core.errors import ConfigurationError, DatasetError, ParameterError
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, InstanceSummary, Postprocessing, Status
from xval.tasks.base import Params, Pooled, StoreView, Task
from xval.tasks.events import (
    Event,
    FileEvent,
    activity_to_events,
    detection_metrics,
    event_metrics,
    frame_metrics,
    stitch_windows,
)
from xval.tasks.metrics import sigmoid
from xval.tasks.psds import recording_psds
from xval.tasks.registry import register

EVENT, BACKGROUND = "event", "background"
MAX_POSITIVE_WEIGHT = 100.0
"""The largest weight `class_weights=True` gives an active frame (a class active in one
frame of 10,000 would otherwise weigh 10,000 and make training unstable)."""
PLOT_WINDOWS = 4
"""Test windows drawn per fold in `plots/activity_fold_<i>.png`."""
POSTPROCESSING = {"detection_threshold": 0.5, "median_filter_seconds": 0.0,
                  "min_event_seconds": 0.0, "min_gap_seconds": 0.0}
THRESHOLD_GRID = (0.5, 0.4, 0.6, 0.3, 0.7)
"""Thresholds tried per class on the validation recordings, in order of preference (a tie
keeps the earlier, nearer the default 0.5)."""
MEDIAN_GRID_SECONDS = (0.0, 0.06, 0.1, 0.2)
"""Median-filter lengths tried on the validation recordings (a tie keeps the shorter)."""
CHOSEN_ON_VALIDATION = ("detection_threshold", "median_filter_seconds")
"""The post-processing parameters a fold chooses on its validation rows when the instance
leaves them unset (`None`, the detection default)."""

DETECTOR_EVALUATION = (
    "A detector is scored on annotated recordings: give the annotation CSV with "
    "--annotations and the folder of its recordings as SOURCE (`python -m xval evaluate "
    "MODEL RECORDINGS --annotations annotations.csv`)."
)


def postprocessing(params: Params | None) -> dict[str, Any]:
    """The post-processing parameters of `params` (instance parameters, a saved
    `params.json`'s, or either with a fold's choice applied: `Postprocessing.apply`), the
    defaults of `POSTPROCESSING` where absent or unset (`None`)."""
    given = params or {}
    return {k: v if given.get(k) is None else given[k] for k, v in POSTPROCESSING.items()}


def positive_weights(y: np.ndarray, max_weight: float = MAX_POSITIVE_WEIGHT,
                     chunk: int = 4096) -> list[float]:
    """Weight of an active frame of each class: inactive over active frames, clipped.

    Args:
        y: frame targets of the fold's training rows, `np.ndarray [shape=(rows, frames,
            classes)]` of 0/1 (a memmap is read in chunks).
        max_weight: the largest weight. Defaults to `MAX_POSITIVE_WEIGHT` (100).
        chunk: rows read at once. Defaults to `4096`.

    Returns:
        list of floats, one per class, in `[1, max_weight]`: `negatives / positives`, 1 for
        a class active in at least half the frames, and 1 for a class never active in
        the training rows (its weight multiplies nothing).
    """
    classes = y.shape[-1]
    positives = np.zeros(classes, dtype=np.float64)
    total = 0
    for start in range(0, len(y), chunk):
        block = np.asarray(y[start:start + chunk], dtype=np.float64).reshape(-1, classes)
        positives += block.sum(axis=0)
        total += block.shape[0]
    negatives = total - positives
    ratio = np.divide(negatives, positives, out=np.ones(classes), where=positives > 0)
    return [float(w) for w in np.clip(ratio, 1.0, max_weight).round(6)]


@register
class Detection(Task):
    """Frame-level multi-label detection of event classes in windows of recordings."""

    name = "detection"
    head_name = "frame_logits"
    output = "frames"
    history_metrics = ("loss", "frame_accuracy")
    metric_names = ("loss", "event_f1", "onset_f1", "event_precision", "event_recall",
                    "segment_f1", "segment_error_rate", "frame_f1", "frame_precision",
                    "frame_recall", "psds1", "psds2")
    maximize = ("event_f1", "onset_f1", "event_precision", "event_recall", "segment_f1",
                "frame_f1", "frame_precision", "frame_recall", "frame_accuracy", "psds1",
                "psds2")
    metric_ranges = {"loss": (0.0, math.inf), "segment_error_rate": (0.0, math.inf),
                     **{name: (0.0, 1.0) for name in maximize}}
    selection_metric = "event_f1"
    has_classes = False  # the store's classes are event classes, not one label per row
    extra_arrays = ("frame_targets.npy",)
    clip_is_segment_without_clips = False  # a window's score is not its recording's
    level_names = {"segment": "window", "clip": "recording"}
    chosen_on_validation = CHOSEN_ON_VALIDATION
    training_defaults = {"learning_rate": 0.003}
    """Measured on two synthetic sets (docs/results.md, detection): with `resnet_detector`
    (and `crnn_detector` with `freq_pool=2`), 0.003 fits the training recordings where the
    shared 0.001 underfits."""

    @property
    def weights_classes(self) -> bool:
        """`class_weights=True` weights active frames (see the module)."""
        return True

    # -- targets ---------------------------------------------------------------------------

    def encode_targets(self, meta: pd.DataFrame,
                       classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        if not classes:
            raise DatasetError("A detection store needs its event classes (classes=[...]).")
        labels = set(meta["label"].astype(str))
        if not labels <= {EVENT, BACKGROUND}:
            raise DatasetError(
                f"Detection rows are labelled {EVENT!r} or {BACKGROUND!r} (whether a window "
                f"holds an event); got {sorted(labels - {EVENT, BACKGROUND})[:5]}."
            )
        meta["target"] = (meta["label"].astype(str) == EVENT).astype(int)
        return meta, list(classes)

    def targets(self, meta: pd.DataFrame) -> np.ndarray:
        return meta["target"].to_numpy(np.int64)

    def store_targets(self, store: StoreView) -> np.ndarray:
        path = store.path / "frame_targets.npy"
        if not path.is_file():
            raise DatasetError(f"{store.path} is a detection store without frame_targets.npy; "
                               "rebuild it with `python -m preprocessing detection`.")
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def stratify_labels(self, store: StoreView) -> np.ndarray | None:
        return store.meta["label"].to_numpy(str)

    def num_outputs(self, store: StoreView) -> int:
        return len(store.classes)

    def keras_targets(self, y: np.ndarray, params: Params, num_outputs: int) -> np.ndarray:
        return np.asarray(y, dtype=np.float32)

    def check_params(self, params: Params, where: str) -> None:
        super().check_params(params, where)
        if params.get("label_smoothing", 0):
            raise ParameterError(f"{where}: label_smoothing needs a task with classes; "
                                 "detection targets are per-frame 0/1.")

    # -- model -----------------------------------------------------------------------------

    def loss(self, params: Params, *, train_targets: np.ndarray | None = None) -> Any:
        """Per-frame binary cross-entropy on logits; with `class_weights=True`, active
        frames weighted per class by `positive_weights(train_targets)`.

        Args:
            params: the instance parameters.
            train_targets: frame targets of the fold's training rows, `np.ndarray
                [shape=(rows, frames, classes)]`; needed when `params["class_weights"]`.

        Raises:
            ValueError: when `class_weights` is set and `train_targets` is not given.
        """
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        if not params.get("class_weights"):
            return keras.losses.BinaryCrossentropy(from_logits=True)
        if train_targets is None:
            raise ValueError("class_weights=True: the detection loss weights active frames "
                             "from the fold's training rows; pass train_targets=.")
        from xval.tasks.losses import WeightedFrameCrossentropy  # noqa: PLC0415  (imports keras)

        return WeightedFrameCrossentropy(positive_weights(train_targets))

    def keras_metrics(self, params: Params) -> list[Any]:
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        return [keras.metrics.BinaryAccuracy(name="frame_accuracy", threshold=0.0)]

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int, *,
                 params: Params | None = None, frame_seconds: float | None = None,
                 classes: Sequence[str] | None = None, split: str | None = None,
                 whole_files: bool = False, **context: Any) -> dict[str, Any]:
        """Detection metrics of windows, or of recordings of different lengths.

        Args:
            y_true: `(rows, frames, classes)` 0/1 frame targets, or a list of
                `(frames_i, classes)` arrays (stitched recordings, see `pool_by_clip`).
            outputs: the model's logits, in the same form.
            num_outputs: the number of event classes.
            params: the instance's parameters (post-processing, see `postprocessing`).
            frame_seconds: time between frames; without it, only the loss and frame
                metrics.
            classes: the event class names.
            split: the split scored (`"train"`, `"val"`, `"test"`), or `None`.
            whole_files: whether each row (or list entry) is a whole recording: stitched
                recordings, or windows of a store that cut no recording. Defaults to
                `False`.
            **context: other context keywords (see `Task.evaluate`), unused.

        Returns:
            dict of `loss`, `frame_*`, and with `frame_seconds` the sed_eval metrics
            (`segment_f1`, `segment_error_rate`, `event_f1`, ...), each row or recording
            scored as its own file; and for whole recordings of the validation and test
            splits `psds1` and `psds2` (`xval.psds`, recording level; not on the training
            split, whose 50 operating points would only cost time).
        """
        ys, probs, flat_y, flat_p = _frames(y_true, outputs, num_outputs)
        eps = 1e-7
        bce = -(flat_y * np.log(flat_p + eps) + (1 - flat_y) * np.log(1 - flat_p + eps))
        post = postprocessing(params)
        out: dict[str, Any] = {"loss": float(bce.mean())}
        out.update(frame_metrics(flat_y, flat_p, post["detection_threshold"]))
        if frame_seconds is None:
            return out
        names = list(classes) if classes else [f"class{i}" for i in range(num_outputs)]
        reference, durations = _reference(ys, frame_seconds, names)
        estimated = self.file_events(probs, frame_seconds, names, post)
        out.update(detection_metrics(reference, estimated, files=list(durations),
                                     classes=names, durations=durations))
        out["onset_f1"] = event_metrics(reference, estimated, files=list(durations),
                                        classes=names, evaluate_offset=False)["event_f1"]
        if whole_files and split != "train":
            median = int(round(post["median_filter_seconds"] / frame_seconds)) | 1
            out.update(recording_psds(
                reference, {f"file{i}": p for i, p in enumerate(probs)}, durations,
                frame_seconds=frame_seconds, classes=names, median_filter_frames=median,
                min_event_seconds=post["min_event_seconds"],
                min_gap_seconds=post["min_gap_seconds"]))
        return {k: (float(v) if v is not None else float("nan")) for k, v in out.items()}

    def file_events(self, probs: Sequence[np.ndarray], frame_seconds: float,
                    classes: Sequence[str], post: Mapping[str, Any]) -> list[FileEvent]:
        """The events of every window or recording, `(file, onset_s, offset_s, label)`,
        files named `file<i>` as `_reference` names them."""
        return [(f"file{i}", *e) for i, prob in enumerate(probs)
                for e in self.events(prob, frame_seconds, classes, post)]

    def choose_postprocessing(self, y_true: Any, outputs: Any, num_outputs: int, *,
                              params: Params | None = None,
                              frame_seconds: float | None = None,
                              classes: Sequence[str] | None = None,
                              **context: Any) -> Postprocessing | None:
        """The per-class threshold and the median-filter length that maximise event F1 on
        the given (validation) rows, from `THRESHOLD_GRID` and `MEDIAN_GRID_SECONDS`.

        Only the parameters of `CHOSEN_ON_VALIDATION` that `params` leaves unset (`None`)
        are chosen. For each median length, each class keeps the threshold of its best
        class-wise event F1; the median length of the best overall event F1 wins. A class
        with no event in the rows keeps the default 0.5.

        Args:
            y_true: frame targets of the rows (windows, or stitched recordings).
            outputs: the model's logits, in the same form.
            num_outputs: the number of event classes.
            params: the instance's parameters.
            frame_seconds: time between frames; without it, nothing is chosen.
            classes: the event class names.
            **context: other context keywords, unused.

        Returns:
            A `Postprocessing` of the chosen values (`split="val"`), or `None` when the
            instance sets both parameters or `frame_seconds` is unknown.
        """
        free = [k for k in CHOSEN_ON_VALIDATION if (params or {}).get(k) is None]
        if not free or frame_seconds is None:
            return None
        ys, probs, _, _ = _frames(y_true, outputs, num_outputs)
        names = list(classes) if classes else [f"class{i}" for i in range(num_outputs)]
        base = postprocessing(params)
        medians = MEDIAN_GRID_SECONDS if "median_filter_seconds" in free \
            else (base["median_filter_seconds"],)
        grid = THRESHOLD_GRID if "detection_threshold" in free \
            else (base["detection_threshold"],)
        reference, durations = _reference(ys, frame_seconds, names)
        best: tuple[float, dict[str, Any]] = (-math.inf, base)
        for median in medians:
            post = {**base, "median_filter_seconds": median}
            thresholds = self._class_thresholds(reference, probs, frame_seconds, names, post,
                                                grid, list(durations))
            post["detection_threshold"] = thresholds
            score = event_metrics(reference, self.file_events(probs, frame_seconds, names, post),
                                  files=list(durations), classes=names)["event_f1"]
            score = score if np.isfinite(score) else -1.0
            if score > best[0]:
                best = (score, post)
        return Postprocessing(values={k: best[1][k] for k in free}, classes=names,
                              score=best[0] if best[0] >= 0 else None)

    def _class_thresholds(self, reference: list[FileEvent], probs: Sequence[np.ndarray],
                          frame_seconds: float, names: list[str], post: Mapping[str, Any],
                          grid: Sequence[Any], files: list[str]) -> list[float]:
        """Per class, the threshold of `grid` with the best class-wise event F1 (the first
        on a tie; the default where no threshold scores)."""
        scores = []
        for threshold in grid:
            trial = {**post, "detection_threshold": threshold}
            found = event_metrics(reference, self.file_events(probs, frame_seconds, names, trial),
                                  files=files, classes=names)["class_f1"]
            scores.append([found[c] if np.isfinite(found[c]) else -1.0 for c in names])
        table = np.asarray(scores)  # (grid, classes)
        per_class = [np.broadcast_to(np.asarray(t, dtype=float), (len(names),)) for t in grid]
        pick = np.argmax(table, axis=0)  # the first maximum: the preferred on a tie
        return [float(per_class[pick[c]][c]) if table[pick[c], c] >= 0
                else POSTPROCESSING["detection_threshold"] for c in range(len(names))]

    @staticmethod
    def events(prob: np.ndarray, frame_seconds: float, classes: Sequence[str],
               post: Mapping[str, float], offset_s: float = 0.0,
               duration_s: float | None = None) -> list[Event]:
        """Events `(onset_s, offset_s, label)` of one window's frame probabilities (cut at
        `duration_s`, the end of the file, when given)."""
        median = int(round(post["median_filter_seconds"] / frame_seconds)) | 1
        return activity_to_events(
            prob, frame_seconds=frame_seconds, classes=classes,
            threshold=post["detection_threshold"], median_filter_frames=median,
            min_event_seconds=post["min_event_seconds"],
            min_gap_seconds=post["min_gap_seconds"], offset_s=offset_s, duration_s=duration_s)

    def fold_plot_data(self, y_true: np.ndarray, outputs: np.ndarray, meta: pd.DataFrame, *,
                       params: Params | None = None, frame_seconds: float | None = None,
                       classes: Sequence[str] | None = None,
                       **context: Any) -> dict[str, Any] | None:
        y_true = np.asarray(y_true)
        if y_true.ndim != 3 or not len(y_true):
            return None
        with_events = np.flatnonzero(y_true.any(axis=(1, 2)))
        picked = (with_events if len(with_events) else np.arange(len(y_true)))[:PLOT_WINDOWS]
        prob = sigmoid(np.asarray(outputs, dtype=np.float64)[picked])
        names = list(classes) if classes else [f"class{i}" for i in range(y_true.shape[2])]
        post = postprocessing(params)
        meta = meta.reset_index(drop=True)
        windows = []
        for k, i in enumerate(picked.tolist()):
            record = meta.iloc[i]
            start = float(record["start"]) if "start" in meta and \
                np.isfinite(float(record["start"])) else 0.0
            events = self.events(prob[k], frame_seconds, names, post, offset_s=start) \
                if frame_seconds else []
            windows.append({
                "row": int(record["row"]) if "row" in meta else int(i),
                "item": str(record["item"]),
                "source": str(record["source"]) if "source" in meta else "",
                "start": start,
                "target": y_true[i].astype(int).tolist(),
                "probability": prob[k].round(3).tolist(),
                "events": [[round(a, 3), round(b, 3), c] for a, b, c in events],
            })
        return {"classes": names, "frame_seconds": frame_seconds,
                "threshold": post["detection_threshold"], "windows": windows,
                "with_events": bool(len(with_events))}

    def plots(self, layout: InstanceLayout, folds: Sequence[FoldResult],
              summary: InstanceSummary) -> list[Path]:
        written = []
        for fold in folds:
            i = fold.fold
            data_file = layout.plot_data(i)
            if fold.status != Status.OK or not data_file.is_file():
                continue
            data = json.loads(data_file.read_text())
            written.append(plots.activity_windows(
                data, layout.fold_plot("activity", i),
                title=f"Fold {i}: predicted activity against the annotation, "
                      f"{len(data['windows'])} test window(s)"
                      + ("" if data.get("with_events", True) else " (none annotated)")))
        return written

    def pool_by_clip(self, outputs: np.ndarray, targets: np.ndarray,
                     clips: np.ndarray, *, starts: Sequence[float] | None = None,
                     frame_seconds: float | None = None) -> Pooled | None:
        """Recordings stitched from their windows: the clip level of detection.

        The windows of each recording (`clip`) are laid on its time line at their `start`
        (`xval.events.stitch_windows`): probabilities averaged where windows overlap, the
        targets of overlapping frames merged. Events are then found and scored over whole
        recordings, so an event cut by a window border counts once, as in the annotation.
        The time line ends with the last window; gaps between windows (a hop longer than a
        window) are silence: no activity, no annotation.

        Args:
            outputs: `(rows, frames, classes)` logits of the rows.
            targets: their `(rows, frames, classes)` frame targets.
            clips: the recording of each row.
            starts: the start of each row in its recording, seconds.
            frame_seconds: time between frames.

        Returns:
            `(clip_ids, clip_logits, clip_targets)` with lists of `(frames_i, classes)`
            arrays (one per recording, first-seen order), or `None` without `starts` and
            `frame_seconds`, or when two windows of a recording start on the same frame (a
            store without window starts).
        """
        if starts is None or frame_seconds is None:
            return None
        at = np.asarray(starts, dtype=np.float64)
        if not np.isfinite(at).all():
            return None
        outputs, targets, clips = np.asarray(outputs), np.asarray(targets), np.asarray(clips)
        names, first, inverse = np.unique(clips, return_index=True, return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # rows grouped by clip, in row order
        groups = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1])
        firsts = np.rint(at / frame_seconds)
        logits, truths = [], []
        for k in np.argsort(first):  # recordings in first-seen order
            rows = groups[k]
            if len(np.unique(firsts[rows])) < len(rows):
                return None  # windows of a recording without distinct starts: no time line
            prob = stitch_windows(sigmoid(outputs[rows].astype(np.float64)), at[rows],
                                  frame_seconds)
            prob = np.clip(prob, 1e-7, 1 - 1e-7)
            logits.append(np.log(prob) - np.log1p(-prob))
            truths.append(stitch_windows(targets[rows], at[rows], frame_seconds,
                                         reduce="max"))
        return names[np.argsort(first)], logits, truths

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        if clips:  # windows cut from longer recordings: the stitched recording first
            return [("clip", "event_f1", "recording event F1"),
                    ("clip", "segment_f1", "recording segment F1"),
                    ("clip", "psds1", "recording PSDS1"), ("clip", "psds2", "recording PSDS2"),
                    ("segment", "event_f1", "window event F1"),
                    ("segment", "frame_f1", "frame F1")]
        return [("segment", "event_f1", "event F1"), ("segment", "segment_f1", "segment F1"),
                ("segment", "psds1", "PSDS1"), ("segment", "psds2", "PSDS2"),
                ("segment", "frame_f1", "frame F1")]

    # -- outputs ---------------------------------------------------------------------------

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str], *,
                           frame_seconds: float | None = 0.01, params: Params | None = None,
                           **context: Any) -> dict[str, Any]:
        post = postprocessing(params)
        prob = sigmoid(np.asarray(outputs, dtype=np.float64))
        frame_seconds = frame_seconds or 0.01
        events = [json.dumps([[round(a, 3), round(b, 3), c] for a, b, c in
                              self.events(p, frame_seconds, classes, post)])
                  for p in prob]
        return {"predicted": events, "max_probability": prob.max(axis=(1, 2)).round(4)}

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str], *, frame_seconds: float | None = 0.01,
                       params: Params | None = None,
                       **context: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        post = postprocessing(params)
        prob = sigmoid(np.asarray(outputs, dtype=np.float64))
        frame_seconds = frame_seconds or 0.01
        segments: list[dict[str, Any]] = []
        events: list[Event] = []
        for p, start in zip(prob, starts):
            found = self.events(p, frame_seconds, classes, post, offset_s=start)
            events += found
            segments.append({"start": start,
                             "scores": {c: float(p[:, i].max()) for i, c in enumerate(classes)}})
        return segments, {"scores": {"events": float(len(events))},
                          "predicted": "; ".join(f"{a:.2f}-{b:.2f} {c}" for a, b, c in events)
                          or "no event"}

    # -- python -m xval evaluate -----------------------------------------------------------

    def file_targets(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        raise ConfigurationError(DETECTOR_EVALUATION)

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        raise ConfigurationError(DETECTOR_EVALUATION)

    def format_level(self, data: dict[str, Any]) -> list[str]:
        """The overall metrics of annotated recordings, then event F1 per class."""
        overall = {k: v for k, v in data.items() if k != "class_f1"}
        lines = [", ".join(f"{k} {v:.4f}" for k, v in overall.items())]
        lines += [f"  {c}: event_f1 {v:.4f}" for c, v in data.get("class_f1", {}).items()]
        return lines

    def level_records(self, level: str, data: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
        """`(level, label, metric, value)` rows: the overall metrics (empty label), then
        `event_f1` per class."""
        rows = [(level, "", k, v) for k, v in data.items() if k != "class_f1"]
        return rows + [(level, c, "event_f1", v) for c, v in data.get("class_f1", {}).items()]


def _reference(ys: Sequence[np.ndarray], frame_seconds: float,
               names: list[str]) -> tuple[list[FileEvent], dict[str, float]]:
    """The annotated events of every window or recording (files `file<i>`) and each
    file's length in seconds."""
    reference: list[FileEvent] = []
    durations = {}
    for i, y in enumerate(ys):
        name = f"file{i}"
        durations[name] = len(y) * frame_seconds
        reference += [(name, *e) for e in activity_to_events(
            y, frame_seconds=frame_seconds, classes=names)]
    return reference, durations


def _frames(y_true: Any, outputs: Any, num_outputs: int) -> tuple[Any, Any, np.ndarray,
                                                                  np.ndarray]:
    """Targets and probabilities per window or recording, and both flattened to
    `(frames, classes)`: windows (one array, flattened without a copy) or recordings of
    different lengths (lists, concatenated)."""
    if isinstance(outputs, (list, tuple)):  # recordings of different lengths
        ys = [np.asarray(y, dtype=np.float32).reshape(-1, num_outputs) for y in y_true]
        probs = [sigmoid(np.asarray(o, dtype=np.float64)).reshape(-1, num_outputs)
                 for o in outputs]
        return ys, probs, np.concatenate(ys), np.concatenate(probs)
    y = np.asarray(y_true, dtype=np.float32)
    prob = sigmoid(np.asarray(outputs, dtype=np.float64))
    return y, prob, y.reshape(-1, num_outputs), prob.reshape(-1, num_outputs)
