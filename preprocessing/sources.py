"""Sources: turn a dataset on disk into rows `(path, label, item, clip)`.

Every source returns `(rows, skipped)`: a `pandas.DataFrame` with the columns `path`,
`label`, `item`, `clip` (and `split` when the source has one; `offset`, `duration` and `read`
when a row is a region of a file, see `preprocessing.audio.Region`), and a list of
`{"path", "reason"}` for files it could not use (with the file's `label` when the source
knows it, so that a class that lost every file is named, `preprocessing.intake`). A source
that gives no item (no item pattern, group or column) groups the files whose names share a
recording id (`preprocessing.recordings`: `1-100038-A.ogg` and `1-100038-B.ogg` are one item)
unless `by_recording=False`, and says so in `rows.attrs["recordings"]` (`None` when every
file is its own item). The corpus
formats of speech toolkits (Kaldi, Lhotse, Hugging Face `datasets`) are in
`preprocessing.corpora`.

Folders are walked following symbolic links to folders on the dataset root's file system
(a class folder that is a link is read like any other); a link to another file system, or
one that leads back to a folder it is inside (a loop), is an error naming it.
"""

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from preprocessing.audio import AUDIO_EXTENSIONS, unreadable_reason
from preprocessing.recordings import find_recordings
from xval.core.errors import DatasetError
from xval.folds import SPLIT_NAMES

# RAVDESS file names: modality-channel-EMOTION-intensity-statement-repetition-ACTOR.
RAVDESS_PATTERN = (r"(?:^|/)\d\d-\d\d-(?P<label>\d\d)-\d\d-\d\d-\d\d-(?P<item>\d\d)"
                   r"\.(?:wav|flac)$")
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
# FSDD file names: {digit}_{speaker}_{index}.wav.
FSDD_PATTERN = r"(?:^|/)(?P<label>\d)_(?P<item>[a-z]+)_\d+\.wav$"
# Speaker identification `id/context/file` layout (VoxCeleb): labels are speakers, items
# are contexts (recording sessions or videos).
SPEAKER_ID_PATTERN = r"^(?P<label>[^/]+)/(?P<item>[^/]+)/[^/]+$"
LABEL_MAPS = {"ravdess": RAVDESS_EMOTIONS}


Skipped = list[dict[str, str]]
"""Files a source could not use: `{"path", "reason"}` each (and `label`, when known)."""
Source = tuple[pd.DataFrame, Skipped]
"""What every source returns: `(rows, skipped)`."""


def _linked_folder(link: Path, device: int, ancestors: set[str]) -> bool:
    """Whether the folder link `link` is followed: yes on the root's file system; an error
    for a loop or another file system."""
    target = os.path.realpath(link)
    if target in ancestors:
        raise DatasetError(
            f"{link} is a symbolic link to {target}, a folder it is inside: a loop. Remove "
            "the link, or replace it by the folder it should name.")
    if os.stat(target).st_dev != device:
        raise DatasetError(
            f"{link} is a symbolic link to {target}, on another file system than the dataset "
            "root; it is not followed. Copy or move that folder under the root, or give its "
            "own folder.")
    return True


def _walk(folder: Path) -> tuple[list[Path], list[Path]]:
    """Every file under `folder` (folder links followed, see the module docstring), and the
    dangling links to nothing, both sorted."""
    device = folder.stat().st_dev
    files: list[Path] = []
    dangling: list[Path] = []
    stack = [(folder, {os.path.realpath(folder)})]
    while stack:
        current, ancestors = stack.pop()
        with os.scandir(current) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                if entry.is_symlink() and not path.exists():
                    dangling.append(path)
                elif entry.is_dir(follow_symlinks=True):
                    if entry.is_symlink():
                        _linked_folder(path, device, ancestors)
                    stack.append((path, ancestors | {os.path.realpath(path)}))
                else:
                    files.append(path)
    return sorted(files), sorted(dangling)


def _audio_files(root: str | os.PathLike[str],
                 extensions: Iterable[str]) -> tuple[Path, list[Path], Skipped]:
    """The regular audio files under `root`, and the audio-named paths that are not
    regular files (listed as skipped, never opened), with dangling links to folders
    (a class folder that is gone)."""
    folder = Path(root)
    if not folder.is_dir():
        raise DatasetError(f"Audio folder {str(folder)!r} does not exist or is not a folder.")
    wanted = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    files: list[Path] = []
    skipped: Skipped = []
    found, dangling = _walk(folder)
    for path in dangling:
        if path.suffix.lower() not in wanted:  # audio-named ones are listed below
            skipped.append({"path": str(path), "reason": unreadable_reason(path) or ""})
    for path in sorted([p for p in found if p.suffix.lower() in wanted]
                       + [p for p in dangling if p.suffix.lower() in wanted]):
        reason = unreadable_reason(path)
        if reason is None:
            files.append(path)
        elif not path.is_dir():
            skipped.append({"path": str(path), "reason": reason})
    if not files:
        raise DatasetError(
            f"No audio files ({', '.join(sorted(wanted))}) found under {folder}."
        )
    return folder, files, skipped


