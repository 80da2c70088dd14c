"""The compile cache as a part the user can trust (`xval.training.compilation`): checked before
anything trains, degraded in one line where it cannot be used, and JAX's own warnings about it
handled, never shown: a damaged entry is replaced, a disk that fills up mid-run is left."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_config, write_script
from tests.test_entry import _read_only, tiny_disk  # noqa: F401  (a fixture)
from xval.core.errors import ConfigurationError
from xval.core.records import FoldResult, Status
from xval.training.compilation import MIN_FREE_MB, cache_problem


def test_a_cache_path_holding_a_file_is_refused(tmp_path):
    """A file where the folder, or a folder above it, or JAX's own sub-folder belongs: the
    error names the key and the fix; nothing is made."""
    file = tmp_path / "cache"
    file.write_text("")
    for folder in (file, file / "below"):
        with pytest.raises(ConfigurationError, match=r"\[backend\] compile_cache = .*is a file, "
                                                     r"not a folder; give a folder"):
            cache_problem(str(folder))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "jax").write_text("")
    with pytest.raises(ConfigurationError, match="other/jax is a file"):
        cache_problem(str(tmp_path / "other"))
    assert cache_problem(str(tmp_path / "new" / "cache")) is None
    assert not (tmp_path / "new").exists()  # checked, not made


def test_a_broken_or_looping_link_at_the_cache_path_is_refused_as_such(tmp_path):
    """A link to nothing, or a loop of links, is named as what it is, not as a file; a link
    to a folder is a folder."""
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    for link, folder in (("dangling", "dangling"), ("loop1", "loop1"),
                         ("dangling", "dangling/below")):
        with pytest.raises(ConfigurationError) as raised:
            cache_problem(str(tmp_path / folder))
        assert str(raised.value) == (
            f"[backend] compile_cache = {str(tmp_path / folder)!r}: {tmp_path / link} is a "
            "broken or looping symbolic link; remove it (or point it at a folder), or set "
            "the key to another folder, or none to keep no compiled programs.")
    (tmp_path / "folder").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "folder")
    assert cache_problem(str(tmp_path / "linked")) is None


def test_an_unwritable_cache_folder_is_said_in_one_reason(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    undo = _read_only(folder)
    try:
        why = cache_problem(str(folder))
    finally:
        undo()
    assert why is not None and why.startswith(f"{folder} cannot be written (")
    assert "set [backend] compile_cache to a folder you can write" in why


def test_a_cache_on_a_nearly_full_disk_is_said_in_one_reason(tiny_disk):  # noqa: F811
    why = cache_problem(str(tiny_disk / "cache"))
    assert why is not None and f"at least {MIN_FREE_MB} MiB free" in why
    assert str(tiny_disk) in why and "free space there" in why


def test_a_run_checks_the_cache_on_jax_only(tmp_path):
    from xval.config.loader import load_config
    from xval.running.environment import checked_cache

    folder = tmp_path / "cache"
    folder.mkdir()
    config = load_config(write_config(tmp_path, backend={"compile_cache": str(folder)}))
    said = []
    assert checked_cache(config, "jax", said.append) is config and said == []
    undo = _read_only(folder)
    try:
        assert checked_cache(config, "torch", said.append) is config  # nothing compiled
        degraded = checked_cache(config, "jax", said.append)
    finally:
        undo()
    assert degraded.backend.compile_cache is None
    assert len(said) == 1 and said[0].startswith("compiling without a persistent cache: ")


def test_fold_result_transport_carries_the_cache_notes():
    """A worker's notes reach the driver; the fold file never holds them."""
    notes = {"damaged": "compile cache /c: 1 damaged program(s) removed"}
    result = FoldResult(instance=1, fold=0, status=Status.OK, cache_notes=notes)
    assert "cache_notes" not in result.to_dict()
    back = FoldResult.from_transport(json.loads(json.dumps(result.to_transport())))
    assert back.cache_notes == notes


