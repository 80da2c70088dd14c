"""Events on the feature frame grid: frame-level targets and the windows of long recordings.

The grid is the one `compute_features` produces (librosa's centred STFT): frame `t` of a
signal is centred on sample `t * hop_length`, time `t * hop_length / sample_rate`, and a
window of `w` samples has `1 + w // hop_length` frames.
"""

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from preprocessing.features import window_starts


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


def windows(n_samples: int, *, sample_rate: int, segment_seconds: float, hop_seconds: float,
            grid: int = 1) -> list[tuple[int, int]]:
    """The windows that cut a long recording, as `preprocessing.segment` cuts signals.

    Windows are `segment_seconds` long and `hop_seconds` apart, starting on multiples of
    `grid` (the feature hop); when the hops miss the tail, one more window ends within
    `grid` samples of the end. A recording no longer than one window gives one window
    `(0, window)` that runs past its end (the features zero-pad it).

    Args:
        n_samples: length of the recording in samples.
        sample_rate: its rate in Hz.
        segment_seconds: window length in seconds.
        hop_seconds: hop between window starts in seconds.
        grid: window starts are multiples of this many samples. Defaults to `1`.

    Returns:
        list of `(start_sample, end_sample)`, every one `window` samples long.

    Raises:
        ValueError: when `segment_seconds` or `hop_seconds` is not positive.
    """
    starts, window = window_starts(n_samples, sample_rate=sample_rate,
                                   segment_seconds=segment_seconds, hop_seconds=hop_seconds,
                                   grid=grid)
    return [(int(s), int(s) + window) for s in starts]


def _triples(events: pd.DataFrame | Iterable[tuple[float, float, str]]
             ) -> list[tuple[float, float, str]]:
    if isinstance(events, pd.DataFrame):
        missing = {"onset_s", "offset_s", "label"} - set(events.columns)
        if missing:
            raise ValueError(f"events lacks the column(s) {', '.join(sorted(missing))}; "
                             "expected the columns onset_s, offset_s, label.")
        return list(zip(events["onset_s"].astype(float), events["offset_s"].astype(float),
                        events["label"]))
    return [(float(a), float(b), label) for a, b, label in events]
