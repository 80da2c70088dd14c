"""The executor contract, run against every executor (inline, process, ray), and the job
contract's JSON round trip."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, run_script, write_script
from xval import Experiment
from xval.errors import ConfigurationError, TrainingError
from xval.executors import EXECUTOR_NAMES, InlineExecutor, JobQueue, make_executor
from xval.jobs import FoldResult, Job, Status

HAS_RAY = importlib.util.find_spec("ray") is not None
BASE = ['architecture="mlp"', 'reshaping_type="none"', 'comment_1="c1"', 'comment_2="c2"',
        "hidden_units=8", "num_layers=1", "epochs=2", "batch_size=64"]
BASE_SPEC = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1",
             "comment_2": "c2", "hidden_units": 8, "num_layers": 1, "epochs": 2,
             "batch_size": 64}
DIVERGE = ["learning_rate=1e6", 'optimizer="sgd"', 'save_model_metric="val_accuracy"']


def executors():
    names = ["inline", "process"]
    names.append(pytest.param("ray", marks=pytest.mark.skipif(
        not HAS_RAY, reason="ray is not installed (pip install -e '.[ray]')")))
    return names


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for this module's contract tests: `RayExecutor` joins a Ray
    that is already initialised (and leaves it running), so each test does not pay Ray's
    start-up."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def executor_name(request):
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return request.param


def experiment(config_path, n_instances=2, num_folds=3, failing=(), debug=False):
    exp = Experiment(description="executor contract", dataset="tiny", number=1,
                     num_folds=num_folds, debug_mode=debug, config=str(config_path))
    for k in range(1, n_instances + 1):
        exp[k] = BASE + (DIVERGE if k in failing else [])
    return exp


def folds_on_disk(config, k):
    d = config.results_dir / "tiny" / "experiment_1" / f"instance_{k}"
    return sorted(int(p.stem.split("_")[1]) for p in d.glob("fold_*.json"))


def test_job_and_fold_result_round_trip_json(store):
    job = Job(instance=3, fold=1, params={"epochs": 2}, items={"train": ["a"], "val": ["b"],
                                                                "test": ["c"]},
              task_type="classification", generator=False, store=str(store.path),
              params_hash="abc", store_hash=store.content_hash)
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job
    result = FoldResult(instance=3, fold=1, status=Status.OK, metrics={"test": {"loss": 1.0}},
                        model_bytes=b"model", predictions_csv="row\n")
    data = json.loads(json.dumps(result.to_dict()))
    assert "model_bytes" not in data and "predictions_csv" not in data
    assert data["status"] == "ok"
    back = FoldResult.from_dict(data)
    assert back.status is Status.OK and back.metrics == result.metrics and back.ok


def test_fold_result_transport_carries_predictions_and_plot_data():
    """What a worker process or Ray task sends back keeps the transient predictions and
    plot data (JSON) beside the fold file's content; the model's bytes travel apart."""
    plot_data = {"classes": ["call"], "windows": [{"target": [[0], [1]]}]}
    result = FoldResult(instance=3, fold=1, status=Status.OK, metrics={"test": {"loss": 1.0}},
                        model_bytes=b"model", predictions_csv="row\n", plot_data=plot_data)
    data = json.loads(json.dumps(result.to_transport()))
    assert "model_bytes" not in data and "plot_data" not in result.to_dict()
    back = FoldResult.from_transport(data, b"model")
    assert back.plot_data == plot_data and back.predictions_csv == "row\n"
    assert back.model_bytes == b"model" and back.metrics == result.metrics
    assert FoldResult.from_transport(json.loads(json.dumps(
        FoldResult(instance=1, fold=0, status=Status.OK).to_transport()))).plot_data is None


def test_job_store_path_must_be_absolute():
    with pytest.raises(ConfigurationError, match="must be absolute"):
        Job(instance=1, fold=0, params={}, items={}, task_type="classification",
            generator=False, store="data/tiny")


def test_job_queue_cancels_one_instance_or_all(store):
    def job(k, i):
        return Job(instance=k, fold=i, params={}, items={}, task_type="classification",
                   generator=False, store=str(store.path))

    queue = JobQueue([job(1, 0), job(1, 1), job(2, 0), job(2, 1)])
    assert queue.pop().key == (1, 0)
    assert [j.key for j in queue.cancel(1)] == [(1, 1)]
    assert len(queue) == 2 and queue.pop().key == (2, 0)
    assert len(queue.cancel()) == 1 and queue.pop() is None


def test_unknown_executor_is_an_error_listing_the_valid_ones():
    with pytest.raises(ConfigurationError, match="expected one of inline, process, ray"):
        make_executor("threads")
    assert EXECUTOR_NAMES == ("inline", "process", "ray")


def test_unknown_executor_in_config_is_an_error(tmp_path):
    from tests.conftest import write_config
    from xval.config import load_config

    with pytest.raises(ConfigurationError, match="executor"):
        load_config(write_config(tmp_path, backend={"executor": "threads"}))


@pytest.mark.slow
@pytest.mark.parametrize("executor_name", executors(), indirect=True)
def test_executor_runs_every_job_and_a_failing_fold_stops_its_instance_only(
        executor_name, config_path, config, store):
    """Every job of a sound instance runs and is recorded; a failed fold cancels its
    instance's folds that have not started, under every executor (the process executor used
    to run them all), and the instance's summary is written once, after its last fold, so it
    agrees with the fold files. (One run proves both: each job costs a fresh worker process
    under the process and Ray executors. A run where nothing fails exits 0 under every
    executor in test_progress.py and in the Ctrl-C, kill and Ray cluster tests below.)"""
    name = executor_name
    exp = experiment(config_path, n_instances=2, num_folds=3, failing=(1,))
    outcome = exp.run(config=config, executor=name, out=lambda *a: None)
    assert outcome.exit_code == 1 and outcome.failed == [1]
    # The sound instance: every fold recorded, trained where and how the job said.
    assert folds_on_disk(config, 2) == [0, 1, 2]
    inst = outcome.results[2]
    assert inst.status == "complete"
    assert all(f["backend"] == "torch" and f["device"] == "cpu" for f in inst.folds)
    assert all(f["model_size"] > 0 and len(f["model_sha256"]) == 64 for f in inst.folds)
    # The failing instance.
    ran = folds_on_disk(config, 1)
    # At most the folds that were already running when the first failure came back.
    slots = make_executor(name).slots if name != "ray" else 2
    assert 1 <= len(ran) <= slots < 3, ran
    inst_dir = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    summary = json.loads((inst_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["folds_failed"] == len(ran)
    assert "diverged" in summary["message"]


@pytest.mark.parametrize("executor_name", executors(), indirect=True)
def test_executor_debug_mode_stops_the_run(executor_name, config_path, config, store):
    exp = experiment(config_path, n_instances=2, num_folds=3, failing=(1,), debug=True)
    with pytest.raises(TrainingError, match="instance 1 fold .* failed \\(debug_mode=True\\)"):
        exp.run(config=config, executor=executor_name, out=lambda *a: None)
    assert folds_on_disk(config, 2) == []


def test_inline_executor_yields_failures_instead_of_raising(store):
    job = Job(instance=1, fold=0, params={}, items={"train": [], "val": [], "test": []},
              task_type="classification", generator=False, store=str(store.path))
    result = next(InlineExecutor().run(JobQueue([job])))
    assert result.status is Status.FAILED and result.traceback and result.message


SCRIPT = """
from xval import Experiment
experiment = Experiment(description="kill test", dataset="tiny", number=1, num_folds=3,
                        config={config!r})
