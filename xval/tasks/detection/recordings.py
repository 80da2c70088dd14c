"""Whole annotated recordings scored as the experiment scores its test recordings
(`python -m xval evaluate --annotations`): the events a detector found against the
annotation's, the frames against the annotation laid on the frame grid, and PSDS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from xval.tasks.detection.errors import error_metrics
from xval.tasks.detection.events import detection_metrics, event_metrics, frame_metrics
from xval.tasks.detection.frames import frame_targets
from xval.tasks.detection.psds import recording_psds
from xval.tasks.detection.rules import EventRules

if TYPE_CHECKING:
    import pandas as pd


def recording_metrics(events: pd.DataFrame, found: Mapping[str, Mapping[str, Any]],
                      classes: list[str], durations: Mapping[str, float],
                      grid: Mapping[str, int]) -> dict[str, Any]:
    """The event, segment and frame metrics of whole recordings, PSDS, and event F1 per
    class.

    Args:
        events: the annotation (`file`, `onset_s`, `offset_s`, `label`).
        found: each file's `detect_files` result (`events`, `activity`, `frame_seconds`,
            `postprocessing`).
        classes: the model's classes.
        durations: each file's duration, seconds.
        grid: the store's frame grid (`sample_rate`, `hop_length`), which the annotation
            is laid on (`frame_targets`) for the frame metrics.
    """
    files = list(found)
    estimated = [(f, on, off, label) for f, r in found.items()
                 for on, off, label in r["events"]]
    metrics = events_metrics(events, estimated, files, classes, durations)
    first = next(iter(found.values()))
    post = EventRules.of(first["postprocessing"])
    truth = np.concatenate([frame_targets(events[events["file"] == f], len(r["times"]),
                                          classes=classes, **grid) for f, r in found.items()])
    metrics.update(frame_metrics(truth, np.concatenate([r["activity"] for r in found.values()]),
                                 post.detection_threshold))
    frame_seconds = float(first["frame_seconds"])
    reference = [(str(f), float(on), float(off), str(label)) for f, on, off, label
                 in events[["file", "onset_s", "offset_s", "label"]].itertuples(index=False)]
    metrics.update(recording_psds(
        reference, {f: r["activity"] for f, r in found.items()}, durations,
        frame_seconds=frame_seconds, classes=classes,
        median_filter_frames=post.median_frames(frame_seconds),
        min_event_seconds=post.min_event_seconds, min_gap_seconds=post.min_gap_seconds))
    return metrics


def events_metrics(reference: pd.DataFrame, estimated: list[tuple[str, float, float, str]],
                   files: list[str], classes: list[str], durations: Mapping[str, float]
                   ) -> dict[str, Any]:
    """The experiment's event and segment metrics of whole recordings, the event error
    counts, and event F1 per class."""
    out: dict[str, Any] = dict(detection_metrics(reference, estimated, files=files,
                                                 classes=classes, durations=durations))
    onset = event_metrics(reference, estimated, files=files, classes=classes,
                          evaluate_offset=False)
    by_class = event_metrics(reference, estimated, files=files, classes=classes)
    out["onset_f1"] = onset["event_f1"]
    out.update(error_metrics(reference, estimated, files=files, classes=classes))
    out["class_f1"] = by_class["class_f1"]
    return out
