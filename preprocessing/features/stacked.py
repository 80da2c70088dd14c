"""The `stacked` feature type: several encoders' embeddings of the same clips side by side.

A `stacked` store is made from stores of the same files, one per encoder (`stack_stores`):
its rows are the first store's (its segments, its frames), and each frame holds, after the
first encoder's embedding, every other encoder's embedding nearest to it in time in the same
clip (`align`: block centres; whatever each encoder's block length and hop, and however
each store cut the clip into segments). So a head reads `(frames, dim_1 + dim_2 + ...)`
rows as it reads one encoder's.

Its feature parameters are the first store's, the type `stacked`, and the option `parts`:
each store's feature parameters with the facts the alignment needs (`Part`). New files'
features (`predict`, `evaluate`) are each part's, extracted as its store's were, then
aligned by the same function (`xval.inference.models.read_features`); the type's own
function is never called on a waveform.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preprocessing.features.registry import Params, register
from xval.core.errors import DatasetError

STACKED = "stacked"
"""The feature type's name."""

__all__ = ["STACKED", "Part", "align", "stack_stores", "stacked"]


@dataclasses.dataclass(frozen=True)
class Part:
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
    def of(cls, data: Mapping[str, Any]) -> Part:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "feature_params": dict(self.feature_params)}


def _parts(params: Params) -> list[Part]:
    return [Part.of(p) for p in params.options.get("parts") or ()]


@register(STACKED, bins=lambda params: sum(p.bins for p in _parts(params)),
          frames=lambda n_samples, params: _parts(params)[0].frames, dtype="float16",
          summary="encoders' embeddings side by side, aligned in time",
          neighbouring_bins=False)
def stacked(y: np.ndarray, *, sample_rate: int, parts: Sequence[Mapping[str, Any]] = ()
            ) -> np.ndarray:
    """Not computed from a waveform: a stacked store is made from its parts' stores
    (`stack_stores`), and new files' features from each part's (see the module).

    Raises:
        DatasetError: always.
    """
    raise DatasetError("feature='stacked' is made from one store per encoder "
                       "(preprocessing.features.stacked.stack_stores; `python -m xval init` "
                       "makes one with two encoders or more), not from audio.")


def frame_times(starts: np.ndarray, part: Part) -> np.ndarray:
    """The centre of every frame of rows starting at `starts` (seconds), `[shape=(rows,
    frames)]`."""
    offsets = part.centre_seconds + part.frame_seconds * np.arange(part.frames)
    return np.asarray(starts, dtype=np.float64)[:, None] + offsets[None, :]


def align(first: tuple[np.ndarray, np.ndarray, Part],
          *others: tuple[np.ndarray, np.ndarray, Part]) -> np.ndarray:
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


def _part_of(store: Any) -> Part:
    """The alignment facts of an encoder store (`preprocessing.store.FeatureStore`)."""
    info, params = store.info, store.info.feature_params
    if params is None or not info.encoder:
        raise DatasetError(f"{store.path}: not an encoder's store (its dataset.json names no "
                           "encoder): only embedding stores are stacked.")
    block = int(info.front_end.get("block_length") or 0)
    hop = float(params.seconds_per_frame)
    centre = block / float(params.sample_rate) / 2 if block else hop / 2
    return Part(feature_params=dict(info.recorded_feature_params or {}),
                bins=int(store.features.shape[-1]), frames=int(store.features.shape[1]),
                frame_seconds=hop, centre_seconds=centre, name=str(info.encoder))


def stack_stores(stores: Sequence[Any], path: str | Path, *, overwrite: bool = False,
                 info: Mapping[str, Any] | None = None) -> Any:
    """Writes the stacked store of encoder stores of the same files (see the module).

    Rows of the first store whose clip another store has no row of (a file one encoder
    skipped) are left out, and counted in `dataset.json` (`stacked_dropped`).

    Args:
        stores: two or more `FeatureStore`s of embeddings, the first one's rows kept.
        path: the store folder to write.
        overwrite: replace a store there. Defaults to `False`.
        info: more entries of `dataset.json`. Defaults to none.

    Returns:
        The stacked `FeatureStore`.

    Raises:
        DatasetError: for fewer than two stores, a store that is not an encoder's, or
            stores of other tasks or labels.
    """
    from preprocessing.store import write_store  # noqa: PLC0415  (the store imports features)

    if len(stores) < 2:
        raise DatasetError(f"stack_stores: {len(stores)} store(s) given; stacking takes two "
                           "encoder stores or more.")
    parts = [_part_of(store) for store in stores]
    first = stores[0]
    if any(s.task_type != first.task_type or s.classes != first.classes for s in stores):
        raise DatasetError("stack_stores: the stores hold other tasks or classes; stack "
                           "stores built from the same files.")
    grouped = [_rows_by_clip(store) for store in stores]
    keep = np.array([all(clip in g for g in grouped[1:]) for clip in first.clips])
    out = np.zeros((len(first.meta), parts[0].frames, sum(p.bins for p in parts)), np.float32)
    for clip, rows in grouped[0].items():
        if not keep[rows[0]]:
            continue
        out[rows] = align(*[(np.asarray(store.features[g[clip]]), _starts(store, g[clip]),
                             part) for store, g, part in zip(stores, grouped, parts)])
    params = {**parts[0].feature_params, "feature": STACKED,
              "parts": [p.to_dict() for p in parts]}
    for key in ("encoder", "revision", "layers", "batch_size", "device", "frame_pool",
                "weights_sha256"):
        params.pop(key, None)  # the first encoder's options: in its part
    meta = first.meta.loc[keep].reset_index(drop=True)
    return write_store(path, out[keep].astype(first.features.dtype), meta,
                       task_type=first.task_type, classes=list(first.classes),
                       overwrite=overwrite, info={
                           **(info or {}), "feature_params": params,
                           "front_end": _front_end(stores),
                           "sample_rate": parts[0].feature_params.get("sample_rate"),
                           "stacked_from": [str(s.path) for s in stores],
                           "stacked_dropped": int((~keep).sum())})


def _front_end(stores: Sequence[Any]) -> dict[str, Any]:
    """What `dataset.json` records of the encoders: each one's front end, and their
    licences together (a model trained on the stacked store is bound by each)."""
    ends = [s.info.front_end for s in stores]
    return {"parts": ends, "stacked": "+".join(str(e.get("encoder")) for e in ends),
            "licence": "; ".join(f"{e.get('encoder')}: {e.get('licence') or 'not recorded'}"
                                 for e in ends)}


def _rows_by_clip(store: Any) -> dict[str, np.ndarray]:
    """clip -> its rows of `store`, in the store's order."""
    clips = pd.Series(np.asarray(store.clips).astype(str))
    return {clip: rows.to_numpy() for clip, rows in clips.groupby(clips, sort=False).groups
            .items()}


def _starts(store: Any, rows: np.ndarray) -> np.ndarray:
    """The start of `rows` of `store` in their clip (seconds; 0 where not recorded)."""
    if "start" not in store.meta:
        return np.zeros(len(rows))
    starts = pd.to_numeric(store.meta["start"].iloc[rows], errors="coerce")
    return starts.fillna(0.0).to_numpy(np.float64)
