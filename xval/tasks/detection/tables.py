"""The tables of an annotation CSV: its columns found by name (or given), its rows in the
wide layout (numbered start/end/label columns per event) or the long one (one event per
row), and their values read as numbers and flags."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xval.core.errors import DatasetError
from xval.core.input_paths import check_file

DEFAULT_LABEL = "event"


# Column names tried, case-insensitively, when the caller names none (long layout).
FILE_COLUMNS = ("file", "filename", "file_name", "file name", "file_id", "file id", "path",
                "recording")


ONSET_COLUMNS = ("start", "onset", "start_sample", "start sample", "onset_s", "start_s",
                 "begin")


OFFSET_COLUMNS = ("end", "offset", "end_sample", "end sample", "offset_s", "end_s", "stop")


LABEL_COLUMNS = ("label", "event_label", "class")


CONTEXT_COLUMNS = ("context", "tail")


# Wide layout: "<anything>start<anything>(k)" and "<anything>end<anything>(k)".
_WIDE = re.compile(r"^(?P<what>.*?\b(?P<kind>start|end|label|context)\b.*?)\s*\((?P<k>\d+)\)\s*$",
                   re.IGNORECASE)


Row = dict[str, Any]
"""One annotated event (or file without event) as read: file, line, start, end, label..."""


Lookup = Callable[[str], Any]
"""File name -> a value (its sample rate, its duration), `None` when unknown."""


_TRUE = {"1", "true", "yes", "y", "x", "context", "tail"}


_FALSE = {"", "0", "false", "no", "n"}


def read_csv(path: Path) -> pd.DataFrame:
    check_file(path, "Annotation file")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DatasetError(
            f"Annotation file {path} is empty; expected a header row and one row per file "
            "(wide layout) or per event (long layout).") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        raise DatasetError(
            f"Annotation file {path} is not a readable UTF-8 CSV file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}).") from None
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty:
        raise DatasetError(f"Annotation file {path} has a header but no rows.")
    if len(table.columns) == 1:
        other = next((name for sep, name in ((";", "semicolons"), ("\t", "tabs"),
                                              ("|", "bars")) if sep in table.columns[0]), None)
        if other:
            raise DatasetError(
                f"Annotation file {path} has one column, {table.columns[0]!r}: its values are "
                f"separated by {other}, not commas. Save it as a comma-separated CSV (in a "
                "spreadsheet: CSV, comma delimited).")
    return table


def lookup(source: Mapping[str, Any] | Lookup | None, name: str) -> Lookup | None:
    if source is None or callable(source):
        return source
    if isinstance(source, dict):
        return source.get
    raise TypeError(f"{name}: expected a dict or a callable, got {type(source).__name__}.")


def _find(table: pd.DataFrame, given: str | None, candidates: tuple[str, ...], argument: str,
          path: Path) -> str | None:
    """The column `given` (which must exist), else the first of `candidates` present
    (case-insensitive), else `None`."""
    if given is not None:
        if given not in table.columns:
            raise DatasetError(
                f"{argument}={given!r} is not a column of {path}; its columns are "
                f"{', '.join(table.columns)}.")
        return given
    lower = {c.lower(): c for c in table.columns}
    return next((lower[name] for name in candidates if name in lower), None)


def _required(table: pd.DataFrame, given: str | None, candidates: tuple[str, ...],
              argument: str, path: Path) -> str:
    """`_find`, or an error naming the candidates and the fix when no column is found."""
    column = _find(table, given, candidates, argument, path)
    if column is None:
        raise DatasetError(
            f"{path} (long layout) has no column for {argument.split('_')[0]}s: none of "
            f"{', '.join(candidates)}; its columns are {', '.join(table.columns)}. Pass "
            f"{argument} (--{argument.replace('_', '-')}), or give a wide layout "
            "('Voice start sample (1)', 'Voice end sample (1)', ...).")
    return column


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(
            f"{where}: {column}={text!r} is not a number; expected a sample position or a "
            "time. Fix the cell (leave it blank for no event).") from None
    if not np.isfinite(value):
        raise DatasetError(f"{where}: {column}={text!r} is not a finite number.")
    return value


def _flag(text: str, where: str, column: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise DatasetError(
        f"{where}: {column}={text!r} is not a context flag; expected one of 1/0, true/false, "
        "yes/no or blank.")


def _label(record: Mapping[str, str], column: str | None, where: str) -> str:
    """An event's label: its label column's value, `DEFAULT_LABEL` without such a column.

    Raises:
        DatasetError: for a blank label in a label column (it would be a class of its own,
            as a store refuses a blank label).
    """
    if column is None:
        return DEFAULT_LABEL
    text = record[column].strip()
    if not text:
        raise DatasetError(f"{where}: the label ({column}) is blank; give every event of a "
                           "label column its class, or leave the column out (one class, "
                           f"{DEFAULT_LABEL!r}).")
    return text


def wide_columns(table: pd.DataFrame) -> dict[int, dict[str, str]]:
    pairs: dict[int, dict[str, str]] = {}
    for column in table.columns:
        match = _WIDE.match(column)
        if match:
            pairs.setdefault(int(match.group("k")), {})[match.group("kind").lower()] = column
    return pairs if any("start" in p or "end" in p for p in pairs.values()) else {}


def file_names(table: pd.DataFrame, path: Path, layout: str,
                file_column: str | None) -> list[tuple[int, str]]:
    if layout == "wide":
        column = file_column or table.columns[0]
        if column not in table.columns:
            raise DatasetError(f"file_column={column!r} is not a column of {path}.")
    else:
        column = _required(table, file_column, FILE_COLUMNS, "file_column", path)
    names = []
    for i, value in enumerate(table[column], start=2):
        if not value.strip():
            raise DatasetError(f"{path} line {i}: the file name ({column}) is blank.")
        names.append((i, value.strip()))
    return names


def wide_rows(table: pd.DataFrame, path: Path, file_column: str | None) -> list[Row]:
    pairs = wide_columns(table)
    if not pairs:
        raise DatasetError(
            f"{path}: unknown layout: no numbered start/end columns such as 'Voice start "
            "sample (1)', 'Voice end sample (1)'. Give layout='long' with file, start and "
            f"end columns, or rename the columns. Its columns are {', '.join(table.columns)}.")
    for k, columns in sorted(pairs.items()):
        missing = [kind for kind in ("start", "end") if kind not in columns]
        if missing:
            have = next(iter(columns.values()))
            raise DatasetError(
                f"{path}: column {have!r} has no matching {missing[0]} column ({k}); expected "
                f"a start and an end column for every event number.")
    names = dict(file_names(table, path, "wide", file_column))
    rows = []
    for line, record in zip(names, table.to_dict("records")):
        found = False
        for k, columns in sorted(pairs.items()):
            start, end = record[columns["start"]].strip(), record[columns["end"]].strip()
            where = f"{path} line {line} (file {names[line]!r})"
            if not start and not end:
                continue
            if not start or not end:
                blank = columns["start"] if not start else columns["end"]
                raise DatasetError(
                    f"{where}: {blank!r} is blank but its pair is not; expected both the start "
                    f"and the end of event ({k}), or neither.")
            label = _label(record, columns.get("label"), where)
            is_context = (_flag(record[columns["context"]], where, columns["context"])
                          if "context" in columns else False)
            rows.append({"file": names[line], "line": line, "start_text": start,
                         "end_text": end, "start": _number(start, where, columns["start"]),
                         "end": _number(end, where, columns["end"]),
                         "label": label, "context": is_context})
            found = True
        if not found:
            rows.append({"file": names[line], "line": line, "start": None})
    return rows


def _unread_note(table: pd.DataFrame, path: Path, read: set[str | None]) -> None:
    """Says so when a long CSV without a label column has columns nothing reads: one of
    them may hold the classes (`species`, `call_type`), which would otherwise all become one
    class `event` without a word."""
    lower = {str(c).lower() for c in read if c}
    unread = [str(c) for c in table.columns if str(c).lower() not in lower]
    if unread:
        print(f"note: {path} has no label column ({', '.join(LABEL_COLUMNS)}), so every event "
              f"is of one class 'event'; its column(s) {', '.join(unread)} are not read. If "
              "one holds the classes, name it with --label-column.")


def long_rows(table: pd.DataFrame, path: Path, file_column: str | None,
               onset_column: str | None, offset_column: str | None, label_column: str | None,
               context_column: str | None) -> list[Row]:
    onset = _required(table, onset_column, ONSET_COLUMNS, "onset_column", path)
    offset = _required(table, offset_column, OFFSET_COLUMNS, "offset_column", path)
    label = _find(table, label_column, LABEL_COLUMNS, "label_column", path)
    flag = _find(table, context_column, CONTEXT_COLUMNS, "context_column", path)
    names = dict(file_names(table, path, "long", file_column))
    if label is None:
        _unread_note(table, path, {onset, offset, flag,
                                   _required(table, file_column, FILE_COLUMNS, "file_column",
                                             path)})
    rows = []
    for line, record in zip(names, table.to_dict("records")):
        where = f"{path} line {line} (file {names[line]!r})"
        start, end = record[onset].strip(), record[offset].strip()
        if not start and not end:
            rows.append({"file": names[line], "line": line, "start": None})
            continue
        if not start or not end:
            raise DatasetError(
                f"{where}: {onset if not start else offset!r} is blank but the other is not; "
                "expected both a start and an end (or neither, for a file without events).")
        rows.append({"file": names[line], "line": line, "start_text": start, "end_text": end,
                     "start": _number(start, where, onset), "end": _number(end, where, offset),
                     "label": _label(record, label, where),
                     "context": _flag(record[flag], where, flag) if flag else False})
    return rows
