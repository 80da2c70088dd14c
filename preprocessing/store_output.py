"""The output rule for a store folder (`xval.core.outputs`): what a store holds, the
checks before one is written, and the replacement of an old store by a finished one."""

import os
from collections.abc import Iterable
from pathlib import Path

from xval import tasks
from xval.core.errors import DatasetError
from xval.core.files import make_temp_dir
from xval.core.outputs import (
    OwnedFolder,
    check_apart,
    check_output_folder,
    check_replace,
    remove_output,
)

FILES = ("features.npy", "meta.csv", "dataset.json")


def store_output() -> OwnedFolder:
    """What a store folder holds (`xval.core.outputs`): its three files and the extra
    arrays of the registered tasks, nothing else."""
    extra = sorted({name for task in tasks.names() for name in tasks.get(task).extra_arrays})
    return OwnedFolder(kind="a feature store", command="`python -m preprocessing` or `xval init`",
                  markers=FILES, entries=(*FILES, *extra))


def check_store_out(out: str | os.PathLike[str], *, overwrite: bool,
                    inputs: Iterable[str | os.PathLike[str]] = ()) -> bool:
    """The output rule for a store folder, before anything is read or extracted: its
    parent is a writable folder, it is apart from the folders read (`inputs`), and an
    existing folder is replaced only when it is a store and `overwrite` is on.

    Returns:
        Whether an existing store will be replaced.

    Raises:
        ConfigurationError: when the parent is not a writable folder.
        DatasetError: naming the folder and why it is not written.
    """
    out = Path(out)
    check_output_folder(out.parent, what="the store's parent folder")
    check_apart(out, inputs, what="the store", input_name="the audio folder",
                error=DatasetError)
    return check_replace(out, store_output(), overwrite=overwrite, what="the store",
                         error=DatasetError)


def replace_store(tmp: Path, path: Path) -> None:
    """Moves the finished store `tmp` to `path`, replacing the store there (checked again
    by the output rule: only a store is ever replaced)."""
    if path.exists() and any(path.iterdir()):
        trash = make_temp_dir(path.parent, prefix=f".{path.name}.old.")
        os.replace(path, trash / "store")
        os.replace(tmp, path)
        remove_output(trash / "store", store_output())
        trash.rmdir()
    else:
        if path.exists():
            path.rmdir()  # an empty folder
        os.replace(tmp, path)
