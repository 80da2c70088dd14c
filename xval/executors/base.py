"""Executors run `Job`s and yield `FoldResult`s: inline, in worker processes, or with Ray.

Every executor has the same contract, tested by one suite (`tests/test_executors.py`):

- `run(queue)` takes jobs from a `JobQueue` only when it can start them, and yields each
  job's `FoldResult` as the job ends (in completion order). A job that raises becomes a
  failed result; nothing is raised for it.
- Jobs the scheduler cancels (`queue.cancel(...)`) before they are taken never run.
- Closing the generator (Ctrl-C, an error in the driver, `debug_mode` stopping the run)
  stops the jobs that are running and returns.
- No executor writes result files: the recorder does, in the driver.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import threading
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from numbers import Integral

from preprocessing.store import FeatureStore
from xval.config.schema import BACKENDS
from xval.core.arguments import option
from xval.core.backend import normalize_gpu
from xval.core.constraints import Interval, check_options
from xval.core.errors import ConfigurationError
from xval.core.interrupts import raise_if_interrupted
from xval.core.network import RAY_PORT, host_port
from xval.core.records import FoldResult, Job
from xval.core.registry import Registry
from xval.executors.job_process import import_own_code
from xval.executors.job_process import settle as settle_job_process
from xval.training.fold import EpochHook, run_fold

# Workers print `EPOCH_PREFIX epoch epochs {logs}` lines that the process executor streams.
EPOCH_PREFIX = "xval-epoch "

WORKER_JOBS = 25
"""Jobs a warm worker process runs before it is replaced (the process executor's workers,
on the CPU and on a GPU; Ray's CPU workers), so that what a framework keeps between jobs
stays bounded. A worker that ran a failed job is replaced at once."""

FRESH_GPU_BACKENDS = ("tensorflow",)
"""Backends whose GPU jobs each run in a fresh worker: TensorFlow's allocator keeps the GPU
memory it took until its process ends (`clear_session` frees the tensors, not the memory),
so a warm TensorFlow worker would hold its largest job's memory and starve the other jobs
sharing its GPU. Torch returns its cache (`torch.cuda.empty_cache()`) and JAX its
executables between jobs (`xval.training.devices.release_memory`)."""


EXECUTORS: Registry[type[Executor]] = Registry("executor", setting="executor",
                                               where="xval.executors")
"""The registered executor classes, by name (`xval.executors.registry.register` adds them;
declared here, where `Execution` names its choices)."""
_AT_LEAST_ONE = Interval(Integral, 1, None, closed="left")


def worker_jobs(gpu: bool, backend: str | None = None) -> int:
    """How many jobs one worker process runs before it is retired: `WORKER_JOBS`, or 1 (a
    fresh worker per job) for a GPU job of a backend in `FRESH_GPU_BACKENDS`.

    Args:
        gpu: whether the worker's jobs run on a GPU.
        backend: the workers' Keras backend; `None`: `KERAS_BACKEND` (inherited).
    """
    backend = backend or os.environ.get("KERAS_BACKEND")
    return 1 if gpu and backend in FRESH_GPU_BACKENDS else WORKER_JOBS


def refill_first(results: Sequence[FoldResult], refill: Callable[[], None],
                 queue: JobQueue | None = None) -> Results:
    """Yields the results of the jobs that just ended so that the free slots start their
    next jobs before the driver records a result: the failed results first (the scheduler
    may cancel the waiting jobs of their instance, which must not start), then `refill()`,
    then the others. The driver's files, plots and workbook are then written while the
    next jobs train. A queue whose scheduler decides on every result
    (`JobQueue.results_first`: a search's pruner) gets them all before the refill.

    Args:
        results: the results of the jobs that ended, whose slots are free.
        refill: starts waiting jobs in the free slots.
        queue: the jobs' queue. Defaults to `None` (refill first).
    """
    hold = queue is not None and queue.results_first
    for result in results:
        if hold or not result.ok:
            yield result
    refill()
    if hold:
        return
    for result in results:
        if result.ok:
            yield result


JobEpochHook = Callable[[Job, int, int, Mapping[str, float]], None]
"""`(job, epoch, epochs, logs) -> None`: an epoch of `job` ended."""

Results = Generator[FoldResult, None, None]
"""What `Executor.run` returns: the jobs' results as they end."""


def _gpu_list(text: str) -> list[str | None]:
    try:  # each a GPU id (`normalize_gpu`), an empty one included
        return [normalize_gpu(part or "?") for part in text.split(",")]
    except ConfigurationError:
        raise argparse.ArgumentTypeError(
            f"--gpus {text!r}: expected comma-separated GPU numbers like 0,1"
        ) from None


@dataclasses.dataclass(frozen=True)
class Execution:
    """Where and how the jobs run: what a run asks of its executor, and what
    `Executor.create` is given (`create` refuses what does not apply).

    Args:
        name: a registered executor (`inline`, `process`, `ray`); `None` takes config.ini's
            `[backend] executor`, or `ray` with a `ray_address` (the positional argument
            of `Execution`).
        gpu: the GPU of this process (`CUDA_VISIBLE_DEVICES`); `None` takes the
            experiment's `gpu_ID`.
        gpus: GPU ids for the process and Ray executors. Defaults to `[gpu]`. An executor
            is given the ids the runner chose (visible ones, as strings), or `None`.
        ray_address: the Ray cluster to join (`"auto"`, `"HOST:PORT"`); `None` starts a
            local Ray instance (with the `ray` executor).
        backend: the Keras backend (`--backend`): it wins over config.ini and
            `KERAS_BACKEND`; `None`: theirs. An executor is given the backend in use.
        jobs_per_gpu: jobs that share one GPU; `None`: `[backend] jobs_per_gpu`. An
            executor is given the number.
        inherited_gpu: settled by the runner (a value given is replaced): no GPU was
            named (`gpus` is `None`) and the machine has one, which the workers inherit.

    Raises:
        ConfigurationError: for a `ray_address` with an executor other than `ray`, or one
            whose port is out of range.
    """

    name: str | None = option(None, "inline, process (worker processes) or ray (else "
                              "config)", flags=("--executor",), choices=EXECUTORS.names)
    gpu: object = option(None, "GPU id for CUDA_VISIBLE_DEVICES (-1: CPU)", flags=("gpu",),
                         nargs="?")
    gpus: Sequence[object] | None = option(None, "GPU ids for the process executor, e.g. 0,1",
                                           flags=("--gpus",), type=_gpu_list)
    ray_address: str | None = option(None, "with --executor ray: the cluster to join "
                                     "(default: start a local Ray on this machine)",
                                     flags=("--ray-address",), metavar="auto|HOST:PORT")
    backend: str | None = option(None, "Keras backend (else config.ini)", flags=("--backend",),
                                 choices=BACKENDS)
    jobs_per_gpu: int | None = option(None, constraints=[_AT_LEAST_ONE, None])
    inherited_gpu: bool = False

    def __post_init__(self) -> None:
        check_options(self)
        if self.ray_address is not None:
            if self.name not in (None, "ray"):
                raise ConfigurationError(
                    f"--ray-address needs --executor ray (got --executor {self.name}).")
            host_port(self.ray_address, RAY_PORT)  # a port out of range, at once
            object.__setattr__(self, "name", "ray")


class JobQueue:
    """The jobs waiting to start, in order. Executors `pop()` them; the scheduler may
    `cancel()` those of an instance (its fold failed) or all of them (debug stop).

    Args:
        jobs: the `Job`s, in the order they should start.
        results_first: the scheduler decides on every result, good ones too, before the
            next job may start (a search's pruner may cancel a trial's waiting folds):
            `refill_first` then refills after the results. Defaults to `False`.
    """

    def __init__(self, jobs: Iterable[Job] = (), *, results_first: bool = False) -> None:
        self._jobs = collections.deque(jobs)
        self._lock = threading.Lock()
        self.results_first = results_first

    def pop(self) -> Job | None:
        """The next job, or `None` when none is waiting."""
        with self._lock:
            return self._jobs.popleft() if self._jobs else None

    def cancel(self, instance: int | None = None) -> list[Job]:
        """Drops the waiting jobs of `instance` (every waiting job when `None`).

        Returns:
            The dropped jobs.
        """
        with self._lock:
            dropped = [j for j in self._jobs if instance is None or j.instance == instance]
            self._jobs = collections.deque(j for j in self._jobs if j not in dropped)
        return dropped

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)


class Executor:
    """Base of the executors: see the module docstring for the contract.

    A subclass sets `name`, implements `create` and `run`, and is registered with
    `xval.executors.registry.register`.
    """

    name = "base"
    summary = ""
    """What the executor does, in a few words (config.ini's notes and the parameter
    reference list it beside the name)."""

    # Set by the scheduler: called as epochs end, where the executor can see them (inline:
    # in this process; process: streamed from the workers; ray: through a Ray queue).
    on_epoch: JobEpochHook | None = None

    @classmethod
    def create(cls, options: Execution) -> Executor:
        """The executor for a run's `Execution` (as the runner settles it: `gpus` the ids
        chosen, `backend` the one in use, `jobs_per_gpu` a number).

        Raises:
            ConfigurationError: for options the executor cannot honour.
        """
        raise NotImplementedError

    def start(self) -> None:
        """Acquires what the executor needs (a Ray connection); idempotent."""

    def preflight(self, store: FeatureStore) -> None:
        """Checks, before any job runs, that jobs on `store` can run where they will."""

    def run(self, queue: JobQueue) -> Results:
        """Runs the queue's jobs, yielding each result as its job ends."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases what `start` acquired."""

    @property
    def slots(self) -> int:
        """How many jobs run at once."""
        return 1

    def job_hook(self, job: Job) -> EpochHook | None:
        """The epoch hook of one job run where this executor sees its epochs: `on_epoch`
        with the job bound, or `None` when nobody listens."""
        on_epoch = self.on_epoch
        if on_epoch is None:
            return None

        def hook(epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
            on_epoch(job, epoch, epochs, logs)

        return hook


def run_job(job: Job, on_epoch: EpochHook | None = None) -> FoldResult:
    """Runs one job here; a job that raises becomes a failed `FoldResult`."""
    raise_if_interrupted()  # a Ctrl-C that Keras swallowed in the previous job
    settle_job_process()  # a job process's first job: TensorFlow kept out, modules frozen
    try:
        import_own_code(job)  # the experiment's own builder or task, in a worker or Ray task
        return run_fold(job, on_epoch=on_epoch)
    except Exception as e:  # recorded per fold: the scheduler applies the failure policy
        raise_if_interrupted()  # an interrupt that Keras turned into another error
        return FoldResult.failure(job, e)
