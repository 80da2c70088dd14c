"""Overlapping windows at evaluation: the windows that lie between a
recording's stored windows, so that a detector scores every event whole in some window.

A detection store cuts each recording into windows side by side (`segment_hop_seconds`
equal to `segment_seconds`, the store's default), and an event on a window's edge is then
seen only in pieces, each at the edge of what the network reads. With `prediction_hop`
below 1 the recording is also read through windows every `prediction_hop` of a window
(0.5: every half window), cut from the recording's own feature frames (the stored windows
laid back on its time line, `stitch_windows`: they are exact slices of it), and the frame
probabilities of all windows are averaged where they overlap (`Detection.pool_by_clip`).
`python -m xval detect` and `evaluate --annotations` cut new recordings the same way (the
store's windows at a hop of `prediction_hop` windows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from xval.tasks.detection.events import stitch_windows


@dataclasses.dataclass(frozen=True)
class Windows:
    """Windows cut from recordings' frames.

    Attributes:
        features: `np.ndarray [shape=(k, frames, ...)]`, float32.
        targets: `np.ndarray [shape=(k, frames, classes)]`, their frame targets.
        clips: `np.ndarray [shape=(k,)]`, the recording of each.
        starts: `np.ndarray [shape=(k,)]`, each window's start in it, seconds.
    """

    features: np.ndarray
    targets: np.ndarray
    clips: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.features)


def overlap_starts(total: int, length: int, hop: float) -> list[int]:
    """The first frames of windows of `length` frames every `hop` windows over `total`
    frames, the last ending on the last frame.

    Args:
        total: frames of the recording.
        length: frames of a window.
        hop: hop as a fraction of the window, in `(0, 1]`.

    Returns:
        Sorted first frames (`[0]` for a recording no longer than a window).
    """
    step = max(1, int(round(hop * length)))
    if total <= length:
        return [0]
    starts = list(range(0, total - length + 1, step))
    if starts[-1] != total - length:
        starts.append(total - length)
    return starts


def overlap_windows(features: np.ndarray, targets: np.ndarray, clips: Sequence[str] | np.ndarray,
                    starts: Sequence[float] | np.ndarray, frame_seconds: float,
                    hop: float) -> Windows | None:
    """The windows every `hop` windows over each recording that its stored windows do not
    hold already.

    Each recording's stored windows are laid on its time line (their frames are exact slices
    of it); a recording whose windows leave a gap is left as it is. Windows start on whole
    frames.

    Args:
        features: `np.ndarray [shape=(rows, frames, ...)]`, the stored windows.
        targets: `np.ndarray [shape=(rows, frames, classes)]`, their frame targets.
        clips: the recording of each row.
        starts: each row's start in its recording, seconds.
        frame_seconds: time between frames.
        hop: hop between windows as a fraction of a window, in `(0, 1]` (1: none added).

    Returns:
        The added `Windows`, or `None` when there is none to add (`hop` 1, windows whose
        frames are not the targets' frames, no recording of several contiguous windows).

    Raises:
        ValueError: for `hop` outside `(0, 1]`.
    """
    if not 0 < hop <= 1:
        raise ValueError(f"prediction_hop={hop}: expected a fraction of the window in (0, 1].")
    features, targets = np.asarray(features), np.asarray(targets)
    if hop == 1 or len(features) == 0 or features.shape[1] != targets.shape[1]:
        return None
    length = features.shape[1]
    at = np.asarray(starts, dtype=np.float64)
    clips = np.asarray(clips)
    found: list[tuple[np.ndarray, np.ndarray, str, float]] = []
    for clip in dict.fromkeys(clips.tolist()):
        rows = np.flatnonzero(clips == clip)
        firsts = np.rint(at[rows] / frame_seconds).astype(int)
        span = np.zeros(int(firsts.max()) + length, dtype=bool)
        for first in firsts:
            span[first:first + length] = True
        if len(rows) < 2 or not span.all():
            continue  # one window, or gaps between the windows: nothing to lay between
        x = stitch_windows(features[rows].reshape(len(rows), length, -1), at[rows],
                           frame_seconds)
        y = stitch_windows(targets[rows], at[rows], frame_seconds, reduce="max")
        for first in sorted(set(overlap_starts(len(x), length, hop)) - set(firsts.tolist())):
            found.append((x[first:first + length], y[first:first + length], clip,
                          first * frame_seconds))
    if not found:
        return None
    return Windows(
        features=np.stack([f[0] for f in found]).reshape(len(found), *features.shape[1:])
        .astype(np.float32),
        targets=np.stack([f[1] for f in found]).astype(targets.dtype),
        clips=np.asarray([f[2] for f in found]), starts=np.asarray([f[3] for f in found]))
