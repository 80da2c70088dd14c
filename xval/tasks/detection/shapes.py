"""What an event is in the annotations: the shortest events annotators draw and the shortest
gaps they leave between two events of a class, per class, read from frame targets; and the
post-processing that follows from them (`EventShapes.bridge`, `EventShapes.drop`,
`EventShapes.keeps`).

A fold reads them from its training recordings' annotations (never a test row). They set
the defaults of gap bridging (`min_gap_seconds`: a gap shorter than half the shortest
annotated gap is a detector's dropout inside one event, not a gap annotators leave) and of
the shortest event (`min_event_seconds`: half the shortest annotated event), and bound the
median filter (one that would erase a gap or an event as short as half the shortest
annotated one is not tried), so that two events as close as annotators draw them stay two.
"Shortest" is the `SHORT_QUANTILE` quantile, so that one odd annotation does not set it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

SHORT_QUANTILE = 0.05
"""The quantile of the annotated gaps and events taken as the shortest."""
SHARE = 0.5
"""Gaps shorter than this share of the shortest annotated gap are bridged, events shorter
than this share of the shortest annotated event dropped, and a median filter may erase
neither."""


@dataclasses.dataclass(frozen=True)
class EventShapes:
    """The annotated events and gaps of some recordings, per class.

    Attributes:
        classes: the class names.
        events: the number of annotated events of each class, `np.ndarray [shape=(C,)]`.
        gaps: the number of gaps between two consecutive events of a class in a recording.
        shortest_event: seconds, the `SHORT_QUANTILE` quantile of each class's event
            lengths (`nan` without an event).
        shortest_gap: seconds, the same of its gaps (`nan` without a gap).
        recordings: the number of recordings read.
    """

    classes: list[str]
    events: np.ndarray
    gaps: np.ndarray
    shortest_event: np.ndarray
    shortest_gap: np.ndarray
    recordings: int

    @classmethod
    def of_targets(cls, targets: Sequence[np.ndarray] | np.ndarray, frame_seconds: float,
                   classes: Sequence[str]) -> EventShapes:
        """The shapes of the events of frame targets.

        Args:
            targets: one `np.ndarray [shape=(frames, C)]` of 0/1 per recording (or window),
                or their stack `(recordings, frames, C)`.
            frame_seconds: time between frames.
            classes: the class names of the columns.

        Returns:
            The `EventShapes`.

        Raises:
            ValueError: for targets whose last axis is not one column per class.
        """
        names = list(classes)
        lengths: list[list[int]] = [[] for _ in names]
        gaps: list[list[int]] = [[] for _ in names]
        count = 0
        for y in targets:
            active = np.asarray(y) >= 0.5
            active = active[:, None] if active.ndim == 1 else active
            if active.ndim != 2 or active.shape[1] != len(names):
                raise ValueError(f"frame targets of shape {np.shape(y)}: expected (frames, "
                                 f"{len(names)}) for classes={names}.")
            count += 1
            for c in range(len(names)):
                edges = np.flatnonzero(np.diff(np.concatenate([[0], active[:, c], [0]])))
                starts, ends = edges[::2], edges[1::2]
                lengths[c] += (ends - starts).tolist()
                gaps[c] += (starts[1:] - ends[:-1]).tolist()

        def shortest(runs: list[list[int]]) -> np.ndarray:
            return np.array([np.quantile(r, SHORT_QUANTILE) * frame_seconds if r else np.nan
                             for r in runs])

        return cls(names, np.array([len(r) for r in lengths]),
                   np.array([len(g) for g in gaps]), shortest(lengths), shortest(gaps), count)

    def bridge(self) -> list[float]:
        """`min_gap_seconds` per class: `SHARE` of the shortest annotated gap (0 for a class
        without one)."""
        return _share(self.shortest_gap)

    def drop(self) -> list[float]:
        """`min_event_seconds` per class: `SHARE` of the shortest annotated event (0 for a
        class without one)."""
        return _share(self.shortest_event)

    def keeps(self, median_filter_seconds: float, frame_seconds: float) -> bool:
        """Whether a median filter of `median_filter_seconds` keeps every class's shortest
        gap and event: the runs it erases (half its length in frames, rounded down) are
        shorter than `SHARE` of each.

        Args:
            median_filter_seconds: the filter's length (0: no filter, always kept).
            frame_seconds: time between frames.
        """
        frames = int(round(median_filter_seconds / frame_seconds)) | 1
        erased = (frames - 1) // 2 * frame_seconds
        shortest = np.concatenate([self.shortest_gap, self.shortest_event])
        shortest = shortest[np.isfinite(shortest)]
        return bool(erased == 0 or (erased < SHARE * shortest - 1e-9).all())

    def describe(self) -> str:
        """The shapes in words: recordings, events and the shortest gap and event."""
        gap = np.nanmin(self.shortest_gap) if np.isfinite(self.shortest_gap).any() else None
        event = np.nanmin(self.shortest_event) if np.isfinite(self.shortest_event).any() \
            else None
        return (f"{self.recordings} recordings, {int(self.events.sum())} events"
                + (f", shortest gap {gap:.3f} s" if gap is not None else "")
                + (f", shortest event {event:.3f} s" if event is not None else ""))


def _share(seconds: np.ndarray) -> list[float]:
    return [round(float(SHARE * s), 4) if np.isfinite(s) else 0.0 for s in seconds]
