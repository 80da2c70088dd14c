"""Executors run `Job`s and yield `FoldResult`s: inline, one fresh process per job, or Ray.

Every executor has the same contract, tested by one suite (`tests/test_executors.py`):

- `run(queue)` takes jobs from a `JobQueue` only when it can start them, and yields each
  job's `FoldResult` as the job ends (in completion order). A job that raises becomes a
  failed result; nothing is raised for it.
- Jobs the scheduler cancels (`queue.cancel(...)`) before they are taken never run.
- Closing the generator (Ctrl-C, an error in the driver, `debug_mode` stopping the run)
  stops the jobs that are running and returns.
- No executor writes result files: the recorder does, in the driver.
"""

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from xval.errors import ConfigurationError
from xval.interrupts import raise_if_interrupted
from xval.jobs import FoldResult

EXECUTOR_NAMES = ("inline", "process", "ray")
# Workers print `EPOCH_PREFIX epoch epochs {logs}` lines that the process executor streams.
EPOCH_PREFIX = "xval-epoch "


class JobQueue:
    """The jobs waiting to start, in order. Executors `pop()` them; the scheduler may
    `cancel()` those of an instance (its fold failed) or all of them (debug stop).

    Args:
        jobs: the `Job`s, in the order they should start.
    """

    def __init__(self, jobs=()):
        self._jobs = collections.deque(jobs)
        self._lock = threading.Lock()

    def pop(self):
        """The next job, or `None` when none is waiting."""
        with self._lock:
            return self._jobs.popleft() if self._jobs else None

    def cancel(self, instance=None):
        """Drops the waiting jobs of `instance` (every waiting job when `None`).

        Returns:
            The dropped jobs.
        """
        with self._lock:
            dropped = [j for j in self._jobs if instance is None or j.instance == instance]
            self._jobs = collections.deque(j for j in self._jobs if j not in dropped)
        return dropped

    def __len__(self):
        with self._lock:
            return len(self._jobs)


class Executor:
    """Base of the executors: see the module docstring for the contract."""

    name = "base"

    def start(self):
        """Acquires what the executor needs (a Ray connection); idempotent."""

    def preflight(self, plan):
        """Checks, before any job runs, that the jobs of `plan` can run where they will."""

    def run(self, queue):
        raise NotImplementedError

    # Set by the scheduler: `(job, epoch, epochs, logs) -> None`, called as epochs end, where the
    # executor can see them (inline: in this process; process: streamed from the workers).
    on_epoch = None

    def close(self):
        """Releases what `start` acquired."""

    @property
    def slots(self):
        """How many jobs run at once."""
        return 1


def _run_job(job, on_epoch=None):
    from xval.training import run_fold

    raise_if_interrupted()  # a Ctrl-C that Keras swallowed in the previous job
    try:
        return run_fold(job, on_epoch=on_epoch)
    except Exception as e:  # recorded per fold: the scheduler applies the failure policy
        raise_if_interrupted()  # an interrupt that Keras turned into another error
        return FoldResult.failure(job, e)


class InlineExecutor(Executor):
    """Runs jobs one after the other in this process (CPU, tests, debugging)."""

    name = "inline"

    def run(self, queue):
        while (job := queue.pop()) is not None:
            hook = None
            if self.on_epoch is not None:
                def hook(epoch, epochs, logs, job=job):
                    self.on_epoch(job, epoch, epochs, logs)
            yield _run_job(job, hook)