def _jax_env():
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    return env


DRY_RUN = """
import sys
from tests.conftest import tiny_store, write_config
from xval import Experiment

folder = sys.argv[1]
tiny_store(folder + "/data")
for name in ("file", "unwritable", "fine"):
    config = write_config(f"{folder}/{name}", paths={"data_dir": folder + "/data"},
                          backend={"compile_cache": f"{folder}/{name}_cache"})
    experiment = Experiment(description="cache", dataset="tiny", number=1, num_folds=2,
                            config=str(config))
    experiment[1] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                     "comment_2": ""}
    try:
        experiment.main(["--dry-run"])
    except SystemExit as code:
        print(f"{name} exit {code}", flush=True)
        print(f"{name} exit {code}", file=sys.stderr, flush=True)
"""


def test_the_dry_run_checks_the_cache_on_the_compiled_default(tmp_path):
    """On JAX (a fresh process), the dry run refuses a file and says in one line that an
    unwritable folder leaves the run without a persistent cache."""
    (tmp_path / "file_cache").write_text("")
    (tmp_path / "unwritable_cache").mkdir()
    script = write_script(tmp_path, DRY_RUN, name="dry.py")
    undo = _read_only(tmp_path / "unwritable_cache")
    try:
        done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                              text=True, env=_jax_env(), cwd=tmp_path, timeout=300)
    finally:
        undo()
    assert done.returncode == 0, done.stderr[-3000:]
    err, out = done.stderr, done.stdout
    assert "Traceback" not in err
    refused = err[:err.index("file exit 2")].strip().splitlines()
    assert refused[-1].startswith("error: [backend] compile_cache = ") and "is a file" in \
        refused[-1]
    degraded = out[out.index("file exit 2"):out.index("unwritable exit 0")]
    assert degraded.count("compiling without a persistent cache:") == 1
    assert "unwritable_cache cannot be written" in degraded
    assert "compiling without" not in out[out.index("unwritable exit 0"):]
    assert "fine exit 0" in out


def test_a_folder_where_a_cache_entry_belongs_is_removed_as_damaged(tmp_path):
    """JAX cannot read an entry that is a folder, nor replace it: it is removed like a
    damaged entry and said once (the next run is quiet), and the cache stays in use."""
    from xval.training.compilation import _LEFT, _CacheWarnings, cache_notes

    folder = tmp_path / "cache"
    entry = folder / "jax" / "jit_train_step-0123abcd-cache"
    (entry / "inside").mkdir(parents=True)
    (entry / "inside" / "file").write_text("x")
    (folder / "jax" / "jit_train_step-0123abcd-atime").mkdir()
    kept = folder / "jax" / "jit_other-4567-cache"
    kept.write_bytes(b"not read")
    cache_notes()  # what an earlier test left
    _CacheWarnings.handle(str(folder), "reading", "jit_train_step",
                          f"IsADirectoryError: [Errno 21] Is a directory: '{entry}'")
    assert sorted(p.name for p in (folder / "jax").iterdir()) == [kept.name]
    assert cache_notes() == {"damaged": f"compile cache {folder}: 1 damaged program(s) "
                                        "removed; compiled again and kept anew"}
    assert str(folder) not in _LEFT


