"""Why events were not found: each annotated event the event metric does not count as
found, by the kind of error that lost it, and the detections that lie on no annotated event.

The event F1 (`xval.tasks.detection.events.event_metrics`) counts an annotated event as found
when a detection of its class starts within the 200 ms collar of its onset and ends within
max(200 ms, half its length) of its offset, each detection matched once. An annotated event
it does not count as found is, in this order:

- **missed**: no detection overlaps it;
- **confused**: only detections of other classes overlap it (heard, but as another class);
- **merged**: a detection that overlaps it overlaps another annotated event of its class
  too (two calls a breath apart read as one);
- **split**: two or more detections overlap it (one call read as several);
- **onset**: the one detection on it starts outside the onset collar;
- **offset**: it starts within the collar but ends outside the offset collar.

A detection that overlaps no annotated event of its class is **inserted**. The counts are
summed over files and classes; `annotated = found + missed + confused + merged + split +
onset + offset`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from xval.tasks.detection.events import (
    PERCENTAGE_OF_LENGTH,
    T_COLLAR,
    FileEvent,
    file_lists,
)
from xval.tasks.detection.metrics import EventList

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("missed", "confused", "merged", "split", "onset", "offset")
"""Why an annotated event was not found, in the order a kind is given."""
COUNTS = ("annotated", "found", *KINDS, "inserted")
"""The counts of `event_errors`, in the order the report shows them."""


def event_errors(reference: pd.DataFrame | Iterable[FileEvent],
                 estimated: pd.DataFrame | Iterable[FileEvent], *, files: Iterable[str],
                 classes: Iterable[str], t_collar: float = T_COLLAR,
                 percentage_of_length: float = PERCENTAGE_OF_LENGTH) -> dict[str, int]:
    """The annotated events found and lost, by kind of error, and the inserted detections.

    Args:
        reference: annotated events (a table with the columns `file, onset_s, offset_s,
            label`, or a list of `(file, onset_s, offset_s, label)`).
        estimated: detected events, in the same form.
        files: every evaluated file.
        classes: the class names.
        t_collar: the onset collar (and the least offset collar) in seconds. Defaults to
            `0.2` (DCASE).
        percentage_of_length: the offset collar's share of the annotated event's length.
            Defaults to `0.5`.

    Returns:
        dict of `COUNTS`: `annotated`, `found` (the event metric's hits), one count per kind
        of `KINDS`, and `inserted`.

    Raises:
        ValueError: as `xval.tasks.detection.events.detection_metrics` raises.
    """
    labels, lists = file_lists(reference, estimated, files, classes)
    counts = dict.fromkeys(COUNTS, 0)
    for _, ref, est in lists:
        for c in range(len(labels)):
            others = _of_class(est, c, other=True)
            for kind, n in _class_errors(_of_class(ref, c), _of_class(est, c), others,
                                         t_collar, percentage_of_length).items():
                counts[kind] += n
    return counts


def error_metrics(reference: pd.DataFrame | Iterable[FileEvent],
                  estimated: pd.DataFrame | Iterable[FileEvent], *, files: Iterable[str],
                  classes: Iterable[str]) -> dict[str, float]:
    """`event_errors` as fold metrics: each count under `events_<count>`."""
    return {f"events_{k}": float(v) for k, v in event_errors(
        reference, estimated, files=files, classes=classes).items()}


def _of_class(events: EventList, c: int, other: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """The onsets and offsets of class `c`'s events (with `other`, of the other classes')."""
    keep = (events[2] != c) if other else (events[2] == c)
    return events[0][keep], events[1][keep]


def _overlap(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
             ) -> np.ndarray:
    """Whether each event of `a` overlaps each of `b`, `np.ndarray [shape=(len(a),
    len(b))]` of bool."""
    return (np.minimum(a[1][:, None], b[1][None, :])
            - np.maximum(a[0][:, None], b[0][None, :])) > 0


def _class_errors(ref: tuple[np.ndarray, np.ndarray], est: tuple[np.ndarray, np.ndarray],
                  others: tuple[np.ndarray, np.ndarray], t_collar: float,
                  percentage_of_length: float) -> dict[str, int]:
    """The counts of one file and class (`others`: the other classes' detections)."""
    from scipy.sparse import csr_matrix  # noqa: PLC0415  (scipy: where events are scored)
    from scipy.sparse.csgraph import maximum_bipartite_matching  # noqa: PLC0415

    (r_on, r_off), (e_on, e_off) = ref, est
    out = dict.fromkeys(COUNTS, 0)
    out["annotated"] = len(r_on)
    onset_ok = np.abs(r_on[:, None] - e_on[None, :]) <= t_collar
    collar = np.maximum(t_collar, percentage_of_length * (r_off - r_on))
    hit = onset_ok & (np.abs(r_off[:, None] - e_off[None, :]) <= collar[:, None])
    found = np.zeros(len(r_on), dtype=bool)
    if hit.any():
        matched = maximum_bipartite_matching(csr_matrix(hit), perm_type="column")
        found = matched >= 0
    overlap = _overlap(ref, est)  # (annotated, detected)
    heard = np.asarray(_overlap(ref, others).any(axis=1))
    out["found"] = int(found.sum())
    out["inserted"] = int((~overlap.any(axis=0)).sum())
    shared: np.ndarray = overlap.sum(axis=0) > 1  # detections on two events or more
    for r in np.flatnonzero(~found):
        on_it = overlap[r]
        if not on_it.any():
            kind = "confused" if heard[r] else "missed"
        elif shared[on_it].any():
            kind = "merged"
        elif on_it.sum() > 1:
            kind = "split"
        elif not onset_ok[r, on_it].any():
            kind = "onset"
        else:
            kind = "offset"
        out[kind] += 1
    return out
