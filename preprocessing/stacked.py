"""Encoders' stores side by side: `stack_stores` writes the `stacked` store of encoder
stores of the same files (the feature type and the alignment:
`preprocessing.features.stacked`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preprocessing.features.stacked import STACKED, EncoderPart, align
from preprocessing.store import FeatureStore, write_store
from xval.core.errors import DatasetError
from xval.core.parameters import FeatureParams

__all__ = ["stack_stores"]


def _part_of(store: Any) -> EncoderPart:
    """The alignment facts of an encoder store (`preprocessing.store.FeatureStore`)."""
    info, params = store.info, store.info.feature_params
    if params is None or not info.encoder:
        raise DatasetError(f"{store.path}: not an encoder's store (its dataset.json names no "
                           "encoder): only embedding stores are stacked.")
    block = int(info.front_end.get("block_length") or 0)
    hop = float(params.seconds_per_frame)
    centre = block / float(params.sample_rate) / 2 if block else hop / 2
    return EncoderPart(feature_params=dict(info.recorded_feature_params or {}),
                bins=int(store.features.shape[-1]), frames=int(store.features.shape[1]),
                frame_seconds=hop, centre_seconds=centre, name=str(info.encoder))


def stack_stores(stores: Sequence[FeatureStore], path: str | Path, *, overwrite: bool = False,
                 info: Mapping[str, Any] | None = None) -> FeatureStore:
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
        DatasetError: for fewer than two stores, a store that is not an encoder's, a
            `path` that is one of them, the same store twice, stores of other tasks or
            labels, a store that shares no clip with the first, or a clip whose item or
            label differs between two stores.
    """
    if len(stores) < 2:
        raise DatasetError(f"stack_stores: {len(stores)} store(s) given; stacking takes two "
                           "encoder stores or more.")
    parts = [_part_of(store) for store in stores]
    first = stores[0]
    if any(Path(path).resolve() == store.path.resolve() for store in stores):
        raise DatasetError(f"stack_stores: path {str(path)!r} is one of the stores stacked; "
                           "write the stacked store to a folder of its own.")
    for store in stores[1:]:
        if store.task_type != first.task_type or store.classes != first.classes:
            raise DatasetError(
                f"stack_stores: {store.path} holds task {store.task_type!r}, classes "
                f"{store.classes}, but {first.path} task {first.task_type!r}, classes "
                f"{first.classes}; stack stores built from the same files.")
    _check_same_files(stores)
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
                           "sample_rate": FeatureParams.of(parts[0].feature_params).sample_rate,
                           "stacked_from": [str(s.path) for s in stores],
                           "stacked_dropped": int((~keep).sum())})


def _check_same_files(stores: Sequence[FeatureStore]) -> None:
    """Refuses the same store given twice (the same features: a copy too), a store that
    shares no clip with the first (built from other files), and a clip whose item or label
    differs between the first store and another (the stacked rows keep the first's: folds
    cut by one store's items would put another's item on both sides)."""
    first = stores[0]
    seen: dict[str, Path] = {}
    for store in stores:
        key = store.content_hash or str(store.path.resolve())
        if key in seen:
            raise DatasetError(
                f"stack_stores: {store.path} holds the same features as {seen[key]} (one "
                "store given twice, or the stores of two copies of one model); stack the "
                "stores of different encoders.")
        seen[key] = store.path
    ours = first.meta.groupby("clip", sort=False)[["item", "label"]].first()
    for store in stores[1:]:
        theirs = store.meta.groupby("clip", sort=False)[["item", "label"]].first()
        both = ours.join(theirs, how="inner", rsuffix="_theirs")
        if both.empty:
            raise DatasetError(
                f"stack_stores: {store.path} shares no clip with {first.path} (e.g. "
                f"{theirs.index[0]!r} there, {ours.index[0]!r} here): they were built from "
                "other files; stack the stores of one set of files (`init --encoders` builds "
                "them).")
        for column in ("item", "label"):
            differs = both[both[column].astype(str) != both[f"{column}_theirs"].astype(str)]
            if len(differs):
                clip = differs.index[0]
                raise DatasetError(
                    f"stack_stores: clip {clip!r} is {column} {differs[column].iloc[0]!r} in "
                    f"{first.path} but {differs[f'{column}_theirs'].iloc[0]!r} in "
                    f"{store.path} ({len(differs)} clip(s) differ so); stack stores built "
                    "from the same files with the same items and labels (rebuild one with "
                    "the other's item pattern, manifest or labels).")


def _front_end(stores: Sequence[FeatureStore]) -> dict[str, Any]:
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
