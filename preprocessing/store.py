"""The feature store: `features.npy` + `meta.csv` + `dataset.json` in one folder.

Rows are grouped by item. `features.npy` is opened memory-mapped, so a store larger than
memory is never loaded whole. Nothing is pickled. A store is written into a temporary
sibling folder and renamed into place, so it appears complete or not at all.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from xval import tasks
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.files import make_temp_dir

META_COLUMNS = ("row", "item", "label", "target", "clip", "source", "start", "augmented")
FILES = ("features.npy", "meta.csv", "dataset.json")


class FeatureStore:
    """A feature store opened for reading.

    Args:
        path: the store folder.

    Attributes:
        features: `np.memmap [shape=(n_rows, time, frequency)]`.
        meta: `pandas.DataFrame` with the columns `row, item, label, target, clip, source,
            start, augmented` (and `split` when the source had one).
        info: the contents of `dataset.json`.

    Raises:
        DatasetError: when the folder or one of its files is missing or inconsistent.
    """

    def __init__(self, path):
        self.path = Path(path)
        missing = [f for f in FILES if not (self.path / f).is_file()]
        if missing:
            raise DatasetError(
                f"{self.path} is not a feature store: missing {', '.join(missing)}. Build it "
                "with `python -m preprocessing ...` (see the README), or `make demo` for the "
                "built-in demo dataset."
            )
        self.info = json.loads((self.path / "dataset.json").read_text())
        self.meta = pd.read_csv(
            self.path / "meta.csv", dtype={"item": str, "clip": str, "label": str},
            keep_default_na=False,
        )
        self.features = np.load(self.path / "features.npy", mmap_mode="r")
        if len(self.meta) != self.features.shape[0]:
            raise DatasetError(
                f"{self.path}: meta.csv has {len(self.meta)} rows but features.npy has "
                f"{self.features.shape[0]}; the store is corrupt, rebuild it."
            )

    def __len__(self):
        return len(self.meta)

    def __repr__(self):
        return (f"FeatureStore({str(self.path)!r}, rows={len(self)}, "
                f"shape={self.features.shape[1:]}, classes={len(self.classes)})")

    @property
    def task_type(self):
        """The store's task (`dataset.json`), `xval.tasks.DEFAULT` when it names none."""
        return self.info.get("task_type", tasks.DEFAULT)

    @property
    def classes(self):
        return list(self.info.get("classes", []))

    @property
    def items(self):
        return self.meta["item"].to_numpy(str)

    @property
    def clips(self):
        return self.meta["clip"].to_numpy(str)

    @property
    def targets(self):
        """The `target` column as the task feeds it to Keras (`Task.targets`)."""
        return _task(self.task_type).store_targets(self)

    @property
    def augmented(self):
        return self.meta["augmented"].to_numpy(bool)

    @property
    def content_hash(self):
        return self.info["content_hash"]

    def as_dicts(self):
        """The original API's view: `predictors[item]` and `targets[item]` arrays.

        Returns:
            `(predictors, targets)`: dicts of item to `np.ndarray [shape=(n, time, freq)]`
            and to `np.ndarray [shape=(n,)]` (loaded into memory).
        """
        predictors, targets = {}, {}
        items = self.items
        y = self.targets
        for item in dict.fromkeys(items.tolist()):
            rows = np.flatnonzero(items == item)
            predictors[item] = np.asarray(self.features[rows[0]:rows[-1] + 1])
            targets[item] = y[rows[0]:rows[-1] + 1]
        return predictors, targets


