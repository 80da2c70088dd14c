"""Building a feature store from source rows: decode, segment, extract, in parallel."""

import contextlib
import dataclasses
import functools
import itertools
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import xval.config.schema as schema
from preprocessing.audio import Region
from preprocessing.duplicates.check import DuplicateCheck, FingerprintSpool, merge_duplicates
from preprocessing.extraction import Augmenter, extract_file
from preprocessing.features import (
    compute_features,
    front_end,
    get,
)
from preprocessing.intake import check_trainable
from preprocessing.parallel import auto_workers, process_pool, single_threaded
from preprocessing.parameters import feature_params
from preprocessing.rows import check_rows, row_region
from preprocessing.segment_length import check_segment_length
from preprocessing.silent_segments import silent_note, silent_record
from preprocessing.sources import Skipped
from preprocessing.store import FeatureStore, check_store_out, write_store
from preprocessing.store_files import write_npy
from xval import tasks
from xval.core.errors import DatasetError
from xval.core.files import make_temp_file, storage_error
from xval.core.parameters import FeatureParams
from xval.core.terminal import is_terminal

__all__ = ["build_store", "extract_file", "feature_params", "silent_note"]

ExtractionTask = tuple[str, FeatureParams, Augmenter | None, int, int, str, Region | None,
                       bool]


def _warm_up(params: FeatureParams) -> None:
    """Imports and compiles what extraction needs, before the workers are forked."""
    compute_features(np.zeros(int(params.sample_rate * 0.1), np.float32), **params.to_dict())


