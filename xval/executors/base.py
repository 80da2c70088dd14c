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

import collections
import dataclasses
import threading
from collections.abc import Callable, Generator, Iterable, Mapping

from preprocessing.store import FeatureStore
from xval.core.interrupts import raise_if_interrupted
from xval.core.records import FoldResult, Job
from xval.training.fold import EpochHook, run_fold

# Workers print `EPOCH_PREFIX epoch epochs {logs}` lines that the process executor streams.
EPOCH_PREFIX = "xval-epoch "

# Jobs a warm worker process runs on the CPU before it is replaced (process and Ray
# executors), so that what a framework keeps between jobs stays bounded. A job with a GPU
# runs in a fresh worker of its own, so that the GPU memory the framework holds is returned
# when the job ends.
CPU_WORKER_JOBS = 25


def worker_jobs(gpu: bool) -> int:
    """How many jobs one worker process runs: 1 (a fresh worker) with a GPU, else
    `CPU_WORKER_JOBS` (Ray's `max_calls`, the process executor's worker reuse)."""
    return 1 if gpu else CPU_WORKER_JOBS

JobEpochHook = Callable[[Job, int, int, Mapping[str, float]], None]
"""`(job, epoch, epochs, logs) -> None`: an epoch of `job` ended."""

Results = Generator[FoldResult, None, None]
"""What `Executor.run` returns: the jobs' results as they end."""


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """What a run asks of its executor (`Executor.create` refuses what does not apply).

    Attributes:
        gpus: GPU ids given with `--gpus` or the positional GPU, or `None`.
        jobs_per_gpu: `[backend] jobs_per_gpu`.
        backend: the Keras backend of the workers.
        ray_address: `--ray-address`, or `None`.
    """

    gpus: tuple[str, ...] | None = None
    jobs_per_gpu: int = 1
    backend: str | None = None
    ray_address: str | None = None


class JobQueue:
    """The jobs waiting to start, in order. Executors `pop()` them; the scheduler may
    `cancel()` those of an instance (its fold failed) or all of them (debug stop).

    Args:
        jobs: the `Job`s, in the order they should start.
    """

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self._jobs = collections.deque(jobs)
        self._lock = threading.Lock()

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
    def create(cls, options: ExecutorOptions) -> Executor:
        """The executor for a run's `ExecutorOptions`.

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
    try:
        return run_fold(job, on_epoch=on_epoch)
    except Exception as e:  # recorded per fold: the scheduler applies the failure policy
        raise_if_interrupted()  # an interrupt that Keras turned into another error
        return FoldResult.failure(job, e)