def _content_hash(folder, meta, arrays=()):
    """SHA-256 of the features (and the task's extra arrays) and the metadata, without
    source paths (so a moved dataset keeps its hash)."""
    digest = hashlib.sha256()
    for name in ("features.npy", *sorted(arrays)):
        with open(folder / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    digest.update(meta.drop(columns=["source"]).to_csv(index=False).encode())
    return digest.hexdigest()


def _task(task_type):
    """The registered task `task_type`; an unknown name is a `DatasetError` listing them."""
    try:
        return tasks.get(task_type)
    except ConfigurationError as e:
        raise DatasetError(str(e)) from None


def _prepare_meta(meta, task_type, classes):
    meta = meta.reset_index(drop=True).copy()
    for column in ("item", "label"):
        if column not in meta:
            raise DatasetError(f"Store metadata needs a {column!r} column.")
    meta["item"] = meta["item"].astype(str)
    if "clip" not in meta:
        meta["clip"] = [f"{i}" for i in range(len(meta))]
    meta["clip"] = meta["clip"].astype(str)
    for column, default in (("source", ""), ("start", 0.0), ("augmented", False)):
        if column not in meta:
            meta[column] = default
    meta, classes = _task(task_type).encode_targets(meta, classes)
    return meta, list(classes)


def write_store(path, features, meta, *, info=None, task_type=tasks.DEFAULT, classes=None,
                overwrite=False, arrays=None):
    """Writes a feature store atomically, rows grouped by item.

    Args:
        path: the store folder to create.
        features: `np.ndarray [shape=(n_rows, time, frequency)]`, or the path of a `.npy`
            file with rows already in `meta`'s order (moved, not copied).
        meta: `pandas.DataFrame` with at least `item` and `label` columns, one row per
            feature row; optional `clip`, `source`, `start`, `augmented`, `split`.
        info: extra entries of `dataset.json` (feature parameters, sample rate, skipped files).
        task_type: a task registered in `xval.tasks`; it encodes the labels as targets
            (`Task.encode_targets`). Defaults to `xval.tasks.DEFAULT` (classification).
        classes: class names in target order. Defaults to the sorted labels.
        overwrite: replace an existing store. Defaults to `False`.
        arrays: dict of file name to `np.ndarray` with one entry per row, saved beside
            `features.npy` in the same row order (the task's `extra_arrays`, e.g. a
            detection store's `frame_targets.npy`). Defaults to none.

    Returns:
        The `FeatureStore`, opened.

    Raises:
        DatasetError: when the store exists and `overwrite` is off, or the inputs disagree.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetError(
            f"A store already exists at {path}; pass overwrite=True (--overwrite) to replace it."
        )
    meta, classes = _prepare_meta(meta, task_type, classes)
    arrays = dict(arrays or {})
    expected = set(_task(task_type).extra_arrays)
    if set(arrays) != expected:
        raise DatasetError(
            f"A {task_type} store keeps the arrays {sorted(expected) or 'none'} beside "
            f"features.npy; got {sorted(arrays) or 'none'}."
        )
    for name, array in arrays.items():
        if len(array) != len(meta):
            raise DatasetError(f"{name} has {len(array)} rows but the metadata {len(meta)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, prefix=f".{path.name}.")
    try:
        if isinstance(features, (str, os.PathLike)):
            array = np.load(features, mmap_mode="r")
            n_rows, shape, dtype = array.shape[0], array.shape[1:], array.dtype
            del array
        else:
            features = np.asarray(features)
            n_rows, shape, dtype = features.shape[0], features.shape[1:], features.dtype
        if n_rows != len(meta):
            raise DatasetError(f"{n_rows} feature rows but {len(meta)} metadata rows.")
        if n_rows == 0:
            raise DatasetError("No rows to write: every file was skipped or none was found.")
        # Group rows by item (stable: keeps clip and segment order inside an item).
        first = {item: i for i, item in reversed(list(enumerate(meta["item"])))}
        order = np.argsort(meta["item"].map(first).to_numpy(), kind="stable")
        grouped = bool(np.all(order == np.arange(n_rows)))
        if isinstance(features, (str, os.PathLike)):
            if grouped:
                shutil.move(str(features), tmp / "features.npy")
            else:
                src = np.load(features, mmap_mode="r")
                out = np.lib.format.open_memmap(tmp / "features.npy", "w+", src.dtype,
                                                src.shape)
                for start in range(0, n_rows, 4096):
                    out[start:start + 4096] = src[order[start:start + 4096]]
                out.flush()
                del out, src
        else:
            np.save(tmp / "features.npy", features if grouped else features[order])
        for name, array in arrays.items():
            array = np.asarray(array)
            np.save(tmp / name, array if grouped else array[order])
        meta = meta.iloc[order].reset_index(drop=True)
        meta["row"] = np.arange(n_rows)
        columns = list(META_COLUMNS) + [c for c in meta.columns if c not in META_COLUMNS]
        meta[columns].to_csv(tmp / "meta.csv", index=False)
        items = meta["item"].tolist()
        body = {
            "task_type": task_type,
            "classes": classes,
            "n_rows": int(n_rows),
            "feature_shape": [int(s) for s in shape],
            "dtype": str(dtype),
            "n_items": len(set(items)),
            "n_clips": int(meta["clip"].nunique()),
            **(info or {}),
        }
        body["content_hash"] = _content_hash(tmp, meta[columns], list(arrays))
        (tmp / "dataset.json").write_text(json.dumps(body, indent=2, default=str))
        if path.exists():
            trash = make_temp_dir(path.parent, prefix=f".{path.name}.old.")
            os.replace(path, trash / "store")
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FeatureStore(path)


def write_store_from_dicts(path, predictors, targets, *, classes=None,
                           task_type=tasks.DEFAULT, info=None, overwrite=False):
    """Writes a store from the original API's dicts: `predictors[item]`, `targets[item]`.

    Args:
        path: the store folder to create.
        predictors: dict of item to `np.ndarray [shape=(n, time, frequency)]`.
        targets: dict of item to labels `[shape=(n,)]`: class names, class indices (with
            `classes`), one-hot rows, or numbers for regression.
        classes: class names, index `i` naming target `i`. Defaults to the sorted labels.
        task_type: a task registered in `xval.tasks` (`Task.labels_of` reads `targets`).
            Defaults to `xval.tasks.DEFAULT` (classification).
        info: extra entries of `dataset.json`.
        overwrite: replace an existing store. Defaults to `False`.

    Returns:
        The `FeatureStore`, opened.

    Raises:
        DatasetError: when the two dicts disagree on items or row counts, or shapes differ.
    """
    if set(predictors) != set(targets):
        only = sorted(set(predictors) ^ set(targets), key=str)[:5]
        raise DatasetError(f"predictors and targets must have the same items; differing: {only}.")
    task = _task(task_type)
    arrays, rows = [], []
    shape = None
    for item in predictors:
        x = np.asarray(predictors[item])
        y = np.asarray(targets[item])
        if x.ndim == 2:
            x = x[None]
        labels = task.labels_of(y, classes)
        if len(x) != len(labels):
            raise DatasetError(
                f"Item {item!r}: {len(x)} predictor rows but {len(labels)} targets."
            )
        if shape is None:
            shape = x.shape[1:]
        elif x.shape[1:] != shape:
            raise DatasetError(
                f"Item {item!r}: feature shape {x.shape[1:]} differs from {shape}; every "
                "row must have the same shape."
            )
        arrays.append(x)
        for i, label in enumerate(labels):
            rows.append({"item": str(item), "label": label, "clip": f"{item}/{i}",
                         "source": "", "start": 0.0, "augmented": False})
    meta = pd.DataFrame(rows)
    if task.has_classes and classes is not None:
        classes = [str(c) for c in classes]
    return write_store(path, np.concatenate(arrays), meta, info=info, task_type=task_type,
                       classes=classes, overwrite=overwrite)
