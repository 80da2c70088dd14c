"""Writing a generated dataset folder: refuse an existing one that another command wrote,
and write into a temporary sibling that replaces the folder only when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from xval.core.errors import DatasetError


def check_out(out: Path, overwrite: bool, command: str) -> None:
    """Refuses an existing output folder, unless `overwrite` and it was written by
    `command` (it holds a `recipe.json`).

    Raises:
        DatasetError: naming the folder and what to do.
    """
    if not out.exists():
        return
    if not overwrite:
        raise DatasetError(f"{out} exists; choose another --out or pass --overwrite.")
    if not (out / "recipe.json").is_file():
        raise DatasetError(
            f"{out} exists and was not written by {command} (no recipe.json); "
            f"--overwrite only replaces a {command} folder. Choose another --out.")


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out` that replaces `out` when the block ends without
    an error (and is removed when it raises)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
