"""Cutting signals into fixed-length segments on the feature frame grid."""

import numpy as np


def window_starts(n_samples: int, *, sample_rate: int, segment_seconds: float,
                  hop_seconds: float, grid: int = 1) -> tuple[list[int], int]:
    """The start samples of the windows `segment` cuts from a signal of `n_samples`.

    Args:
        n_samples: length of the signal in samples.
        sample_rate: rate in Hz.
        segment_seconds: window length in seconds.
        hop_seconds: hop between windows in seconds (rounded to a multiple of `grid`).
        grid: starts are multiples of this many samples. Defaults to `1`.

    Returns:
        `(starts, window)`: a list of start samples (`[0]` for a signal no longer than one
        window, which is then zero-padded) and the window length in samples.

    Raises:
        ValueError: when `segment_seconds` or `hop_seconds` is not positive.
    """
    if segment_seconds <= 0 or hop_seconds <= 0:
        raise ValueError(
            f"segment_seconds={segment_seconds} and hop_seconds={hop_seconds} must be > 0."
        )
    window = max(1, int(round(segment_seconds * sample_rate)))
    hop = max(1, int(round(hop_seconds * sample_rate)))
    hop = max(grid, int(round(hop / grid)) * grid)
    if n_samples <= window:
        return [0], window
    starts = list(range(0, n_samples - window + 1, hop))
    tail = (n_samples - window) // grid * grid
    if tail > starts[-1]:
        starts.append(tail)
    return starts, window



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

def segment(y: np.ndarray, *, sample_rate: int, segment_seconds: float, hop_seconds: float,
            grid: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cuts a signal into fixed windows; a short signal is zero-padded to one window.

    When the regular hops miss the tail, one more window covers it (ending within `grid`
    samples of the end), and no window is ever repeated. Starts fall on multiples of
    `grid` (the feature hop), so that the features of overlapping windows are exact slices
    of the features of the whole signal.

    Args:
        y: `np.ndarray [shape=(n,)]`.
        sample_rate: rate of `y` in Hz.
        segment_seconds: window length in seconds.
        hop_seconds: hop between windows in seconds (rounded to a multiple of `grid`).
        grid: starts are multiples of this many samples. Defaults to `1`.

    Returns:
        `(segments, starts)`: `np.ndarray [shape=(k, window)]` and the start of each
        window in seconds, `np.ndarray [shape=(k,)]`.
    """
    starts, window = window_starts(len(y), sample_rate=sample_rate,
                                   segment_seconds=segment_seconds, hop_seconds=hop_seconds,
                                   grid=grid)
    if len(y) <= window:
        padded = np.zeros(window, dtype=y.dtype)
        padded[: len(y)] = y
        return padded[None], np.array([0.0])
    segments = np.stack([y[s: s + window] for s in starts])
    return segments, np.asarray(starts, dtype=float) / sample_rate
