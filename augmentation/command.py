"""Augmenting a folder of recordings: `python -m augmentation IN OUT N`."""

import contextlib
import io
import json
import os
from collections.abc import Iterator
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from augmentation.pipeline import Augmenter, build_pipeline
from preprocessing.audio import AUDIO_EXTENSIONS
from preprocessing.parallel import auto_workers, process_pool, seed_for, single_threaded
from xval.config import schema
from xval.core.constraints import Interval, check
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.files import atomic_write_bytes, atomic_write_json, json_text
from xval.core.outputs import OwnedFolder, check_output_files, check_output_folder, check_replace
from xval.core.terminal import is_terminal

RUN_RECORD = "augmentation.json"
"""The file in OUT that records what a run writes there (IN, N, seed, parameters): a rerun
of the same command resumes from it (after a full disk or a kill)."""
_NAMES = ("*_original.wav", "*_aug[0-9][0-9].wav")
AUGMENTED = OwnedFolder(kind="a folder of augmented audio", command="`python -m augmentation`",
                   markers=(), folders=True,
                   entries=(*_NAMES, *(f".{n}.*" for n in _NAMES),
                            *(f"*/.{n}.*" for n in _NAMES), RUN_RECORD, f".{RUN_RECORD}.*"))
"""What OUT holds (`xval.core.outputs`): copies and versions named by `output_names` in
sub-folders; an OUT holding anything else (the user's own recordings) is refused, so that
generated audio never mixes with real recordings."""


def output_names(relative: Path, n: int) -> list[Path]:
    """OwnedFolder paths of one input: the normalised original and N augmented versions."""
    stem = relative.with_suffix("")
    return [stem.with_name(stem.name + "_original.wav")] + [
        stem.with_name(f"{stem.name}_aug{k:02d}.wav") for k in range(1, n + 1)]


def check_folders(in_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  n: int) -> tuple[Path, Path]:
    """Checks the command's arguments before anything is written.

    Returns:
        `(in_dir, out_dir)`, resolved.

    Raises:
        ConfigurationError: for a missing IN, OUT inside IN (or IN inside OUT), an OUT that
            is not a writable folder or holds files augmentation did not write (`AUGMENTED`),
            N < 0.
    """
    check("N", n, [Interval(Integral, 0, None, closed="left")],
          hint=" (the number of augmented versions)")
    source = Path(in_dir).resolve()
    target = check_output_folder(out_dir, what="OUT").resolve()
    if not source.is_dir():
        raise ConfigurationError(f"IN {str(source)!r} does not exist or is not a folder; "
                                 "give the folder that holds the audio files to augment.")
    if target == source or source in target.parents:
        raise ConfigurationError(
            f"OUT {str(target)!r} is inside IN {str(source)!r}; IN is never written to. "
            "Choose an OUT folder outside IN."
        )
    if target in source.parents:
        raise ConfigurationError(
            f"IN {str(source)!r} is inside OUT {str(target)!r}; choose a separate OUT folder."
        )
    check_replace(target, AUGMENTED, overwrite=True, what="OUT")  # only its own files there
    return source, target


