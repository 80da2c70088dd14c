"""The one rule for files and folders a command writes, checked before anything runs.

- A file a command writes never replaces an existing one unless the user asked for it
  (`--overwrite`), and never replaces something that is not a plain file (a folder, a FIFO,
  a device), even then.
- A folder a command writes into is a folder: an existing file, FIFO or dangling link at
  that path, or at any of its parents, is an error naming the path.
- The nearest existing folder must be writable.

Every error is a `ConfigurationError` naming the path and the fix, so the command lines
print one `error:` line and exit 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from xval.core.errors import ConfigurationError

__all__ = ["check_output_files", "check_output_folder"]


def _nearest_existing(path: Path) -> Path:
    """The path itself or its nearest ancestor that exists (links followed)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def check_output_folder(folder: str | os.PathLike[str], *, what: str = "output folder"
                        ) -> Path:
    """Checks that `folder` is, or can be created as, a writable folder.

    Args:
        folder: the folder a command writes into (it may not exist yet).
        what: how the messages name it, e.g. `"OUT"` or `"results_dir"`.

    Returns:
        `folder` as a `Path`.

    Raises:
        ConfigurationError: when the path or one of its parents is not a folder (a file, a
            FIFO, a dangling link), or when the nearest existing folder is not writable.
    """
    path = Path(folder)
    if str(folder).strip() == "":
        raise ConfigurationError(f"{what} is empty; give a folder.")
    for candidate in (path, *path.parents):
        if candidate.is_symlink() and not candidate.exists():
            raise ConfigurationError(
                f"{what} {str(candidate)!r} is a dangling link; remove it or give another "
                "folder.")
        if candidate.exists() and not candidate.is_dir():
            raise ConfigurationError(
                f"{what} {str(path)!r}: {str(candidate)!r} is a file, not a folder; give a "
                "folder path.")
    existing = _nearest_existing(path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"{what} {str(path)!r}: cannot write in {str(existing)!r} (read-only or not "
            "yours); give a folder you can write.")
    return path


def check_output_files(paths: Iterable[str | os.PathLike[str]], *, overwrite: bool,
                       flag: str = "--overwrite") -> list[Path]:
    """Checks every file a command is about to write, before anything is written.

    Args:
        paths: the files the command writes (all of them, siblings included).
        overwrite: the user asked to replace existing files.
        flag: the option that allows it, named in the message. Defaults to `"--overwrite"`.

    Returns:
        The paths as `Path`s.

    Raises:
        ConfigurationError: for an existing file without `overwrite`, a path that exists and
            is not a plain file, or a parent that is not a writable folder.
    """
    checked = [Path(p) for p in paths]
    for path in checked:
        check_output_folder(path.parent, what=f"the folder of {str(path)!r}")
        if not (path.exists() or path.is_symlink()):
            continue
        if not path.is_file():
            raise ConfigurationError(
                f"{str(path)!r} exists and is not a plain file (a folder, FIFO, device or "
                "dangling link); it is never replaced. Give another output path.")
        if not overwrite:
            raise ConfigurationError(
                f"{str(path)!r} exists; pass {flag} to replace it, or give another output "
                "path.")
    return checked
