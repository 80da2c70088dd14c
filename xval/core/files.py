"""Writing files safely: atomic writes, JSON without NaN, inter-process locks, temporary
folders, all honouring the umask.

A leaf module: it imports nothing of the project, so `preprocessing`, `augmentation` and
`xval` all use it without an import loop. `tempfile.mkstemp` and `tempfile.mkdtemp` create
private files (0600) and folders (0700); the results of an experiment or a feature store
are shared with colleagues, so what is written here gets the modes a plain `open()` or
`mkdir()` would give (0644 and 0755 under the usual umask 022).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from xval.core.errors import StorageError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "current_umask",
    "lock",
    "make_temp_dir",
    "json_text",
    "make_temp_file",
    "read_json",
]


def current_umask() -> int:
    """Returns the process umask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    return 0o666 & ~current_umask()


def _dir_mode() -> int:
    return 0o777 & ~current_umask()


def make_temp_file(folder: str | Path, prefix: str, suffix: str = "") -> tuple[int, str]:
    """Creates an empty temporary file in `folder` with the umask's file mode.

    Args:
        folder: where to create it (created if missing).
        prefix: start of the file name, e.g. `".features."`.
        suffix: end of the file name. Defaults to `""`.

    Returns:
        `(fd, path)` as `tempfile.mkstemp` returns them.
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.fchmod(fd, _file_mode())
    return fd, path


def make_temp_dir(folder: str | Path, prefix: str) -> Path:
    """Creates a temporary folder in `folder` with the umask's folder mode (not 0700).

    Args:
        folder: where to create it (created if missing).
        prefix: start of the folder name, e.g. `".demo."`.

    Returns:
        The new folder as a `Path`.
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    os.chmod(path, _dir_mode())
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file, `fsync` and `os.replace`.

    Readers see the old file or the new one, never a half-written one. The file gets the
    umask's mode (0644 under umask 022).

    Args:
        path: the file to write (its folder is created if missing).
        data: `bytes`.
    """
    path = Path(path)
    try:
        fd, tmp = make_temp_file(path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise storage_error(e, path, len(data)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, StorageError):
            raise storage_error(e, path, len(data)) from e
        raise


# The errors of a file that cannot be written, and what to do about each.
_STORAGE_FIXES = {
    errno.ENOSPC: "free space there, or {elsewhere} on another disk",
    errno.EDQUOT: "free space within your quota, or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere ({elsewhere})",
    errno.EACCES: "you may not write there; change its permissions or write elsewhere",
    errno.EPERM: "you may not write there; change its permissions or write elsewhere",
    errno.ENOTDIR: "a file stands where a folder belongs; move it away",
    errno.EEXIST: "a file stands where a folder belongs; move it away",  # from mkdir
    errno.EFBIG: "it passes the largest file this process may write (ulimit -f); raise "
                 "that limit, or write elsewhere",
}


RESUME = "Nothing finished is lost: rerun the same command to resume."
"""What `storage_error` says after the fix by default (results and stores resume)."""


PATHS = "set [paths] results_dir / data_dir"
"""Where `storage_error` says to write instead by default (the results and the stores)."""


def storage_error(error: OSError, path: Path, size: int | None = None, *,
                  then: str = RESUME, elsewhere: str = PATHS) -> OSError:
    """A clear `StorageError` for a write that failed for lack of space or permission (the
    folder, the space needed and free, the fix), or `error` itself for any other failure.

    Args:
        error: the `OSError` raised while writing.
        path: the file (or folder) being written.
        size: bytes being written, when known.
        then: the sentence after the fix. Defaults to `RESUME`; `""` for none (a command
            that writes one output and resumes nothing).
        elsewhere: how to write on another disk (`"give --out"`). Defaults to `PATHS`.
    """
    fix = _STORAGE_FIXES.get(error.errno or -1)
    if fix is None:
        return error
    fix = fix.format(elsewhere=elsewhere)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    detail = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(folder).free
        need = f"{size / 2**20:.1f} MiB needed, " if size is not None else ""
        detail += f": {need}{free / 2**20:.1f} MiB free in {folder}"
    return StorageError(f"cannot write {path} ({detail}); {fix}.{' ' + then if then else ''}")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically; see `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _clean(value: Any) -> Any:
    """JSON-ready copy: non-finite floats become `None`, NumPy scalars plain Python."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return _clean(item())
    return value


def json_text(obj: Any) -> str:
    """`obj` as the indented JSON text `atomic_write_json` writes (NaN and infinities as
    `null`, NumPy scalars as plain numbers)."""
    return json.dumps(_clean(obj), indent=2, sort_keys=False)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Writes `obj` as indented JSON atomically, NaN and infinities as `null`.

    Args:
        path: the file to write.
        obj: dicts, lists, strings, numbers (NumPy scalars included), `None`.
    """
    atomic_write_text(path, json_text(obj))


def read_json(path: str | Path) -> Any:
    """Reads a JSON file (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def lock(path: str | Path) -> FileLock:
    """An inter-process file lock (`filelock.FileLock`) for `path`, kept in `.locks/`.

    Args:
        path: the file or folder to guard; the lock file is `<parent>/.locks/<name>.lock`.

    Returns:
        An unacquired `filelock.FileLock` (use it as a context manager).
    """
    path = Path(path)
    folder = path.parent / ".locks"
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise StorageError(f"{folder} is not a folder (it holds the locks of {path.parent}); "
                           "remove it and rerun.")
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / (path.name + ".lock")), mode=_file_mode())