experiment[1] = {base!r}
if __name__ == "__main__":
    experiment.main()
"""


def _start(script, executor, tmp_path):
    # SIGINT back to its default in the child: a suite started in the background by a script
    # (`make test &`) runs with SIGINT ignored, and children inherit that.
    return subprocess.Popen([sys.executable, str(script), "--executor", executor],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, start_new_session=True,
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
    # The signal goes as soon as fold 0 is recorded: inline, fold 1 is training (20 epochs,
    # several seconds: 6 were once too few on a loaded machine, and the run ended before the
    # signal); under the process executor, fold 1's worker is starting (seconds).
    script = _script(tmp_path, config_path, epochs=20 if name == "inline" else 2)
    proc = _start(script, name, tmp_path)
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    _wait_for_first_fold(inst, proc)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted; rerun the same command")
    assert "Traceback" not in stderr
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-f", "xval.worker"], capture_output=True, text=True)
    assert str(tmp_path) not in leftover.stdout
    assert not [p for p in inst.parent.rglob(".*") if p.is_file() and ".locks" not in p.parts]
    done = folds_on_disk(config, 1)
    assert 1 <= len(done) < 3
    again = run_script(script, "--executor", name)
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
    from xval.interrupts import raise_if_interrupted, sticky_interrupts

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

    from xval.interrupts import interrupt_check, sticky_interrupts

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 3), "float32")
    with sticky_interrupts():
        _ctrl_c_swallowed_by_keras()
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, np.zeros((8, 2), "float32"), batch_size=4, epochs=50, verbose=0,
                      callbacks=[interrupt_check()])
    assert model.optimizer.iterations.numpy() == 1  # stopped after the first batch


def _job(store, config, epochs):
    from xval.params import resolve

    spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "", "comment_2": "",
            "epochs": epochs, "patience": epochs}
    return Job(instance=1, fold=0, params=resolve(1, spec, training_defaults=config.training),
               task_type="classification", generator=False, store=str(store.path),
               items={"train": ["item0", "item1", "item2", "item3"], "val": ["item4"],
                      "test": ["item5"]})


def test_a_ctrl_c_swallowed_while_a_fold_starts_stops_its_training(python_sigint, store,
                                                                   config):
    from xval.interrupts import sticky_interrupts
    from xval.training import run_fold

    epochs = []
    with sticky_interrupts():
        _ctrl_c_swallowed_by_keras()
        with pytest.raises(KeyboardInterrupt):
            run_fold(_job(store, config, epochs=20), on_epoch=lambda *a: epochs.append(a))
    assert epochs == []  # stopped inside the first epoch


def test_a_ctrl_c_that_keras_turns_into_another_error_is_not_a_failed_fold(python_sigint,
                                                                          store, config):
    from xval.executors import _run_job
    from xval.interrupts import sticky_interrupts

    def on_epoch(*args):  # what a bare except that raises its own error does
        _ctrl_c_swallowed_by_keras()
        raise RuntimeError("not a KeyboardInterrupt")

    with sticky_interrupts(), pytest.raises(KeyboardInterrupt):
        _run_job(_job(store, config, epochs=2), on_epoch)
    # Without the sticky handler the same error is a failed fold, as before.
    result = _run_job(_job(store, config, epochs=2), lambda *a: _raise(RuntimeError("boom")))
    assert result.status is Status.FAILED and "boom" in result.message


def _raise(error):
    raise error


def test_sticky_interrupts_leave_an_ignored_sigint_alone():
    from xval.interrupts import raise_if_interrupted, sticky_interrupts

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # `cmd &` in a script
    try:
        with sticky_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            raise_if_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_process_executor_resumes_after_driver_kill(tmp_path, config_path, config, store):
    """A SIGKILLed driver (and its workers) loses at most the folds in progress; the same
    command resumes, and every job ran in a fresh worker process of its own."""
    script = _script(tmp_path, config_path, epochs=2)  # fold 1's worker starts for seconds
    proc = _start(script, "process", tmp_path)
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    _wait_for_first_fold(inst, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
    proc.wait()
    done_before = folds_on_disk(config, 1)
    assert 1 <= len(done_before) < 3
    again = run_script(script, "--executor", "process")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already done; resuming" in again.stdout
    assert folds_on_disk(config, 1) == [0, 1, 2]
    folds = [json.loads((inst / f"fold_{i}.json").read_text()) for i in range(3)]
    assert all(f["status"] == "ok" for f in folds)
    pids = {f["pid"] for f in folds}
    assert len(pids) == 3 and os.getpid() not in pids  # one fresh worker process per job


def test_worker_module_runs_a_job_file(tmp_path, store, config):
    from xval.params import resolve

    spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
            "comment_2": "", "epochs": 1}
    job = Job(instance=1, fold=0, params=resolve(1, spec, training_defaults=config.training),
              task_type="classification", generator=False, store=str(store.path),
              items={"train": ["item0", "item1", "item2", "item3"], "val": ["item4"],
                     "test": ["item5"]})
    (tmp_path / "job.json").write_text(json.dumps(job.to_dict()))
    out = subprocess.run([sys.executable, "-m", "xval.worker", str(tmp_path / "job.json"),
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["status"] == "ok" and data["predictions_csv"].startswith("row,")
    assert (tmp_path / "model.keras").stat().st_size > 0


# -- a real two-node Ray cluster on this machine ---------------------------------------------

def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raylets(temp_dir):
    """PIDs of the raylets (one per node) of the cluster whose temporary folder is given."""
    out = subprocess.run(["pgrep", "-f", f"raylet/raylet --raylet_socket_name={temp_dir}"],
                         capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


@pytest.fixture
def ray_cluster(monkeypatch):
    """Starts `ray start --head` (1 CPU) and yields `(address, add_node)`; `add_node(prefix)`
    runs `ray start --address` (1 CPU) behind an optional command prefix and returns the new
    node's raylet PID. Afterwards every process of this cluster, and only of this cluster
    (found by its own temporary folder), is killed: other Ray instances on the machine are
    left alone, so `ray stop` is never used."""
    import shutil
    import tempfile

    if not HAS_RAY:
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    ray_bin = str(__import__("pathlib").Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: Ray's socket paths
    common = ["--num-cpus=1", "--disable-usage-stats"]
    # Ray >= 2.59 authenticates local clusters with a token (~/.ray/auth_token) that every
    # node and the driver must use.
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    env = {**os.environ, "RAY_health_check_period_ms": "1000",
           "RAY_health_check_failure_threshold": "3"}
    subprocess.run([ray_bin, "get-auth-token", "--generate"], capture_output=True, env=env)

    def ours():
        found = subprocess.run(["pgrep", "-f", temp_dir], capture_output=True, text=True)
        return {int(pid) for pid in found.stdout.split()}

    head = subprocess.run([ray_bin, "start", "--head", f"--port={port}",
                           f"--temp-dir={temp_dir}", "--include-dashboard=false", *common],
                          capture_output=True, text=True, env=env)
    assert head.returncode == 0, head.stdout + head.stderr

    def add_node(prefix=()):
        before = _raylets(temp_dir)
        node = subprocess.run([*prefix, ray_bin, "start", f"--address={address}", *common],
                              capture_output=True, text=True, env=env)
        assert node.returncode == 0, node.stdout + node.stderr
        new = _raylets(temp_dir) - before
        assert len(new) == 1, new
        return new.pop()

    try:
        yield address, add_node
    finally:
        for _ in range(3):
            for pid in ours():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        shutil.rmtree(temp_dir, ignore_errors=True)


RAY_SCRIPT = """
from xval import Experiment
experiment = Experiment(description="ray cluster", dataset="tiny", number=1, num_folds=2,
                        config={config!r})
