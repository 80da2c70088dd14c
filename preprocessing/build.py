"""Building a feature store from source rows: decode, segment, extract, in parallel."""

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from preprocessing.audio import load_audio, peak_dbfs
from preprocessing.features import compute_features, feature_shape, segment
from preprocessing.parallel import process_pool, seed_for
from preprocessing.store import write_store
from xval import tasks
from xval.config import schema
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.files import make_temp_file

FEATURE_KEYS = ("sample_rate", "feature", "compression", "power_exponent", "n_fft",
                "hop_length", "n_mels", "n_mfcc", "fmin", "fmax", "n_bins", "bins_per_octave",
                "segment_seconds", "segment_hop_seconds", "dtype", "peak_normalize",
                "silence_threshold_db")


def feature_params(config=None, *, style="param", **overrides):
    """The feature parameters: `config.ini [features]` with overrides, checked by the schema.

    Args:
        config: a `xval.config.Config`, or `None`: then every key must be given in
            `overrides`, or the missing ones come from the project's config.ini.
        style: how to name parameters in errors: `"param"` (`n_mels=0`) or `"flag"`
            (`--n-mels 0`). Defaults to `"param"`.
        **overrides: any key of `[features]` except `workers`.

    Returns:
        dict of feature parameters (without `workers`).

    Raises:
        DatasetError: for an unknown key.
        ConfigurationError: for a value of the wrong type or out of range, or values that
            contradict each other (e.g. fmin >= fmax), naming the parameter.
    """
    unknown = [key for key in overrides if key not in FEATURE_KEYS]
    if unknown:
        raise DatasetError(
            f"Unknown feature parameter {unknown[0]!r}; valid: {', '.join(FEATURE_KEYS)}."
        )
    if config is None and set(overrides) != set(FEATURE_KEYS):
        from xval.config.loader import find_config, load_config

        config = load_config(find_config())
    params = {} if config is None else {k: config.features[k] for k in FEATURE_KEYS}
    params.update(overrides)
    return schema.check_section("features", params, style=style)


def extract_file(path, params, augmenter=None, versions=0, seed=0, name=None):
    """Features of every segment of one file (and of its augmented versions).

    Args:
        path: the audio file.
        params: feature parameters (see `feature_params`).
        augmenter: a callable `(y, sample_rate, seed) -> y`, or `None`.
        versions: augmented versions to make. Defaults to `0`.
        seed: base seed of the augmented versions.
        name: the file's clip id, for the per-version seeds. Defaults to the path.

    Returns:
        dict with `features [shape=(k, t, f)]`, `starts`, `version` (0 = original),
        `duration`, `orig_sr`; or `{"error": reason}` when the file is unusable.
    """
    try:
        y, orig_sr = load_audio(path, sample_rate=params["sample_rate"],
                                peak_normalize=False)
    except DatasetError as e:
        return {"error": str(e)}
    level = peak_dbfs(y)
    if level < params["silence_threshold_db"]:
        return {"error": f"silent: peak {level:.1f} dBFS is below "
                         f"silence_threshold_db={params['silence_threshold_db']}"}
    if params["peak_normalize"]:
        y = y / np.max(np.abs(y))
    signals = [y]
    for v in range(versions):
        try:
            signals.append(augmenter(y, params["sample_rate"],
                                     seed_for(seed, name or str(path), v + 1)))
        except DatasetError as e:
            return {"error": f"augmented version {v + 1}: {e}"}
    feats, starts, version = [], [], []
    frames = feature_shape(params)[0]
    for v, signal in enumerate(signals):
        hop = params["hop_length"]
        segments, seg_starts = segment(signal, sample_rate=params["sample_rate"],
                                       segment_seconds=params["segment_seconds"],
                                       hop_seconds=params["segment_hop_seconds"], grid=hop)
        whole = compute_features(signal, **params) if len(segments) > 1 else None
        for seg, start in zip(segments, seg_starts):
            first = int(round(start * params["sample_rate"])) // hop
            if whole is not None and first + frames <= len(whole):
                # Overlapping segments share frames: the signal is computed once and each
                # segment takes its frames (starts are on the frame grid; only the
                # centre-padded edge frames differ: they see the real neighbouring audio).
                feats.append(whole[first:first + frames])
            else:
                feats.append(compute_features(seg, **params))
        starts += [float(start) for start in seg_starts]
        version += [v] * len(seg_starts)
    return {"features": np.stack(feats), "starts": starts, "version": version,
            "duration": len(y) / params["sample_rate"], "orig_sr": orig_sr}


def _task(args):
    return extract_file(*args)


