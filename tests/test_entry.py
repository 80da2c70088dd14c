"""No traceback reaches a user (xval.core.entry, issue 37 point 5): every command line runs
under one error handler; each input named in the issue is run through the command's own
`main` (in this process: what it prints and its exit code, an escaping exception included;
in a process of its own where only a process shows it: the environment it starts with, its
stdout, a closed pipe), and must end in one `error:` line (exit 2) or a correct run, never a
traceback. `--debug` shows it."""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import (
    ROOT,
    python_here,
    run_script_here,
    tiny_store,
    write_config,
    write_script,
)

SR = 8000


def _run(cwd, *args, env=None, stdout=subprocess.PIPE):
    full = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch", **(env or {})}
    for name, value in list(full.items()):
        if value is None:
            del full[name]
    return subprocess.run([sys.executable, *map(str, args)], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, cwd=cwd, env=full, timeout=600)


def _here(cwd, *args):
    """`python ARGS` run in this process (`python_here`): what the command prints and its
    exit code, a traceback included, as the process would show them. The tests of what only
    a process shows (its environment, its stdout, a closed pipe) use `_run`."""
    return python_here(*args, cwd=cwd)


def _one_error(proc, *needles, code=2):
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == code, (proc.stdout or "")[-1000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _audio(folder, classes=("a", "b"), speakers=3):
    for c, hz in zip(classes, (300.0, 900.0, 1500.0)):
        for s in range(speakers):
            path = folder / c / f"spk{s}_{c}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(SR // 2) / SR
            sf.write(path, (0.4 * np.sin(2 * np.pi * hz * (1 + 0.05 * s) * t))
                     .astype(np.float32), SR)
    return folder


def _read_only(folder):
    """Makes `folder` read-only even for root (`chattr +i`), or skips; returns the undo."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("root ignores file modes and chattr +i is not available here")
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=False)


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    """A finished one-epoch experiment (2 folds) on a tiny store, and its script."""
    folder = tmp_path_factory.mktemp("done")
    config = write_config(folder)
    tiny_store(folder / "data")
    script = write_script(folder, f"""
        from xval import Experiment
        experiment = Experiment(description="entry", dataset="tiny", number=1, num_folds=2,
                                config={str(config)!r})
        experiment[1] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                         "comment_2": "", "epochs": 1, "hidden_units": 4}}
        if __name__ == "__main__":
            experiment.main()
        """)
    proc = run_script_here(script, "-q")  # trained here: the tests run the commands on it
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder, script, folder / "results" / "tiny" / "experiment_1"


def _copy(folder, script, dest):
    """A copy of the finished experiment whose config.ini and script name the copy."""
    shutil.copytree(folder, dest)
    for path in (dest / "config.ini", dest / script.name):
        path.write_text(path.read_text().replace(str(folder), str(dest)))
    return dest / script.name


# -- the handler itself ---------------------------------------------------------------------

@pytest.mark.parametrize(("error", "needle", "code"), [
    (OSError(errno.ENOSPC, "No space left on device", "/r/x.json"), "free space", 2),
    (OSError(errno.EROFS, "Read-only file system", "/r"), "read-only", 2),
    (OSError(errno.ELOOP, "Too many levels of symbolic links", "/m.keras"), "loop", 2),
    (OverflowError("int too large to convert to float"), "too large", 2),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply", 2),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "UTF-8", 2),
    (KeyError("boom"), "a bug; rerun with --debug", 1),
])
def test_run_entry_turns_any_failure_into_one_line(capsys, error, needle, code):
    from xval.core.entry import describe_error, run_entry

    def body():
        raise error

    assert run_entry(body, debug=False) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1 and needle in err, err
    assert needle in describe_error(error)


def test_run_entry_debug_prints_the_traceback(capsys):
    from xval.core.entry import run_entry

    def body():
        raise OSError(errno.EACCES, "Permission denied", "/x")

    assert run_entry(body, debug=True) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "error: '/x': Permission" in err


# -- every refusal said the same way -----------------------------------------------------------

def test_every_refusal_is_one_error_line(experiment_dir, tmp_path):
    """Every command line says a refusal as one `error: ...` line on stderr (never `Error:`
    nor a second line) and exits 2, whatever refuses: the run's planner, the ensemble,
    export, the store, init, report, config, augmentation, the flags. Walked in this
    process on a copy of a finished experiment; nothing refused is written."""
    folder, script, original = experiment_dir
    copy = tmp_path / "copy"
    script = _copy(folder, script, copy)
    results = copy / "results" / "tiny" / "experiment_1"
    (results / "instance_3").mkdir()
    (results / "instance_3" / "notes.txt").write_text("mine\n")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine\n")
    config = ("--config", copy / "config.ini")
    refusals = {
        (script.name, "--set", "hidden_units=8"): "Existing results were made with other "
                                                  "parameters",
        (script.name, "--set", "hiden_units=8"): "hiden_units",
        ("-m", "xval", "ensemble", results, "1", f"{original}:1", "--as", "3", *config):
            "instance_3 holds other results",
        ("-m", "xval", "ensemble", results, "1", f"{original}:1", "--as", "1", *config):
            "--as 1 is one of the members",
        ("-m", "xval", "export", results / "instance_1", "--format", "keras", "--out", taken):
            "was not written by python -m xval export",
        ("-m", "preprocessing", "check", copy / "data" / "nope"): "is not a feature store",
        ("-m", "xval", "init", tmp_path / "nope"): "is not a folder",
        ("-m", "xval", "report", copy / "data", *config): "is not an experiment folder",
        ("-m", "xval", "report", results, "-q", "-v", *config): "not both",
        ("-m", "xval", "config", script.name, "9"): "instance 9: the experiment declares "
                                                    "instances [1]; give one of them",
        ("-m", "xval", "config", "nope.py"): "no such experiment script; give the path",
        ("-m", "augmentation", tmp_path / "nope", tmp_path / "out", "2"):
            "does not exist or is not a folder; give the folder that holds the audio files",
    }
    for args, needle in refusals.items():
        proc = python_here(*args, cwd=copy)
        said = f"{args}: {proc.stdout[-500:]}{proc.stderr}"
        assert proc.returncode == 2, said
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), said
        assert needle in proc.stderr, said
        assert "Error:" not in proc.stdout + proc.stderr, said
    assert (results / "instance_3" / "notes.txt").read_text() == "mine\n"
    assert (taken / "notes.txt").read_text() == "mine\n" and not (tmp_path / "out").exists()
    assert sorted(p.name for p in results.glob("instance_*")) == ["instance_1", "instance_3"]


# -- the inputs of the issue ----------------------------------------------------------------

def test_init_project_naming_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    proc = _here(tmp_path, "-m", "xval", "init", _audio(tmp_path / "wavs"), "--project",
                 tmp_path / "notes.txt")
    _one_error(proc, "--project", "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_init_manifest_naming_a_missing_file(tmp_path):
    proc = _here(tmp_path, "-m", "xval", "init", _audio(tmp_path / "wavs"), "--manifest",
                 tmp_path / "nope.csv", "--project", tmp_path / "p")
    _one_error(proc, "nope.csv")
    assert not (tmp_path / "p").exists()


def test_huge_integer_for_a_float_parameter(experiment_dir):
    folder, script, _ = experiment_dir
    proc = _here(folder, script, "--dry-run", "--set", "learning_rate=1" + "0" * 400)
    _one_error(proc, "learning_rate", "too large")


def test_model_path_in_a_symlink_loop(tmp_path):
    (tmp_path / "loop.keras").symlink_to(tmp_path / "loop.keras")
    wav = _audio(tmp_path / "wavs") / "a" / "spk0_a.wav"
    proc = _here(tmp_path, "-m", "xval", "predict", tmp_path / "loop.keras", wav)
    _one_error(proc, "loop.keras")


@pytest.mark.parametrize("what", ["instance_1", ".locks"])
def test_results_entry_that_is_a_file(experiment_dir, tmp_path, what):
    folder, script, results = experiment_dir
    copy = tmp_path / "copy"
    copied_script = _copy(folder, script, copy)
    target = copy / "results" / "tiny" / "experiment_1" / what
    shutil.rmtree(target, ignore_errors=True)
    target.write_text("not a folder\n")
    proc = _here(copy, copied_script, "-q", "--overwrite")
    _one_error(proc, what, "not a folder")
    assert target.read_text() == "not a folder\n"


def test_report_of_a_read_only_experiment(experiment_dir, tmp_path):
    folder, _, results = experiment_dir
    copy = tmp_path / "experiment_1"
    shutil.copytree(results, copy)
    undo = _read_only(copy)
    try:
        proc = _here(tmp_path, "-m", "xval", "report", copy, "--config",
                     folder / "config.ini")
    finally:
        undo()
    _one_error(proc, "experiment_1")


def test_report_on_a_full_disk(experiment_dir, monkeypatch, capsys):
    """A real ENOSPC: the workbook's bytes go to /dev/full. Issue 45: `report` blamed stdout
    and printed a `ZipFile.__del__` traceback (openpyxl wrote the zip file itself); it names
    the workbook, the space needed and free, and leaves no partial file."""
    from xval.cli.main import main
    from xval.core import files

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux)")
    folder, _, results = experiment_dir
    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):  # the workbook's temporary file only
        if ".xlsx" in os.readlink(f"/proc/self/fd/{fd}"):
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return real_fdopen(fd, mode, *args, **kwargs)

    monkeypatch.setattr(files.os, "fdopen", fdopen)
    book = next(Path(results).glob("experiment_*.xlsx"))
    before = book.read_bytes()
    code = main(["report", str(results), "--config", str(folder / "config.ini")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "stdout" not in err, err
    assert err.count("error:") == 1 and err.startswith(
        f"error: the workbook: cannot write {book} (No space left on device: "), err
    assert book.read_bytes() == before  # the old workbook stays, whole
    assert sorted(p.name for p in Path(results).iterdir() if "xlsx" in p.name) == [book.name]


def test_run_into_a_read_only_results_folder(experiment_dir, tmp_path):
    """The first writes of a run (folds.json, the code snapshot) fail: one line."""
    folder, script, _ = experiment_dir
    copy = tmp_path / "copy"
    copied_script = _copy(folder, script, copy)
    results = copy / "results"
    shutil.rmtree(results)
    results.mkdir()
    undo = _read_only(results)
    try:
        proc = _here(copy, copied_script, "-q")
    finally:
        undo()
    _one_error(proc, "results")


def test_init_into_a_read_only_project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    undo = _read_only(project)
    try:
        proc = _here(tmp_path, "-m", "xval", "init", _audio(tmp_path / "wavs"), "--project",
                     project, "--item-pattern", r"(?P<item>spk\d)", "--no-progress")
    finally:
        undo()
    _one_error(proc, "project")
    assert list(project.iterdir()) == []


@pytest.mark.parametrize("command", ["predict", "script"])
def test_keras_backend_naming_an_absent_backend(experiment_dir, tmp_path, command):
    folder, script, results = experiment_dir
    if command == "predict":
        wav = _audio(tmp_path / "wavs") / "a" / "spk0_a.wav"
        proc = _run(folder, "-m", "xval", "predict", results / "instance_1", wav,
                    env={"KERAS_BACKEND": "theano"})
    else:
        proc = _run(folder, script, "--dry-run", env={"KERAS_BACKEND": "theano"})
    _one_error(proc, "'theano'", "KERAS_BACKEND")


def test_report_on_an_ascii_terminal(experiment_dir):
    folder, _, results = experiment_dir
    proc = _run(folder, "-m", "xval", "report", results, "--no-workbook",
                env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "+/-" in proc.stdout  # the report's own "±", written as close ASCII


def test_report_with_stdout_on_a_full_device(experiment_dir):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux)")
    folder, _, results = experiment_dir
    with open("/dev/full", "w") as full:
        proc = _run(folder, "-m", "xval", "report", results, "--no-workbook", stdout=full)
    _one_error(proc, "stdout", "No space left on device")
    assert "Exception ignored" not in proc.stderr


def test_config_of_an_experiment_on_a_torch_only_install(experiment_dir, tmp_path):
    """TensorFlow absent (a torch-only install): `xval config EXPERIMENT.py` imports Keras
    with the backend an experiment would use, never Keras's own default (TensorFlow)."""
    folder, script, _ = experiment_dir
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nsys.modules['tensorflow'] = None  # as if it were not installed\n")
    env = {"PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "KERAS_BACKEND": None}
    proc = _run(folder, "-m", "xval", "config", script, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "learning_rate" in proc.stdout


def test_dash_file_name_is_explained(experiment_dir, tmp_path):
    folder, _, results = experiment_dir
    wav = _audio(tmp_path / "wavs") / "a" / "spk0_a.wav"
    shutil.copy(wav, folder / "-take1.wav")
    proc = _here(folder, "-m", "xval", "predict", results / "instance_1", "-take1.wav")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "put `--` before the file names, or write ./-take1.wav" in proc.stderr, proc.stderr


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 128 KiB file system (tmpfs): writes past it fail with ENOSPC. Needs the right
    to mount (root in a container); skipped elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_init_on_a_full_disk_leaves_nothing(tiny_disk, tmp_path):
    """The store does not fit: one line, and init removes what it wrote. (In this process:
    `init` builds the encoder's store with Keras; its real process is test_quickstart's.)"""
    wavs = _audio(tmp_path / "wavs", speakers=4)
    proc = python_here("-m", "xval", "init", wavs, "--project", tiny_disk / "project",
                       "--item-pattern", r"(?P<item>spk\d)", "--no-progress", cwd=tmp_path)
    _one_error(proc, "No space left on device")
    assert list(tiny_disk.iterdir()) == []


def test_snapshot_on_a_full_disk(experiment_dir, tiny_disk, tmp_path):
    """The results go to a disk that holds the first small files but not the code
    snapshot: one line, exit 2."""
    folder, script, _ = experiment_dir
    copy = tmp_path / "copy"
    copied_script = _copy(folder, script, copy)
    config = copy / "config.ini"
    config.write_text(config.read_text().replace(str(copy / "results"),
                                                 str(tiny_disk / "results")))
    proc = _here(copy, copied_script, "-q")
    line = _one_error(proc, "No space left on device")
    assert "/.code." in line  # the snapshot's copy of the code


def test_export_to_a_full_disk_names_out_not_stdout(tiny_disk, capsys):
    """Issue 59: `export --out FULL_DISK` said "cannot write the output (stdout)": the
    model's zip file is written by Keras through its own file object, whose ENOSPC names no
    file. It names --out now, and leaves nothing there."""
    import keras

    from xval.core.entry import run_entry
    from xval.inference.export import write_export

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(8)(keras.layers.Dense(512)(inputs)))
    (tiny_disk / "filler").write_bytes(b"x" * (shutil.disk_usage(tiny_disk).free - 8192))
    out = tiny_disk / "exported"
    code = run_entry(lambda: bool(write_export(model, "keras", out, lambda check: "card",
                                               overwrite=False)) and 0, debug=False)
    err = capsys.readouterr().err
    assert code == 2 and "stdout" not in err and err.count("error:") == 1, err
    assert err.startswith(f"error: cannot write {out} (No space left on device"), err
    assert "give --out on another disk" in err
    assert [p.name for p in tiny_disk.iterdir()] == ["filler"]


def test_a_store_on_a_full_disk_names_the_store(tiny_disk):
    """Issue 59: `np.save` and `to_csv` write through their own file objects (no file
    name in their ENOSPC); `write_store` names the store and leaves nothing."""
    from xval.core.errors import StorageError

    with pytest.raises(StorageError, match=rf"cannot write {tiny_disk / 'big'} \(No space "
                                           r"left on device.*MiB free in"):
        tiny_store(tiny_disk, "big", n_items=20, shape=(32, 32))
    assert list(tiny_disk.iterdir()) == []


def test_a_full_disk_that_names_no_file_is_not_blamed_on_stdout(capsys):
    """Issue 59: an ENOSPC without a file name was said to be stdout's even when stdout was
    fine; only a stdout that cannot be written is named as such."""
    from xval.core.entry import run_entry

    def body():
        raise OSError(errno.ENOSPC, "No space left on device")

    assert run_entry(body, debug=False) == 2
    err = capsys.readouterr().err
    assert "stdout" not in err, err
    assert err.startswith("error: writing the command's output files: No space left on "
                          "device; free space there"), err


def test_compare_never_replaces_a_file_it_did_not_write(experiment_dir, tmp_path):
    """Found by the probe after merging `compare`: --workbook naming the user's own file
    replaced it. Only a comparison workbook compare wrote is replaced."""
    folder, script, results = experiment_dir
    _copy(folder, script, tmp_path / "copy")  # a second experiment: compare needs two
    other = tmp_path / "copy" / "results" / "tiny" / "experiment_1"
    mine = tmp_path / "thesis.xlsx"
    mine.write_bytes(b"the user's own file")
    proc = _here(folder, "-m", "xval", "compare", results, other, "--workbook", mine)
    _one_error(proc, "thesis.xlsx", "was not written by `xval compare`")
    assert mine.read_bytes() == b"the user's own file"
    ours = tmp_path / "compare.xlsx"
    for _ in range(2):  # its own workbook is rewritten
        proc = _here(folder, "-m", "xval", "compare", results, other, "--workbook", ours)
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_closed_pipe_is_no_success_and_leaves_no_project(tmp_path):
    """`xval init ... | head -0`: the reader closes stdout before init is done; init stops
    (what it wrote is removed) and says so on stderr with exit 141, never 0 (issue 74: it
    exited 0 without a project or a word, so a pipeline went on as if it had succeeded)."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        proc = _run(tmp_path, "-m", "xval", "init", _audio(tmp_path / "wavs"), "--project",
                    tmp_path / "p", "--encoders", "none", "--no-progress", stdout=write)
    finally:
        os.close(write)
    _one_error(proc, "stdout was closed by its reader", "before the command finished",
               code=141)
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


def test_a_progress_line_to_a_closed_pipe_ends_the_run_as_an_interrupt(monkeypatch, capsys):
    """`python exp.py --overwrite | head -7`: the reader went away while an epoch line was
    written inside a fold. That write raises `StdoutClosed` (an interrupt: the run puts back
    what `--overwrite` set aside and makes the workbook again), not a failure of the fold
    (it was recorded failed, the workbook left stale); the command ends with the closed
    pipe's line and 141."""
    from xval.core import entry, interrupts
    from xval.running.scheduler import Scheduler

    monkeypatch.setattr(interrupts, "quiet_stdout", lambda: None)  # this process's stdout
    monkeypatch.setattr(entry, "quiet_stdout", lambda: None)

    def closed(text):
        raise BrokenPipeError(32, "Broken pipe")

    scheduler = Scheduler.__new__(Scheduler)
    scheduler._bar, scheduler.out = None, closed
    with pytest.raises(interrupts.StdoutClosed) as stop:
        scheduler._say("instance 1 fold 0 epoch 3/20: loss 0.5")
    assert isinstance(stop.value, KeyboardInterrupt)

    def body():
        scheduler._say("instance 1 fold 0 epoch 4/20: loss 0.4")
        return 0

    assert entry.run_entry(body, debug=False) == 141
    assert capsys.readouterr().err.startswith("error: stdout was closed by its reader")
