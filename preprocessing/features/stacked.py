"""The `stacked` feature type: several encoders' embeddings of the same clips side by side.

A `stacked` store is made from stores of the same files, one per encoder
(`preprocessing.stacked.stack_stores`):
its rows are the first store's (its segments, its frames), and each frame holds, after the
first encoder's embedding, every other encoder's embedding nearest to it in time in the same
clip (`align`: block centres; whatever each encoder's block length and hop, and however
each store cut the clip into segments). So a head reads `(frames, dim_1 + dim_2 + ...)`
rows as it reads one encoder's.

Its feature parameters are the first store's, the type `stacked`, and the option `parts`:
each store's feature parameters with the facts the alignment needs (`EncoderPart`). New
files' features (`predict`, `evaluate`) are each part's, extracted as its store's were, then
aligned by the same function (`xval.inference.models.read_features`); the type's own
function is never called on a waveform.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from preprocessing.features.registry import Params, register
from xval.core.errors import DatasetError

STACKED = "stacked"
"""The feature type's name."""

__all__ = ["STACKED", "EncoderPart", "align", "frame_times", "stacked"]


@dataclasses.dataclass(frozen=True)
class EncoderPart:
    """One encoder's store in a stacked store.

    Attributes:
        feature_params: the store's feature parameters (`dataset.json`).
        bins: values per frame.
        frames: frames per row.
        frame_seconds: seconds between two frames of a row.
        centre_seconds: from a frame's start to its centre (half a block, or half a hop).
        name: the encoder, in words (`aisfx`).
    """

    feature_params: Mapping[str, Any]
    bins: int
    frames: int
    frame_seconds: float
    centre_seconds: float
    name: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> EncoderPart:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "feature_params": dict(self.feature_params)}


def _parts(params: Params) -> list[EncoderPart]:
    return [EncoderPart.of(p) for p in params.options.get("parts") or ()]


@register(STACKED, bins=lambda params: sum(p.bins for p in _parts(params)),
          frames=lambda n_samples, params: _parts(params)[0].frames, dtype="float16",
          summary="encoders' embeddings side by side, aligned in time",
          neighbouring_bins=False)
def stacked(y: np.ndarray, *, sample_rate: int, parts: Sequence[Mapping[str, Any]] = ()
            ) -> np.ndarray:
    """Not computed from a waveform: a stacked store is made from its parts' stores
    (`preprocessing.stacked.stack_stores`), and new files' features from each part's (see
    the module).

    Raises:
        DatasetError: always.
    """
    raise DatasetError("feature='stacked' is made from one store per encoder "
                       "(preprocessing.stacked.stack_stores; `python -m xval init` "
                       "makes one with two encoders or more), not from audio.")


def frame_times(starts: np.ndarray, part: EncoderPart) -> np.ndarray:
    """The centre of every frame of rows starting at `starts` (seconds), `[shape=(rows,
    frames)]`."""
    offsets = part.centre_seconds + part.frame_seconds * np.arange(part.frames)
    return np.asarray(starts, dtype=np.float64)[:, None] + offsets[None, :]


def align(first: tuple[np.ndarray, np.ndarray, EncoderPart],
          *others: tuple[np.ndarray, np.ndarray, EncoderPart]) -> np.ndarray:
    """One clip's rows of several encoders stacked on the first's frames.

    Args:
        first: `(features [shape=(rows, frames, bins)], starts [shape=(rows,)], part)` of
            the first encoder: the rows and frames of the result.
        *others: the same for each other encoder, on the same clip (its own segments).

    Returns:
        `np.ndarray [shape=(rows, frames, bins_1 + bins_2 + ...)]`: each frame of the first
        encoder followed by each other encoder's frame whose centre is nearest to its
        centre.
    """
    features, starts, part = first
    times = frame_times(starts, part)
    stacked_rows = [np.asarray(features, dtype=np.float32)]
    for values, their_starts, their_part in others:
        theirs = frame_times(their_starts, their_part).ravel()
        nearest = np.abs(times[..., None] - theirs[None, None, :]).argmin(axis=-1)
        flat = np.asarray(values, dtype=np.float32).reshape(-1, values.shape[-1])
        stacked_rows.append(flat[nearest])
    return np.concatenate(stacked_rows, axis=-1)
