"""The scheduler: feeds jobs to an executor and applies the failure policy.

The policy is the same for every executor:

- A failed fold cancels the folds of its instance that have not started; folds of that
  instance already running finish and are recorded.
- With `debug_mode`, the first failed fold cancels every waiting job, stops the running ones,
  and raises `TrainingError` with the fold's traceback.
- Each instance's summary (and the workbook) is written once, when its last fold has ended
  (or been cancelled), so a summary never goes stale as later folds land.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tqdm.auto import tqdm

from xval import tasks
from xval.core.errors import TrainingError
from xval.core.interrupts import raise_if_interrupted, stdout_closed
from xval.core.records import FoldResult, Job
from xval.core.terminal import is_terminal
from xval.executors.base import Executor, JobQueue
from xval.running.recorder import Out, Recorder

EPOCH_LINE_SECONDS = 30.0
"""Without a terminal (a log file, a pipe) and without `-v`: a line at the end of the run's
first epoch, then at the end of an epoch when this many seconds have passed since the last
such line (one per epoch when epochs are slower; never more than one per 30 s)."""


class Scheduler:
    """Runs jobs through an executor, recording each result as it arrives.

    Args:
        executor: an `xval.executors.Executor`.
        recorder: the `xval.running.recorder.Recorder` that writes the result files.
        debug: stop the whole run at the first failed fold. Defaults to `False`.
        out: print function for progress lines. Defaults to `print`.
        on_result: optional callback `(FoldResult) -> bool` after each recorded fold; a
            true return cancels the instance's folds that have not started (pruning).
        progress: show a progress bar over all jobs on stderr (the current instance, fold
            and epoch, elapsed time and ETA); progress lines are printed above it. When
            stderr is not a terminal (a log file, a pipe, a batch job), no bar: each fold's
            line ends with the folds done, the elapsed time and the ETA instead, and an
            epoch line comes at the end of the first epoch, then at most every
            `EPOCH_LINE_SECONDS` (at an epoch's end), so a long fold is never silent.
            Defaults to `False`.
        epoch_lines: also print one labelled line per epoch (`-v`). Defaults to `False`.
    """

    def __init__(self, executor: Executor, recorder: Recorder, *, debug: bool = False,
                 out: Out = print, on_result: Callable[[FoldResult], bool] | None = None,
                 progress: bool = False, epoch_lines: bool = False) -> None:
        self.executor = executor
        self.recorder = recorder
        self.debug = debug
        self.out = out
        self.on_result = on_result
        self.progress = progress
        self.epoch_lines = epoch_lines
        self._bar: Any = None
        self._plain: tuple[int, float] | None = None  # (total, start) without a terminal
        self._last_epoch_line: float | None = None  # when the last plain epoch line came
        self._done = 0
        self._lock = threading.Lock()
        self._remaining: dict[int, int] = {}
        self._failed: set[int] = set()
        self._finished: set[int] = set()
        self._cache_said: set[str] = set()  # what the compile cache did, said once a run

    def _say(self, text: str) -> None:
        """Prints a progress line; a reader of stdout that went away (`| head`) ends the
        run as an interrupt does (`stdout_closed`), not as a failure of the fold whose epoch
        it reported."""
        try:
            if self._bar is not None:
                with self._bar.external_write_mode():
                    self.out(text)
            else:
                self.out(text)
        except BrokenPipeError:
            stdout_closed()

    def _on_epoch(self, job: Job, epoch: int, epochs: int, logs: Mapping[str, float]
                  ) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(f"instance {job.instance} fold {job.fold}: epoch "
                                          f"{epoch}/{epochs}")
            values = " ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items())
                              if k != "learning_rate")
            line = f"instance {job.instance} fold {job.fold} epoch {epoch}/{epochs}: {values}"
            if self.epoch_lines:
                self._say(line)
            elif self._plain is not None and self._epoch_line_due():
                self._say(f"{line} [{_clock(time.perf_counter() - self._plain[1])} elapsed]")

    def _epoch_line_due(self) -> bool:
        """Whether a plain epoch line is due (see `EPOCH_LINE_SECONDS`); if so, now is the
        time of the last one."""
        now = time.perf_counter()
        if self._last_epoch_line is not None \
                and now - self._last_epoch_line < EPOCH_LINE_SECONDS:
            return False
        self._last_epoch_line = now
        return True

    def run(self, jobs_by_instance: Mapping[int, Sequence[Job]]) -> set[int]:
        """Runs the jobs.

        Args:
            jobs_by_instance: instance id -> list of `Job`s, in run order.

        Returns:
            The set of instance ids with a failed fold.

        Raises:
            TrainingError: with `debug`, at the first failed fold.
        """
        queue = JobQueue((job for jobs in jobs_by_instance.values() for job in jobs),
                         results_first=self.on_result is not None)
        self._remaining = {k: len(jobs) for k, jobs in jobs_by_instance.items()}
        self._failed, self._finished = set(), set()
        total = sum(self._remaining.values())
        self._done = 0
        if self.progress and total and is_terminal(sys.stderr):
            self._bar = tqdm(total=total, unit="fold", desc="folds", file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)
        elif self.progress and total:
            self._plain = (total, time.perf_counter())
            self._last_epoch_line = None
        self.executor.on_epoch = self._on_epoch if (self._bar or self.epoch_lines
                                                    or self._plain) else None
        results = self.executor.run(queue)
        try:
            for result in results:
                self._handle(result, queue)
        finally:
            results.close()  # stops running jobs when the loop ended early
            self.executor.on_epoch = None
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            self._plain = None
        for k, jobs in jobs_by_instance.items():  # instances whose jobs never came back
            if k not in self._finished and self._remaining[k] < len(jobs):
                self._finish(k)
        return set(self._failed)

    def _handle(self, result: FoldResult, queue: JobQueue) -> None:
        """Records one result and applies the policy to its instance."""
        k = result.instance
        self.recorder.record_fold(result)
        raise_if_interrupted()  # swallowed after the fold's training: the fold is kept
        self._remaining[k] -= 1
        self._done += 1
        self._report(result)
        if self._bar is not None:
            self._bar.update(1)
        if not result.ok:
            self._on_failure(result, queue)
        if self.on_result is not None and self.on_result(result):
            self._remaining[k] -= len(queue.cancel(k))  # e.g. a search pruned the trial
        if self._remaining[k] == 0:
            self._finish(k)

    def _on_failure(self, result: FoldResult, queue: JobQueue) -> None:
        """Cancels the failed fold's instance (every job with `debug`, then raises)."""
        k = result.instance
        self._failed.add(k)
        dropped = len(queue.cancel(k))
        self._remaining[k] -= dropped
        if self._plain is not None and dropped:
            self._plain = (self._plain[0] - dropped, self._plain[1])
        if self._bar is not None and dropped:
            self._bar.total -= dropped
            self._bar.refresh()
        if self.debug:
            queue.cancel()
            self._finish(k)
            raise TrainingError(
                f"instance {k} fold {result.fold} failed (debug_mode=True): "
                f"{result.message}\n{result.traceback}"
            ) from result.exception

    def _finish(self, instance: int) -> None:
        if instance in self._finished:
            return
        self._finished.add(instance)
        self.recorder.finish_instance(instance)
        self.recorder.results_changed()

    def _eta(self) -> str:
        """` [3/8 folds, 0:42 elapsed, ETA 1:10]` without a terminal, else `""`."""
        if self._plain is None:
            return ""
        total, start = self._plain
        elapsed = time.perf_counter() - start
        left = max(total - self._done, 0)
        eta = _clock(elapsed / self._done * left) if self._done else "?"
        return f" [{self._done}/{total} folds, {_clock(elapsed)} elapsed, ETA {eta}]"

    def _report(self, result: FoldResult) -> None:
        k, i = result.instance, result.fold
        for kind, line in sorted((result.cache_notes or {}).items()):
            if kind not in self._cache_said:  # each kind once a run, whichever job saw it
                self._cache_said.add(kind)
                self._say(line)
        if not result.ok or not result.metrics:
            self._say(f"instance {k} fold {i}: FAILED: {result.message}{self._eta()}")
            return
        self._say(f"instance {k} fold {i}: {fold_line_scores(result)} (best epoch "
                  f"{result.best_epoch}/{result.epochs_run}, {result.seconds:.1f}s"
                  f"{compile_note(result)}){self._eta()}")
        if result.late_best_epoch:
            self._say(result.late_epoch_note())


def compile_note(result: FoldResult) -> str:
    """`, compiled 3 programs in 5.2s`, `, compiled: 0.4s, all cached` or `""` (a fold
    whose steps ran eagerly, or one recorded without it)."""
    done = result.compilation
    if not result.compiled or not done:
        return ""
    if not done.get("programs"):
        return f", compiled: {done.get('seconds', 0):.1f}s, all cached"
    return f", compiled {int(done['programs'])} programs in {done.get('seconds', 0):.1f}s"


def fold_line_scores(result: FoldResult) -> str:
    """The scores of a fold line, each level named: `clip accuracy train 0.950 val 0.900
    test 0.825; segment test 0.718` where files are cut into segments (the clip level
    first, as the headline), else `segment accuracy train ... val ... test ...`
    (detection: `recording` and `window`)."""
    m = result.metrics or {}
    task = tasks.get(result.task_type or tasks.DEFAULT)
    key, names, nan = task.selection_metric, task.level_names, float("nan")
    clip = result.clip_metrics or {}
    head, level = (clip, "clip") if clip.get("test", {}).get(key) is not None \
        else (m, "segment")
    text = (f"{names[level]} {key} train {head.get('train', {}).get(key, nan):.3f} "
            f"val {head.get('val', {}).get(key, nan):.3f} "
            f"test {head.get('test', {}).get(key, nan):.3f}")
    if level == "clip":
        text += f"; {names['segment']} test {m.get('test', {}).get(key, nan):.3f}"
    return text


def _clock(seconds: float) -> str:
    """`1:05:09` or `4:09`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
