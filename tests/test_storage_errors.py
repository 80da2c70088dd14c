"""A disk that refuses a write is one clear error (issue 25, item 4): the file, the space
needed and free, the fix; never a traceback, never a half-written file. The fault is real:
the write goes to /dev/full, which the kernel answers with ENOSPC."""

import errno
import os
from pathlib import Path

import pytest

from xval.core import files
from xval.core.errors import StorageError, XvalError


@pytest.fixture
def full_disk(monkeypatch):
    """Every atomic write lands on /dev/full (ENOSPC on flush)."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux)")
    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        os.close(fd)
        return real_fdopen(os.open("/dev/full", os.O_WRONLY), mode, *args, **kwargs)

    monkeypatch.setattr(files.os, "fdopen", fdopen)


def test_a_full_disk_is_one_clear_error_and_leaves_nothing(full_disk, tmp_path):
    target = tmp_path / "results" / "fold_0.keras"
    target.parent.mkdir()
    with pytest.raises(StorageError) as caught:
        files.atomic_write_bytes(target, b"x" * 3 * 2**20)
    message = str(caught.value)
    assert f"cannot write {target} (No space left on device: 3.0 MiB needed, " in message
    assert f"MiB free in {target.parent}); free space there" in message
    assert "rerun the same command to resume" in message
    assert isinstance(caught.value, XvalError) and isinstance(caught.value, OSError)
    assert list(target.parent.iterdir()) == []  # no temporary file left behind


def test_a_file_where_a_folder_belongs_is_one_clear_error(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(StorageError, match="a file stands where a folder belongs"):
        files.atomic_write_text(tmp_path / "results" / "summary.json", "{}")


def test_other_failures_keep_their_own_error(tmp_path):
    error = OSError(errno.EIO, "Input/output error")
    assert files.storage_error(error, tmp_path / "x") is error
