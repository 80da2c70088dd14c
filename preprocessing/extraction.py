"""One file's features: decoded (or a region of it), its augmented versions, every segment's
features and whether each is silence (`extract_file`, run by `build_store`'s workers)."""

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from preprocessing.audio import FatalReadError, Region, load_audio
from preprocessing.duplicates.fingerprints import compact, fingerprint
from preprocessing.features import centred_frames, compute_features, feature_shape, get, segment
from preprocessing.level import no_signal_reason
from preprocessing.parallel import seed_for
from preprocessing.silent_segments import silent_mask
from xval.core.errors import DatasetError
from xval.core.parameters import FeatureParams

__all__ = ["Augmenter", "extract_file"]

Augmenter = Callable[[np.ndarray, int, int], np.ndarray]
"""`augmenter(y, sample_rate, seed) -> y`: one augmented version of a signal."""


def _features_of(signal: np.ndarray, params: FeatureParams,
                 frames: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The features of every segment of one signal, and the segments' starts (seconds)."""
    hop, keywords = params.hop_length, params.to_dict()  # `compute_features`'s, once
    segments, starts = segment(signal, sample_rate=params.sample_rate,
                               segment_seconds=params.segment_seconds,
                               hop_seconds=params.segment_hop_seconds, grid=hop)
    if get(params.feature).batched:
        # A model reads the segments in batches (the type's batch_size), never the whole file.
        return list(compute_features(np.asarray(segments), **keywords)), starts
    # Segments on the frame grid share frames with the whole signal's features: computed
    # once when the type frames like a centred STFT (the default), else segment by segment.
    sliced = len(segments) > 1 and get(params.feature).frames is centred_frames
    whole = compute_features(signal, **keywords) if sliced else None
    feats = []
    for seg, start in zip(segments, starts):
        first = int(round(start * params.sample_rate)) // hop
        if whole is not None and first + frames <= len(whole):
            # Overlapping segments share frames: the signal is computed once and each
            # segment takes its frames (starts are on the frame grid; only the
            # centre-padded edge frames differ: they see the real neighbouring audio).
            feats.append(whole[first:first + frames])
        else:
            feats.append(compute_features(seg, **keywords))
    return feats, starts


def _too_short(path: str | os.PathLike[str], region: Region | None, y: np.ndarray, orig_sr: int,
               params: FeatureParams) -> str:
    """Why audio shorter than one analysis frame is skipped, in the file's own samples and
    rate (decoded again at its rate: this path is rare), then as resampled."""
    rate = int(params.sample_rate)
    own = len(y) if orig_sr == rate else \
        len(load_audio(path, sample_rate=orig_sr, region=region)[0])
    said = f"{own} sample{'s' if own != 1 else ''} at {orig_sr} Hz"
    if orig_sr != rate:
        said += f" ({len(y)} at {rate} Hz once resampled)"
    return f"too short: {said}, fewer than one analysis frame (n_fft={params.n_fft})"
def _usable_audio(path: str | os.PathLike[str], params: FeatureParams,
                  region: Region | None) -> tuple[np.ndarray, int] | str:
    """The audio of `path` (or its region) at the feature rate and its file's own rate, or
    why it is unusable (unreadable, shorter than one analysis frame, no signal).

    Raises:
        FatalReadError: from the region's reader (a command past its time limit).
    """
    try:
        y, orig_sr = load_audio(path, sample_rate=params.sample_rate,
                                peak_normalize=False, region=region)
    except FatalReadError:
        raise  # a command past its time limit stops the build
    except DatasetError as e:
        return str(e)
    frame = params.n_fft
    if frame and len(y) < frame:
        return _too_short(path, region, y, orig_sr, params)
    return no_signal_reason(y, params) or (y, orig_sr)


def extract_file(path: str | os.PathLike[str], params: Mapping[str, Any],
                 augmenter: Augmenter | None = None, versions: int = 0, seed: int = 0,
                 name: str | None = None, region: Region | None = None,
                 content: bool = False) -> dict[str, Any]:
    """Features of every segment of one file, or of a region of it (and of its augmented
    versions).

    Args:
        path: the audio file.
        params: feature parameters (see `feature_params`).
        augmenter: a callable `(y, sample_rate, seed) -> y`, or `None`.
        versions: augmented versions to make. Defaults to `0`.
        seed: base seed of the augmented versions.
        name: the file's clip id, for the per-version seeds. Defaults to the path.
        region: the stretch of the file to read (see `preprocessing.audio.Region`).
            Defaults to `None` (the whole file).
        content: also return the content print of the audio read (`content`, for the
            check of files that hold the same audio, `preprocessing.duplicates`). Defaults
            to `False`.

    Returns:
        dict with `features [shape=(k, frames, bins)]`, `starts` (seconds from the start
        of the file, the region's offset included), `version` (0 = original), `silent`
        (whether each segment is silence or padding, `preprocessing.silent_segments`; every
        segment is there, the caller drops them), `duration` (of what was read),
        `orig_sr`, with `content` its `Fingerprint`; or `{"error": reason}` when the
        audio is unusable.

    Raises:
        FatalReadError: from the region's reader (a command past its time limit).
    """
    params = FeatureParams.of(params)
    read = _usable_audio(path, params, region)
    if isinstance(read, str):
        return {"error": read}
    y, orig_sr = read
    scale = 1.0
    if params.peak_normalize:
        scale = float(np.max(np.abs(y)))
        y = y / scale
    signals = [y]
    for v in range(versions):
        if augmenter is None:
            raise DatasetError(f"versions={versions} needs an augmenter.")
        try:
            signals.append(augmenter(y, params.sample_rate,
                                     seed_for(seed, name or str(path), v + 1)))
        except DatasetError as e:
            return {"error": f"augmented version {v + 1}: {e}"}
    feats: list[np.ndarray] = []
    starts: list[float] = []
    version: list[int] = []
    silent: list[bool] = []
    frames = feature_shape(params)[0]
    offset = region.offset if region is not None else 0.0
    original = np.zeros(0, bool)
    for v, signal in enumerate(signals):
        signal_feats, signal_starts = _features_of(signal, params, frames)
        feats += signal_feats
        starts += [offset + float(start) for start in signal_starts]
        version += [v] * len(signal_starts)
        mask = silent_mask(signal, signal_starts, params, scale=scale)
        if v == 0:
            original = mask
        elif len(signal) == len(y) and len(mask) == len(original):
            mask = mask | original  # the original's silence stays silence under noise
        silent += mask.tolist()
    out = {"features": np.stack(feats), "starts": starts, "version": version,
           "silent": silent, "duration": len(y) / params.sample_rate, "orig_sr": orig_sr}
    if content:
        out["content"] = compact(fingerprint(y, params.sample_rate))
    return out