CACHE = """
import json, os, shutil, subprocess, sys
from pathlib import Path

import jax

from tests.conftest import resolve, tiny_store, training_defaults
from xval.training.compilation import _whole, cache_notes, use_cache
from xval.training.fold import run_fold

folder = Path(sys.argv[1])
store = tiny_store(folder / "data")
cache = folder / "cache"
defaults = training_defaults()


def fold(i, where=cache, **params):
    jax.clear_caches()  # every program is looked up in the persistent cache, as in a new run
    spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "", "comment_2": "",
            "hidden_units": 8, "epochs": 1, "patience": 1, "batch_size": 16, **params}
    result = run_fold({"instance": 1, "fold": i, "task_type": "classification",
                       "generator": False, "store": str(store.path),
                       "params": resolve(1, spec, training_defaults=defaults),
                       "items": {"train": ["item0", "item1", "item2", "item3"],
                                 "val": ["item4"], "test": ["item5"]},
                       "compile_cache": str(where)})
    return {"programs": result.compilation["programs"], "cached": result.compilation["cached"],
            "notes": result.cache_notes or {}}


found = {"filled": fold(0)}
entries = sorted((cache / "jax").glob("*-cache"))
train = [p for p in entries if p.name.startswith("jit_train_step")]
others = [p for p in entries if not p.name.startswith("jit_train_step")]
train[0].write_bytes(os.urandom(4096))  # random bytes
data = others[0].read_bytes()
others[0].write_bytes(data[:len(data) // 2])  # cut short
data = bytearray(others[1].read_bytes())
data[len(data) // 3] ^= 0xFF  # one byte changed
others[1].write_bytes(bytes(data))
found["repaired"] = fold(1)
found["again"] = fold(2)
(folder / "a_file").write_text("")
use_cache(str(folder / "a_file"))  # a worker on a node whose path holds a file
found["worker"] = cache_notes()
full = Path(sys.argv[2]) if len(sys.argv) > 2 else None
if full is not None:  # a disk that fills up once the job has chosen it
    use_cache(str(full))  # what the job does first: the folder passes the check
    (full / "filler").write_bytes(b"0" * (shutil.disk_usage(full).free - 16384))
    found["full"] = fold(0, where=full, hidden_units=12)
    found["kept"] = [_whole(p.read_bytes()) for p in (full / "jax").glob("*-cache")]
print(json.dumps(found))
"""


@pytest.mark.slow
def test_jax_cache_warnings_are_handled_damage_replaced_and_a_full_disk_left(tmp_path):
    """Random, cut short and changed entries: one note, the programs compiled again and kept
    anew (the next fold loads them all); a disk that fills up mid-fold: one note, the cache
    left, no entry left cut short; a folder a worker cannot use, said. No JAX warning
    reaches stderr. About 17 s of CPU (JAX's start and four folds' compilation in a fresh
    process; 28-35 s of wall time on the shared 2-core machine)."""
    full = tmp_path / "full"
    full.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={MIN_FREE_MB + 1}m", "tmpfs", str(full)],
        capture_output=True).returncode == 0
    script = write_script(tmp_path, CACHE, name="cache.py")
    try:
        done = subprocess.run([sys.executable, str(script), str(tmp_path),
                               *([str(full)] if mounted else [])], capture_output=True,
                              text=True, env=_jax_env(), cwd=tmp_path, timeout=600)
    finally:
        if mounted:
            subprocess.run(["umount", str(full)], check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "persistent compilation cache" not in done.stderr, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["filled"]["notes"] == {} and found["filled"]["programs"] > 0
    repaired = found["repaired"]
    assert list(repaired["notes"]) == ["damaged"], repaired
    assert repaired["notes"]["damaged"] == (f"compile cache {tmp_path / 'cache'}: 3 damaged "
                                            "program(s) removed; compiled again and kept anew")
    assert repaired["programs"] == 3  # the damaged ones, compiled again
    assert found["again"] == {"programs": 0, "cached": found["again"]["cached"], "notes": {}}
    assert found["worker"]["off"].startswith("compiling without a persistent cache: [backend] "
                                             "compile_cache = ")  # said, not raised
    if not mounted:
        pytest.skip("the full disk needs a small tmpfs (root in a container)")
    assert found["full"]["notes"] == {"off": (
        f"compiling without a persistent cache: {full / 'jax'} cannot be written (No space "
        "left on device); set [backend] compile_cache to a folder you can write (none: keep "
        "no compiled programs)")}
    assert all(found["kept"])  # what was written before the disk filled, whole
