"""Shared helpers of the benchmark scripts."""

import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"


def timed(fn, *args, **kwargs):
    """Runs `fn` and returns `(seconds, result)`."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def median(values):
    return statistics.median(values)


def cores():
    return os.cpu_count() or 1


def warm_file_cache(paths):
    """Reads every file once, so that neither side of a comparison pays the disk."""
    for p in paths:
        Path(p).read_bytes()


def fsdd_rows(files_per_speaker: int = 0):
    """FSDD's rows (`preprocessing.regex_source`: path, label, item = speaker, clip); with
    `files_per_speaker`, the first `files_per_speaker // 10` recordings of every digit of
    every speaker (at least one)."""
    from preprocessing import regex_source
    from preprocessing.sources import FSDD_PATTERN

    rows, _ = regex_source(SHARED / "fsdd" / "recordings", FSDD_PATTERN)
    if files_per_speaker:
        index = rows["path"].str.extract(r"_(\d+)\.\w+$")[0].astype(int)
        rows = rows[index < max(1, files_per_speaker // 10)]
    return rows.reset_index(drop=True)
