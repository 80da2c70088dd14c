"""The segment length of a new store, chosen from the durations of its clips.

Rows are fixed-length segments of the clips (`segment_seconds`, every `segment_hop_seconds`).
A segment much longer than the clips is mostly zero padding; one much shorter cuts a spoken
word or a bark into pieces. The rule (`choose_segment`):

- the segment is the **median clip duration**, rounded up to 50 ms, so that a typical clip
  is one segment with little padding;
- at most `longest` (1 s, the package default: a CNN sees an event and its context; longer
  clips are cut into several segments, which the clip score then averages);
- at least `shortest` (0.25 s: 25 frames at the default hop);
- the hop is half the segment.

Durations are read from the file headers (`soundfile.info`; `librosa.get_duration` for the
formats libsndfile does not read), from the header of audio kept as bytes inside a dataset
(a row's `read`, e.g. a Hugging Face dataset's), or taken from a row's region, never decoded
whole; so the same audio gets the same segment whichever source describes it.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Mapping
from typing import Any

import librosa
import numpy as np
import pandas as pd
import soundfile as sf

from preprocessing.audio import SNDFILE_EXTENSIONS, FatalReadError
from preprocessing.features import feature_shape, get
from preprocessing.rows import row_region
from xval.core.errors import ConfigurationError
from xval.core.parameters import FeatureParams

__all__ = ["ENCODER_LONGEST", "SegmentChoice", "check_segment_length", "choose_segment",
           "clip_durations", "encoder_segment"]

LONGEST = 1.0
"""The longest segment chosen (seconds): the package default `segment_seconds`."""
SHORTEST = 0.25
"""The shortest segment chosen (seconds)."""
STEP = 0.05
"""Segments are multiples of this (seconds)."""
ENCODER_LONGEST = 10.0
"""The longest segment of an encoder's store (seconds): a row of 7 aisfx blocks."""
COVERED = 75
"""An encoder's segment holds this percentage of the clips whole."""
MOSTLY_PADDING = 10
"""A segment longer than `LONGEST` and more than this many times the longest clip is
refused (`check_segment_length`): over 90% of every row would be zero padding."""


@dataclasses.dataclass(frozen=True)
class SegmentChoice:
    """A segment length and hop, and why.

    Attributes:
        seconds: the segment length (`segment_seconds`).
        hop: the hop between segments (`segment_hop_seconds`).
        reason: one sentence saying why, with the durations it follows.
    """

    seconds: float
    hop: float
    reason: str


def _duration(record: Mapping[str, Any]) -> float:
    """The duration of one source row (seconds; NaN when the file cannot say)."""
    region = row_region(record)
    if region is not None and region.duration is not None:
        return float(region.duration)
    path = str(record["path"])
    try:
        if region is not None and region.read is not None:  # encoded bytes: their header
            info = sf.info(io.BytesIO(region.read()))
            return max(0.0, float(info.frames / info.samplerate) - region.offset)
        if region is None and path.lower().endswith(tuple(SNDFILE_EXTENSIONS)):
            info = sf.info(path)
            return float(info.frames / info.samplerate)
        if region is None:
            return float(librosa.get_duration(path=path))
    except FatalReadError:
        raise  # a command past its time limit: not a file that does not say
    except (RuntimeError, OSError, ValueError, EOFError, sf.LibsndfileError):
        pass
    return math.nan


def clip_durations(rows: pd.DataFrame) -> np.ndarray:
    """The duration of every source row, from the file headers or the row's region.

    Args:
        rows: source rows (`path`, optional `offset`, `duration`, `read`).

    Returns:
        `np.ndarray [shape=(len(rows),)]` of seconds, NaN where a file does not say (it is
        left to the build to skip or read it).
    """
    return np.array([_duration(r) for r in rows.to_dict("records")], dtype=float)


def _on_step(seconds: float, shortest: float, longest: float) -> float:
    """`seconds` rounded up to the next `STEP` (ms), within `shortest` and `longest`."""
    return round(min(longest, max(shortest, math.ceil(round(seconds / STEP, 6)) * STEP)), 3)


