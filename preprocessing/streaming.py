"""Long recordings read window by window: the features of a file in bounded memory.

`extract_file` decodes a whole file, then computes its features, their levels and the
file's loudest frame at once: memory grows with the file (a 10-minute recording took
2.8 GB in `predict`). A file longer than `LONG_SECONDS` (`is_long`) is read instead by
`stream_features`, which yields the features of its segments a batch of windows at a time
(`GROUP_SECONDS` of audio), as `extract_file` computes them:

1. a first pass decodes the file block by block (`soundfile.SoundFile.read`), mixes it to
   mono and resamples it as it reads (`soxr.ResampleStream`: the resampler and quality
   that librosa's `soxr_hq` runs, the same samples), counting the samples, their sum (the
   mean the level check removes) and the peak (`peak_normalize`), and refusing what
   `load_audio` refuses (no samples, samples that are not finite);
2. a second pass reads the same samples again, and for each group of segments computes
   their features from the audio around them, with enough audio on both sides
   (`n_fft / 2` and a hop, on the grid of the feature and level hops) that no frame sees an
   edge that is not the file's; the frame levels give each segment's silence and the
   file's loudest frame, as `preprocessing.silent_segments` and `preprocessing.level` do.

For the feature types that frame like a centred STFT (every spectral type but CQT) the
features are the whole-file computation's frames; the others are computed segment by
segment as `extract_file` does for them (CQT frames only approximately: its long
low-frequency filters see past the added audio). Memory depends on `GROUP_SECONDS`, not on
the file; time is linear in its length (docs/performance.md, "Long recordings").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from preprocessing.audio import SNDFILE_EXTENSIONS, check_rate, unreadable_reason
from preprocessing.features import centred_frames, compute_features, feature_shape, get
from preprocessing.features.segments import window_starts
from preprocessing.level import analysis_hop, band_frame_levels_db, feature_band, no_signal_at
from xval.core.errors import DatasetError
from xval.core.parameters import FeatureParams

__all__ = ["BLOCK_FRAMES", "GROUP_SECONDS", "LONG_SECONDS", "is_long", "stream_features"]

LONG_SECONDS = 60.0
"""Files longer than this are read window by window; shorter ones whole (`extract_file`)."""
GROUP_SECONDS = 30.0
"""The audio whose segments' features are computed (and yielded) together."""
BLOCK_FRAMES = 1 << 16
"""Frames decoded at a time."""
CONTEXT_SECONDS = 1.0
"""Audio read on each side of a group (at least `n_fft / 2` and a hop): the long
low-frequency filters of a CQT (about 0.5 s at 32.7 Hz) see that far."""
PCEN_CONTEXT_SECONDS = 6.0
"""The same for `compression = "pcen"`: its smoother (0.4 s time constant) forgets where
it started to within e^-15 in 6 s, so a group's frames are the whole file's."""


def is_long(path: str | Path) -> bool:
    """Whether `path` is a file soundfile reads that lasts more than `LONG_SECONDS` (its
    header says; nothing is decoded). A path that is no regular file, or a format
    soundfile does not read, is not: `load_audio` reads (or refuses) it whole."""
    path = Path(path)
    if path.suffix.lower() not in SNDFILE_EXTENSIONS or unreadable_reason(path) is not None:
        return False
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return False
    return info.samplerate > 0 and info.frames / info.samplerate > LONG_SECONDS


@dataclasses.dataclass(frozen=True)
class _Scan:
    """What the first pass found: the samples at the features' rate, their mean and
    peak."""

    samples: int
    mean: float
    peak: float


