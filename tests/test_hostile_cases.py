"""Hostile inputs to every command line (`tests/hostile_cases.py`), each in its own copy of a
small sandbox, run in this process as a user's shell runs them: a wrong input is refused in
one `error:` line (exit status other than 0, no traceback); a valid one runs and its output
checks out; and neither changes a file the command did not write (the user's documents, the
store, earlier results)."""

import fnmatch
import hashlib
import os
import shutil

import pytest

from tests.conftest import python_here
from tests.hostile_cases import CASES, Case, build_base


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "base"
    build_base(folder)
    return folder


def _digests(root):
    """`relative path -> SHA-256` of every regular file under `root` (links not followed)."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def _run(case: Case, base, tmp_path):
    """Runs `case` in a fresh copy of the sandbox: `(its result, the files it changed that
    it may not)`."""
    root = tmp_path / "w"
    shutil.copytree(base, root, symlinks=True)
    try:
        if case.prepare is not None:
            case.prepare(root)
        before = _digests(root)
        environ = dict(os.environ)
        os.environ.update({k: v.format(W=root) for k, v in case.env.items()})
        try:
            done = python_here(*case.command(root), cwd=root / "project")
        finally:
            os.environ.clear()
            os.environ.update(environ)
        after = _digests(root)
        changed = sorted(p for p, digest in before.items() if after.get(p) != digest
                         and not any(fnmatch.fnmatch(p, g) for g in case.may_change))
        problem = case.check(root, done) if case.check and done.returncode == 0 else ""
        return done, changed, problem
    finally:
        if case.cleanup is not None:
            case.cleanup(root)


@pytest.mark.parametrize("case", [c for c in CASES if c.expect == "refuse"],
                         ids=lambda c: c.name)
def test_a_wrong_input_is_refused_in_one_line(case, base, tmp_path):
    if case.name == "init-project-readonly" and not _read_only_folders_exist(tmp_path):
        pytest.skip("this file system cannot make a folder read-only for this user")
    done, changed, _ = _run(case, base, tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, done.stdout[-2000:]
    assert "Traceback" not in done.stderr, done.stderr
    assert lines and any(line.startswith(("error:", "usage:")) or ": error:" in line
                         for line in lines[-2:]), done.stderr
    assert changed == [], changed


@pytest.mark.parametrize("case", [c for c in CASES if c.expect == "run"],
                         ids=lambda c: c.name)
def test_a_valid_input_runs(case, base, tmp_path):
    done, changed, problem = _run(case, base, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert problem == "" and changed == [], (problem, changed)


def _read_only_folders_exist(tmp_path):
    """Whether `chattr +i` (root) or a folder's mode (another user) keeps this process
    from writing in a folder here."""
    from tests.hostile_cases import _immutable

    folder = tmp_path / "probe-ro"
    folder.mkdir()
    _immutable(folder)
    try:
        (folder / "x").write_text("x")
    except OSError:
        return True
    finally:
        _immutable(folder, False)
    return False