def _wav_bytes(y: np.ndarray, sr: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


Task = tuple[str, str, str, int, int, Augmenter]
"""`(path, relative path, out_dir, n, seed, augmenter)`: one file to augment."""


def _one(task: Task) -> dict[str, Any]:
    """Reads, augments and writes one file: all of its outputs, or none (then an error)."""
    path, relative, out_dir, n, seed, augmenter = task
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        if y.size == 0:
            raise ValueError("no samples")
    except Exception as e:  # decoders raise many types; the file is listed as skipped
        return {"path": str(path), "error": f"{type(e).__name__}: {e}"}
    finite = np.isfinite(y)
    if not finite.all():
        return {"path": str(path), "error": f"{y.size - np.count_nonzero(finite)} of its "
                                            f"{y.size} samples are not finite (NaN or infinity)"}
    peak = float(np.max(np.abs(y)))
    if peak > 0:
        y = y / peak
    names = output_names(Path(relative), n)
    outputs: list[np.ndarray] = [y]
    try:
        for k in range(1, n + 1):
            outputs.append(augmenter(y, sr, seed_for(seed, str(relative), k)))
    except DatasetError as e:
        return {"path": str(path), "error": str(e)}
    # Every output is ready: write each atomically (a crash leaves whole files only).
    target = Path(out_dir)
    for name, out in zip(names, outputs):
        atomic_write_bytes(target / name, _wav_bytes(out, sr))
    return {"path": str(path), "written": len(names),
            "seconds": sum(len(out) for out in outputs) / sr}


def run_record(source: Path, n: int, seed: int, augmenter: Augmenter) -> dict[str, Any]:
    """What a run writes into OUT, as `RUN_RECORD` holds it: the same record, the same
    files (every output is a function of its input, N, the seed and the parameters)."""
    return json.loads(json_text({
        "in": str(source), "n": n, "seed": seed, "params": dict(augmenter.params),
        "noise_dir": None if augmenter.noise_dir is None else str(augmenter.noise_dir),
        "ir_dir": None if augmenter.ir_dir is None else str(augmenter.ir_dir)}))


def _earlier_run(target: Path) -> dict[str, Any] | None:
    """The `RUN_RECORD` of an earlier run into OUT, or `None` (none, or unreadable)."""
    try:
        found = json.loads((target / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _pending(files: list[Path], source: Path, target: Path, n: int, record: dict[str, Any],
             overwrite: bool) -> tuple[list[Path], int]:
    """The files still to write, and how many an earlier run of the same command finished.

    Raises:
        ConfigurationError: for outputs of another run (other IN, N, seed or parameters)
            without `overwrite`, naming what differs.
    """
    outputs = {p: [target / name for name in output_names(p.relative_to(source), n)]
               for p in files}
    earlier = _earlier_run(target)
    if overwrite or earlier != record:
        if earlier is not None and not overwrite \
                and any(o.exists() for out in outputs.values() for o in out):
            differ = ", ".join(k for k in record if earlier.get(k) != record[k])
            raise ConfigurationError(
                f"OUT {str(target)!r} holds the outputs of another augmentation run (its "
                f"{RUN_RECORD} differs in {differ}); pass --overwrite to replace them, or "
                "give another OUT.")
        check_output_files([o for out in outputs.values() for o in out],
                           overwrite=overwrite)
        return files, 0
    # The same command again: files whose every output exists are done; the others are
    # written again (their outputs are this command's own, byte for byte the same).
    pending = [p for p in files if not all(o.is_file() for o in outputs[p])]
    check_output_files([o for p in pending for o in outputs[p]], overwrite=True)
    return pending, len(files) - len(pending)


def _results(work: list[Task], workers: int,
             augmenter: Augmenter) -> tuple[Iterator[dict[str, Any]], Any]:
    """The results of `_one` over `work`, in order, and the pool to shut down (or `None`);
    never more processes than files."""
    workers = max(1, min(workers, len(work)))
    if workers == 1:
        return map(_one, work), None
    pool = process_pool(workers, warm_up=lambda: augmenter(
        np.zeros(1600, np.float32), 16000, 0))
    return pool.map(_one, work, chunksize=max(1, len(work) // (workers * 8))), pool


def augment_folder(in_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], n: int, *,
                   params: dict[str, Any], seed: int = 0,
                   noise_dir: str | os.PathLike[str] | None = None,
                   ir_dir: str | os.PathLike[str] | None = None, workers: int = 0,
                   progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Writes a peak-normalised copy and N augmented versions of every file under IN.

    Args:
        in_dir: folder of recordings (never written to).
        out_dir: output folder; relative folders are kept.
        n: augmented versions per file.
        params: `[augmentation]` probabilities and ranges.
        seed: base seed; the same seed gives identical files. Defaults to `0`.
        noise_dir: folder of background noises, or `None` for coloured noise.
        ir_dir: folder of impulse responses, or `None` for a simulated room.
        workers: processes; 0 means all cores. Defaults to `0`.
        progress: show a progress bar. Defaults to `True`.
        overwrite: replace output files that exist. Defaults to `False`: an existing output
            file is an error, before anything is written (`xval.core.outputs`).

    Unreadable files, and files holding NaN or infinite samples, are skipped and listed;
    nothing is written for them. Every output file is written atomically, with the
    umask's permissions.

    A rerun of the same command (same IN, N, seed, parameters: `RUN_RECORD` in OUT) resumes
    after a full disk or a kill: the files whose outputs all exist are kept, the others are
    written; outputs of another run are refused without `overwrite`.

    Returns:
        dict with `files` (written by this run), `written`, `seconds` (audio written),
        `skipped` and `resumed` (files an earlier run of the same command finished).

    Raises:
        ConfigurationError: for bad arguments, an OUT that is not a writable folder, or
            output files that exist without `overwrite`, before anything is written.
        DatasetError: when IN holds no audio file, or every file was skipped.
    """
    source, target = check_folders(in_dir, out_dir, n)
    augmenter = Augmenter(params, noise_dir=noise_dir, ir_dir=ir_dir)
    if n:  # bad noise or impulse-response folders fail here, before anything is written
        build_pipeline(augmenter.params, noise_dir=noise_dir, ir_dir=ir_dir)
    files = sorted(p for p in source.rglob("*") if p.is_file()
                   and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise DatasetError(f"No audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) found "
                           f"under {source}; give the folder that holds the files to augment.")
    record = run_record(source, n, seed, augmenter)
    pending, done_before = _pending(files, source, target, n, record, overwrite)
    work = [(str(p), str(p.relative_to(source)), str(target), n, seed, augmenter)
            for p in pending]
    workers = schema.check("augmentation", "workers", workers, style="param")
    workers = max(1, min(workers or auto_workers(len(work)), len(work)))
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_json(target / RUN_RECORD, record)  # before any output: a rerun resumes
    files_done, written, seconds = 0, 0, 0.0
    skipped: list[dict[str, str]] = []
    results, pool = _results(work, workers, augmenter)
    # In this process, the workers' one BLAS thread: the same files whatever the count.
    limits = single_threaded() if pool is None else contextlib.nullcontext()
    try:
        with limits:
            for result in tqdm(results, total=len(work), unit="file", desc="augment",
                               disable=not (progress and is_terminal())):
                if "error" in result:
                    skipped.append({"path": result["path"], "reason": result["error"]})
                    continue
                files_done += 1
                written += result["written"]
                seconds += result["seconds"]
    finally:
        if pool is not None:
            pool.shutdown()
    if not files_done and not done_before:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
        raise DatasetError(f"No usable audio under {source}: every file was skipped "
                           f"({reasons}).")
    return {"files": files_done, "written": written, "seconds": seconds, "skipped": skipped,
            "resumed": done_before}
