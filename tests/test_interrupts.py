"""Ctrl-C, SIGTERM and kills: a run stops with one line and resumes, whatever the executor and
whatever it is doing (JAX starting, compiling, training), and an interrupt that Keras swallows
still stops training."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, OutputWatcher, run_script_here, write_config, write_script
from tests.test_executors import folds_on_disk
from xval.core.records import Job, Status
from xval.executors import JobQueue
from xval.executors.inline import InlineExecutor

SCRIPT = """
from xval import Experiment
experiment = Experiment(description="kill test", dataset="tiny", number=1, num_folds=3,
                        config={config!r})
experiment[1] = {base!r}
if __name__ == "__main__":
    experiment.main()
"""


def _start(script, executor, tmp_path, *args, env=None, stderr=subprocess.PIPE):
    # SIGINT back to its default in the child: a suite started in the background by a script
    # (`make test &`) runs with SIGINT ignored, and children inherit that.
    return subprocess.Popen([sys.executable, str(script), "--executor", executor, *args],
                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                            cwd=tmp_path, start_new_session=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_first_fold(inst, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while not list(inst.glob("fold_*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)


def _script(tmp_path, config_path, epochs):
    spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "a",
            "comment_2": "b", "hidden_units": 8, "num_layers": 1, "epochs": epochs,
            "patience": epochs, "batch_size": 8}
    return write_script(tmp_path, SCRIPT.format(config=str(config_path), base=spec))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inline", "process"])
def test_ctrl_c_prints_one_line_and_resumes(name, tmp_path, config_path, config, store):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops the run with
    one line and exit code 130, leaves no worker behind and nothing half-written, and the
    same command resumes."""
    # The signal goes as soon as fold 0 is recorded, while fold 1 is training (20 epochs,
    # several seconds: 6 were once too few on a loaded machine, and the run ended before the
    # signal), in this process or in the warm worker.
    script = _script(tmp_path, config_path, epochs=20)
    proc = _start(script, name, tmp_path)
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    _wait_for_first_fold(inst, proc)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted; rerun the same command")
    assert "Traceback" not in stderr
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert leftover.returncode == 1, leftover.stdout  # no process of the run is left
    assert not [p for p in inst.parent.rglob(".*") if p.is_file() and ".locks" not in p.parts]
    done = folds_on_disk(config, 1)
    assert 1 <= len(done) < 3
    again = run_script_here(script, "--executor", name)  # the resume, in this process
    assert again.returncode == 0, again.stdout + again.stderr
    assert folds_on_disk(config, 1) == [0, 1, 2]


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test (a suite started by a script with `&`, or an
    xdist worker, may have another), restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _ctrl_c_swallowed_by_keras():
    """Sends this process a SIGINT from inside Keras's shape inference, which catches every
    exception on the torch backend (and here, on any backend, a bare except does the same)."""
    import keras

    def call(x):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, in this frame
        return x

    try:
        keras.src.backend.compute_output_spec(call, keras.KerasTensor((2, 3)))
    except BaseException:  # noqa: BLE001 - what the code the interrupt lands in does
        pass


def test_a_ctrl_c_that_keras_swallows_stops_the_next_job(python_sigint, store):
    from xval.core.interrupts import raise_if_interrupted, sticky_interrupts

    job = Job(instance=1, fold=0, params={}, items={"train": [], "val": [], "test": []},
              task_type="classification", generator=False, store=str(store.path))
    with sticky_interrupts():
        _ctrl_c_swallowed_by_keras()
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
        with pytest.raises(KeyboardInterrupt):  # not recorded as a failed fold
            next(InlineExecutor().run(JobQueue([job])))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    raise_if_interrupted()  # cleared with the block


def test_a_swallowed_ctrl_c_stops_training_at_the_next_batch(python_sigint):
    import keras
    import numpy as np

    from xval.core.interrupts import interrupt_check, sticky_interrupts

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 3), "float32")
    with sticky_interrupts():
        _ctrl_c_swallowed_by_keras()
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, np.zeros((8, 2), "float32"), batch_size=4, epochs=50, verbose=0,
                      callbacks=[interrupt_check()])
    assert model.optimizer.iterations.numpy() == 0  # stopped before the first batch


