"""`EventRules`: how a detector's frame probabilities become events (threshold, median
filter, shortest event and gap: the detection parameters of `[training]`), the annotated
events of frame targets, and recordings stitched from their windows.

Used by the detection task (`xval.tasks.detection`) wherever frame probabilities turn into
events: scoring, plots, predictions, `python -m xval detect`; a fold chooses them on its
validation recordings (`xval.tasks.detection.choice`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xval.core.settings import Settings
from xval.tasks.base import Pooled
from xval.tasks.detection.events import (
    Event,
    FileEvent,
    activity_to_events,
    stitch_windows,
)
from xval.tasks.metrics import sigmoid


@dataclasses.dataclass(frozen=True, eq=False)
class EventRules(Settings):
    """The post-processing of frame probabilities into events.

    Attributes:
        detection_threshold: a frame is active at this probability (one per class, or one
            for all).
        median_filter_seconds: median filter of the frame decisions (0: none).
        min_event_seconds: shorter events are dropped (one per class, or one for all).
        min_gap_seconds: shorter gaps between two events of a class are bridged (one per
            class, or one for all).
    """

    detection_threshold: float | list[float] = 0.5
    median_filter_seconds: float = 0.0
    min_event_seconds: float | list[float] = 0.0
    min_gap_seconds: float | list[float] = 0.0

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

    def median_frames(self, frame_seconds: float) -> int:
        """The median filter's length in frames (odd; 1: none)."""
        return int(round(self.median_filter_seconds / frame_seconds)) | 1

    def events(self, prob: np.ndarray, frame_seconds: float, classes: Sequence[str],
               offset_s: float = 0.0, duration_s: float | None = None) -> list[Event]:
        """Events `(onset_s, offset_s, label)` of one window's frame probabilities (cut at
        `duration_s`, the end of the file, when given)."""
        return activity_to_events(
            prob, frame_seconds=frame_seconds, classes=classes,
            threshold=self.detection_threshold,
            median_filter_frames=self.median_frames(frame_seconds),
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
