"""The `manifest` source: a CSV manifest of the files (FMA, ESC-50 style), its label column
holding one label per clip or, with a separator, several (FSD50K's ground truth is
recognised)."""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from preprocessing.audio import unreadable_reason
from preprocessing.sources.base import (
    ITEM_PER_FILE,
    Option,
    Reads,
    Rows,
    Skipped,
    Source,
    group_recordings,
    source_table,
)
from preprocessing.sources.labels import (
    LABEL_SET_OPTIONS,
    MULTI_LABEL,
    fsd50k_layout,
    label_sets,
)
from xval.core.errors import ConfigurationError, DatasetError
from xval.folds import SPLIT_NAMES

__all__ = ["Manifest", "manifest_source"]


def _read_manifest(manifest: Path, path_column: str, label_column: str,
                   optional: Mapping[str, str | None]) -> pd.DataFrame:
    """The manifest's table, every named column present and at least one row."""
    if not manifest.is_file():
        raise DatasetError(f"Manifest {str(manifest)!r} does not exist.")
    try:
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DatasetError(
            f"Manifest {manifest} is empty; expected a CSV with a header row naming the "
            f"columns (e.g. {path_column},{label_column}) and one row per file."
        ) from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        raise DatasetError(
            f"Manifest {manifest} is not a readable UTF-8 CSV file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Give the CSV manifest."
        ) from None
    columns = {"path_column": path_column, "label_column": label_column, **optional}
    for name, column in columns.items():
        if column is not None and column not in table.columns:
            raise DatasetError(
                f"{name}={column!r} is not a column of {manifest}; its columns are "
                f"{', '.join(map(str, table.columns))}."
            )
    if table.empty:
        raise DatasetError(f"Manifest {manifest} has a header but no rows.")
    return table


def manifest_source(manifest: str | os.PathLike[str], *, path_column: str = "path",
                    label_column: str = "label", item_column: str | None = None,
                    clip_column: str | None = None, split_column: str | None = None,
                    root: str | os.PathLike[str] | None = None,
                    allow_outside_root: bool = False, by_recording: bool = True,
                    label_separator: str | None = None, empty_label: str | None = None,
                    path_suffix: str | None = None) -> Rows:
    """Rows from a CSV manifest (FMA, ESC-50 style; FSD50K's ground truth).

    Args:
        manifest: the CSV file.
        path_column: column of audio paths, relative to `root`. Defaults to `"path"`.
        label_column: column of labels. Defaults to `"label"`.
        item_column: column of foldable items (ESC-50: `fold` or `src_file`); `None`: the
            recording id the file names share, else every file its own item (see
            `by_recording`).
        clip_column: column of clip ids; `None` uses the path.
        split_column: column of predefined sets (`train`, `validation`/`val`, `test`, see
            `SPLIT_NAMES`), which the engine then uses as its single fold. Defaults to `None`.
        root: folder the paths are relative to. Defaults to the manifest's folder.
        allow_outside_root: accept paths that lead outside `root` (absolute paths or `..`).
            Defaults to `False`.
        by_recording: without `item_column`, files whose names share a recording id are
            one item (`preprocessing.recordings`); `False` makes every file its own item.
            Defaults to `True`.
        label_separator: what separates the labels of a clip in the label column (`;`, see
            `preprocessing.sources.labels.SEPARATORS`): the rows' labels are then sets
            (`rows.attrs["multi_label"]`, a tagging store). Defaults to `None` (one label).
        empty_label: with `label_separator`, the class of a clip without a label; `None`
            refuses such a clip. Defaults to `None`.
        path_suffix: added to a path without a suffix (FSD50K's `fname` is `<id>` for
            `<id>.wav`: its `fname,labels,mids[,split]` columns, without `path` and `label`,
            are read as such, `fsd50k_layout`). Defaults to `None`.

    Returns:
        `(rows, skipped)`.

    Raises:
        DatasetError: for a missing, empty or unreadable manifest, a missing column, a path
            outside `root`, or a split value that is not a set name (naming the row).
        ConfigurationError: for `empty_label` without `label_separator` (one label per
            clip: it would do nothing).
    """
    manifest = Path(manifest)
    layout = _layout(manifest, path_column, label_column) or {}
    path_column = layout.get("path_column", path_column)
    label_column = layout.get("label_column", label_column)
    label_separator = label_separator or layout.get("label_separator")
    path_suffix = path_suffix or layout.get("path_suffix")
    if empty_label is not None and label_separator is None:
        raise ConfigurationError(
            f"--empty-label {empty_label!r} goes with several labels per clip (a label "
            f"separator); the column {label_column!r} of {manifest} holds one label per clip, "
            "so it would do nothing: leave it out, or give --label-separator.")
    table = _read_manifest(manifest, path_column, label_column,
                           {"item_column": item_column, "clip_column": clip_column,
                            "split_column": split_column})
    folder = Path(root) if root is not None else manifest.parent
    rows, skipped = _table_rows(table, manifest, folder, allow_outside_root, path_suffix,
                                (path_column, label_column, item_column, clip_column,
                                 split_column))
    if label_separator is not None:
        _split_labels(rows, label_separator, empty_label, label_column, manifest)
    grouped = None
    if by_recording and item_column is None:
        grouped = group_recordings(rows, [row["item"] for row in rows])  # the paths
    found = source_table(rows, skipped, f"Manifest {manifest}", grouped)
    found[0].attrs[MULTI_LABEL] = label_separator is not None
    return found