def _job(store, config, epochs):
    from tests.conftest import resolve

    spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "", "comment_2": "",
            "epochs": epochs, "patience": epochs}
    return Job(instance=1, fold=0, params=resolve(1, spec, training_defaults=config.training),
               task_type="classification", generator=False, store=str(store.path),
               items={"train": ["item0", "item1", "item2", "item3"], "val": ["item4"],
                      "test": ["item5"]})


def test_a_ctrl_c_swallowed_while_a_fold_starts_stops_its_training(python_sigint, store,
                                                                   config):
    from xval.core.interrupts import sticky_interrupts
    from xval.training.fold import run_fold

    epochs = []
    with sticky_interrupts():
        _ctrl_c_swallowed_by_keras()
        with pytest.raises(KeyboardInterrupt):
            run_fold(_job(store, config, epochs=20), on_epoch=lambda *a: epochs.append(a))
    assert epochs == []  # stopped inside the first epoch


def test_a_ctrl_c_that_keras_turns_into_another_error_is_not_a_failed_fold(python_sigint,
                                                                          store, config):
    from xval.core.interrupts import sticky_interrupts
    from xval.executors.base import run_job

    def on_epoch(*args):  # what a bare except that raises its own error does
        _ctrl_c_swallowed_by_keras()
        raise RuntimeError("not a KeyboardInterrupt")

    with sticky_interrupts(), pytest.raises(KeyboardInterrupt):
        run_job(_job(store, config, epochs=2), on_epoch)
    # Without the sticky handler the same error is a failed fold, as before.
    result = run_job(_job(store, config, epochs=2), lambda *a: _raise(RuntimeError("boom")))
    assert result.status is Status.FAILED and "boom" in result.message


def _raise(error):
    raise error


def test_sticky_interrupts_leave_an_ignored_sigint_alone():
    from xval.core.interrupts import raise_if_interrupted, sticky_interrupts

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # `cmd &` in a script
    try:
        with sticky_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            raise_if_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_during_an_import_is_held_until_it_ends(python_sigint):
    """`deferred_interrupts` (a framework's import): the block runs to its end, then the
    interrupt is raised; in a command's clean-up after an interrupt, a block does not raise
    the one that came before it."""
    from xval.core.interrupts import (
        deferred_interrupts,
        raise_if_interrupted,
        sticky_interrupts,
    )

    reached = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, and holds it
        reached.append("end of the block")
    assert reached == ["end of the block"]
    with sticky_interrupts():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        with deferred_interrupts():  # the clean-up after it
            reached.append("clean-up")
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()  # still sticky
    assert reached[-1] == "clean-up"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


_SIGNAL_DURING_THE_FIRST_IMPORT = """
import importlib, os, signal, sys, time

import xval

imported = importlib.import_module

def import_module(name, package=None):  # the signal lands while `xval` imports its engine
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    time.sleep(0.05)  # the handler runs here, and holds it
    return imported(name, package)

importlib.import_module = import_module
from xval import Search  # a script's top line, before its command runs
print("the script went on")
"""


@pytest.mark.slow  # a fresh process importing the engine and Keras, twice
@pytest.mark.parametrize(("name", "code", "line"), [("SIGINT", 130, "interrupted."),
                                                    ("SIGTERM", 143, "terminated (SIGTERM).")])
def test_a_signal_during_a_scripts_first_import_ends_it_with_one_line(name, code, line):
    """Ctrl-C or SIGTERM while a script's `from xval import ...` imports the engine, before
    its command's handler runs: the command's line and exit status, no traceback."""
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_THE_FIRST_IMPORT, name],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (code, line, ""), proc.stderr


def test_a_command_ends_an_interrupt_with_its_own_line(capsys):
    """`run_entry`: Ctrl-C prints the command's line, exit 130; SIGTERM the same line with
    `terminated (SIGTERM)` for its first word, exit 143."""
    from xval.core.entry import run_entry
    from xval.core.interrupts import Terminated

    for stop, code, line in ((KeyboardInterrupt, 130, "interrupted; rerun to resume."),
                             (Terminated, 143, "terminated (SIGTERM); rerun to resume.")):
        assert run_entry(lambda stop=stop: _raise(stop()), debug=False,
                         interrupted="interrupted; rerun to resume.") == code
        assert capsys.readouterr().err == line + "\n"


