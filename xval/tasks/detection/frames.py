"""Events on the feature frame grid: a detection store's frame-level targets
(`frame_targets.npy`), and the annotation of whole recordings scored by `evaluate
--annotations`.

The grid is the one the store's features were computed on (librosa's centred STFT): frame
`t` of a signal is centred on sample `t * hop_length`, time `t * hop_length / sample_rate`.
The inverse, frames to events, is `xval.tasks.detection.events.activity_to_events`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def frame_targets(events: pd.DataFrame | Iterable[tuple[float, float, str]], n_frames: int, *,
                  sample_rate: float, hop_length: int, classes: Sequence[str],
                  start_seconds: float = 0.0) -> np.ndarray:
    """Frame-level activity of events, aligned to the feature frame grid.

    A frame is active for a class when its centre lies in `[onset, offset)` of an event of
    that class. The last frame is active when an event reaches its centre or beyond (there
    is no later frame to carry the end). An event that contains no frame centre (shorter
    than a hop, or zero-length) still marks the frame nearest to its midpoint, so that no
    annotated event vanishes from the targets. Events wholly outside the grid (more than
    half a hop before frame 0 or after the last frame) are ignored.

    Args:
        events: `pandas.DataFrame` with the columns `onset_s, offset_s, label` (one file's
            rows of `read_annotations`), or an iterable of `(onset_s, offset_s, label)`.
        n_frames: number of frames of the features.
        sample_rate: sample rate of the features in Hz.
        hop_length: feature hop in samples.
        classes: the class names, in target column order.
        start_seconds: time of frame 0 in the recording (a window's start), so that
            recording-time events land on a window's own grid. Defaults to `0.0`.

    Returns:
        `np.ndarray [shape=(n_frames, len(classes))]`, float32 of 0 and 1.

    Raises:
        ValueError: for an event label not in `classes`, a bad `n_frames`, `hop_length` or
            `sample_rate`, or an event whose offset is before its onset.
    """
    if n_frames < 1 or hop_length < 1 or sample_rate <= 0:
        raise ValueError(f"n_frames={n_frames}, hop_length={hop_length} and "
                         f"sample_rate={sample_rate} must be positive.")
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    targets = np.zeros((n_frames, len(classes)), dtype=np.float32)
    frame_seconds = hop_length / sample_rate
    last = n_frames - 1
    for onset, offset, label in _triples(events):
        if label not in index:
            raise ValueError(f"Event label {label!r} is not one of classes={classes}; add it "
                             "to the classes or drop its events.")
        if offset < onset:
            raise ValueError(f"Event ({onset}, {offset}, {label!r}): offset before onset.")
        a = (onset - start_seconds) / frame_seconds  # positions in frames
        b = (offset - start_seconds) / frame_seconds
        if b < -0.5 or a > last + 0.5:
            continue
        first = max(0, math.ceil(a - 1e-9))
        stop = min(n_frames, math.ceil(b - 1e-9))
        if b >= last:
            stop = n_frames
        if stop <= first:  # no centre inside: the nearest frame to the midpoint
            first = min(last, max(0, int(math.floor((a + b) / 2 + 0.5))))
            stop = first + 1
        targets[first:stop, index[label]] = 1.0
    return targets


def _triples(events: pd.DataFrame | Iterable[tuple[float, float, str]]
             ) -> list[tuple[float, float, str]]:
    if hasattr(events, "columns"):  # a pandas.DataFrame (pandas: not imported by the tasks)
        table: Any = events
        missing = {"onset_s", "offset_s", "label"} - set(table.columns)
        if missing:
            raise ValueError(f"events lacks the column(s) {', '.join(sorted(missing))}; "
                             "expected the columns onset_s, offset_s, label.")
        return list(zip(table["onset_s"].astype(float), table["offset_s"].astype(float),
                        table["label"]))
    return [(float(a), float(b), label) for a, b, label in events]
