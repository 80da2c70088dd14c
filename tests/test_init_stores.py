"""A store built in a forked child beside another (`xval.cli.init_stores`).

`init` forks only from a process that has loaded no framework and runs no other thread
(`can_build_beside`). A test worker has loaded Keras by the time it runs these tests, so
each case runs in a fresh Python (a real subprocess), where the fork is safe, and says what
it found; the worker checks it."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2,
                                reason="init builds a store beside another only on 2 cores or more")

PRELUDE = '''
import sys
from pathlib import Path
from tests.conftest import tiny_store
from xval.cli.init_stores import BuildBeside, can_build_beside
from xval.core.errors import DatasetError, XvalError
tmp = Path(sys.argv[1])
assert can_build_beside(), "a fresh Python on two cores must be safe to fork"
'''


def run_child(body: str, tmp_path) -> subprocess.CompletedProcess:
    """Runs `PRELUDE + body` in a fresh Python; its exit status and output."""
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_build_beside_returns_the_store_the_child_wrote(tmp_path):
    proc = run_child('''
        def build():
            store = tiny_store(tmp, name="beside")
            return store, {"rows": len(store), "shape": tuple(store.features.shape)}

        store, summary = BuildBeside(build).result(tmp / "beside")
        assert summary["rows"] == len(store) > 0, summary
        assert summary["shape"] == list(store.features.shape), summary  # back through JSON
        print("rows", summary["rows"])
    ''', tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("rows ") and (tmp_path / "beside" / "meta.csv").is_file()


def test_build_beside_raises_the_childs_error_as_its_class(tmp_path):
    proc = run_child('''
        def build():
            raise DatasetError(f"{tmp}: no usable audio")

        try:
            BuildBeside(build).result(tmp / "none")
        except DatasetError as e:
            print("raised", type(e).__name__, e)
    ''', tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("raised DatasetError") and "no usable audio" in proc.stdout


def test_build_beside_names_an_unexpected_error(tmp_path):
    proc = run_child('''
        def build():
            raise KeyError("segment_seconds")

        try:
            BuildBeside(build).result(tmp / "none")
        except XvalError as e:
            print("raised", type(e).__name__, e)
    ''', tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "building the store failed: KeyError" in proc.stdout, proc.stdout
