"""Writing a generated dataset folder under the output rule (`xval.core.outputs`): apart
from the folders read, an existing one replaced only when it is the command's own output,
written into a temporary sibling that replaces the folder only when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from xval.core.errors import DatasetError
from xval.core.outputs import OwnedFolder, check_apart, check_replace, remove_output


def check_out(out: Path, overwrite: bool, output: OwnedFolder,
              inputs: Sequence[str | os.PathLike[str] | None] = ()) -> None:
    """The output rule for a generated folder: apart from the folders read, and an existing
    one replaced only with `overwrite` when it is `output`'s (its `recipe.json` and the
    files it writes, nothing else).

    Raises:
        DatasetError: naming the folder and what to do.
    """
    if not str(out).strip():
        raise DatasetError("--out is empty; give the folder to write.")
    check_apart(out, [p for p in inputs if p is not None], input_name="the folder read",
                error=DatasetError)
    check_replace(out, output, overwrite=overwrite, error=DatasetError)


@contextlib.contextmanager
def staging(out: Path, output: OwnedFolder) -> Iterator[Path]:
    """A temporary folder beside `out` that replaces `out` when the block ends without
    an error (and is removed when it raises); the folder replaced is removed by the output
    rule (`remove_output`: only `output`'s own files)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists() and any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "folder")
            os.replace(tmp, out)
            remove_output(old / "folder", output)
            old.rmdir()
        else:
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
