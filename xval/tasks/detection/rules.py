"""`EventRules`: how a detector's frame probabilities become events (threshold, median
filter, shortest event and gap: the detection parameters of `[training]`), and how a fold
chooses the threshold and the median filter on its validation recordings.

Used by the detection task (`xval.tasks.detection`) wherever frame probabilities turn into
events: scoring, plots, predictions, `python -m xval detect`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xval.core.records import Postprocessing
from xval.core.settings import Settings
from xval.tasks.base import Pooled
from xval.tasks.detection.events import (
    Event,
    FileEvent,
    activity_to_events,
    event_metrics,
    stitch_windows,
)
from xval.tasks.metrics import sigmoid

THRESHOLD_GRID = (0.5, 0.4, 0.6, 0.3, 0.7)
"""Thresholds tried per class on the validation recordings, in order of preference (a tie
keeps the earlier, nearer the default 0.5)."""
MEDIAN_GRID_SECONDS = (0.0, 0.06, 0.1, 0.2)
"""Median-filter lengths tried on the validation recordings (a tie keeps the shorter)."""
CHOSEN_ON_VALIDATION = ("detection_threshold", "median_filter_seconds")
"""The post-processing parameters a fold chooses on its validation rows when the instance
leaves them unset (`None`, the detection default)."""


@dataclasses.dataclass(frozen=True, eq=False)
class EventRules(Settings):
    """The post-processing of frame probabilities into events.

    Attributes:
        detection_threshold: a frame is active at this probability (one per class, or one
            for all).
        median_filter_seconds: median filter of the frame decisions (0: none).
        min_event_seconds: shorter events are dropped.
        min_gap_seconds: shorter gaps between two events are bridged.
    """

    detection_threshold: float | list[float] = 0.5
    median_filter_seconds: float = 0.0
    min_event_seconds: float = 0.0
    min_gap_seconds: float = 0.0

    @classmethod
    def of(cls, values: Mapping[str, Any] | None) -> EventRules:
        """The rules of instance parameters (a saved `params.json`'s, or either with a
        fold's choice applied: `Postprocessing.apply`), the defaults where absent or unset
        (`None`)."""
        if isinstance(values, EventRules):
            return values
        given = {k: v for k, v in (values or {}).items()
                 if k in POSTPROCESSING and v is not None}
        return cls(**given)

    def events(self, prob: np.ndarray, frame_seconds: float, classes: Sequence[str],
               offset_s: float = 0.0, duration_s: float | None = None) -> list[Event]:
        """Events `(onset_s, offset_s, label)` of one window's frame probabilities (cut at
        `duration_s`, the end of the file, when given)."""
        median = int(round(self.median_filter_seconds / frame_seconds)) | 1
        return activity_to_events(
            prob, frame_seconds=frame_seconds, classes=classes,
            threshold=self.detection_threshold, median_filter_frames=median,
            min_event_seconds=self.min_event_seconds, min_gap_seconds=self.min_gap_seconds,
            offset_s=offset_s, duration_s=duration_s)

    def file_events(self, probs: Sequence[np.ndarray], frame_seconds: float,
                    classes: Sequence[str]) -> list[FileEvent]:
        """The events of every window or recording, `(file, onset_s, offset_s, label)`,
        files named `file<i>` as `reference_events` names them."""
        return [(f"file{i}", *e) for i, prob in enumerate(probs)
                for e in self.events(prob, frame_seconds, classes)]


POSTPROCESSING = EventRules().to_dict()
"""The post-processing parameters and their defaults."""


def reference_events(ys: Sequence[np.ndarray], frame_seconds: float,
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


def frames(y_true: Any, outputs: Any, num_outputs: int) -> tuple[Any, Any, np.ndarray,
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


def choose_rules(y_true: Any, outputs: Any, num_outputs: int,
                 params: Mapping[str, Any] | None, frame_seconds: float | None,
                 classes: Sequence[str] | None) -> Postprocessing | None:
    """The per-class threshold and the median-filter length that maximise event F1 on the
    given (validation) rows, from `THRESHOLD_GRID` and `MEDIAN_GRID_SECONDS`
    (`Detection.choose_postprocessing` says more).

    Returns:
        A `Postprocessing` of the chosen values (`split="val"`), or `None` when the
        instance sets both parameters or `frame_seconds` is unknown.
    """
    free = [k for k in CHOSEN_ON_VALIDATION if (params or {}).get(k) is None]
    if not free or frame_seconds is None:
        return None
    ys, probs, _, _ = frames(y_true, outputs, num_outputs)
    names = list(classes) if classes else [f"class{i}" for i in range(num_outputs)]
    base = EventRules.of(params)
    medians = MEDIAN_GRID_SECONDS if "median_filter_seconds" in free \
        else (base.median_filter_seconds,)
    grid = THRESHOLD_GRID if "detection_threshold" in free else (base.detection_threshold,)
    reference, durations = reference_events(ys, frame_seconds, names)
    best: tuple[float, EventRules] = (-math.inf, base)
    for median in medians:
        rules = base.replace(median_filter_seconds=median)
        rules = rules.replace(detection_threshold=tuned_class_thresholds(
            reference, probs, frame_seconds, names, rules, grid, list(durations)))
        score = event_metrics(reference, rules.file_events(probs, frame_seconds, names),
                              files=list(durations), classes=names)["event_f1"]
        score = score if np.isfinite(score) else -1.0
        if score > best[0]:
            best = (score, rules)
    return Postprocessing(values={k: best[1][k] for k in free}, classes=names,
                          score=best[0] if best[0] >= 0 else None)


def tuned_class_thresholds(reference: list[FileEvent], probs: Sequence[np.ndarray],
                           frame_seconds: float, names: list[str], rules: EventRules,
                           grid: Sequence[Any], files: list[str]) -> list[float]:
    """Per class, the threshold of `grid` with the best class-wise event F1 (the first on a
    tie; the default where no threshold scores)."""
    scores = []
    for threshold in grid:
        trial = rules.replace(detection_threshold=threshold)
        found = event_metrics(reference, trial.file_events(probs, frame_seconds, names),
                              files=files, classes=names)["class_f1"]
        scores.append([found[c] if np.isfinite(found[c]) else -1.0 for c in names])
    table = np.asarray(scores)  # (grid, classes)
    per_class = [np.broadcast_to(np.asarray(t, dtype=float), (len(names),)) for t in grid]
    pick = np.argmax(table, axis=0)  # the first maximum: the preferred on a tie
    default = float(EventRules().detection_threshold)  # type: ignore[arg-type]
    return [float(per_class[pick[c]][c]) if table[pick[c], c] >= 0 else default
            for c in range(len(names))]


def stitch_recordings(outputs: np.ndarray, targets: np.ndarray, clips: np.ndarray,
                      starts: Sequence[float] | np.ndarray | None,
                      frame_seconds: float | None) -> Pooled | None:
    """Recordings stitched from their windows (`Detection.pool_by_clip` says more):
    probabilities averaged where windows overlap, targets merged.

    Returns:
        `(clip_ids, clip_logits, clip_targets)`, or `None` without `starts` and
        `frame_seconds`, or when two windows of a recording start on the same frame.
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
