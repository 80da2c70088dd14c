"""File helpers (xval.fileio): atomic writes, JSON, locks, umask-honouring modes; the lazy
`xval` package."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from xval.core import files as fileio


@pytest.fixture
def umask():
    """Sets a umask for the test and restores the previous one after."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask):
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755),
                                                      (0o027, 0o640, 0o750)])
def test_files_and_folders_honour_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    fileio.atomic_write_text(tmp_path / "a" / "t.txt", "x")
    fileio.atomic_write_json(tmp_path / "j.json", {"a": 1})
    fileio.atomic_write_bytes(tmp_path / "b.bin", b"\0")
    folder = fileio.make_temp_dir(tmp_path, prefix=".tmp.")
    fd, temp = fileio.make_temp_file(tmp_path, prefix=".raw.")
    os.close(fd)
    with fileio.lock(tmp_path / "thing"):
        pass
    for path in (tmp_path / "a" / "t.txt", tmp_path / "j.json", tmp_path / "b.bin", temp,
                 tmp_path / ".locks" / "thing.lock"):
        assert mode(path) == file_mode, path
    assert mode(folder) == dir_mode
    assert mode(tmp_path / "a") == dir_mode
    assert fileio.current_umask() == mask


def test_atomic_write_json_non_finite_as_null_and_numpy_scalars(tmp_path):
    fileio.atomic_write_json(tmp_path / "x.json", {
        "nan": float("nan"), "inf": np.float32("inf"), "n": np.int64(3),
        "f": np.float64(0.5), "b": np.bool_(True), "nested": [np.float32(1.5), -float("inf")]})
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert fileio.read_json(tmp_path / "x.json") == {
        "nan": None, "inf": None, "n": 3, "f": 0.5, "b": True, "nested": [1.5, None]}


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path):
    fileio.atomic_write_json(tmp_path / "x.json", {"a": 1})
    with pytest.raises(TypeError):
        fileio.atomic_write_json(tmp_path / "x.json", {"a": object()})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_leaf_modules_import_nothing_heavy():
    code = ("import sys; import xval.core.errors, xval.core.files, xval.core.logs; "
            "heavy = ['pandas', 'sklearn', 'numpy', 'keras', 'xval.running', "
            "'xval.config', 'xval.report']; "
            "print([m for m in heavy if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert proc.stdout.strip() == "[]"


def test_xval_package_is_lazy_and_complete():
    code = ("import sys, xval; before = 'xval.running.experiment' in sys.modules; "
            "from xval import Experiment, ExperimentResults, ItemKFold, load_config; "
            "print(before, Experiment.__module__, set(xval.__all__) <= set(dir(xval)), "
            "all(getattr(xval, n) is not None for n in xval.__all__))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert proc.stdout.split() == ["False", "xval.running.experiment", "True", "True"]
    import xval

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        xval.nope  # noqa: B018
