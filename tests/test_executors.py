"""The executor contract, run against every executor (inline, process, ray), and the job
contract's JSON round trip."""

import importlib.util
import json
import os

import pytest

from xval import Experiment, Output
from xval.core.errors import ConfigurationError, TrainingError
from xval.core.records import FoldResult, Job, Status
from xval.executors import JobQueue, make_executor
from xval.executors import names as executor_names
from xval.executors.inline import InlineExecutor

HAS_RAY = importlib.util.find_spec("ray") is not None
BASE = ['architecture="mlp"', 'reshaping_type="none"', 'comment_1="c1"', 'comment_2="c2"',
        "hidden_units=8", "num_layers=1", "epochs=2", "batch_size=64"]
BASE_SPEC = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1",
             "comment_2": "c2", "hidden_units": 8, "num_layers": 1, "epochs": 2,
             "batch_size": 64}
DIVERGE = ["learning_rate=1e30", 'optimizer="sgd"', 'save_model_metric="val_accuracy"']


def executors():
    names = ["inline", "process"]
    names.append(pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.skipif(
        not HAS_RAY, reason="ray is not installed (pip install -e '.[ray]')")]))
    return names


@pytest.fixture
def executor_name(request):
    if request.param == "ray":
        request.getfixturevalue("local_ray")  # the session's Ray (tests/conftest.py)
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
    assert executor_names() == ["inline", "process", "ray"]


def test_unknown_executor_in_config_is_an_error(tmp_path):
    from tests.conftest import write_config
    from xval.config.loader import load_config

    with pytest.raises(ConfigurationError, match="executor"):
        load_config(write_config(tmp_path, backend={"executor": "threads"}))


@pytest.mark.slow
@pytest.mark.parametrize("executor_name", executors(), indirect=True)
def test_executor_runs_every_job_and_a_failing_fold_stops_its_instance_only(
        executor_name, config_path, config, store):
    """Every job of a sound instance runs and is recorded; a failed fold cancels its
    instance's folds that have not started, under every executor (the process executor used
    to run them all), and the instance's summary is written once, after its last fold, so it
    agrees with the fold files. (One run proves both: each worker process costs seconds
    under the process and Ray executors. A run where nothing fails exits 0 under every
    executor in test_progress.py and in the Ctrl-C, kill and Ray cluster tests below.)"""
    name = executor_name
    exp = experiment(config_path, n_instances=2, num_folds=3, failing=(1,))
    outcome = exp.run(config=config, executor=name, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 1 and outcome.failed == [1]
    # The sound instance: every fold recorded, trained where and how the job said.
    assert folds_on_disk(config, 2) == [0, 1, 2]
    inst = outcome.results[2]
    assert inst.status == "complete"
    assert all(f.backend == "torch" and f.device == "cpu" for f in inst.folds)
    assert all(f.model_size > 0 and len(f.model_sha256) == 64 for f in inst.folds)
    jobs = [*inst.folds, *outcome.results[1].folds]
    if name == "ray":  # CPU jobs reuse warm workers (issue 25): fewer processes than jobs
        assert len({(f.host, f.pid) for f in jobs}) < len(jobs), [f.pid for f in jobs]
    if name == "process":  # one slot: one warm worker ran every job
        pids = {f.pid for f in jobs if f.ok}
        assert len(pids) == 1 and os.getpid() not in pids
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
        exp.run(config=config, executor=executor_name, output=Output(out=lambda *a: None))
    assert folds_on_disk(config, 2) == []


@pytest.mark.ray
@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install -e '.[ray]')")
def test_ray_preflight_that_gets_no_answer_is_a_clear_error(local_ray, store, monkeypatch):
    from xval.executors import ray as ray_executor

    # No node can start a worker and answer within a microsecond.
    monkeypatch.setattr(ray_executor, "PREFLIGHT_TIMEOUT_S", 1e-6)
    runner = ray_executor.RayExecutor()
    runner.start()
    with pytest.raises(ConfigurationError, match=r"node\(s\) .* did not answer the preflight "
                                                 r"check within 1e-06 s .* Nothing was "
                                                 r"trained.*ray status"):
        runner.preflight(store)


def test_inline_executor_yields_failures_instead_of_raising(store):
    job = Job(instance=1, fold=0, params={}, items={"train": [], "val": [], "test": []},
              task_type="classification", generator=False, store=str(store.path))
    result = next(InlineExecutor().run(JobQueue([job])))
    assert result.status is Status.FAILED and result.traceback and result.message


