"""Sound event detection: frame activity -> event lists, and detection metrics.

Event and segment metrics are sed_eval's (the DCASE reference implementation), computed in
the project (`xval.tasks.detection.metrics`, with scipy's bipartite matching); frame
metrics by scikit-learn; the median filter by scipy. Each is imported by the function that
uses it, so that naming the detection task costs numpy alone (`xval.tasks.base`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from xval.tasks.detection.metrics import (
    EventList,
    error_rate,
    event_hits,
    f_measure,
    segment_counts,
)

# DCASE 2016-2017 (sed_eval's own defaults): 200 ms onset collar, offset collar of
# max(200 ms, 50% of the reference event's length); segment-based metrics on 1 s segments.
T_COLLAR = 0.2
PERCENTAGE_OF_LENGTH = 0.5
TIME_RESOLUTION = 1.0

Event = tuple[float, float, str]
"""`(onset_s, offset_s, label)`."""
FileEvent = tuple[str, float, float, str]
"""`(file, onset_s, offset_s, label)`."""


def activity_to_events(probabilities: np.ndarray, *, frame_seconds: float,
                       classes: Sequence[str], threshold: float | Sequence[float] = 0.5,
                       median_filter_frames: int = 1,
                       min_event_seconds: float | Sequence[float] = 0.0,
                       min_gap_seconds: float | Sequence[float] = 0.0, offset_s: float = 0.0,
                       duration_s: float | None = None) -> list[Event]:
    """Turns frame-level probabilities into a list of events.

    Per class: frames with a probability of at least `threshold` are active; a median filter
    of `median_filter_frames` frames (along time) smooths the binary activity; each run of
    active frames `[i, j)` becomes an event from `i * frame_seconds` to `j * frame_seconds`
    (the inverse of `xval.tasks.detection.frames.frame_targets`); gaps shorter than
    `min_gap_seconds` between two events are bridged, and only then are events shorter than
    `min_event_seconds` removed.

    Args:
        probabilities: `np.ndarray [shape=(frames, len(classes))]` (or `(frames,)` for one
            class) of activity probabilities.
        frame_seconds: time between frames (`hop_length / sample_rate`).
        classes: the class names of the columns.
        threshold: activity threshold, one for every class or one per class (in the order
            of `classes`). Defaults to `0.5`.
        median_filter_frames: odd median filter length in frames; `1` turns it off
            (`scipy.ndimage.median_filter`). Defaults to `1`.
        min_event_seconds: shorter events are removed (after gap bridging): one for every
            class or one per class. Defaults to `0.0`.
        min_gap_seconds: shorter gaps between events of one class are bridged: one for every
            class or one per class. Defaults to `0.0`.
        offset_s: time of frame 0 (a window's start in its recording). Defaults to `0.0`.
        duration_s: when given, offsets are clipped to it (the end of the recording).
            Defaults to `None`.

    Returns:
        list of `(onset_s, offset_s, label)`, sorted by onset, then label.

    Raises:
        ValueError: for a shape that does not match `classes`, a threshold outside (0, 1]
            or a list of thresholds not one per class, an even or non-positive
            `median_filter_frames`, or negative durations.
    """
    names = list(classes)
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[1] != len(names):
        raise ValueError(f"probabilities of shape {np.shape(probabilities)} do not match "
                         f"classes={names}; expected (frames, {len(names)}).")
    thresholds = class_thresholds(threshold, names)
    _check_postprocessing(median_filter_frames, frame_seconds)
    shortest = class_seconds(min_event_seconds, names, "min_event_seconds")
    bridged = class_seconds(min_gap_seconds, names, "min_gap_seconds")
    active = (p >= thresholds[None, :]).astype(np.uint8)
    if median_filter_frames > 1:
        from scipy.ndimage import median_filter  # noqa: PLC0415  (scipy: when filtering)

        active = median_filter(active, size=(median_filter_frames, 1), mode="nearest")
    events = []
    for c, label in enumerate(names):
        padded = np.concatenate([[0], active[:, c], [0]])
        changes = np.flatnonzero(np.diff(padded))
        runs = [[offset_s + i * frame_seconds, offset_s + j * frame_seconds]
                for i, j in zip(changes[::2], changes[1::2])]
        for onset, offset in _bridge(runs, float(bridged[c])):
            if duration_s is not None:
                offset = min(offset, duration_s)
            if offset - onset >= shortest[c] - 1e-9 and offset > onset:
                events.append((float(onset), float(offset), label))
    return sorted(events, key=lambda e: (e[0], e[2]))


def class_thresholds(threshold: float | Sequence[float], names: Sequence[str]) -> np.ndarray:
    """One threshold per class: `threshold` repeated, or the per-class list checked.

    Args:
        threshold: one value in (0, 1] for every class, or one per class.
        names: the class names.

    Returns:
        `np.ndarray [shape=(len(names),)]`.

    Raises:
        ValueError: a value outside (0, 1], or a list of another length.
    """
    values = np.atleast_1d(np.asarray(threshold, dtype=float))
    if values.ndim != 1 or len(values) not in (1, len(names)):
        raise ValueError(f"threshold={threshold!r}: expected one value in (0, 1], or one per "
                         f"class ({len(names)}: {list(names)}).")
    if not ((values > 0) & (values <= 1)).all():
        raise ValueError(f"threshold={threshold}: expected a value in (0, 1].")
    return np.broadcast_to(values, (len(names),)) if len(values) == 1 else values


def class_seconds(seconds: float | Sequence[float], names: Sequence[str],
                  name: str) -> np.ndarray:
    """One duration per class: `seconds` repeated, or the per-class list checked.

    Args:
        seconds: one duration >= 0 for every class, or one per class.
        names: the class names.
        name: the parameter, for messages.

    Returns:
        `np.ndarray [shape=(len(names),)]`.

    Raises:
        ValueError: a negative or non-finite duration, or a list of another length.
    """
    values = np.atleast_1d(np.asarray(seconds, dtype=float))
    if values.ndim != 1 or len(values) not in (1, len(names)):
        raise ValueError(f"{name}={seconds!r}: expected one duration in seconds >= 0, or "
                         f"one per class ({len(names)}: {list(names)}).")
    if not (np.isfinite(values) & (values >= 0)).all():
        raise ValueError(f"{name}={seconds!r}: expected durations in seconds >= 0.")
    return np.broadcast_to(values, (len(names),)) if len(values) == 1 else values


def _check_postprocessing(median_filter_frames: int, frame_seconds: float) -> None:
    """Checks the median filter and the frame hop of `activity_to_events`.

    Raises:
        ValueError: for an even or non-positive `median_filter_frames`, or a
            `frame_seconds` not above 0.
    """
    if median_filter_frames < 1 or median_filter_frames % 2 == 0:
        raise ValueError(f"median_filter_frames={median_filter_frames}: expected an odd "
                         "number >= 1 (1 turns the filter off).")
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds={frame_seconds}: expected a time above 0.")


def _bridge(runs: list[list[float]], min_gap_seconds: float) -> list[list[float]]:
    """Bridges the short gaps between runs of one class.

    Args:
        runs: `[onset, offset]` of every run, sorted.
        min_gap_seconds: gaps shorter than this are bridged.

    Returns:
        The runs, those a short gap separated merged into one.
    """
    merged: list[list[float]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < min_gap_seconds - 1e-9:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return merged


def stitch_windows(windows: np.ndarray, starts_s: Sequence[float] | np.ndarray,
                   frame_seconds: float, *, reduce: str = "mean") -> np.ndarray:
    """Lays the frame arrays of overlapping windows on their recording's time line.

    Window `k` covers frames `round(starts_s[k] / frame_seconds)` onwards; where windows
    overlap, their frames are averaged (`reduce="mean"`, for probabilities) or the largest
    value is kept (`reduce="max"`, for 0/1 targets). Frames no window covers are 0.

    Args:
        windows: `np.ndarray [shape=(windows, frames, classes)]` of one recording.
        starts_s: the start of each window in the recording, in seconds.
        frame_seconds: time between frames (`hop_length / sample_rate`).
        reduce: `"mean"` or `"max"`. Defaults to `"mean"`.

    Returns:
        `np.ndarray [shape=(frames, classes)]` (float64), ending with the last window.

    Raises:
        ValueError: for windows that are not a 3-D array, starts of another length, a
            negative start, a `frame_seconds` not above 0 or an unknown `reduce`.
    """
    frames = np.asarray(windows, dtype=np.float64)
    starts = np.asarray(starts_s, dtype=np.float64).reshape(-1)
    if frames.ndim != 3 or len(starts) != len(frames):
        raise ValueError(f"windows of shape {frames.shape} and {len(starts)} start(s): "
                         "expected (windows, frames, classes) and one start per window.")
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce={reduce!r}: expected 'mean' or 'max'.")
    if not np.isfinite(starts).all() or (starts < 0).any():
        raise ValueError(f"window starts {starts.tolist()}: expected seconds >= 0.")
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds={frame_seconds}: expected a time above 0.")
    length = frames.shape[1]
    firsts = np.rint(starts / frame_seconds).astype(int)
    total = int(firsts.max()) + length
    line = np.zeros((total, frames.shape[2]))
    count = np.zeros((total, 1))
    for first, window in zip(firsts, frames):
        part = line[first:first + length]
        part[:] = np.maximum(part, window) if reduce == "max" else part + window
        count[first:first + length] += 1
    return line if reduce == "max" else line / np.maximum(count, 1)


def frame_metrics(y_true: np.ndarray, y_prob: np.ndarray,
                  threshold: float | Sequence[float] = 0.5) -> dict[str, float]:
    """Frame-level F1, precision and recall, pooled over frames and classes (micro).

    Args:
        y_true: `np.ndarray [shape=(..., classes)]` of 0/1 frame targets.
        y_prob: `np.ndarray`, same shape, of probabilities.
        threshold: a frame is predicted active at `y_prob >= threshold`: one threshold, or
            one per class (the last axis). Defaults to `0.5`.

    Returns:
        dict `frame_f1, frame_precision, frame_recall` (0 where undefined: no active
        frame predicted or annotated).

    Raises:
        ValueError: when the shapes differ, or per-class thresholds do not match the
            classes.
    """
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    thresholds = np.asarray(threshold, dtype=float)
    if thresholds.ndim and thresholds.shape != y_prob.shape[-1:]:
        raise ValueError(f"{thresholds.size} thresholds for {y_prob.shape[-1]} classes: "
                         "expected one threshold, or one per class.")
    if y_true.shape != y_prob.shape:
        raise ValueError(f"y_true of shape {y_true.shape} and y_prob of shape {y_prob.shape}: "
                         "expected the same shape.")
    from sklearn.metrics import precision_recall_fscore_support  # noqa: PLC0415  (scoring)

    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true.ravel() >= 0.5, (y_prob >= thresholds).ravel(),
        average="binary", zero_division=0)
    return {"frame_f1": float(f1), "frame_precision": float(precision),
            "frame_recall": float(recall)}


def detection_metrics(reference: pd.DataFrame | Iterable[FileEvent],
                      estimated: pd.DataFrame | Iterable[FileEvent], *, files: Iterable[str],
                      classes: Iterable[str], time_resolution: float = TIME_RESOLUTION,
                      t_collar: float = T_COLLAR,
                      percentage_of_length: float = PERCENTAGE_OF_LENGTH,
                      evaluate_offset: bool = True,
                      durations: Mapping[str, float] | None = None) -> dict[str, float]:
    """Segment- and event-based detection metrics, file by file, as sed_eval computes them
    (`xval.tasks.detection.metrics`: the DCASE reference's numbers, without sed_eval).

    Args:
        reference: annotated events: a `pandas.DataFrame` with the columns `file, onset_s,
            offset_s, label`, or a list of `(file, onset_s, offset_s, label)`.
        estimated: detected events, in the same form.
        files: every evaluated file, including those with no event in either list (their
            detections count as insertions).
        classes: the class names.
        time_resolution: segment length of the segment-based metrics in seconds. Defaults to
            `1.0` (DCASE).
        t_collar: onset (and offset) collar of the event-based metrics in seconds. Defaults
            to `0.2` (DCASE).
        percentage_of_length: the offset collar is the larger of `t_collar` and this
            fraction of the reference event's length. Defaults to `0.5` (DCASE, sed_eval).
        evaluate_offset: also require matching offsets; `False` matches on onsets only.
            Defaults to `True`.
        durations: dict file -> length in seconds, for the segment grid of each file.
            Defaults to `None` (up to the last event of the file).

    Returns:
        dict `segment_f1, segment_error_rate, event_f1, event_precision, event_recall`
        (overall, micro-averaged over classes; `nan` when neither list has an event).

    Raises:
        ValueError: for an event of a file not in `files` or of a label not in `classes`,
            an onset below 0 or an offset before its onset, or collars and a segment length
            outside their ranges.
    """
    _check_collars(t_collar, percentage_of_length)
    if not time_resolution > 0:
        raise ValueError(f"time_resolution={time_resolution}: expected a segment length in "
                         "seconds above 0.")
    labels, lists = file_lists(reference, estimated, files, classes)
    counts = np.zeros(6)
    for file, ref, est in lists:
        counts += segment_counts(ref, est, len(labels), time_resolution=time_resolution,
                                     length_s=(durations or {}).get(file))
    event = event_metrics(reference, estimated, files=[f for f, _, _ in lists], classes=labels,
                          evaluate_offset=evaluate_offset, t_collar=t_collar,
                          percentage_of_length=percentage_of_length)
    return {"segment_f1": f_measure(counts[0], counts[1], counts[2])[0],
            "segment_error_rate": error_rate(counts),
            **{k: event[k] for k in ("event_f1", "event_precision", "event_recall")}}


def event_metrics(reference: pd.DataFrame | Iterable[FileEvent],
                  estimated: pd.DataFrame | Iterable[FileEvent], *, files: Iterable[str],
                  classes: Iterable[str], evaluate_offset: bool = True,
                  t_collar: float = T_COLLAR,
                  percentage_of_length: float = PERCENTAGE_OF_LENGTH
                  ) -> dict[str, Any]:
    """Event-based F1 alone, overall and per class (as sed_eval computes it): cheaper than
    `detection_metrics`, for onset-only scoring and for choosing post-processing.

    Args:
        reference: annotated events (see `detection_metrics`).
        estimated: detected events, in the same form.
        files: every evaluated file.
        classes: the class names.
        evaluate_offset: also require matching offsets; `False` matches on onsets only.
            Defaults to `True`.
        t_collar: onset (and offset) collar in seconds. Defaults to `0.2` (DCASE).
        percentage_of_length: see `detection_metrics`. Defaults to `0.5`.

    Returns:
        dict `event_f1`, `event_precision`, `event_recall` (overall, micro over classes) and
        `class_f1` (class -> F1); `nan` where undefined (no event in either list).

    Raises:
        ValueError: as for `detection_metrics`.
    """
    _check_collars(t_collar, percentage_of_length)
    labels, lists = file_lists(reference, estimated, files, classes)
    by_class = np.zeros((len(labels), 3))
    for _, ref, est in lists:
        by_class += event_hits(ref, est, len(labels), t_collar=t_collar,
                                   percentage_of_length=percentage_of_length,
                                   evaluate_offset=evaluate_offset)
    f1, precision, recall = f_measure(*by_class.sum(axis=0))
    return {"event_f1": f1, "event_precision": precision, "event_recall": recall,
            "class_f1": {c: f_measure(*by_class[i])[0] for i, c in enumerate(labels)}}


def _check_collars(t_collar: float, percentage_of_length: float) -> None:
    """Refuses a collar that is not above 0 seconds or a fraction outside [0, 1].

    Raises:
        ValueError: naming both values and what was expected.
    """
    if not t_collar > 0 or not 0 <= percentage_of_length <= 1:
        raise ValueError(f"t_collar={t_collar} and percentage_of_length="
                         f"{percentage_of_length}: expected a collar in seconds above 0 and "
                         "a fraction in [0, 1].")


def file_lists(reference: pd.DataFrame | Iterable[FileEvent],
                estimated: pd.DataFrame | Iterable[FileEvent], files: Iterable[str],
                classes: Iterable[str]) -> tuple[list[str], list[tuple[str, EventList,
                                                                     EventList]]]:
    """`(classes, [(file, reference events, estimated events)])`: the events of every file
    as `EventList`s (class indices in the order of `classes`), checked against `files`
    and `classes`."""
    names, labels = list(files), list(classes)
    ref, est = (_by_file(events, names, labels, name) for events, name in
                ((reference, "reference"), (estimated, "estimated")))
    return labels, [(f, _event_list(ref.get(f, [])), _event_list(est.get(f, [])))
                    for f in names]


def _event_list(rows: list[tuple[float, float, int]]) -> EventList:
    """`rows` as an `EventList`: onsets, offsets (float64) and class indices (int64)."""
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2].astype(np.int64)


def _by_file(events: pd.DataFrame | Iterable[FileEvent], files: list[str], classes: list[str],
             name: str) -> dict[str, list[tuple[float, float, int]]]:
    """The events of each file as `(onset, offset, class index)`.

    Args:
        events: a table with columns `file, onset_s, offset_s, label`, or a list of
            `(file, onset_s, offset_s, label)`.
        files: every evaluated file.
        classes: the class names.
        name: `"reference"` or `"estimated"`, for messages.

    Returns:
        file -> `[(onset, offset, class index), ...]`.

    Raises:
        ValueError: for an event of a file not in `files` or of a label not in `classes`,
            or one whose onset and offset are not `0 <= onset <= offset` (finite).
    """
    import pandas as pd  # noqa: PLC0415  (pandas: when events are scored)

    rows: Iterable[Any]
    if isinstance(events, pd.DataFrame):
        rows = zip(events["file"], events["onset_s"], events["offset_s"], events["label"])
    else:
        rows = events
    known, index = set(files), {c: i for i, c in enumerate(classes)}
    out: dict[str, list[tuple[float, float, int]]] = {}
    for file, onset, offset, label in rows:
        if file not in known:
            raise ValueError(f"{name} event of file {file!r} ({onset}-{offset} s): the file is "
                             "not in `files`; add it or drop the event.")
        if label not in index:
            raise ValueError(f"{name} event label {label!r} is not one of classes={classes}.")
        start, end = float(onset), float(offset)
        if not (0 <= start <= end < math.inf):
            raise ValueError(f"{name} event {label!r} of file {file!r} from {onset} to "
                             f"{offset} s: expected 0 <= onset <= offset (finite seconds).")
        out.setdefault(file, []).append((start, end, index[label]))
    return out
