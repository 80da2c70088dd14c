"""Silent segments: padding and silence never become rows.

A file that holds signal can still hold stretches of none: ESC-50 pads its 5 s clips with
digital silence, a recorder leaves silence before a call. Cut into segments, such a stretch
becomes rows of nothing, labelled with the clip's class and trained on. A segment is
**silent** when its loudest analysis frame (a frame centred inside the segment) holds no
more energy in the feature band than `silence_threshold_db`: the level of the file-level
check (`preprocessing.level`), measured on the file as it was decoded (before peak
normalisation). Zero padding is digital silence, so a segment that is all padding is silent;
a short file padded to one segment keeps its segment (its audio is in it).

`preprocessing.build.build_store` drops silent segments unless `keep_silent_segments` is
set, and records them in `dataset.json` (`silent_segments`: count, whether dropped, the
threshold, and every segment's source file and start). Prediction on new files drops them
too (`xval.inference.models.extract_features`), so a clip's score averages real segments
only. An augmented version keeps the segments of the original that were real (added noise
on silence is no example of the class).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from preprocessing.level import analysis_hop, band_frame_levels_db, feature_band
from xval.core.parameters import FeatureParams

__all__ = ["silent_mask", "silent_note", "silent_record"]


def silent_mask(signal: np.ndarray, starts: Sequence[float] | np.ndarray, params: FeatureParams, *,
                scale: float = 1.0) -> np.ndarray:
    """Which segments of `signal` are silent (see the module docstring).

    Args:
        signal: `np.ndarray [shape=(n,)]` at `params.sample_rate`.
        starts: the start of every segment in seconds, from the start of `signal`.
        params: feature parameters (`sample_rate`, `n_fft`, `hop_length`,
            `segment_seconds`, `silence_threshold_db`, the band's keys).
        scale: the factor that brings `signal` back to the level it was decoded at (the
            file's peak when it was peak-normalised). Defaults to `1.0`.

    Returns:
        `np.ndarray [shape=(len(starts),)]` of bool. When every segment is silent (the file
        is not: its loudest frame only straddles segment edges), the loudest is kept.
    """
    rate, hop = params.sample_rate, analysis_hop(params)
    levels = band_frame_levels_db(signal, sample_rate=rate, n_fft=params.n_fft,
                                  hop_length=hop, band=feature_band(params))
    if scale > 0:
        levels = levels + 20 * math.log10(scale)
    window = params.segment_samples
    centres = np.arange(len(levels)) * hop
    loudest = np.full(len(starts), -np.inf)
    for k, start in enumerate(starts):
        first = int(round(start * rate))
        inside = levels[(centres >= first) & (centres < first + window)]
        if inside.size:
            loudest[k] = float(np.max(inside))
    silent = loudest <= params.silence_threshold_db
    if len(silent) and silent.all():
        silent[int(np.argmax(loudest))] = False
    return silent


def silent_record(segments: list[dict[str, Any]], params: FeatureParams,
                  dropped: bool) -> dict[str, Any]:
    """The `silent_segments` entry of `dataset.json`.

    Args:
        segments: one `{"source", "start", "version"}` per silent segment.
        params: the feature parameters (`silence_threshold_db`).
        dropped: whether they were dropped (`keep_silent_segments` off).

    Returns:
        dict of `count`, `dropped`, `silence_threshold_db` and `segments`.
    """
    return {"count": len(segments), "dropped": dropped,
            "silence_threshold_db": params.silence_threshold_db,
            "segments": segments}


def silent_note(summary: Mapping[str, Any]) -> str:
    """What a build did with silent segments, as a clause for its one-line summary (`""`
    when there were none).

    Args:
        summary: the summary of `build_store` (`silent_segments`, `silent_dropped`).
    """
    count = int(summary.get("silent_segments") or 0)
    if not count:
        return ""
    if summary.get("silent_dropped"):
        return (f"; {count} silent or padding segment(s) dropped (at or below "
                "silence_threshold_db, listed in dataset.json; --keep-silent-segments keeps "
                "them)")
    return f"; {count} silent or padding segment(s) kept (keep_silent_segments)"
