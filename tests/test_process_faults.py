"""Process faults, through the public entry points (issue 54, item 6): a warm process-executor
worker killed mid-job, two runners on one instance, and a disk that fills during a run and
during an export. Each time nothing finished is lost, every message names what happened,
and the same command resumes. (Ctrl-C of the runner, inline and process, and a SIGKILLed
driver: `tests/test_interrupts.py`; a single write to a full disk: `test_storage_errors.py`.)

The full disk is real: a 16 MiB tmpfs holds the results where this process may mount one
(root); elsewhere every write of the results store goes to /dev/full, which the kernel
answers with ENOSPC as a full disk does."""

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_here, run_script_here, write_script
from xval import Experiment, Output
from xval.core import files

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "a", "comment_2": "b",
        "hidden_units": 8, "num_layers": 1, "batch_size": 8}
SCRIPT = """
from xval import Experiment
experiment = Experiment(description="faults", dataset="tiny", number=1, num_folds=3,
                        config={config!r})
experiment[1] = {base!r}
if __name__ == "__main__":
    experiment.main()
"""


def _experiment(config_path, epochs):
    exp = Experiment(description="faults", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp[1] = {**BASE, "epochs": epochs, "patience": epochs}
    return exp


def _folds(inst):
    return sorted(int(p.stem.split("_")[1]) for p in inst.glob("fold_*.json")
                  if json.loads(p.read_text())["status"] == "ok")


def test_a_warm_worker_killed_mid_job_fails_that_fold_alone_and_the_rerun_resumes(
        config_path, config, store, capsys):
    exp = _experiment(config_path, epochs=20)
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    killed, lines = [], []

    def out(line, *args, **kwargs):
        lines.append(str(line))
        # Fold 1 is training in the warm worker that trained fold 0 (its pid is recorded).
        if not killed and str(line).startswith("instance 1 fold 1 epoch 1/"):
            killed.append(json.loads((inst / "fold_0.json").read_text())["pid"])
            os.kill(killed[0], signal.SIGKILL)

    outcome = exp.run(config=config, executor="process", output=Output(verbose=True, out=out))
    assert killed and killed[0] != os.getpid()
    assert outcome.exit_code == 1 and outcome.failed == [1]
    fold1 = json.loads((inst / "fold_1.json").read_text())
    assert fold1["status"] == "failed" and "exited with code -9" in fold1["message"]
    assert "instance(s) failed: [1]" in capsys.readouterr().err  # said on stderr (-q too)
    kept = (inst / "fold_0.json").read_text()
    again = exp.run(config=config, output=Output(out=lambda *a, **k: None))  # resumes (here, inline)
    assert again.exit_code == 0 and _folds(inst) == [0, 1, 2]
    assert (inst / "fold_0.json").read_text() == kept  # nothing finished was lost


def test_two_runners_on_one_instance_one_trains_the_other_says_so(tmp_path, config_path,
                                                                  config, store):
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path),
                                                  base={**BASE, "epochs": 30, "patience": 30}))
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    first = subprocess.Popen([sys.executable, "-u", str(script), "-v"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             cwd=tmp_path)
    try:
        for line in first.stdout:  # the first runner holds the instance once it trains
            if line.startswith("instance 1 fold 0 epoch 1/"):
                break
        second = run_script_here(script)
    finally:
        rest = first.communicate(timeout=600)[0]
    assert second.returncode == 3, second.stdout + second.stderr
    assert "instance 1: running in another runner; skipped here." in second.stdout
    assert "instance(s) [1] are running in another runner" in second.stderr
    assert first.returncode == 0, rest
    assert _folds(inst) == [0, 1, 2]
    third = run_script_here(script)
    assert third.returncode == 0 and "all 3 folds already done" in third.stdout


class SmallDisk:
    """The results' disk, filled and freed on demand (see the module docstring)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.monkeypatch = root, monkeypatch
        root.mkdir()
        self.mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                                       str(root)], capture_output=True).returncode == 0
        self.full = False

    def fill(self) -> None:
        self.full = True
        if not self.mounted:  # every atomic write of the results goes to /dev/full
            real = os.fdopen

            def fdopen(fd, mode="r", *args, **kwargs):
                if not self.full:
                    return real(fd, mode, *args, **kwargs)
                os.close(fd)
                return real(os.open("/dev/full", os.O_WRONLY), mode, *args, **kwargs)

            self.monkeypatch.setattr(files.os, "fdopen", fdopen)
            return
        with open(self.root / "filler", "wb") as f:
            try:
                while True:
                    f.write(bytes(1 << 20))
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC

    def free(self) -> None:
        self.full = False
        (self.root / "filler").unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full or a tmpfs (Linux)")
    disk = SmallDisk(tmp_path / "disk", monkeypatch)
    yield disk
    disk.close()


def test_a_disk_that_fills_during_a_run_stops_it_cleanly_and_the_rerun_resumes(
        small_disk, tmp_path, config_path, config, store):
    from tests.conftest import write_config
    from xval.config.loader import load_config

    results = small_disk.root / "results"
    on_disk = load_config(write_config(tmp_path / "project", paths={
        "data_dir": str(config.data_dir), "results_dir": str(results)}))
    exp = _experiment(on_disk.path, epochs=2)

    class FillAfterFold0:
        def on_fold(self, result, inst_dir):
            if result.fold == 0:
                small_disk.fill()

    lines = []
    with pytest.raises(OSError) as caught:
        exp.run(config=on_disk, output=Output(out=lines.append, listeners=[FillAfterFold0()]))
    message = str(caught.value)
    inst = results / "tiny" / "experiment_1" / "instance_1"
    assert f"cannot write {inst}" in message and "No space left on device" in message
    assert "free space there" in message and "rerun the same command to resume" in message
    assert _folds(inst) == [0]  # fold 0 kept, nothing half-written beside it
    assert not [p for p in inst.iterdir() if p.name.startswith(".")]
    small_disk.free()
    again = exp.run(config=on_disk, output=Output(out=lambda *a, **k: None))
    assert again.exit_code == 0 and _folds(inst) == [0, 1, 2]


def test_a_disk_that_is_full_during_an_export_leaves_nothing_and_names_it(
        small_disk, tmp_path, config_path, config):
    from preprocessing import build_store, regex_source
    from preprocessing.demo import CLASSES, PATTERN, _demo_params, write_demo_audio
    from xval.cli.main import main

    if not small_disk.mounted:
        pytest.skip("needs a tmpfs (root): an export writes through Keras, which the /dev/full "
                    "stand-in does not reach")
    write_demo_audio(tmp_path / "audio")  # a store an export can describe (its features)
    rows, _ = regex_source(tmp_path / "audio", PATTERN)
    rows = rows[rows["item"].isin(["spk0", "spk1", "spk2"])
                & rows["path"].str.contains("_0.wav")].reset_index(drop=True)
    build_store(rows, config.data_dir / "tiny", params=_demo_params(), workers=1,
                classes=list(CLASSES), progress=False)
    assert _experiment(config_path, epochs=1).run(config=config,
                                                 output=Output(out=lambda *a, **k: None)).exit_code == 0
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    out = small_disk.root / "exported"
    small_disk.fill()
    proc = run_here(main, "export", inst, "--format", "keras", "--out", out)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: cannot write ") and "No space left on device" in line
    assert not out.exists() and not [p for p in small_disk.root.iterdir()
                                     if p.name != "filler"]
    small_disk.free()
    proc = run_here(main, "export", inst, "--format", "keras", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.keras").is_file()