@contextlib.contextmanager
def _extraction_results(work: list[ExtractionTask], params: FeatureParams,
                        workers: int) -> Iterator[Iterator[dict[str, Any]]]:
    """The results of `extract_file` over `work`, in order: in this process (one worker,
    or a model: `workers` threads) or a process pool, shut down on leaving (never more
    processes than files)."""
    if get(params.feature).batched:  # one copy of the model; its threads do the work
        with threadpool_limits(workers):
            yield itertools.starmap(extract_file, work)
        return
    workers = max(1, min(workers, len(work)))
    if workers == 1:
        with single_threaded():  # the workers' BLAS: the same rows whatever the count
            yield itertools.starmap(extract_file, work)
        return
    pool = process_pool(workers, warm_up=functools.partial(_warm_up, params))
    try:
        yield pool.map(extract_file, *zip(*work),  # one call per row, arguments by column
                       chunksize=max(1, min(16, len(work) // (workers * 8) or 1)))
    finally:
        pool.shutdown(cancel_futures=True)


@dataclasses.dataclass
class _Extraction:
    """The rows extracted so far: features appended to a raw file, their metadata, and the
    files skipped (or, in strict mode, the first unusable file raised)."""

    raw: BinaryIO
    skipped: Skipped
    strict: bool
    keep_silent: bool = False
    spool: FingerprintSpool | None = None
    meta: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    silent: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rows: int = 0
    files: int = 0
    paths: set[str] = dataclasses.field(default_factory=set)
    shape: tuple[int, ...] = ()
    dtype: np.dtype[Any] = dataclasses.field(default_factory=lambda: np.dtype(np.float32))

    def add(self, record: dict[str, Any], result: dict[str, Any]) -> None:
        """Adds one file's result (`extract_file`) for its source row `record`."""
        if "error" in result:
            if self.strict:
                raise DatasetError(f"{record['path']}: {result['error']} (strict mode).")
            self.skipped.append({"path": record["path"], "reason": result["error"],
                                 "label": str(record["label"])})
            return
        feats = result["features"]
        silent = np.asarray(result.get("silent", [False] * len(feats)), bool)
        self.silent += [{"source": record["path"], "start": round(float(start), 6),
                         "version": int(version)}
                        for start, version, off in zip(result["starts"], result["version"],
                                                       silent) if off]
        real = np.ones(len(feats), bool) if self.keep_silent else ~silent
        feats = feats[real]
        self.shape, self.dtype = feats.shape[1:], feats.dtype
        self.raw.write(np.ascontiguousarray(feats).tobytes())
        self.rows += len(feats)
        self.files += 1
        self.paths.add(str(record["path"]))
        if self.spool is not None and "content" in result:
            self.spool.add(str(record["clip"]), result["content"])
        kept = [(float(start), int(version)) for start, version, keep
                in zip(result["starts"], result["version"], real) if keep]
        for start, version in kept:
            clip = record["clip"] if version == 0 else f"{record['clip']}#aug{version}"
            self.meta.append({
                "item": record["item"], "label": record["label"], "clip": clip,
                "source": record["path"], "start": start,
                "augmented": version > 0, "duration": result["duration"],
                "orig_sr": result["orig_sr"],
                **({"split": record["split"]} if "split" in record else {}),
            })

    def add_all(self, records: Iterable[dict[str, Any]],
                results: Iterable[dict[str, Any]]) -> None:
        """Adds every file's result, in order."""
        for record, result in zip(records, results):
            self.add(record, result)

    def checked(self, given: DuplicateCheck | None, merge: bool, rows: pd.DataFrame,
                task_type: str, workers: int = 1) -> tuple[pd.DataFrame, DuplicateCheck | None]:
        """The rows' metadata (refused when what is left cannot train) and the content
        check (of the prints kept, verified in `workers` processes, else `given`), each
        group of items sharing audio one item when `merge` is on."""
        check_trainable(pd.DataFrame(self.meta, columns=["label", "item"]), self.skipped,
                        task_type=task_type, stage="left after skipping unusable files",
                        expected=rows["label"].astype(str).unique())
        meta = pd.DataFrame(self.meta)
        check = self.spool.check(workers=workers) if self.spool is not None else given
        if check is not None and merge:
            check, meta = merge_duplicates(check, meta)
        return meta, check

    def write_npy(self, npy_path: str) -> None:
        """Writes the raw rows (`raw`, read from its start) as a `.npy` file.

        Raises:
            DatasetError: when no file gave a row.
        """
        if self.rows == 0:
            reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in self.skipped[:3])
            raise DatasetError(f"No usable audio: every file was skipped ({reasons}).")
        self.raw.flush()
        self.raw.seek(0)
        write_npy(npy_path, self.dtype, (self.rows, *self.shape),
                  iter(functools.partial(self.raw.read, 1 << 24), b""))


def _check_rows(rows: pd.DataFrame, params: FeatureParams, skipped: Skipped,
                task_type: str) -> None:
    """Refuses rows that would change results, cannot train, or whose clips are far shorter
    than a segment."""
    check_rows(rows)
    check_trainable(rows, skipped, task_type=task_type, stage="found")
    check_segment_length(rows, params)


def _work(rows: pd.DataFrame, params: FeatureParams, augmenter: Augmenter | None,
          versions: int, seed: int, prints: bool) -> list[ExtractionTask]:
    """The arguments of `extract_file` for each row."""
    return [(r["path"], params, augmenter, versions, seed, r["clip"], row_region(r), prints)
            for r in rows.to_dict("records")]


def _check_request(out: Path, *, overwrite: bool, strict: bool, skipped: Skipped,
                   augmenter: Augmenter | None, augment_versions: int,
                   inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Refuses a build that cannot go ahead, before anything is extracted: the output rule
    (`check_store_out`: only a store is ever replaced, never a folder read), then the
    arguments."""
    check_store_out(out, overwrite=overwrite, inputs=inputs)
    if augment_versions < 0:
        raise DatasetError(f"augment_versions={augment_versions}: expected N >= 0.")
    if augment_versions and augmenter is None:
        raise DatasetError("augment_versions > 0 needs an augmenter.")
    if strict and skipped:
        raise DatasetError(f"{skipped[0]['path']}: {skipped[0]['reason']} (strict mode).")


@contextlib.contextmanager
def _raw_rows(out: Path) -> Iterator[tuple[BinaryIO, str]]:
    """A temporary file for the extracted rows and the `.npy` path they become, both beside
    `out`: `(raw file, npy path)`. The raw file has no name (`tempfile.TemporaryFile`: the
    system removes it with the process, however the process ends, SIGKILL included); the
    `.npy` is named only while the store is written, and removed on leaving. A failed write
    is a clear `StorageError` naming the store."""
    out.parent.mkdir(parents=True, exist_ok=True)
    npy_fd, npy_path = make_temp_file(out.parent, prefix=f".{out.name}.", suffix=".npy")
    os.close(npy_fd)
    try:
        with tempfile.TemporaryFile(dir=out.parent) as raw:
            os.remove(npy_path)  # named again only once every row is extracted
            yield raw, npy_path
    except OSError as e:
        raise storage_error(e, out) from e
    finally:
        if os.path.exists(npy_path):
            os.remove(npy_path)


def _store_info(params: FeatureParams, extraction: _Extraction,
                augment_versions: int, seconds: float, described: Mapping[str, Any] | None,
                info: Mapping[str, Any] | None, check: DuplicateCheck | None
                ) -> dict[str, Any]:
    """What `dataset.json` records of a build beside the store's own entries."""
    return {
        **({"duplicates": check.to_dict()} if check is not None else {}),
        "feature_params": params.to_dict(),
        "sample_rate": params.sample_rate,
        "skipped": extraction.skipped,
        "silent_segments": silent_record(extraction.silent, params,
                                         dropped=not extraction.keep_silent),
        "n_files": extraction.files,
        "augment_versions": augment_versions,
        "extraction_seconds": round(seconds, 3),
        **({"front_end": dict(described)} if described else {}),
        **(info or {}),
    }


def build_store(rows: pd.DataFrame, out: str | os.PathLike[str], *,
                params: Mapping[str, Any], workers: int = 0, strict: bool = False,
                overwrite: bool = False, task_type: str = tasks.DEFAULT,
                classes: list[str] | None = None, skipped: Skipped | tuple[()] = (),
                info: Mapping[str, Any] | None = None, augmenter: Augmenter | None = None,
                augment_versions: int = 0, augment_seed: int = 0, progress: bool = True,
                inputs: Iterable[str | os.PathLike[str]] = (), bar_label: str = "features",
                check_content: bool = True, duplicates: DuplicateCheck | None = None,
                merge: bool = False) -> tuple[FeatureStore, dict[str, Any]]:
    """Extracts features for every row and writes a feature store.

    Rows are processed in (item, clip) order, in parallel, and written in that order
    whatever the worker timing. Unusable files are skipped and listed with their reason,
    or stop the build when `strict` is on. Nothing is written unless the store is complete.

    Args:
        rows: `pandas.DataFrame` from a source (`path`, `label`, `item`, `clip`, [`split`]).
        out: the store folder.
        params: feature parameters (see `feature_params`), checked again here.
        workers: extraction processes, and those verifying the duplicate check's candidates;
            0 means all cores. Defaults to `0`.
        strict: fail on the first unusable file. Defaults to `False`.
        overwrite: replace an existing store. Defaults to `False`.
        task_type: a task registered in `xval.tasks`. Defaults to `xval.tasks.DEFAULT`
            (classification).
        classes: class names in target order. Defaults to the source's own order
            (`rows.attrs["classes"]`, a Hugging Face `ClassLabel`'s), else the sorted labels.
        skipped: files the source already skipped (`{"path", "reason"}`).
        info: extra entries for `dataset.json`.
        augmenter: callable `(y, sample_rate, seed) -> y` making augmented versions.
        augment_versions: augmented versions per file (rows marked `augmented`).
        augment_seed: seed of the augmentation.
        progress: show a progress bar (files done, time left). Defaults to `True`.
        inputs: the folders read (the dataset root): never written in, nor inside the store.
        bar_label: the progress bar's label (`"store 2 of 2, aisfx"`). Defaults to `"features"`.
        check_content: record in `dataset.json` the files that hold the same audio
            (`duplicates`, `preprocessing.duplicates.check`). Defaults to `True`.
        duplicates: a check made before (`check_files`), recorded instead. Defaults to `None`.
        merge: make each group of items sharing audio one item. Defaults to `False`.

    Returns:
        `(store, summary)`: the opened `FeatureStore` and a dict of counts and skipped files.

    Raises:
        ConfigurationError: for a missing or bad feature parameter or worker count, or a
            segment far longer than every clip (`check_segment_length`).
        DatasetError: for an `out` that may not be written (`check_store_out`), rows that
            would change results (`check_rows`) or cannot train (`check_trainable`, on the
            rows found and on those left after extraction), in strict mode on the first
            unusable file, or when no file is usable.
    """
    params, described = front_end(feature_params(params))
    workers = schema.check("features", "workers", workers, style="param")
    out = Path(out)
    skipped = list(skipped)
    _check_request(out, overwrite=overwrite, strict=strict, skipped=skipped,
                   augmenter=augmenter, augment_versions=augment_versions, inputs=inputs)
    _check_rows(rows, params, skipped, task_type)
    rows, classes, unit = _in_order(rows, classes, task_type)
    workers = max(1, min(workers or auto_workers(len(rows)), len(rows)))
    prints = check_content and duplicates is None
    work = _work(rows, params, augmenter, augment_versions, augment_seed, prints)
    t0 = time.perf_counter()
    with _raw_rows(out) as (raw, npy_path), \
            (FingerprintSpool(out.parent) if prints else contextlib.nullcontext()) as spool:
        extraction = _Extraction(raw, skipped, strict,
                                 keep_silent=bool(params.keep_silent_segments), spool=spool)
        with _extraction_results(work, params, workers) as results:
            bar = tqdm(results, total=len(work), unit="file", desc=f"{bar_label} -> {out.name}",
                       disable=not (progress and is_terminal()))
            extraction.add_all(rows.to_dict("records"), bar)
        extraction.write_npy(npy_path)
        raw.close()
        meta, check = extraction.checked(duplicates, merge, rows, task_type, workers)
        seconds = time.perf_counter() - t0
        body = _store_info(params, extraction, augment_versions, seconds, described, info,
                           check)
        store = write_store(out, npy_path, meta, info=body, task_type=task_type,
                            classes=classes, overwrite=overwrite)
    return store, _summary(store, extraction, unit, skipped, seconds, check)


def _in_order(rows: pd.DataFrame, classes: list[str] | None, task_type: str
              ) -> tuple[pd.DataFrame, list[str] | None, str]:
    """The rows in (item, clip, path) order, the classes (given, else the source's own
    order: `rows.attrs["classes"]`) and how the source counts its rows (`files`, ...)."""
    if classes is None and rows.attrs.get("classes") and tasks.get(task_type).has_classes:
        classes = list(rows.attrs["classes"])
    unit = str(rows.attrs.get("unit") or "files")
    rows = rows.sort_values(["item", "clip", "path"], kind="stable").reset_index(drop=True)
    return rows, classes, unit


def _summary(store: FeatureStore, extraction: _Extraction, unit: str, skipped: Skipped,
             seconds: float, check: DuplicateCheck | None) -> dict[str, Any]:
    """What `build_store` returns beside the store: counts, skipped files, time, shape."""
    return {"rows": len(store), "files": extraction.files,
            "recordings": len(extraction.paths), "unit": unit, "skipped": skipped,
            "items": store.info.n_items, "classes": store.classes,
            "seconds": round(seconds, 3), "shape": tuple(store.features.shape),
            "silent_segments": len(extraction.silent),
            "silent_dropped": not extraction.keep_silent,
            "duplicates": check.to_dict() if check is not None else None}