_SIGNAL_WHILE_FINISHING = """
import atexit, time
from xval.core.interrupts import exit_process

def clean_up():  # as JAX's own exit callback (about a second), registered before
    print("cleaning up", flush=True)
    time.sleep(30)

atexit.register(clean_up)
exit_process(0)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_finished_command_exits_ends_it_with_its_status(signum):
    """Ctrl-C or SIGTERM in the last moments of a command that has done its work (the
    interpreter's exit callbacks running, JAX's clean-up among them): the process ends at
    once with the status it was ending with, no callback's traceback."""
    proc = subprocess.Popen([sys.executable, "-c", _SIGNAL_WHILE_FINISHING], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline() == "cleaning up\n"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)  # not the callback's 30 s
    assert (proc.returncode, err) == (0, ""), err


_FORKED_UNDER_A_COMMAND = """
import multiprocessing, signal, time
from xval.core.interrupts import sticky_interrupts

def wait_then_sleep(ready):
    ready.set()
    time.sleep(60)

context = multiprocessing.get_context("fork")
ready = context.Event()
with sticky_interrupts():
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the command's own
    child = context.Process(target=wait_then_sleep, args=(ready,))
    child.start()
    assert ready.wait(60)
    child.terminate()
    child.join(60)
print(child.exitcode)
"""


def test_a_process_forked_under_a_command_ends_on_sigterm_at_once():
    """A pool's worker forked while a command runs (a store's build) keeps Python's own
    handlers: `terminate` ends it by SIGTERM, not by a `Terminated` traceback. In a process
    of its own: a test worker may hold native handlers of its own (Ray's, once it ran)."""
    proc = subprocess.run([sys.executable, "-c", _FORKED_UNDER_A_COMMAND], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(-signal.SIGTERM)]
    assert "Traceback" not in proc.stderr and "Terminated" not in proc.stderr


