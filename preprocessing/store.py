"""The feature store: `features.npy` + `meta.csv` + `dataset.json` in one folder.

Rows are grouped by item. `features.npy` is opened memory-mapped, so a store larger than
memory is never loaded whole. Nothing is pickled. A store is written into a temporary
sibling folder and renamed into place, so it appears complete or not at all.
"""

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preprocessing.store_files import (
    content_hash,
    item_order,
    read_store_files,
    rows_layout,
    write_features,
)
from preprocessing.store_output import FILES, check_store_out, replace_store
from xval import tasks
from xval.core.errors import ConfigurationError, DatasetError, StorageError
from xval.core.files import make_temp_dir, storage_error
from xval.core.hashing import file_digest

META_COLUMNS = ("row", "item", "label", "target", "clip", "source", "start", "augmented")


class FeatureStore:
    """A feature store opened for reading.

    Args:
        path: the store folder.

    Attributes:
        features: `np.memmap [shape=(n_rows, time, frequency)]`.
        meta: `pandas.DataFrame` with the columns `row, item, label, target, clip, source,
            start, augmented` (and `split` when the source had one).
        info: the contents of `dataset.json` (a `DatasetInfo`).

    Raises:
        DatasetError: when the folder or one of its files is missing or inconsistent.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        missing = [f for f in FILES if not (self.path / f).is_file()]
        if missing:
            raise DatasetError(
                f"{self.path} is not a feature store: missing {', '.join(missing)}. Build it "
                "with `python -m preprocessing ...` (see docs/preprocessing.md), or `make demo` for the "
                "built-in demo dataset.")
        self.info, self.meta, self.features = read_store_files(self.path)
        if len(self.meta) != self.features.shape[0]:
            raise DatasetError(
                f"{self.path}: meta.csv has {len(self.meta)} rows but features.npy has "
                f"{self.features.shape[0]}; the store is corrupt, rebuild it.")

    def __len__(self) -> int:
        return len(self.meta)

    def __repr__(self) -> str:
        return (f"FeatureStore({str(self.path)!r}, rows={len(self)}, "
                f"shape={self.features.shape[1:]}, classes={len(self.classes)})")

    @property
    def task_type(self) -> str:
        """The store's task (`dataset.json`), `xval.tasks.DEFAULT` when it names none."""
        return self.info.task_type or tasks.DEFAULT

    @property
    def classes(self) -> list[str]:
        """The class names, in target order (`dataset.json`)."""
        return self.info.classes

    @property
    def items(self) -> np.ndarray:
        """The item of every row, `np.ndarray [shape=(rows,)]` of str."""
        return self.meta["item"].to_numpy(str)

    @property
    def clips(self) -> np.ndarray:
        """The clip of every row, `np.ndarray [shape=(rows,)]` of str."""
        return self.meta["clip"].to_numpy(str)

    @property
    def targets(self) -> np.ndarray:
        """The `target` column as the task feeds it to Keras (`Targets.of_store`)."""
        return _task(self.task_type).targets.of_store(self)

    @property
    def augmented(self) -> np.ndarray:
        """Whether every row is an augmented version, `np.ndarray [shape=(rows,)]` of bool."""
        return self.meta["augmented"].to_numpy(bool)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the features, extra arrays and metadata (without source paths)."""
        return self.info.content_hash

    def verify(self) -> None:
        """Checks that the store's files hold what `dataset.json` recorded when it was built
        (`files_sha256`, hashed once per process and file version; for an older store, the
        content hash), so that results are never made from a store edited in place.

        Raises:
            DatasetError: naming the files that changed and the fix.
        """
        recorded = self.info.files_sha256
        if recorded:
            changed = [name for name, digest in sorted(recorded.items())
                       if not (self.path / name).is_file()
                       or file_digest(self.path / name) != digest]
        else:
            files = ["features.npy", "meta.csv", *_task(self.task_type).extra_arrays]
            content = content_hash(self.path, self.meta, files[2:])
            changed = [] if content == self.info.content_hash else [" or ".join(files)]
        if changed:
            raise DatasetError(
                f"{self.path}: {', '.join(changed)} changed after the store was built (the "
                "content no longer matches the hash dataset.json recorded); results made "
                "from it would mix data. Rebuild the store (`--overwrite`), or restore the "
                "files.")



def _task(task_type: str) -> tasks.Task:
    """The registered task `task_type`; an unknown name is a `DatasetError` listing them."""
    try:
        return tasks.get(task_type)
    except ConfigurationError as e:
        raise DatasetError(str(e)) from None


def _prepare_meta(meta: pd.DataFrame, task_type: str,
                  classes: list[str] | None) -> tuple[pd.DataFrame, list[str]]:
    for column in ("item", "label"):
        if column not in meta:
            raise DatasetError(f"Store metadata needs a {column!r} column.")
    defaults = {"clip": range(len(meta)), "source": "", "start": 0.0, "augmented": False}
    meta = meta.reset_index(drop=True).assign(**{c: v for c, v in defaults.items()
                                                 if c not in meta})
    meta[["item", "clip"]] = meta[["item", "clip"]].astype(str)
    meta, classes = _task(task_type).targets.encode(meta, classes)
    return meta, list(classes)


def _check_arrays(arrays: Mapping[str, np.ndarray] | None, task_type: str,
                  n_rows: int) -> dict[str, np.ndarray]:
    """The task's extra arrays (`Task.extra_arrays`), one entry per row each."""
    out = dict(arrays or {})
    expected = set(_task(task_type).extra_arrays)
    if set(out) != expected:
        raise DatasetError(
            f"A {task_type} store keeps the arrays {sorted(expected) or 'none'} beside "
            f"features.npy; got {sorted(out) or 'none'}.")
    for name, array in out.items():
        if len(array) != n_rows:
            raise DatasetError(f"{name} has {len(array)} rows but the metadata {n_rows}.")
    return out


