"""Shared helpers of the benchmark scripts."""

import argparse
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


def number(minimum, kind=float, closed=False):
    """An argparse type of a bounded number, refused naming the value and what was
    expected (`--budget -5`, `--repeats 0`, `nan`).

    Args:
        minimum: the bound.
        kind: `float` (finite) or `int`. Defaults to `float`.
        closed: whether `minimum` itself is allowed. Defaults to `False`.

    Returns:
        The function argparse calls on the option's text.
    """
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")) \
                or value < minimum or (value == minimum and not closed):
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a{'n integer' if kind is int else ' finite number'} "
                f"{'>=' if closed else '>'} {minimum}")
        return value
    return parse


def datasets_option(parser: argparse.ArgumentParser) -> None:
    """`--datasets-dir`: the folder holding `fsdd/recordings` and `ravdess/audio` (the real
    recordings; the smoke tests give a folder of a few generated files laid out alike)."""
    parser.add_argument("--datasets-dir", type=Path, default=SHARED,
                        help=f"the folder of fsdd/ and ravdess/ (default {SHARED})")


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