@pytest.mark.slow
def test_process_executor_resumes_after_driver_kill(tmp_path, config_path, config, store):
    """A SIGKILLed driver (and its workers) loses at most the folds in progress; the same
    command resumes, and the jobs ran in worker processes, not in the driver."""
    script = _script(tmp_path, config_path, epochs=20)  # fold 1 trains for seconds
    proc = _start(script, "process", tmp_path)
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    _wait_for_first_fold(inst, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
    proc.wait()
    done_before = folds_on_disk(config, 1)
    assert 1 <= len(done_before) < 3
    again = run_script_here(script, "--executor", "process")  # the resume, here
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already done; resuming" in again.stdout
    assert folds_on_disk(config, 1) == [0, 1, 2]
    folds = [json.loads((inst / f"fold_{i}.json").read_text()) for i in range(3)]
    assert all(f["status"] == "ok" for f in folds)
    pids = {f["pid"] for f in folds}
    assert os.getpid() not in pids and len(pids) == 2  # the killed run's worker, a new one


def _ended_cleanly(proc, output, code, line):
    """`proc` (its own process group) ended with exit status `code` and `line` alone, its
    last line: no traceback, no "Exception ignored", no crash, no library warning, and no
    process of its group left."""
    assert proc.returncode == code, output[-3000:]
    assert output.strip().splitlines()[-1].startswith(line), output[-3000:]
    assert output.count(line.split(";")[0]) == 1, output[-3000:]
    for needle in ("Traceback", "Exception ignored", "Segmentation", "Fatal Python",
                   "UserWarning", "persistent compilation cache"):
        assert needle not in output, output[-3000:]
    leftover = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert leftover.returncode == 1, leftover.stdout


@pytest.mark.slow
def test_sigterm_ends_as_ctrl_c_does_and_puts_back_what_overwrite_set_aside(
        tmp_path, config_path, config, store):
    """SIGTERM (a scheduler's, `kill`'s) mid-fold of an --overwrite run: one line, exit 143;
    the instance's previous results back in place (no `instance_1.previous` beside a partial
    `instance_1`), and the workbook made again from them."""
    script = _script(tmp_path, config_path, epochs=20)
    first = run_script_here(script, "--executor", "inline", "--set", "epochs=2")  # complete
    assert first.returncode == 0, first.stdout + first.stderr
    exp = config.results_dir / "tiny" / "experiment_1"
    before = {p.name: p.read_bytes() for p in (exp / "instance_1").glob("fold_*.json")}
    book = exp / "experiment_1.xlsx"
    book.unlink()  # made again on the way out
    proc = _start(script, "inline", tmp_path, "--overwrite", stderr=subprocess.STDOUT)
    watcher = OutputWatcher(proc)
    watcher.wait_for(r"^instance 1 fold 0: ")  # the new fold 0 recorded; fold 1 training
    os.killpg(proc.pid, signal.SIGTERM)
    _ended_cleanly(proc, watcher.finish(), 143, "terminated (SIGTERM); rerun the same "
                                                "command to resume")
    assert sorted(p.name for p in exp.iterdir() if p.name.startswith("instance_1")) == \
        ["instance_1"]
    assert {p.name: p.read_bytes() for p in (exp / "instance_1").glob("fold_*.json")} == before
    assert book.exists()


JAX_SCRIPT = """
from xval import Experiment
experiment = Experiment(description="compiled default", dataset="tiny", number=1,
                        num_folds=3, config={config!r})
experiment[1] = {base!r}
if __name__ == "__main__":
    experiment.main()
"""


@pytest.mark.slow
def test_ctrl_c_and_sigterm_on_the_compiled_default_end_cleanly_at_each_moment(
        tmp_path, config, store):
    """On JAX, the default (fresh processes with no KERAS_BACKEND, as a user's): Ctrl-C while
    Keras and JAX are imported (JAX starting its threads), Ctrl-C inside the first
    compilation, SIGTERM while a later fold trains: each time one line and the exit status,
    nothing else (a signal in JAX's start once crashed the process), then the same command
    resumes. 18-43 s on the 2-core machine, by its load (four JAX processes; the cache
    makes the later ones quick)."""
    from openpyxl import load_workbook

    cache = tmp_path / "cache"
    path = write_config(tmp_path, backend={"compile_cache": str(cache)})
    spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "a",
            "comment_2": "b", "hidden_units": 8, "num_layers": 1, "epochs": 20,
            "patience": 20, "batch_size": 8}
    script = write_script(tmp_path, JAX_SCRIPT.format(config=str(path), base=spec))
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    resume = "interrupted; rerun the same command to resume"

    def run(wait, sig, code, line):
        proc = _start(script, "inline", tmp_path, env=env, stderr=subprocess.STDOUT)
        watcher = OutputWatcher(proc)
        wait(watcher)
        os.killpg(proc.pid, sig)
        _ended_cleanly(proc, watcher.finish(), code, line)

    def first_program(watcher):  # the first compiled program kept: compilation under way
        watcher.wait_for(r"^Importing Keras \(jax backend\)")
        while not list(cache.glob("jax/*-cache")):
            assert watcher.proc.poll() is None, watcher.text()
            time.sleep(0.02)

    run(lambda w: w.wait_for(r"^Importing Keras \(jax backend\)"), signal.SIGINT, 130,
        resume)
    run(first_program, signal.SIGINT, 130, resume)
    run(lambda w: w.wait_for(r"^instance 1 fold 0: "), signal.SIGTERM, 143,
        "terminated (SIGTERM); rerun the same command to resume")
    done = folds_on_disk(config, 1)
    assert 1 <= len(done) < 3
    book = load_workbook(config.results_dir / "tiny" / "experiment_1" / "experiment_1.xlsx")
    assert [r[:2] for r in book["Summary"].iter_rows(min_row=3, max_row=3, values_only=True)] \
        == [(1, "partial")]  # made on the way out: what is on disk
    again = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already done; resuming" in again.stdout
    assert folds_on_disk(config, 1) == [0, 1, 2]
    assert "UserWarning" not in again.stderr and "Traceback" not in again.stderr, again.stderr
