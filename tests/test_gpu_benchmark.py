"""The GPU benchmark (`benchmarks.gpu`) on a machine without a GPU: its two prepared calls
fit their budget, it refuses what would write over a user's files before writing anything,
and Ctrl-C or a killed driver stops the phase process and its workers (issues 74 and 76)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.gpu import CALL_BUDGET, CALLS, MARK, PHASES, check_gpu, parse, projected
from tests.conftest import ROOT, tiny_store


def _bench(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_gpu_benchmark_runs_without_a_gpu_and_writes_nothing(tmp_path):
    """Without a GPU it prints the projections and says so, writing nothing: `--call 1`
    wrote `summary.json`, which made the same command refuse the next time."""
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU driver is present: the benchmark would measure, not exit")
    for _ in range(2):
        proc = _bench("--call", "1", "--out-dir", tmp_path / "out")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("Projected seconds on an H100")
        assert proc.stdout.strip().splitlines()[-1].startswith("No GPU found")
        assert not (tmp_path / "out").exists()


def test_dry_run_refuses_a_gpu_id_that_is_not_listed(tmp_path, monkeypatch, capsys):
    """The rehearsal runs the command the device call will run: `--dry-run --gpu 5` on a
    machine listing two GPUs passed it, and failed on the device."""
    import benchmarks.gpu as gpu

    monkeypatch.setattr(gpu, "visible_gpus", lambda: ["GPU 0: A", "GPU 1: B"])
    with pytest.raises(SystemExit) as exited:
        gpu.main(["--dry-run", "--gpu", "5", "--only", "sync", "--out-dir", str(tmp_path)])
    assert exited.value.code == 2
    assert "--gpu 5: expected the index of one GPU" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_closed_stdout_ends_in_one_line(tmp_path):
    """`benchmarks.gpu --dry-run | head -1`: the reader gone, it ended in a BrokenPipeError
    traceback; now the commands' closed-pipe line and exit status 141."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--dry-run", "--only",
                               "sync", "--out-dir", str(tmp_path / "out")], stdout=write,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: stdout was closed by its reader (a pipe such as | head) before the command "
        "finished, so it stopped there; send its output to a file (> out.txt) to let it "
        "finish."]


def test_each_prepared_call_fits_its_budget():
    """Issue 76: two calls of at most 300 s (the phases within `CALL_BUDGET`, the wheels'
    install in the rest), which between them run every default phase; an unknown phase and
    `--call` with `--only` are refused."""
    assert sorted(p for phases in CALLS.values() for p in phases) == sorted(PHASES)
    for phases in CALLS.values():
        assert sum(projected(p) for p in phases) <= CALL_BUDGET <= 285
    assert all(projected(phase) > 0 for phase in (*PHASES, "b-fresh", "busy", "mixed"))
    assert parse(["--call", "2"])[1].budget == CALL_BUDGET
    proc = _bench("--only", "a,sync")
    assert proc.returncode == 2 and "--only a: not a phase" in proc.stderr
    proc = _bench("--call", "1", "--only", "sync")
    assert proc.returncode == 2 and "pass one of them" in proc.stderr


def test_project_prints_only(tmp_path):
    """Issue 74.1: `--project` (documented as printing) never writes, even over a
    `summary.json` the user keeps in `--out-dir`."""
    kept = tmp_path / "summary.json"
    kept.write_text("mine")
    proc = _bench("--project", "--out-dir", tmp_path)
    assert proc.returncode == 0 and "projected on an H100" in proc.stdout
    assert kept.read_text() == "mine" and sorted(tmp_path.iterdir()) == [kept]


@pytest.mark.parametrize("case", ["out-file", "out-kept", "data-user", "data-file",
                                  "data-marked"])