def _jobs(store, config, n):
    from tests.conftest import resolve

    spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
            "comment_2": "", "epochs": 2, "hidden_units": 8, "num_layers": 1}
    params = resolve(1, spec, training_defaults=config.training)
    items = {"train": ["item0", "item1", "item2", "item3"], "val": ["item4"],
             "test": ["item5"]}
    return [Job(instance=1, fold=k, params=params, task_type="classification",
                generator=False, store=str(store.path), items=items) for k in range(n)]


def test_process_workers_stay_warm_are_retired_and_replaced_when_they_die(store, config,
                                                                          monkeypatch):
    """A worker runs up to WORKER_JOBS jobs (2 here), then ends; a worker killed during a
    job fails that job alone, with its exit code, and the next job starts a fresh worker.
    A GPU worker stays warm too on torch and JAX, and a TensorFlow one with a GPU is fresh
    for every job (`worker_jobs`; run on a GPU in tests/test_gpu.py)."""
    from xval.executors import base
    from xval.executors.process import ProcessExecutor

    monkeypatch.setattr(base, "WORKER_JOBS", 2)
    assert base.worker_jobs(False) == base.worker_jobs(True, "torch") == 2
    assert base.worker_jobs(True, "jax") == 2 and base.worker_jobs(False, "tensorflow") == 2
    assert base.worker_jobs(True, "tensorflow") == 1
    executor = ProcessExecutor([None])
    killed = []

    def on_epoch(job, epoch, epochs, logs):
        if job.fold == 2 and not killed:  # the third job's worker dies in its first epoch
            killed.append(executor._workers[0].proc.pid)
            executor._workers[0].proc.kill()

    executor.on_epoch = on_epoch
    results = {r.fold: r for r in executor.run(JobQueue(_jobs(store, config, 4)))}
    assert [results[k].ok for k in range(4)] == [True, True, False, True]
    assert results[0].pid == results[1].pid != os.getpid()  # warm: one worker, two jobs
    assert killed and killed[0] != results[0].pid  # retired after 2; job 2 in a new one
    assert "exited with code -9 without a result" in results[2].message
    assert "found in sys.modules" not in results[2].message  # no start-up warning in it
    assert results[3].pid not in (results[0].pid, killed[0])  # a fresh worker after it
    assert executor._workers == {}  # run() ended every worker
    for pid in {results[0].pid, results[3].pid}:  # and waited for them
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_warm_gpu_slots_serve_many_jobs_and_replace_a_worker_after_a_failure(store, config):
    """Two slots on one "GPU" (`jobs_per_gpu = 2`; on a CPU machine the id reaches the
    workers and CUDA finds nothing): each slot's worker serves several jobs, and a job that
    fails replaces its worker."""
    from xval.executors.process import ProcessExecutor

    jobs = _jobs(store, config, 5)
    jobs[2] = Job.from_dict({**jobs[2].to_dict(), "items": {"train": [], "val": [],
                                                            "test": []}})  # fails
    executor = ProcessExecutor(["0"], jobs_per_gpu=2, backend="torch")
    assert executor._environment("0")["CUDA_VISIBLE_DEVICES"] == "0"
    by_fold = {r.fold: r for r in executor.run(JobQueue(jobs))}
    assert [by_fold[k].ok for k in range(5)] == [True, True, False, True, True]
    # Two workers for jobs 0 and 1; the one whose job 2 failed is replaced by a third,
    # and one of the three serves two jobs (warm). Without the replacement: two workers.
    assert len({by_fold[k].pid for k in (0, 1, 3, 4)}) == 3
    assert [by_fold[k].device_settings["batches"] for k in (0, 1, 3, 4)] == ["device"] * 4


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_two_jax_jobs_share_one_gpu_slot_configuration(store, config, monkeypatch):
    """Two JAX jobs on one GPU (`jobs_per_gpu = 2`) each get no preallocation and at most
    0.9 / 2 of the GPU's memory (JAX would take 75 % in each); each fold records what its
    worker was given. A user's own setting wins. On the CPU the rows stay in numpy (JAX
    would copy them beside numpy's for nothing)."""
    from xval.executors import base
    from xval.executors.process import ProcessExecutor

    for name in ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION"):
        monkeypatch.delenv(name, raising=False)
    executor = ProcessExecutor(["0"], jobs_per_gpu=2, backend="jax")
    results = list(executor.run(JobQueue(_jobs(store, config, 2))))
    assert [r.ok for r in results] == [True, True], [r.message for r in results]
    assert len({r.pid for r in results}) == 2  # side by side, one worker each
    for result in results:
        assert result.backend == "jax"
        assert {"batches": "host", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.450"}.items() \
            <= result.device_settings.items()
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.3")
    assert executor._environment("0")["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.3"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in executor._environment(None)  # no GPU
    inherits = ProcessExecutor([None], jobs_per_gpu=2, backend="jax", inherited_gpu=True)
    assert inherits._environment(None)["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in inherits._environment("-1")
    assert base.worker_jobs(inherits._on_gpu(None), "tensorflow") == 1  # fresh, as GPU "0"
    tf = ProcessExecutor(["0"], backend="tensorflow")._environment("0")
    assert tf["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


SHARED_INLINE = """
import json, os, sys
from xval.running.environment import prepare_process
os.environ.pop("KERAS_BACKEND", None)
os.environ.pop("XLA_PYTHON_CLIENT_MEM_FRACTION", None)
os.environ.pop("XLA_PYTHON_CLIENT_PREALLOCATE", None)
if sys.argv[1]:
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = sys.argv[1]  # a user's own
prepare_process("jax", None, print, jobs_per_gpu=int(sys.argv[2]))
print(json.dumps({"jax": "jax" in sys.modules, **{k: os.environ.get(k) for k in (
    "KERAS_BACKEND", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")}}))
"""


@pytest.mark.parametrize("jobs, given, expected", [
    (4, "", {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}),
    (4, "true", {"XLA_PYTHON_CLIENT_PREALLOCATE": "true", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}),
    (1, "", {"XLA_PYTHON_CLIENT_PREALLOCATE": None, "XLA_PYTHON_CLIENT_MEM_FRACTION": None}),
])
def test_an_inline_run_sharing_a_gpu_takes_its_share_before_jax_starts(jobs, given, expected):
    """Issue 89: `[backend] jobs_per_gpu = N` tells an inline run's own process too (N
    scripts on one GPU): JAX neither preallocates nor takes more than 0.9 / N of the GPU,
    set before JAX is imported; a variable the user set wins; one job per GPU is left to
    JAX's defaults."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", SHARED_INLINE, given, str(jobs)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"jax": False, "KERAS_BACKEND": "jax", **expected}


def test_a_freed_slot_starts_its_next_job_before_the_result_is_recorded(store, config):
    """The process executor hands the next job to a freed slot before the driver records
    the last result (its files, plots and workbook are written while the next job trains);
    a failed result comes back first, so that its instance's waiting jobs are cancelled
    before any of them starts."""
    from xval.executors.process import ProcessExecutor

    queue = JobQueue(_jobs(store, config, 3))
    results = ProcessExecutor([None]).run(queue)
    first = next(results)
    assert first.ok and len(queue) == 1  # job 2 started before job 0 is handed over
    rest = list(results)
    assert len(rest) == 2 and len(queue) == 0


def test_a_result_that_cannot_be_read_back_fails_its_fold_alone(store, config, monkeypatch):
    """A worker's result file that cannot be read (corrupt JSON) fails that fold, with
    why; the other jobs' results still come back (it used to end the whole run)."""
    from xval.executors import transport
    from xval.executors.process import ProcessExecutor

    real, calls = transport.read, []

    def read(folder):
        calls.append(folder)
        if len(calls) == 1:
            raise json.JSONDecodeError("Expecting value", "", 0)
        return real(folder)

    monkeypatch.setattr(transport, "read", read)
    results = list(ProcessExecutor([None]).run(JobQueue(_jobs(store, config, 2))))
    assert sorted(r.ok for r in results) == [False, True]
    [bad] = [r for r in results if not r.ok]
    assert "could not be read back: JSONDecodeError" in bad.message


def test_refill_first_yields_failures_before_refilling():
    from xval.executors.base import refill_first

    ok = FoldResult(instance=1, fold=0, status=Status.OK)
    bad = FoldResult(instance=2, fold=0, status=Status.FAILED, message="x")
    events = []
    for result in refill_first([ok, bad], lambda: events.append("refill")):
        events.append(result.instance)
    assert events == [2, "refill", 1]
    # A scheduler that decides on every result (a search's pruner) sees them all first.
    events.clear()
    for result in refill_first([ok, bad], lambda: events.append("refill"),
                               JobQueue(results_first=True)):
        events.append(result.instance)
    assert events == [1, 2, "refill"]


def test_ray_reuses_cpu_workers_and_gives_gpu_jobs_a_fresh_one():
    """Issue 25: a CPU job runs in a warm worker (up to WORKER_JOBS jobs each); a GPU job
    in a fresh one (Ray may hand a warm worker a task on another GPU of its node)."""
    from xval.executors.base import WORKER_JOBS
    from xval.executors.ray import max_calls

    assert max_calls(0.0) == WORKER_JOBS > 1
    assert max_calls(1.0) == max_calls(0.25) == 1


def test_concurrent_process_jobs_share_the_cores(monkeypatch):
    from xval.executors.process import ProcessExecutor, cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert cpu_threads(1) == {}
    assert cpu_threads(3) == {"OMP_NUM_THREADS": "2", "TF_NUM_INTRAOP_THREADS": "2"}
    assert cpu_threads(16)["OMP_NUM_THREADS"] == "1"
    env = ProcessExecutor([None, "0"], jobs_per_gpu=2)._environment(None)  # 4 slots
    assert env["OMP_NUM_THREADS"] == "2" and env["TF_NUM_INTRAOP_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in ProcessExecutor([None])._environment(None)  # one job: all
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
    assert ProcessExecutor([None], jobs_per_gpu=4)._environment(None)["OMP_NUM_THREADS"] == "3"


def test_run_job_settles_a_marked_process_once_and_a_user_process_never(monkeypatch, store):
    """`run_job` settles a job process before its first job (TensorFlow kept out of Keras,
    the modules frozen: `xval.executors.job_process.settle`), once for all its jobs; a
    process nobody marked (the user's own) is left as it is."""
    import gc

    import xval.executors.job_process as job_process
    from xval.executors.base import run_job

    frozen, kept_out = [], []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    # Not in this test process, whose later tests may need TensorFlow (test_training's
    # worker test checks the real one: no TensorFlow imported, the modules frozen).
    monkeypatch.setattr(job_process, "keep_tensorflow_out", lambda: kept_out.append(1))
    monkeypatch.setattr(job_process, "_JOB_PROCESS", False)
    monkeypatch.setattr(job_process, "_SETTLED", False)
    bad = Job(instance=1, fold=0, params={}, items={}, task_type="classification",
              generator=False, store=str(store.path))  # no parameters: fails at once
    assert run_job(bad).status == Status.FAILED
    assert frozen == kept_out == [] and not job_process.is_job_process()
    job_process.mark_job_process()
    for _ in range(2):
        assert run_job(bad).status == Status.FAILED
    assert frozen == kept_out == [1]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install -e '.[ray]')")
def test_ray_tasks_keep_programs_in_the_folder_the_driver_names(local_ray, store, config,
                                                                 tmp_path):
    """On JAX, a Ray task (the executor's task body, `run_job_remote`, in a Ray worker)
    compiles into `compile_cache` as the driver resolved it, on the node it runs on (one node
    here: this machine's folder), making it where missing; what the cache did travels back
    with the result (a damaged program, replaced), for the driver to say. About 20 s (a Ray
    worker for JAX alone, its start-up and one fold's compilation): the module's warm
    workers imported Keras on torch, so the tasks ask for workers of their own."""
    import dataclasses

    import ray

    from xval.executors.ray import run_job_remote

    cache = tmp_path / "node" / "cache"
    first, second = (dataclasses.replace(j, compile_cache=str(cache))
                     for j in _jobs(store, config, 2))
    task = ray.remote(run_job_remote).options(
        runtime_env={"env_vars": {"KERAS_BACKEND": "jax"}})

    def run(job):
        return FoldResult.from_transport(*ray.get(task.remote(job.to_dict(), "jax")))

    filled = run(first)
    assert filled.ok and filled.backend == "jax" and filled.pid != os.getpid()
    steps = sorted((cache / "jax").glob("jit_train_step-*-cache"))
    assert steps and filled.compilation["programs"] > 0 and filled.cache_notes is None
    for step in steps:
        step.write_bytes(step.read_bytes()[:100])  # cut short
    repaired = run(second)
    assert repaired.ok and repaired.cache_notes == {
        "damaged": f"compile cache {cache}: {len(steps)} damaged program(s) removed; compiled "
                   "again and kept anew"}
    assert all(len(p.read_bytes()) > 100 for p in steps)  # kept anew