def _class_folders(folder: Path) -> list[str]:
    """The sub-folders of `folder` (links to folders included), hidden ones left out."""
    return sorted(entry.name for entry in os.scandir(folder)
                  if entry.is_dir(follow_symlinks=True) and not entry.name.startswith("."))


def source_rows(rows: list[dict[str, Any]], skipped: Skipped, what: str,
                recordings: str | None = None) -> Source:
    """The `(rows, skipped)` of a source from its row dicts, refusing a source without rows.

    Args:
        rows: one dict per row: `path`, `label`, `item`, `clip` (optional `split`, and
            `offset`, `duration`, `read` for a region, see `preprocessing.audio.Region`).
        skipped: the files the source could not use.
        what: the source, for the error (e.g. `"Kaldi data directory data/train"`).
        recordings: how files were grouped by recording (`Recordings.describe`), kept in
            `rows.attrs["recordings"]`. Defaults to `None` (not grouped).

    Returns:
        `(rows, skipped)`, the rows as a `pandas.DataFrame`.

    Raises:
        DatasetError: when there is no row, naming the first problems.
    """
    if not rows:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
        raise DatasetError(f"{what} produced no rows. First problems: {reasons}")
    table = pd.DataFrame(rows)
    table.attrs["recordings"] = recordings
    return table, skipped


def _group_recordings(rows: list[dict[str, Any]], names: list[str]) -> str | None:
    """Gives rows that are each their own item the recording id their file names share
    (`preprocessing.recordings.find_recordings`); returns how, or `None` when none is
    shared."""
    found = find_recordings(names, [row["label"] for row in rows]) if rows else None
    if found is None:
        return None
    for row, item in zip(rows, found.items):
        row["item"] = item
    return found.describe()


def regex_source(root: str | os.PathLike[str], pattern: str, *,
                 label_map: Mapping[str, str] | None = None,
                 extensions: Iterable[str] = AUDIO_EXTENSIONS,
                 by_recording: bool = True) -> Source:
    """Rows from file paths matched by a regular expression with named groups.

    The pattern is searched in each path relative to `root` (with `/` separators). Group
    `label` gives the label, group `item` the foldable item (when absent: the recording id
    the file names share, else the file itself), and optional group `clip` the clip id (the
    relative path when absent).

    Args:
        root: the dataset folder.
        pattern: regular expression, e.g. `sources.FSDD_PATTERN`.
        label_map: dict of label code to class name (e.g. `RAVDESS_EMOTIONS`), or `None`.
        extensions: file extensions to read. Defaults to every supported audio format.
        by_recording: without an `item` group, files whose names share a recording id are
            one item (`preprocessing.recordings`); `False` makes every file its own item.
            Defaults to `True`.

    Returns:
        `(rows, skipped)`.

    Raises:
        DatasetError: for a bad pattern, a missing folder, or no matching file.
    """
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise DatasetError(f"Pattern {pattern!r} is not a valid regular expression: {e}") from e
    if "label" not in regex.groupindex:
        raise DatasetError(f"Pattern {pattern!r} needs a named group (?P<label>...).")
    folder, files, skipped = _audio_files(root, extensions)
    rows: list[dict[str, str]] = []
    for entry in skipped:  # the class of a file it could not use, when the pattern gives it
        match = regex.search(Path(entry["path"]).relative_to(folder).as_posix())
        if match:
            entry["label"] = (label_map or {}).get(match["label"], match["label"])
    for path in files:
        rel = path.relative_to(folder).as_posix()
        match = regex.search(rel)
        if not match:
            skipped.append({"path": str(path), "reason": f"does not match pattern {pattern!r}"})
            continue
        groups = match.groupdict()
        label = groups["label"]
        if label_map is not None:
            if label not in label_map:
                skipped.append({"path": str(path),
                                "reason": f"label code {label!r} is not in the label map"})
                continue
            label = label_map[label]
        rows.append({"path": str(path), "label": label, "item": groups.get("item") or rel,
                     "clip": groups.get("clip") or rel})
    grouped = None
    if by_recording and "item" not in regex.groupindex:
        grouped = _group_recordings(rows, [row["item"] for row in rows])  # the paths
    return source_rows(rows, skipped, f"Pattern {pattern!r} over {folder}", grouped)


