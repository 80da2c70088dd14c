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
