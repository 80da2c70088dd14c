"""The duplicate check of a built store: its record read, the check made again from the audio
(a store built before the check existed), recorded, and the items that share audio merged
by rewriting the store (`python -m preprocessing check STORE`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from preprocessing.duplicates.check import (
    Conflict,
    CrossItemDuplicate,
    DuplicateCheck,
    check_files,
    clip_labels,
    clip_table,
    cross_item_duplicates,
    label_conflicts,
    merge_duplicates,
)
from preprocessing.store import FeatureStore, write_store
from xval import tasks
from xval.core.errors import DatasetError
from xval.core.files import atomic_write_text

__all__ = ["StoreCheck", "merge_store", "recheck_store", "record_check", "store_check"]

_OWN_ENTRIES = ("task_type", "classes", "n_rows", "feature_shape", "dtype", "n_items",
                "n_clips", "content_hash", "files_sha256")
"""The entries of `dataset.json` that `write_store` computes itself."""


@dataclasses.dataclass(frozen=True)
class StoreCheck:
    """A store's duplicate check and what follows from its items.

    Attributes:
        check: the `DuplicateCheck` recorded (`None`: the store was built before it).
        cross_item: its pairs that cross the store's items.
        sources: clip -> the file it was read from.
        conflicts: its pairs whose files carry two labels.
    """

    check: DuplicateCheck | None
    cross_item: tuple[CrossItemDuplicate, ...]
    sources: Mapping[str, str]
    conflicts: tuple[Conflict, ...] = ()


def store_check(store: FeatureStore) -> StoreCheck:
    """The duplicate check a store recorded, and its pairs that cross the store's items.

    Raises:
        DatasetError: when the record cannot be read.
    """
    items, sources = clip_table(store.meta)
    recorded = store.info.duplicates
    if recorded is None:
        return StoreCheck(None, (), sources)
    check = DuplicateCheck.from_dict(recorded)
    conflicts = label_conflicts(check, clip_labels(store.meta), items)
    return StoreCheck(check, tuple(cross_item_duplicates(check, items)), sources, tuple(conflicts))


def _clip_rows(meta: pd.DataFrame) -> pd.DataFrame:
    """One source row per clip of a store (`path`, `clip`, and its region when the clip is a
    stretch of its file: `offset` = its first row's start, `duration`)."""
    original = meta[~meta["augmented"].astype(bool)] if "augmented" in meta else meta
    first = original.groupby("clip", sort=False).agg(
        path=("source", "first"), offset=("start", "min"),
        **({"duration": ("duration", "first")} if "duration" in original else {}))
    first = first.reset_index()
    shared = first["path"].duplicated(keep=False) | (first["offset"] > 0)
    first["offset"] = np.where(shared, first["offset"], np.nan)
    if "duration" in first:
        first["duration"] = np.where(shared, first["duration"], np.nan)
    return first


def recheck_store(store: FeatureStore, *, workers: int = 1, threshold: float | None = None,
                  progress: bool = False) -> DuplicateCheck:
    """Checks a store's files again from their audio (the `source` of its rows).

    Raises:
        DatasetError: when none of the store's audio files can be read (moved or deleted).
    """
    rows = _clip_rows(store.meta)
    kwargs: dict[str, Any] = {} if threshold is None else {"threshold": threshold}
    check = check_files(rows, workers=workers, progress=progress, **kwargs)
    if check.files == 0:
        raise DatasetError(
            f"{store.path}: none of its {len(rows)} audio files can be read (the first: "
            f"{rows['path'].iloc[0]}); the check needs them. Rebuild the store from the "
            "audio, which records the check.")
    return check


def record_check(store: FeatureStore, check: DuplicateCheck) -> FeatureStore:
    """Writes `check` into the store's `dataset.json` (atomically; the files it hashes,
    `features.npy` and `meta.csv`, are not touched)."""
    body = {**store.info.to_dict(), "duplicates": check.to_dict()}
    atomic_write_text(store.path / "dataset.json", json.dumps(body, indent=2, default=str))
    return FeatureStore(store.path)


def merge_store(store: FeatureStore, check: DuplicateCheck) -> tuple[FeatureStore,
                                                                      DuplicateCheck]:
    """Rewrites the store with each group of items that share audio as one item (its
    rows regrouped, its hashes new), the merge recorded in the check.

    Returns:
        The store, opened again, and the check with the groups merged (`merged`).
    """
    merged, meta = merge_duplicates(check, store.meta)
    if merged == check:
        return store, check
    info = {k: v for k, v in store.info.to_dict().items() if k not in _OWN_ENTRIES}
    info["duplicates"] = merged.to_dict()
    arrays = {name: np.load(store.path / name, mmap_mode="r")
              for name in tasks.get(store.task_type).extra_arrays}
    written = write_store(store.path, store.features, meta.drop(columns=["row", "target"],
                                                                  errors="ignore"),
                          info=info, task_type=store.task_type,
                          classes=store.classes or None,
                          overwrite=True, arrays=arrays or None)
    return written, merged