def _split_labels(rows: list[dict[str, str]], separator: str, empty_label: str | None,
                  column: str, manifest: Path) -> None:
    """Gives every row the set of labels its label holds (`label_sets`)."""
    where = [f"the row of {row['clip']!r} in {manifest}" for row in rows]
    for row, labels in zip(rows, label_sets([row["label"] for row in rows], separator,
                                            where=where, empty_label=empty_label,
                                            column=column)):
        row["label"] = labels


Columns = tuple[str, str, str | None, str | None, str | None]
"""A manifest's path, label, item, clip and split columns (the last three optional)."""


def _table_rows(table: pd.DataFrame, manifest: Path, folder: Path, allow_outside_root: bool,
                path_suffix: str | None, columns: Columns
                ) -> tuple[list[dict[str, str]], Skipped]:
    """The rows of the manifest's table whose file can be read, and the others skipped with
    their reason; `columns` are the path, label, item, clip and split columns."""
    path_column, label_column, item_column, clip_column, split_column = columns
    top = os.path.normpath(os.path.abspath(folder))
    rows: list[dict[str, str]] = []
    skipped: Skipped = []
    for number, record in enumerate(table.to_dict("records"), start=1):
        where = f"row {number} of {manifest}"
        entry = record[path_column]
        if path_suffix and not Path(entry).suffix:
            entry = entry + path_suffix
        path = folder / entry
        if not allow_outside_root:
            _check_inside(path, top, f"{where}: {path_column}={entry!r}")
        if split_column:
            _check_split(record[split_column], split_column, where)
        reason = unreadable_reason(path)
        if reason is not None:
            skipped.append({"path": str(path), "reason": reason,
                            "label": str(record[label_column])})
            continue
        rows.append(_manifest_row(record, str(path), entry, label_column, item_column,
                                  clip_column, split_column))
    return rows, skipped


def _layout(manifest: Path, path_column: str, label_column: str) -> dict[str, str] | None:
    """FSD50K's layout (`fsd50k_layout`) when the manifest has its columns and not the
    path and label columns asked for; else `None`."""
    if not manifest.is_file():
        return None
    try:
        columns = pd.read_csv(manifest, nrows=0, encoding="utf-8-sig").columns
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError):
        return None  # `_read_manifest` says what is wrong with it
    if path_column in columns or label_column in columns:
        return None
    return fsd50k_layout(columns)


def _check_inside(path: Path, top: str, what: str) -> None:
    """Refuses a path that leads outside the root folder `top`."""
    full = os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([top, full]) != top:
        raise DatasetError(
            f"{what} leads outside the root folder {top}. Fix the manifest, give a root "
            "folder that holds every file (--root; xval init: AUDIO_DIR), or pass "
            "--allow-outside-root (allow_outside_root=True) if this is intended.")


def _check_split(value: str, split_column: str, where: str) -> None:
    if value.strip().lower() not in SPLIT_NAMES:
        raise DatasetError(
            f"{where}: {split_column}={value!r} is not a set name; expected one of "
            f"{', '.join(SPLIT_NAMES)}."
        )


def _manifest_row(record: Mapping[str, Any], path: str, entry: str, label_column: str,
                  item_column: str | None, clip_column: str | None,
                  split_column: str | None) -> dict[str, str]:
    row = {"path": path, "label": record[label_column],
           "item": record[item_column] if item_column else entry,
           "clip": record[clip_column] if clip_column else entry}
    if split_column:
        row["split"] = record[split_column]
    return row


class Manifest(Source):
    """`python -m preprocessing manifest CSV`: `manifest_source`."""

    name = "manifest"
    help = "a CSV manifest (ESC-50, FMA)"
    reads = Reads("csv", "a CSV manifest", kind="file")
    options = (
        Option("--root", "folder the paths are relative to (default: CSV's folder)"),
        Option("--allow-outside-root", "accept manifest paths that lead outside --root "
                                       "(absolute or ../)", switch=True),
        Option("--path-column", default="path"),
        Option("--label-column", default="label"),
        Option("--item-column"),
        Option("--clip-column"),
        Option("--split-column", "predefined train/validation/test column"),
        ITEM_PER_FILE,
        *LABEL_SET_OPTIONS,
        Option("--path-suffix", "added to paths without one (e.g. .wav: FSD50K's fname)"),
    )

    def read(self, paths: list[str], values: dict[str, Any]) -> Rows:
        keywords = {k: v for k, v in values.items() if k != "item_per_file"}
        return manifest_source(paths[0], by_recording=not values["item_per_file"],
                               **keywords)

    def inputs(self, paths: Sequence[str], values: Mapping[str, Any],
               rows: pd.DataFrame) -> list[str]:
        """The folder the paths are relative to (the manifest's, unless `--root`)."""
        return [str(values["root"] or Path(paths[0]).parent)]
