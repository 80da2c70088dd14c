"""The `folders` source: one folder per class, `root/<label>/.../file`."""

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from preprocessing.audio import AUDIO_EXTENSIONS
from preprocessing.sources.base import (
    ITEM_PER_FILE,
    Option,
    Reads,
    Rows,
    Source,
    group_recordings,
    source_table,
)
from preprocessing.sources.files import audio_files, class_folders
from preprocessing.sources.regex import compile_pattern

__all__ = ["Folders", "folder_source"]


def folder_source(root: str | os.PathLike[str], *, item_pattern: str | None = None,
                  extensions: Iterable[str] = AUDIO_EXTENSIONS,
                  by_recording: bool = True) -> Rows:
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

    Raises:
        DatasetError: for a bad `item_pattern`, a missing folder, or no audio file.
    """
    regex: re.Pattern[str] | None = None
    if item_pattern is not None:
        regex = compile_pattern(item_pattern, "item", "item_pattern")
    folder, files, skipped = audio_files(root, extensions)
    for entry in skipped:  # the class of a file it could not use
        entry["label"] = Path(entry["path"]).relative_to(folder).parts[0]
    used = {p.relative_to(folder).parts[0] for p in files} | {s["label"] for s in skipped}
    skipped += [{"path": str(folder / name), "label": name,
                 "reason": "a class folder with no audio file in it"}
                for name in class_folders(folder) if name not in used]
    rows: list[dict[str, str]] = []
    for path in files:
        rel = path.relative_to(folder).as_posix()
        match = regex.search(rel) if regex is not None else None
        if "/" not in rel:
            skipped.append({"path": str(path), "reason": "not inside a class folder"})
        elif regex is not None and not match:
            skipped.append({"path": str(path),
                            "reason": f"does not match item_pattern {item_pattern!r}"})
        else:
            rows.append({"path": str(path), "label": rel.split("/")[0],
                         "item": match.group("item") if match else rel, "clip": rel})
    grouped = None
    if by_recording and regex is None:
        grouped = group_recordings(rows, [row["item"] for row in rows])  # the paths
    return source_table(rows, skipped, f"Class folders under {folder}", grouped)


class Folders(Source):
    """`python -m preprocessing folders ROOT`: `folder_source`."""

    name = "folders"
    help = "one folder per class"
    reads = Reads("root", "a folder of class folders")
    options = (Option("--item-pattern", "regex with (?P<item>..) over relative paths"),
               ITEM_PER_FILE)

    def read(self, paths: list[str], values: dict[str, Any]) -> Rows:
        return folder_source(paths[0], item_pattern=values["item_pattern"],
                             by_recording=not values["item_per_file"])