class ProcessExecutor(Executor):
    """Runs every job in a fresh `python -m xval.worker` process, one slot per GPU.

    Memory a framework holds (GPU memory included) is returned when each job's process ends.

    Args:
        gpus: GPU ids (strings); `[None]` for CPU only. Defaults to `[None]`.
        jobs_per_gpu: concurrent jobs per GPU (or on the CPU). Defaults to `1`.
        backend: Keras backend of the workers.
    """

    name = "process"

    def __init__(self, gpus=(None,), jobs_per_gpu=1, backend=None):
        self._slots = [g for g in (gpus or [None]) for _ in range(jobs_per_gpu)]
        self.backend = backend
        self._procs = {}
        self._procs_lock = threading.Lock()

    @property
    def slots(self):
        return len(self._slots)

    def _launch(self, job, gpu):
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        if self.backend:
            env["KERAS_BACKEND"] = self.backend
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # several jobs may share a GPU
        with tempfile.TemporaryDirectory(prefix="xval-job-") as tmp:
            tmp = Path(tmp)
            (tmp / "job.json").write_text(json.dumps(job.to_dict()))
            with open(tmp / "stderr.txt", "w+") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "xval.worker", str(tmp / "job.json"), str(tmp)],
                    env=env, stdout=subprocess.PIPE, stderr=err, text=True)
                with self._procs_lock:
                    self._procs[job.key] = proc
                try:
                    stdout = self._stream(job, proc.stdout)
                    proc.wait()
                finally:
                    with self._procs_lock:
                        self._procs.pop(job.key, None)
                err.seek(0)
                stderr = err.read()
            result_file = tmp / "result.json"
            if result_file.exists():
                data = json.loads(result_file.read_text())
                model = tmp / "model.keras"
                return FoldResult.from_transport(
                    data, model.read_bytes() if model.exists() else None)
            tail = (stderr or stdout or "")[-3000:]
            return FoldResult.failure(job, None, message=(
                f"worker process exited with code {proc.returncode} without a result: "
                f"{tail.strip() or '(no output)'}"))

    def _stream(self, job, pipe):
        """Reads a worker's stdout: epoch lines go to `on_epoch`, the rest is kept."""
        kept = []
        for line in pipe:
            if line.startswith(EPOCH_PREFIX):
                if self.on_epoch is not None:
                    try:
                        epoch, epochs, logs = line[len(EPOCH_PREFIX):].split(" ", 2)
                        self.on_epoch(job, int(epoch), int(epochs), json.loads(logs))
                    except ValueError:
                        continue
            else:
                kept.append(line)
        return "".join(kept[-200:])

    def _stop_all(self):
        with self._procs_lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    def run(self, queue):
        free = list(self._slots)
        running = {}
        pool = ThreadPoolExecutor(len(self._slots), thread_name_prefix="xval-job")
        try:
            while True:
                while free and (job := queue.pop()) is not None:
                    gpu = free.pop(0)
                    running[pool.submit(self._launch, job, gpu)] = gpu
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    free.append(running.pop(future))
                    yield future.result()
        finally:
            self._stop_all()
            pool.shutdown(wait=True, cancel_futures=True)


def make_executor(name, *, gpus=None, jobs_per_gpu=1, backend=None, ray_address=None):
    """Returns the executor called `name`.

    Args:
        name: `inline`, `process` or `ray`.
        gpus: GPU ids for the process executor (`None`: CPU).
        jobs_per_gpu: concurrent jobs per GPU (fractional GPUs under Ray).
        backend: Keras backend of the workers.
        ray_address: Ray cluster address (`auto`, `HOST:PORT`); `None` starts a local Ray.

    Raises:
        ConfigurationError: for an unknown name (listing the valid ones), or Ray missing.
    """
    if name == "inline":
        if gpus and len(gpus) > 1:
            raise ConfigurationError(
                f"--gpus {','.join(map(str, gpus))} needs --executor process or ray (the "
                "inline executor runs one job at a time on one device)."
            )
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor(gpus or [None], jobs_per_gpu, backend)
    if name == "ray":
        from xval.ray_executor import RayExecutor

        return RayExecutor(address=ray_address, jobs_per_gpu=jobs_per_gpu, backend=backend)
    raise ConfigurationError(
        f"executor={name!r} is not an executor; expected one of {', '.join(EXECUTOR_NAMES)}."
    )


__all__ = ["EXECUTOR_NAMES", "Executor", "InlineExecutor", "JobQueue", "ProcessExecutor",
           "make_executor"]
