"""The checks every source's rows pass before a store is built: no blank label or item, no
audio in two rows; and the region of a row (a stretch of a file, or audio kept inside a
dataset file); and how a store's rows are counted in its summary (`source_count`)."""

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from preprocessing.audio import Region
from xval.core.errors import DatasetError


def row_region(record: Mapping[str, Any]) -> Region | None:
    """The region of a source row (its optional `offset`, `duration` and `read` columns), or
    `None` for a whole file."""
    offset, duration = record.get("offset"), record.get("duration")
    read = record.get("read")
    offset = None if offset is None or pd.isna(offset) else float(offset)
    duration = None if duration is None or pd.isna(duration) else float(duration)
    read = read if callable(read) else None
    if offset is None and duration is None and read is None:
        return None
    return Region(offset=offset or 0.0, duration=duration, read=read)


def _overlaps(rows: pd.DataFrame, real: pd.Series) -> pd.DataFrame:
    """The rows whose audio overlaps another row's: the same file, and a region of it that
    meets another (a whole file meets every region of itself)."""
    spans: dict[str, list[tuple[float, float, Any]]] = {}
    for index, file, record in zip(rows.index, real, rows.to_dict("records")):
        region = row_region(record) or Region()
        spans.setdefault(file, []).append((region.offset, region.end, index))
    bad: list[Any] = []
    for file_spans in spans.values():
        file_spans.sort(key=lambda span: span[:2])
        latest, latest_index = file_spans[0][1], file_spans[0][2]
        for start, end, index in file_spans[1:]:
            if start < latest:  # starts before an earlier region of the file has ended
                bad += [latest_index, index]
            if end > latest:
                latest, latest_index = end, index
    return rows.loc[list(dict.fromkeys(bad))]


def check_rows(rows: pd.DataFrame) -> None:
    """Refuses rows that would change results, whatever the source: a blank label or item
    (it would become a class or an item `''`), and the same audio in two rows: one file in
    two rows, or two regions of a file that overlap (under two items it leaks between
    training and test; under one it counts twice). Regions of one file that do not overlap
    (Kaldi `segments`, Lhotse supervisions) are rows of their own.

    Raises:
        DatasetError: naming the first offending rows and the fix.
    """
    for column in ("label", "item"):
        if column not in rows:
            continue
        text = rows[column].astype("string").str.strip()
        blank = rows[rows[column].isna() | (text == "")]
        if len(blank):
            first = blank.iloc[0]
            raise DatasetError(
                f"{len(blank)} row(s) have a blank {column}, e.g. {first['path']}; give every "
                f"file a {column} (or leave it out of the source).")
    real = rows["path"].map(os.path.realpath)
    twice = _overlaps(rows, real)
    if len(twice):
        shown = "; ".join(f"{p}{_span(r)} (item {i!r})" for p, i, r in
                          zip(twice["path"].head(4), twice["item"].head(4),
                              twice.head(4).to_dict("records")))
        raise DatasetError(
            f"{len(twice)} rows name the same audio file more than once (the file, or "
            f"stretches of it that overlap): {shown}. Audio under two items leaks between "
            "training and test; list each file (or each stretch of a file) once.")


def _span(record: Mapping[str, Any]) -> str:
    region = row_region(record)
    if region is None or region.read is not None:
        return ""
    return f" [{region.offset:g}-{region.end:g} s]"


def source_count(summary: Mapping[str, Any]) -> str:
    """What a store's rows came from, counted as its source counts them: `"6 files"`, or
    for stretches of longer recordings `"72 supervisions of 24 recordings"`.

    Args:
        summary: `build_store`'s summary (`files`, `recordings`, `unit`).

    Returns:
        The phrase.
    """
    files, recordings = int(summary["files"]), int(summary.get("recordings") or 0)
    unit = str(summary.get("unit") or "files")
    if not recordings or recordings == files:
        return f"{files} {unit}"
    if unit == "files":
        return f"{files} stretches of {recordings} files"
    return f"{files} {unit} of {recordings} recordings"