experiment[1] = {base!r}
experiment[2] = {base2!r}
if __name__ == "__main__":
    experiment.main()
"""


@pytest.mark.slow
def test_ray_cluster_loses_a_node_and_finishes_with_inline_metrics(
        ray_cluster, tmp_path, config_path, config, store):
    address, add_node = ray_cluster
    worker_raylet = add_node()
    spec = {**BASE_SPEC, "epochs": 4}
    path = write_script(tmp_path, RAY_SCRIPT.format(config=str(config_path), base=spec,
                                                    base2={**spec, "hidden_units": 12}))
    proc = subprocess.Popen([sys.executable, str(path), "--executor", "ray", "--ray-address",
                             address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    exp = config.results_dir / "tiny" / "experiment_1"
    deadline = time.monotonic() + 300
    while not list(exp.glob("instance_*/fold_*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.kill(worker_raylet, signal.SIGKILL)  # the second node dies mid-run
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + stderr
    # Every fold is there, and equal to an inline run of the same experiment (run in this
    # process: a third Python start-up would prove nothing more).
    from tests.conftest import write_config
    from xval.config import load_config

    inline_config = load_config(write_config(tmp_path / "inline", paths={
        "data_dir": str(config.data_dir), "results_dir": str(tmp_path / "inline" / "results")}))
    same = Experiment(description="ray cluster", dataset="tiny", number=1, num_folds=2,
                      config=str(inline_config.path))
    same[1], same[2] = spec, {**spec, "hidden_units": 12}
    inline = same.run(config=inline_config, executor="inline", out=lambda *a: None)
    assert inline.exit_code == 0, inline
    inline_exp = inline_config.results_dir / "tiny" / "experiment_1"
    for k in (1, 2):
        for i in range(2):
            ray_fold = json.loads((exp / f"instance_{k}" / f"fold_{i}.json").read_text())
            ref = json.loads((inline_exp / f"instance_{k}" / f"fold_{i}.json").read_text())
            assert ray_fold["status"] == "ok" and ray_fold["best_epoch"] == ref["best_epoch"]
            for split in ("train", "val", "test"):
                for name in ("loss", "accuracy", "f1"):
                    assert ray_fold["metrics"][split][name] == pytest.approx(
                        ref["metrics"][split][name], abs=1e-5), (k, i, split, name)


@pytest.mark.slow
def test_ray_preflight_refuses_a_node_without_the_store(ray_cluster, tmp_path, config_path,
                                                        config, store):
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs unshare (a mount namespace) to hide the store from one node")
    address, add_node = ray_cluster
    hidden = str(config.data_dir)
    add_node(prefix=["unshare", "-m", "--propagation", "private", "sh", "-c",
                     f'mount -t tmpfs none "{hidden}" && exec "$0" "$@"'])
    path = write_script(tmp_path, RAY_SCRIPT.format(config=str(config_path), base=BASE_SPEC,
                                                    base2=BASE_SPEC))
    proc = run_script(path, "--executor", "ray", "--ray-address", address)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "The Ray cluster cannot run this experiment" in proc.stderr
    assert "dataset.json" in proc.stderr and "shared filesystem" in proc.stderr
    assert not list((config.results_dir / "tiny" / "experiment_1").glob("instance_*/fold_*"))


def test_gpu_benchmark_runs_without_a_gpu():
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU driver is present: the benchmark would measure, not exit")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("No GPU found")