def build_store(rows, out, *, params, workers=0, strict=False, overwrite=False,
                task_type=tasks.DEFAULT, classes=None, skipped=(), info=None,
                augmenter=None, augment_versions=0, augment_seed=0, progress=True):
    """Extracts features for every row and writes a feature store.

    Rows are processed in (item, clip) order, in parallel, and written in that order
    whatever the worker timing. Unusable files are skipped and listed with their reason,
    or stop the build when `strict` is on. Nothing is written unless the store is complete.

    Args:
        rows: `pandas.DataFrame` from a source (`path`, `label`, `item`, `clip`, [`split`]).
        out: the store folder.
        params: feature parameters (see `feature_params`).
        workers: extraction processes; 0 means all cores. Defaults to `0`.
        strict: fail on the first unusable file. Defaults to `False`.
        overwrite: replace an existing store. Defaults to `False`.
        task_type: a task registered in `xval.tasks`. Defaults to `xval.tasks.DEFAULT`
            (classification).
        classes: class names in target order. Defaults to the sorted labels.
        skipped: files the source already skipped (`{"path", "reason"}`).
        info: extra entries for `dataset.json`.
        augmenter: callable `(y, sample_rate, seed) -> y` making augmented versions.
        augment_versions: augmented versions per file (rows marked `augmented`).
        augment_seed: seed of the augmentation.
        progress: show a progress bar. Defaults to `True`.

    Returns:
        `(store, summary)`: the opened `FeatureStore` and a dict of counts and skipped files.

    Raises:
        DatasetError: when the store exists and `overwrite` is off, in strict mode on the
            first unusable file, or when no file is usable.
    """
    from tqdm import tqdm

    missing = [key for key in FEATURE_KEYS if key not in params]
    if missing:
        raise ConfigurationError(
            f"Feature parameters {', '.join(missing)} are missing; build them with "
            "preprocessing.feature_params(config, ...)."
        )
    params = schema.check_section("features", {k: params[k] for k in FEATURE_KEYS},
                                  style="param")
    workers = schema.check("features", "workers", workers, style="param")
    out = Path(out)
    if out.exists() and not overwrite:
        raise DatasetError(
            f"A store already exists at {out}; pass --overwrite to replace it."
        )
    if augment_versions < 0:
        raise DatasetError(f"augment_versions={augment_versions}: expected N >= 0.")
    if augment_versions and augmenter is None:
        raise DatasetError("augment_versions > 0 needs an augmenter.")
    skipped = list(skipped)
    if strict and skipped:
        raise DatasetError(f"{skipped[0]['path']}: {skipped[0]['reason']} (strict mode).")
    rows = rows.sort_values(["item", "clip", "path"], kind="stable").reset_index(drop=True)
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(rows)))
    tasks = [(p, params, augmenter, augment_versions, augment_seed, c)
             for p, c in zip(rows["path"], rows["clip"])]
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    raw_fd, raw_path = make_temp_file(out.parent, prefix=f".{out.name}.", suffix=".raw")
    meta_rows = []
    n_rows, n_files, shape, dtype = 0, 0, None, None
    try:
        with os.fdopen(raw_fd, "wb") as raw:
            if workers == 1:
                results = map(_task, tasks)
                pool = None
            else:
                pool = process_pool(workers, warm_up=lambda: compute_features(
                    np.zeros(int(params["sample_rate"] * 0.1), np.float32), **params))
                results = pool.map(_task, tasks, chunksize=max(1, min(16, len(tasks) //
                                                                        (workers * 8) or 1)))
            try:
                bar = tqdm(results, total=len(tasks), disable=not progress, unit="file",
                           desc=f"features -> {out.name}")
                for record, result in zip(rows.to_dict("records"), bar):
                    if "error" in result:
                        if strict:
                            raise DatasetError(f"{record['path']}: {result['error']} "
                                               "(strict mode).")
                        skipped.append({"path": record["path"], "reason": result["error"]})
                        continue
                    feats = result["features"]
                    shape, dtype = feats.shape[1:], feats.dtype
                    raw.write(np.ascontiguousarray(feats).tobytes())
                    n_rows += len(feats)
                    n_files += 1
                    for start, version in zip(result["starts"], result["version"]):
                        clip = record["clip"] if version == 0 else f"{record['clip']}#aug{version}"
                        meta_rows.append({
                            "item": record["item"], "label": record["label"], "clip": clip,
                            "source": record["path"], "start": start,
                            "augmented": version > 0, "duration": result["duration"],
                            "orig_sr": result["orig_sr"],
                            **({"split": record["split"]} if "split" in record else {}),
                        })
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
        if n_rows == 0:
            reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
            raise DatasetError(f"No usable audio: every file was skipped ({reasons}).")
        npy_path = raw_path[:-4] + ".npy"
        with open(npy_path, "wb") as f, open(raw_path, "rb") as src:
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                      "shape": (n_rows, *shape)}
            np.lib.format.write_array_header_1_0(f, header)
            while block := src.read(1 << 24):
                f.write(block)
        os.remove(raw_path)
        body = {
            "feature_params": params,
            "sample_rate": params["sample_rate"],
            "skipped": skipped,
            "n_files": n_files,
            "augment_versions": augment_versions,
            "extraction_seconds": round(time.perf_counter() - t0, 3),
            **(info or {}),
        }
        store = write_store(out, npy_path, pd.DataFrame(meta_rows), info=body,
                            task_type=task_type, classes=classes, overwrite=overwrite)
    finally:
        for leftover in (raw_path, raw_path[:-4] + ".npy"):
            if os.path.exists(leftover):
                os.remove(leftover)
    summary = {"rows": len(store), "files": body["n_files"], "skipped": skipped,
               "items": store.info["n_items"], "classes": store.classes,
               "seconds": body["extraction_seconds"], "shape": tuple(store.features.shape)}
    return store, summary

