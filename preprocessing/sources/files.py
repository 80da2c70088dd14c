"""The audio files of a folder, for the sources that read a folder (`folders`, `regex`).

Folders are walked following symbolic links to folders on the dataset root's file system
(a class folder that is a link is read like any other); a link to another file system, or
one that leads back to a folder it is inside (a loop), is an error naming it.
"""

import os
from collections.abc import Iterable
from pathlib import Path

from preprocessing.audio import unreadable_reason
from preprocessing.sources.base import Skipped
from xval.core.errors import DatasetError

__all__ = ["audio_files", "class_folders"]


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


def audio_files(root: str | os.PathLike[str],
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


def class_folders(folder: Path) -> list[str]:
    """The sub-folders of `folder` (links to folders included), hidden ones left out."""
    return sorted(entry.name for entry in os.scandir(folder)
                  if entry.is_dir(follow_symlinks=True) and not entry.name.startswith("."))