def folder_source(root: str | os.PathLike[str], *, item_pattern: str | None = None,
                  extensions: Iterable[str] = AUDIO_EXTENSIONS,
                  by_recording: bool = True) -> Source:
    """Rows from a folder per class: `root/<label>/.../file`.

    Args:
        root: the dataset folder; each sub-folder is a class.
        item_pattern: regular expression with a group `(?P<item>...)` searched in the path
            relative to `root`; `None`: the recording id the file names share, else every
            file its own item (see `by_recording`).
        extensions: file extensions to read. Defaults to every supported audio format.
        by_recording: without `item_pattern`, files whose names share a recording id are
            one item (`preprocessing.recordings`); `False` makes every file its own item.
            Defaults to `True`.

    Returns:
        `(rows, skipped)`.
    """
    regex = None
    if item_pattern is not None:
        try:
            regex = re.compile(item_pattern)
        except re.error as e:
            raise DatasetError(f"item_pattern {item_pattern!r} is not valid: {e}") from e
        if "item" not in regex.groupindex:
            raise DatasetError(f"item_pattern {item_pattern!r} needs a group (?P<item>...).")
    folder, files, skipped = _audio_files(root, extensions)
    for entry in skipped:  # the class of a file it could not use
        rel = Path(entry["path"]).relative_to(folder).as_posix()
        entry["label"] = rel.split("/")[0]
    used = {p.relative_to(folder).parts[0] for p in files} | {s["label"] for s in skipped}
    skipped += [{"path": str(folder / name), "label": name,
                 "reason": "a class folder with no audio file in it"}
                for name in _class_folders(folder) if name not in used]
    rows: list[dict[str, str]] = []
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if "/" not in rel:
            skipped.append({"path": str(path), "reason": "not inside a class folder"})
            continue
        item = rel
        if regex is not None:
            match = regex.search(rel)
            if not match:
                skipped.append({"path": str(path),
                                "reason": f"does not match item_pattern {item_pattern!r}"})
                continue
            item = match.group("item")
        rows.append({"path": str(path), "label": rel.split("/")[0], "item": item, "clip": rel})
    grouped = None
    if by_recording and regex is None:
        grouped = _group_recordings(rows, [row["item"] for row in rows])  # the paths
    return source_rows(rows, skipped, f"Class folders under {folder}", grouped)


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
                    allow_outside_root: bool = False, by_recording: bool = True) -> Source:
    """Rows from a CSV manifest (FMA, ESC-50 style).

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

    Returns:
        `(rows, skipped)`.

    Raises:
        DatasetError: for a missing, empty or unreadable manifest, a missing column, a path
            outside `root`, or a split value that is not a set name (naming the row).
    """
    manifest = Path(manifest)
    table = _read_manifest(manifest, path_column, label_column,
                           {"item_column": item_column, "clip_column": clip_column,
                            "split_column": split_column})
    folder = Path(root) if root is not None else manifest.parent
    top = os.path.normpath(os.path.abspath(folder))
    rows: list[dict[str, str]] = []
    skipped: Skipped = []
    for number, record in enumerate(table.to_dict("records"), start=1):
        where = f"row {number} of {manifest}"
        entry = record[path_column]
        path = folder / entry
        full = os.path.normpath(os.path.abspath(path))
        if not allow_outside_root and os.path.commonpath([top, full]) != top:
            raise DatasetError(
                f"{where}: {path_column}={entry!r} leads outside the root folder {top}. "
                "Fix the manifest, set --root to a folder holding every file, or pass "
                "--allow-outside-root (allow_outside_root=True) if this is intended."
            )
        if split_column:
            _check_split(record[split_column], split_column, where)
        reason = unreadable_reason(path)
        if reason is not None:
            skipped.append({"path": str(path), "reason": reason,
                            "label": str(record[label_column])})
            continue
        rows.append(_manifest_row(record, str(path), entry, label_column, item_column,
                                  clip_column, split_column))
    grouped = None
    if by_recording and item_column is None:
        grouped = _group_recordings(rows, [row["item"] for row in rows])  # the paths
    return source_rows(rows, skipped, f"Manifest {manifest}", grouped)


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