def _blocks(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
    """The file's samples as `load_audio` decodes them (mono float32, resampled to
    `sample_rate`), in consecutive blocks."""
    with sf.SoundFile(str(path)) as f:
        rate, total = f.samplerate, f.frames
        check_rate(path, rate, sample_rate)  # as `load_audio` reads a short file
        stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ") \
            if rate != sample_rate else None
        done = 0
        while done < total:
            block = f.read(min(BLOCK_FRAMES, total - done), dtype="float32", always_2d=True)
            if not len(block):
                break
            done += len(block)
            mono = block.mean(axis=1)
            if stream is not None:
                mono = stream.resample_chunk(mono, last=done >= total)
            yield np.ascontiguousarray(mono, dtype=np.float32)


def _scan(path: Path, sample_rate: int) -> _Scan:
    """The first pass (see the module docstring).

    Raises:
        DatasetError: as `load_audio` (no samples, samples that are not finite).
    """
    count, total, peak, bad = 0, 0.0, 0.0, 0
    for block in _blocks(path, sample_rate):
        count += len(block)
        finite = np.isfinite(block)
        bad += int(block.size - np.count_nonzero(finite))
        total += float(np.sum(block, dtype=np.float64))
        if len(block):
            peak = max(peak, float(np.max(np.abs(block))))
    if not count:
        raise DatasetError(f"Cannot use {path}: it holds no samples.")
    if bad:
        raise DatasetError(
            f"Cannot use {path}: {bad} of its {count} samples are not finite (NaN or "
            "infinity); the file is corrupt or was written from a diverged signal.")
    return _Scan(count, total / count, peak)


class _Audio:
    """The second pass's samples: `part(p0, p1)` for increasing ranges, keeping only what
    later ranges can still ask for."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self._blocks = _blocks(path, sample_rate)
        self._start = 0
        self._buffer = np.zeros(0, np.float32)

    def part(self, p0: int, p1: int) -> np.ndarray:
        """Samples `[p0, p1)` (`p0` never below an earlier call's)."""
        drop = p0 - self._start
        if drop > 0:
            self._buffer, self._start = self._buffer[drop:], p0
        while self._start + len(self._buffer) < p1:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer = np.concatenate([self._buffer, block])
        return self._buffer[p0 - self._start:p1 - self._start]


def stream_features(path: str | Path, params: FeatureParams, *,
                    real_only: bool = True) -> Iterator[dict]:
    """The features of a long file's segments, `GROUP_SECONDS` of audio at a time.

    Args:
        path: an audio file soundfile reads (see `is_long`).
        params: feature parameters (those of the store).
        real_only: yield only the segments that are not silent or padding
            (`preprocessing.silent_segments`; when every one is, the loudest). Defaults to
            `True`.

    Yields:
        dicts of `features [shape=(k, frames, bins)]`, `starts` (seconds), `silent`
        (bools), in order; the last one also holds `duration` (seconds).

    Raises:
        DatasetError: for audio `extract_file` would refuse (no samples, samples that are
            not finite, no signal in the feature band), naming why; raised when it is
            known, which for no signal is after the last segment.
    """
    path, params = Path(path), FeatureParams.of(params)
    rate = int(params.sample_rate)
    scan = _scan(path, rate)
    geometry = _Geometry.of(params, scan.samples)
    scale = scan.peak if params.peak_normalize and scan.peak > 0 else 1.0
    audio = _Audio(path, rate)
    loudest_file, spare = -math.inf, None
    real = 0
    for g in range(geometry.groups):
        chunk, frame_max = geometry.chunk(audio, g, scan, scale)
        loudest_file = max(loudest_file, frame_max)
        keep = ~chunk["silent"] if real_only else np.ones(len(chunk["silent"]), bool)
        if real_only and len(chunk["loudest"]) and (spare is None or
                                                    chunk["loudest"].max() > spare[0]):
            k = int(np.argmax(chunk["loudest"]))
            spare = (float(chunk["loudest"][k]), chunk["features"][k:k + 1],
                     chunk["starts"][k:k + 1])
        real += int(keep.sum())
        if keep.any():
            yield {"features": chunk["features"][keep], "starts": chunk["starts"][keep].tolist(),
                   "silent": chunk["silent"][keep].tolist()}
    no_signal = no_signal_at(loudest_file, params)
    if no_signal:
        raise DatasetError(no_signal)
    last: dict = {"features": np.zeros((0, *feature_shape(params))), "starts": [],
                  "silent": []}
    if real_only and not real and spare is not None:  # every segment silent: the loudest
        last = {"features": spare[1], "starts": spare[2].tolist(), "silent": [False]}
    yield {**last, "duration": scan.samples / rate}


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """Where the segments of a file of `samples` samples start, and the audio each group of
    them is computed from."""

    params: FeatureParams
    samples: int
    starts: np.ndarray
    window: int
    group: int
    context: int

    @classmethod
    def of(cls, params: FeatureParams, samples: int) -> _Geometry:
        rate, hop = int(params.sample_rate), int(params.hop_length)
        starts, window = window_starts(samples, sample_rate=rate,
                                       segment_seconds=params.segment_seconds,
                                       hop_seconds=params.segment_hop_seconds, grid=hop)
        grid = math.lcm(hop, analysis_hop(params))
        pcen = params.compression == "pcen" and "compression" in get(params.feature).params
        seconds = PCEN_CONTEXT_SECONDS if pcen else CONTEXT_SECONDS
        least = max(int(params.n_fft) // 2 + hop, int(seconds * rate))
        context = -(-least // grid) * grid
        group = max(grid, int(round(GROUP_SECONDS * rate / grid)) * grid)
        return cls(params, samples, np.asarray(starts), window, group, context)

    @property
    def groups(self) -> int:
        return -(-self.samples // self.group)

    def chunk(self, audio: _Audio, g: int, scan: _Scan,
              scale: float) -> tuple[dict, float]:
        """The features, starts, silence and loudest frame of group `g`'s segments, and
        the loudest frame whose centre is in the group's audio (for the no-signal check)."""
        params, rate = self.params, int(self.params.sample_rate)
        begin, end = g * self.group, min(self.samples, (g + 1) * self.group)
        mine = self.starts[(self.starts >= begin) & (self.starts < end)]
        p0 = max(0, begin - self.context)
        p1 = min(self.samples, end + self.window + self.context)
        raw = audio.part(p0, p1)
        signal = raw / scale if scale != 1.0 else raw
        levels, centres = self._levels(raw, p0, scan.mean)
        in_group = (centres >= begin) & (centres < end) | ((centres == self.samples) &
                                                            (end == self.samples))
        frame_max = float(levels[in_group].max()) if in_group.any() else -math.inf
        if scale != 1.0:  # the segments' levels as `silent_mask` measures them
            levels, _ = self._levels(signal, p0, scan.mean / scale)
            levels = levels + 20 * math.log10(scale)
        loudest = np.array([float(np.max(levels[(centres >= s) & (centres < s + self.window)],
                                         initial=-np.inf)) for s in mine])
        return ({"features": self._features(signal, p0, mine), "starts": mine / rate,
                 "silent": loudest <= params.silence_threshold_db, "loudest": loudest},
                frame_max)

    def _levels(self, part: np.ndarray, p0: int, mean: float) -> tuple[np.ndarray,
                                                                      np.ndarray]:
        hop = analysis_hop(self.params)
        levels = band_frame_levels_db(part, sample_rate=int(self.params.sample_rate),
                                      n_fft=int(self.params.n_fft), hop_length=hop,
                                      band=feature_band(self.params), mean=mean)
        return levels, p0 + np.arange(len(levels)) * hop

    def _features(self, signal: np.ndarray, p0: int, starts: np.ndarray) -> np.ndarray:
        """The features of the segments starting at `starts` (samples), from `signal`, the
        file's samples from `p0` on: frames sliced from the part's own STFT-like features
        where the whole file's would be (`extract_file`), else segment by segment."""
        params = self.params
        frames, hop, keywords = feature_shape(params)[0], int(params.hop_length), \
            params.to_dict()
        kind = get(params.feature)
        segments = [signal[s - p0:s - p0 + self.window] for s in starts]
        if kind.batched:
            return compute_features(np.asarray(segments), **keywords)
        whole = compute_features(signal, **keywords) if kind.frames is centred_frames \
            else None
        total = kind.frames(self.samples, params)
        out = []
        for seg, s in zip(segments, starts):
            first = int(s) // hop
            if whole is not None and first + frames <= total:
                out.append(whole[first - p0 // hop:first - p0 // hop + frames])
            else:
                out.append(compute_features(seg, **keywords))
        return np.stack(out) if out else np.zeros((0, *feature_shape(params)))
