"""The one rule for files and folders a command writes, checked before anything runs.

- **Nothing a command did not create is ever deleted or replaced.** A folder a command
  replaces as a whole (a feature store, an instance's results, a synthetic dataset) must be
  recognisably its own output (`OwnedFolder`: a marker file such as the store's `dataset.json`,
  and no entry but those the command writes); a folder holding audio, documents or anything
  else is refused, even with `--overwrite`, and the refusal names the folder and an entry
  it holds (`check_replace`). The deletion itself checks again (`remove_output`).
- An output folder is never inside or equal to an input folder, nor an input inside it
  (`check_apart`).
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

import dataclasses
import fnmatch
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from xval.core.errors import ConfigurationError, XvalError
from xval.core.links import broken_link

__all__ = ["OwnedFolder", "check_apart", "check_output_files", "check_output_folder",
           "check_replace", "foreign_entries", "remove_output"]

_SHOWN = 3
"""Foreign entries a refusal names."""


@dataclasses.dataclass(frozen=True)
class OwnedFolder:
    """A folder a command writes as a whole, and how to recognise one it wrote.

    Args:
        kind: what it is, in words (`"a feature store"`).
        command: the command that writes it, for the messages
            (`"python -m preprocessing"`).
        markers: files that every such folder holds (e.g. `("dataset.json",)`).
        entries: glob patterns, relative to the folder, of every file and folder the
            command writes (`"plots/**"`: a folder and anything under it; `*` also
            matches `/`). An entry that matches none is the user's.
        folders: sub-folders of any name are its own (their files are still checked).
            Defaults to `False`.
    """

    kind: str
    command: str
    markers: Sequence[str]
    entries: Sequence[str]
    folders: bool = False

    def owns(self, relative: str, is_dir: bool = False) -> bool:
        """Whether the entry `relative` (POSIX, relative to the folder) is one it writes."""
        if is_dir and self.folders:
            return True
        for pattern in self.entries:
            if fnmatch.fnmatchcase(relative, pattern):
                return True
            if pattern.endswith("/**") and (relative == pattern[:-3]
                                            or fnmatch.fnmatchcase(relative, pattern[:-3])):
                return True
        return False


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
        broken = broken_link(candidate)
        if broken:
            raise ConfigurationError(
                f"{what} {str(candidate)!r} is {broken}; remove it or give another folder.")
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


def foreign_entries(folder: Path, output: OwnedFolder) -> list[str]:
    """The entries of `folder` (recursively, links not followed) that `output` does not
    write, relative POSIX paths, sorted; a missing marker is listed as `"<no NAME>"`."""
    foreign = [f"<no {m}>" for m in output.markers if not (folder / m).is_file()]
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath).relative_to(folder)
        for name in sorted(dirnames):
            if not output.owns((base / name).as_posix(), is_dir=True):
                foreign.append((base / name).as_posix())
        for name in sorted(filenames):
            if not output.owns((base / name).as_posix()):
                foreign.append((base / name).as_posix())
        dirnames[:] = [d for d in dirnames if output.owns((base / d).as_posix(), is_dir=True)]
        if len(foreign) > 50:
            break
    return foreign


def _bare(what: str) -> str:
    """`what` without its article: `the store` -> `store` (for "Give another store")."""
    for article in ("the ", "a ", "an "):
        if what.startswith(article):
            return what[len(article):]
    return what


def _refusal(path: Path, output: OwnedFolder, foreign: list[str], what: str) -> str:
    user = [f for f in foreign if not f.startswith("<no ")]
    if user:
        held = f"it holds {', '.join(user[:_SHOWN])}" + (", ..." if len(user) > _SHOWN
                                                          else "")
    else:
        held = f"it has no {foreign[0][4:-1]}: it is not {output.kind}"
    return (f"{what} {str(path)!r} exists and was not written by {output.command} ({held});"
            f" it is never replaced or deleted, even with --overwrite. Give another "
            f"{_bare(what)}.")


def check_replace(path: str | os.PathLike[str], output: OwnedFolder, *, overwrite: bool,
                  what: str = "--out", error: type[XvalError] = ConfigurationError) -> bool:
    """Checks that the folder `path` may be written as a whole (replaced if it exists).

    A missing path or an empty folder may be written. An existing folder may be replaced
    only with `overwrite`, and only when it is recognisably `output`'s (its markers are
    there and it holds nothing else).

    Args:
        path: the folder the command writes.
        output: what the command writes there.
        overwrite: the user asked to replace an existing one.
        what: how the messages name the path (`"--out"`, `"the store"`).
        error: the exception raised. Defaults to `ConfigurationError`.

    Returns:
        Whether a folder with content exists there (and will be replaced).

    Raises:
        XvalError: (`error`) for a path that is not a folder (a file, a link, a FIFO), a
            folder holding anything the command did not write, or an existing output
            without `overwrite`.
    """
    path = Path(path)
    if path.is_symlink():
        raise error(f"{what} {str(path)!r} is a symbolic link; it is never replaced. Give the "
                    "folder itself, or another path.")
    if not path.exists():
        return False
    if not path.is_dir():
        raise error(f"{what} {str(path)!r} exists and is not a folder; it is never replaced. "
                    "Give another path.")
    if not any(path.iterdir()):
        return False
    foreign = foreign_entries(path, output)
    if foreign:
        raise error(_refusal(path, output, foreign, what))
    if not overwrite:
        raise error(f"{what} {str(path)!r} already exists ({output.kind} written earlier); "
                    f"pass --overwrite to replace it, or give another {_bare(what)}.")
    return True


def remove_output(path: str | os.PathLike[str], output: OwnedFolder) -> None:
    """Deletes the folder `path`, checking first that it is `output`'s alone.

    Raises:
        ConfigurationError: when it holds anything `output` does not write (nothing is
            deleted then).
    """
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        raise ConfigurationError(f"{str(path)!r} is not a folder {output.command} wrote; "
                                 "it is not deleted.")
    foreign = [f for f in foreign_entries(path, output) if not f.startswith("<no ")]
    if foreign:
        raise ConfigurationError(_refusal(path, output, foreign, "the folder"))
    shutil.rmtree(path)


def check_apart(output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]],
                *, what: str = "--out", input_name: str = "the input",
                error: type[XvalError] = ConfigurationError) -> None:
    """Refuses an output folder inside or equal to an input folder, or holding one.

    Args:
        output: the folder a command writes.
        inputs: the folders (or files) it reads.
        what: how the messages name the output.
        input_name: how they name the input.
        error: the exception raised. Defaults to `ConfigurationError`.

    Raises:
        XvalError: (`error`) naming both folders.
    """
    out = Path(os.path.realpath(output))
    for source in inputs:
        src = Path(os.path.realpath(source))
        if out == src or src in out.parents:
            raise error(
                f"{what} {str(output)!r} is inside {input_name} {str(source)!r} (or is it); "
                "a command never writes into what it reads: choose a place outside it.")
        if out in src.parents:
            raise error(
                f"{input_name} {str(source)!r} is inside {what} {str(output)!r}; a command "
                "never writes over what it reads: choose a place that does not hold it.")
