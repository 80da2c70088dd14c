"""The files of a feature store: `dataset.json`, `meta.csv` and `features.npy` read (never
unpickled), the rows' order by item, `features.npy` written in blocks, and the content hash.
`preprocessing.store` puts them together."""

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xval.core.dataset_info import DatasetInfo
from xval.core.errors import DatasetError

__all__ = ["content_hash", "item_order", "read_store_files", "rows_layout", "write_features"]


def read_store_files(path: Path) -> tuple[DatasetInfo, pd.DataFrame, np.ndarray]:
    """`dataset.json`, `meta.csv` and `features.npy` (memory-mapped, never pickled).

    Raises:
        DatasetError: naming the file that cannot be read as what it should be.
    """
    def corrupt(name: str, e: Exception) -> DatasetError:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        return DatasetError(f"{path / name} cannot be read ({detail}); the store is corrupt: "
                            "rebuild it.")

    def read(name: str, reader: Callable[[Path], Any]) -> Any:
        try:  # a parser's errors are ValueErrors (JSON, CSV, .npy), a short file's EOFError
            return reader(path / name)
        except (OSError, ValueError, EOFError) as e:
            raise corrupt(name, e) from None

    info = read("dataset.json", lambda p: json.loads(p.read_text(encoding="utf-8")))
    if not isinstance(info, dict):
        raise corrupt("dataset.json", ValueError("not a JSON object"))
    typed = DatasetInfo.from_dict(info, where=str(path / "dataset.json"))
    meta = read("meta.csv", lambda p: pd.read_csv(p, dtype={"item": str, "clip": str,
                                                            "label": str}, keep_default_na=False))
    features = read("features.npy", lambda p: np.load(p, mmap_mode="r", allow_pickle=False))
    if not isinstance(features, np.ndarray) or features.ndim < 2:
        raise corrupt("features.npy", ValueError("not an array of feature rows"))
    return typed, meta, features


def content_hash(folder: Path, meta: pd.DataFrame, arrays: Iterable[str] = ()) -> str:
    """SHA-256 of the features (and the task's extra arrays) and the metadata, without
    source paths (so a moved dataset keeps its hash)."""
    digest = hashlib.sha256()
    for name in ("features.npy", *sorted(arrays)):
        with open(folder / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    digest.update(meta.drop(columns=["source"]).to_csv(index=False).encode())
    return digest.hexdigest()


def rows_layout(features: np.ndarray | str | os.PathLike[str],
            n_meta: int) -> tuple[int, tuple[int, ...], np.dtype[Any]]:
    """`(rows, row shape, dtype)` of the features (an array or a `.npy` file), checked
    against the metadata's row count."""
    array = np.load(features, mmap_mode="r", allow_pickle=False) \
        if isinstance(features, (str, os.PathLike)) else np.asarray(features)
    n_rows, shape, dtype = array.shape[0], array.shape[1:], array.dtype
    if n_rows != n_meta:
        raise DatasetError(f"{n_rows} feature rows but {n_meta} metadata rows.")
    if n_rows == 0:
        raise DatasetError("No rows to write: every file was skipped or none was found.")
    return n_rows, shape, dtype


def item_order(meta: pd.DataFrame) -> tuple[np.ndarray, bool]:
    """The row order grouping rows by item (stable: keeps clip and segment order inside an
    item), and whether the rows are grouped already."""
    first = {item: i for i, item in reversed(list(enumerate(meta["item"])))}
    order = np.argsort(meta["item"].map(first).to_numpy(), kind="stable")
    return order, bool(np.all(order == np.arange(len(meta))))


def write_npy(path: str | os.PathLike[str], dtype: np.dtype[Any], shape: tuple[int, ...],
              blocks: Iterable[bytes | np.ndarray]) -> None:
    """Writes a `.npy` file from its data in blocks (C order), through the file: never a
    memory map, whose write to a full disk kills the process with SIGBUS where a file
    write raises an `OSError` (`ENOSPC`) that names the disk.

    Args:
        path: the file to write.
        dtype: the array's dtype.
        shape: the array's shape.
        blocks: the data, in order: bytes or arrays (`np.ndarray [shape=(k, ...)]`).
    """
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                 "fortran_order": False, "shape": shape})
        for block in blocks:
            f.write(block if isinstance(block, bytes)
                    else np.ascontiguousarray(block, dtype=dtype).tobytes())


def write_features(folder: Path, features: np.ndarray | str | os.PathLike[str],
                   order: np.ndarray, grouped: bool) -> None:
    """Writes `folder/features.npy` in `order` (a `.npy` file already grouped is moved; the
    others are copied in blocks: a file's rows are never all in memory)."""
    if grouped and isinstance(features, (str, os.PathLike)):
        shutil.move(str(features), folder / "features.npy")
        return
    src = np.load(features, mmap_mode="r", allow_pickle=False) \
        if isinstance(features, (str, os.PathLike)) else np.asarray(features)
    write_npy(folder / "features.npy", src.dtype, src.shape,
              (src[order[start:start + 4096]] for start in range(0, len(order), 4096)))
    del src
