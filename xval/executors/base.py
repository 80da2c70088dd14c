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
import threading

from xval.core.interrupts import raise_if_interrupted
from xval.core.records import FoldResult
from xval.training.fold import run_fold

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
    """Base of the executors: see the module docstring for the contract.

    A subclass sets `name`, implements `create` and `run`, and is registered with
    `xval.executors.registry.register`.
    """

    name = "base"

    @classmethod
    def create(cls, options):
        """The executor for a run's `ExecutorOptions` (`xval.executors.registry`).

        Raises:
            ConfigurationError: for options the executor cannot honour.
        """
        raise NotImplementedError

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


def run_job(job, on_epoch=None):
    """Runs one job here; a job that raises becomes a failed `FoldResult`."""
    raise_if_interrupted()  # a Ctrl-C that Keras swallowed in the previous job
    try:
        return run_fold(job, on_epoch=on_epoch)
    except Exception as e:  # recorded per fold: the scheduler applies the failure policy
        raise_if_interrupted()  # an interrupt that Keras turned into another error
        return FoldResult.failure(job, e)