def test_folders_refused_before_anything_is_written(tmp_path, case):
    """Issue 74.1 and 12: an `--out-dir` that is a file, or that holds a figure file this
    run would write, and a `--data` folder the benchmark did not make are refused in one
    line (exit 2), nothing written; so is a marked `--data` folder where a store's name is
    a folder of the user's (it ended in a DatasetError traceback)."""
    out, data = tmp_path / "out", tmp_path / "data"
    if case == "out-file":
        out.write_text("x")
    elif case == "out-kept":
        out.mkdir()
        (out / "sync.json").write_text("mine")
    elif case == "data-user":
        data.mkdir()
        (data / "recording.wav").write_bytes(b"RIFF")
    elif case == "data-marked":
        (data / "demo").mkdir(parents=True)
        (data / MARK).touch()
        (data / "demo" / "notes.txt").write_text("mine")
    else:
        data.write_text("x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = _bench("--dry-run", "--only", "sync", "--out-dir", out, "--data", data)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert ("--out-dir" if case.startswith("out") else "--data") in message
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("argv, said", [
    (["--budget", "-5"], "--budget: '-5': expected a finite number > 0"),
    (["--budget", "nan"], "--budget: 'nan': expected a finite number > 0"),
    (["--slack", "0"], "--slack: '0': expected a finite number > 0"),
    (["--only", ","], "--only ,: names no phase"),
    (["--only", "sync,sync"], "--only sync,sync: sync named twice"),
])
def test_bad_numbers_and_phase_lists_refused(argv, said, capsys):
    """A budget or slack of 0 or below killed every phase at once, `--only ,` ran nothing:
    each is refused when parsed, naming it."""
    with pytest.raises(SystemExit):
        parse(argv)
    assert said in capsys.readouterr().err


def test_folders_that_cannot_be_made_are_refused_and_nothing_is_left(tmp_path):
    """An `--out-dir` or `--data` that cannot be made (under a file: as under /proc) ended
    in a FileNotFoundError traceback; now one line names it, and the folders this run
    made before it are gone."""
    (tmp_path / "file").write_text("x")
    proc = _bench("--dry-run", "--only", "sync", "--out-dir", tmp_path / "o" / "deep",
                  "--data", tmp_path / "file" / "data")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--data {tmp_path / 'file' / 'data'}: cannot be written" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_gpu_id_refused_unless_listed():
    """Issue 74.12: `--gpu 5` on two GPUs names the ids there are (not an IndexError)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise ValueError(message)

    gpus = ["GPU 0: A", "GPU 1: B"]
    check_gpu(Parser(), "1", gpus)
    for bad in ("5", "-1", "x"):
        with pytest.raises(ValueError, match=rf"--gpu {bad}: .* 2 GPU\(s\): ids 0 to 1"):
            check_gpu(Parser(), bad, gpus)


def _phase_pid(out):
    """The pid of the phase process writing to `out` (its command line names it)."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--phase" in cmd and str(out).encode() in cmd:
            return int(proc.name)
    return None


def _catches(pid, sig):
    """Whether process `pid` has a handler of its own for `sig` (`/proc/PID/status`,
    `SigCgt`): a phase process has once it runs its own code (`_follow_parent`)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines()
                  if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (sig - 1) & 1)


def _gone(pid, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the phase process in /proc")
@pytest.mark.parametrize("how", ["ctrl-c", "group-killed"])
def test_stopping_the_driver_stops_its_phase(tmp_path, how):
    """Issue 74.12: Ctrl-C gives one line and exit code 130, no traceback; killing the
    driver's process group (SIGKILL, which it cannot catch) stops the phase process too,
    which runs in a group of its own. The driver gets SIGINT's default handling back
    (`SIG_DFL`, as a shell gives a foreground command): a test session started in the
    background (`nohup make test &`) hands its children SIGINT ignored, and the Ctrl-C
    would then do nothing."""
    data = tmp_path / "data"
    tiny_store(data, "demo")
    (data / MARK).touch()
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.gpu", "--dry-run", "--only", "sync", "--data",
         str(data), "--out-dir", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline, pid = time.monotonic() + 120, None
        while pid is None and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
            pid = _phase_pid(out)
        assert pid is not None, driver.communicate(timeout=30)
        # The phase runs its own code (the driver is waiting on it): its handler is set.
        while not _catches(pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _catches(pid, signal.SIGTERM), "the phase process never started its work"
        if how == "ctrl-c":
            driver.send_signal(signal.SIGINT)
            _, err = driver.communicate(timeout=60)
            assert driver.returncode == 130, err
            assert "Interrupted during sync" in err and "Traceback" not in err
        else:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
        assert _gone(pid), f"the phase process {pid} outlived the driver"
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["header"]["phases"] == ["sync"]


def test_the_gpu_environment_recipe_rehearses_on_the_cpu():
    """Issue 89: `benchmarks/gpu_env.sh` (docs/installation.md's GPU recipe): the dry run
    prints the install commands at the pinned versions (CUDA JAX and CUDA torch in one
    environment, the runtime extras, the constraints) and checks this Python, passing; the
    check alone fails here, naming both frameworks without a GPU."""
    script = str(ROOT / "benchmarks" / "gpu_env.sh")
    env = {**os.environ, "PYTHON": sys.executable}
    dry = subprocess.run(["bash", script, "--dry-run", "/tmp/never-made"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert dry.returncode == 0, dry.stderr
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().split()
                if line.startswith(("jax==", "torch==")))
    assert f"/tmp/never-made/bin/pip install 'jax[cuda12]=={pins['jax']}' " \
           f"torch=={pins['torch']} -c constraints.txt" in dry.stdout
    assert "/tmp/never-made/bin/pip install -e '.[torch]' -c constraints.txt" in dry.stdout
    assert "versions: as constraints.txt pins them" in dry.stdout
    assert not os.path.exists("/tmp/never-made")  # nothing installed
    check = subprocess.run(["bash", script, "--check", sys.executable], capture_output=True,
                           text=True, timeout=300)
    assert check.returncode == 1
    assert check.stdout.splitlines()[-1] == ("error: JAX sees no GPU (install jax[cuda12]); "
                                             "torch sees no GPU (install a CUDA build)")