def choose_segment(durations: np.ndarray, *, longest: float = LONGEST,
                   shortest: float = SHORTEST) -> SegmentChoice:
    """The segment length for clips of these durations (see the module docstring).

    Args:
        durations: clip durations in seconds (NaN ignored).
        longest: the longest segment. Defaults to `LONGEST`.
        shortest: the shortest segment. Defaults to `SHORTEST`.

    Returns:
        The `SegmentChoice`.
    """
    known = durations[np.isfinite(durations)]
    if not known.size:
        return SegmentChoice(longest, longest / 2, "no clip duration could be read from "
                                                   "the file headers: the default")
    median = float(np.median(known))
    seconds = _on_step(median, shortest, longest)
    spread = (f"the clips last {float(np.min(known)):.2f}-{float(np.max(known)):.2f} s, "
              f"median {median:.2f} s")
    if median > longest:
        why = (f"{spread}: longer than {longest:g} s, so each clip is cut into "
               f"{longest:g} s segments and the clip score averages them")
    elif seconds == shortest and median < shortest:
        why = f"{spread}: the shortest segment, {shortest:g} s (shorter clips are padded)"
    else:
        why = f"{spread}: a typical clip is one segment"
    return SegmentChoice(seconds, round(seconds / 2, 4), why)


def encoder_segment(durations: np.ndarray, *, block_seconds: float, default: float,
                    longest: float = ENCODER_LONGEST) -> SegmentChoice:
    """The segment of a block encoder's store: as long as 3 clips in 4, so that a row holds
    every block of its clip.

    The head pools a row's blocks (mean and max), and the encoder scales a row by its own
    peak: a row that is the whole clip gives the clip's embedding, where rows of one block
    each are scored apart and their scores averaged. Measured through the engine on
    RAVDESS (docs/results.md, "small-data protocol"). Clips no longer than one block keep
    one block per row; longer ones are cut into segments of `longest` (hop: half).

    Args:
        durations: clip durations in seconds (NaN ignored).
        block_seconds: the encoder's block (aisfx: 2.3 s).
        default: the encoder's default segment, when no duration can be read.
        longest: the longest segment. Defaults to `ENCODER_LONGEST`.

    Returns:
        The `SegmentChoice`.
    """
    known = durations[np.isfinite(durations)]
    if not known.size:
        return SegmentChoice(default, default / 2, "no clip duration could be read from "
                                                   "the file headers: the encoder's default")
    covered = float(np.percentile(known, COVERED))
    shortest = _on_step(block_seconds, 0.0, math.inf)
    seconds = _on_step(covered, shortest, longest)
    low, high = float(np.min(known)), float(np.max(known))
    spread = (f"the clips last {low:.2f} s" if high - low < 0.005 else
              f"the clips last {low:.2f}-{high:.2f} s, 3 in 4 at most {covered:.2f} s")
    if covered > longest:
        why = f"{spread}: cut into {longest:g} s segments (the clip score averages them)"
    elif seconds == shortest:
        why = f"{spread}: one block of the encoder per row"
    else:
        whole = "every clip" if high <= seconds else "3 clips in 4"
        why = f"{spread}: a row holds every block of {whole}"
    return SegmentChoice(seconds, round(seconds / 2, 4), why)


def check_segment_length(rows: pd.DataFrame, params: FeatureParams) -> None:
    """Refuses a segment far longer than every clip, before anything is extracted: longer
    than `LONGEST` and more than `MOSTLY_PADDING` times the longest clip, each row would be
    mostly zero padding, and the store (and each file's extraction) as large as the
    segment says (`--segment-seconds 3600` on 1 s clips: minutes and gigabytes). Durations
    are read from the headers only when the segment is longer than `LONGEST`; an encoder's
    segment (a type that runs a model) is its own and never refused.

    Args:
        rows: source rows (`path`, optional `offset`, `duration`, `read`).
        params: the feature parameters (`segment_seconds`, `sample_rate`, `feature`, ...).

    Raises:
        ConfigurationError: naming the segment, the longest clip, the store's size and the
            fix.
    """
    seconds = float(params.segment_seconds)
    if seconds <= LONGEST or rows.empty or get(params.feature).batched:
        return  # an encoder's segment is the encoder's own (BirdNET: 3 s)
    known = clip_durations(rows)
    known = known[np.isfinite(known)]
    if not known.size or seconds <= MOSTLY_PADDING * float(np.max(known)):
        return
    longest = float(np.max(known))
    frames, bins = feature_shape(params)
    size = len(rows) * frames * bins * 4 / 2**30
    raise ConfigurationError(
        f"segment_seconds={seconds:g}: the longest of the {len(rows)} clips lasts "
        f"{longest:.2f} s, so every row would be at least {1 - longest / seconds:.2%} zero "
        f"padding ({len(rows)} rows of {frames} x {bins} features, about {size:.1f} GiB); "
        f"use a segment_seconds of at most {max(LONGEST, longest):g} (python -m xval init "
        "chooses it from the durations).")