def write_store(path: str | os.PathLike[str], features: np.ndarray | str | os.PathLike[str],
                meta: pd.DataFrame, *, info: Mapping[str, Any] | None = None,
                task_type: str = tasks.DEFAULT, classes: list[str] | None = None,
                overwrite: bool = False,
                arrays: Mapping[str, np.ndarray] | None = None) -> FeatureStore:
    """Writes a feature store atomically, rows grouped by item.

    Args:
        path: the store folder to create.
        features: `np.ndarray [shape=(n_rows, time, frequency)]`, or the path of a `.npy`
            file with rows already in `meta`'s order (moved, not copied).
        meta: `pandas.DataFrame` with at least `item` and `label` columns, one row per
            feature row; optional `clip`, `source`, `start`, `augmented`, `split`.
        info: extra entries of `dataset.json` (feature parameters, sample rate, skipped files).
        task_type: a task registered in `xval.tasks`; it encodes the labels as targets
            (`Targets.encode`). Defaults to `xval.tasks.DEFAULT` (classification).
        classes: class names in target order. Defaults to the sorted labels.
        overwrite: replace an existing store. Defaults to `False`.
        arrays: dict of file name to `np.ndarray` with one entry per row, saved beside
            `features.npy` in the same row order (the task's `extra_arrays`, e.g. a
            detection store's `frame_targets.npy`). Defaults to none.

    Returns:
        The `FeatureStore`, opened.

    Raises:
        DatasetError: when the store exists and `overwrite` is off, when `path` is anything
            but a store (`check_store_out`: never replaced), or the inputs disagree.
        StorageError: when its disk is full or may not be written (nothing is left).
    """
    path = Path(path)
    check_store_out(path, overwrite=overwrite)
    meta, classes = _prepare_meta(meta, task_type, classes)
    extra = _check_arrays(arrays, task_type, len(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, prefix=f".{path.name}.")
    try:
        n_rows, shape, dtype = rows_layout(features, len(meta))
        order, grouped = item_order(meta)
        write_features(tmp, features, order, grouped)
        for name, array in extra.items():
            np.save(tmp / name, np.asarray(array)[order if not grouped else slice(None)])
        meta = meta.iloc[order].reset_index(drop=True)
        meta["row"] = np.arange(n_rows)
        columns = list(META_COLUMNS) + [c for c in meta.columns if c not in META_COLUMNS]
        meta[columns].to_csv(tmp / "meta.csv", index=False)
        body = {"task_type": task_type, "classes": classes, "n_rows": int(n_rows),
                "feature_shape": [int(s) for s in shape], "dtype": str(dtype),
                "n_items": int(meta["item"].nunique()), "n_clips": int(meta["clip"].nunique()),
                **(info or {})}
        body["content_hash"] = content_hash(tmp, meta[columns], list(extra))
        body["files_sha256"] = {name: file_digest(tmp / name)
                                for name in ("features.npy", "meta.csv", *sorted(extra))}
        (tmp / "dataset.json").write_text(json.dumps(body, indent=2, default=str))
        replace_store(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, StorageError):
            raise storage_error(e, path) from e  # the store named, never stdout
        raise
    return FeatureStore(path)
