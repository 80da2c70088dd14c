"""The scheduler: feeds jobs to an executor and applies the failure policy.

The policy is the same for every executor:

- A failed fold cancels the folds of its instance that have not started; folds of that
  instance already running finish and are recorded.
- With `debug_mode`, the first failed fold cancels every waiting job, stops the running ones,
  and raises `TrainingError` with the fold's traceback.
- Each instance's summary (and the workbook) is written once, when its last fold has ended
  (or been cancelled), so a summary never goes stale as later folds land.
"""

import sys
import threading

from xval import tasks
from xval.core.errors import TrainingError
from xval.core.interrupts import raise_if_interrupted
from xval.executors.base import JobQueue


class Scheduler:
    """Runs jobs through an executor, recording each result as it arrives.

    Args:
        executor: an `xval.executors.Executor`.
        recorder: the `xval.recorder.Recorder` that writes the result files.
        debug: stop the whole run at the first failed fold. Defaults to `False`.
        out: print function for progress lines. Defaults to `print`.
        on_result: optional callback `(FoldResult) -> bool` after each recorded fold; a
            true return cancels the instance's folds that have not started (pruning).
        progress: show a progress bar over all jobs on stderr (the current instance, fold
            and epoch, elapsed time and ETA); progress lines are printed above it.
            Defaults to `False`.
        epoch_lines: also print one labelled line per epoch (`-v`). Defaults to `False`.
    """

    def __init__(self, executor, recorder, *, debug=False, out=print, on_result=None,
                 progress=False, epoch_lines=False):
        self.executor = executor
        self.recorder = recorder
        self.debug = debug
        self.out = out
        self.on_result = on_result
        self.progress = progress
        self.epoch_lines = epoch_lines
        self._bar = None
        self._lock = threading.Lock()

    def _say(self, text):
        if self._bar is not None:
            with self._bar.external_write_mode():
                self.out(text)
        else:
            self.out(text)

    def _on_epoch(self, job, epoch, epochs, logs):
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(f"instance {job.instance} fold {job.fold}: epoch "
                                          f"{epoch}/{epochs}")
            if self.epoch_lines:
                values = " ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items())
                                  if k != "learning_rate")
                self._say(f"instance {job.instance} fold {job.fold} epoch {epoch}/{epochs}: "
                          f"{values}")

    def run(self, jobs_by_instance):
        """Runs the jobs.

        Args:
            jobs_by_instance: instance id -> list of `Job`s, in run order.

        Returns:
            The set of instance ids with a failed fold.

        Raises:
            TrainingError: with `debug`, at the first failed fold.
        """
        queue = JobQueue(job for jobs in jobs_by_instance.values() for job in jobs)
        remaining = {k: len(jobs) for k, jobs in jobs_by_instance.items()}
        failed, finished = set(), set()
        total = sum(remaining.values())
        if self.progress and total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="fold", desc="folds", file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)
        self.executor.on_epoch = self._on_epoch if (self._bar or self.epoch_lines) else None
        results = self.executor.run(queue)
        try:
            for result in results:
                k = result.instance
                self.recorder.record_fold(result)
                raise_if_interrupted()  # swallowed after the fold's training: the fold is kept
                remaining[k] -= 1
                self._report(result)
                if self._bar is not None:
                    self._bar.update(1)
                if not result.ok:
                    failed.add(k)
                    dropped = len(queue.cancel(k))
                    remaining[k] -= dropped
                    if self._bar is not None and dropped:
                        self._bar.total -= dropped
                        self._bar.refresh()
                    if self.debug:
                        queue.cancel()
                        self._finish(k, finished)
                        raise TrainingError(
                            f"instance {k} fold {result.fold} failed (debug_mode=True): "
                            f"{result.message}\n{result.traceback}"
                        ) from result.exception
                if self.on_result is not None and self.on_result(result):
                    remaining[k] -= len(queue.cancel(k))  # e.g. a search pruned the trial
                if remaining[k] == 0:
                    self._finish(k, finished)
        finally:
            results.close()  # stops running jobs when the loop ended early
            self.executor.on_epoch = None
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        for k in jobs_by_instance:  # instances whose jobs never came back (interrupted)
            if k not in finished and remaining[k] < len(jobs_by_instance[k]):
                self._finish(k, finished)
        return failed

    def _finish(self, instance, finished):
        if instance in finished:
            return
        finished.add(instance)
        self.recorder.finish_instance(instance)
        self.recorder.rebuild_report()

    def _report(self, result):
        k, i = result.instance, result.fold
        if result.ok:
            m = result.metrics
            key = tasks.get(result.task_type or tasks.infer(metrics=m["test"])).selection_metric
            nan = float("nan")
            self._say(f"instance {k} fold {i}: {key} train {m['train'].get(key, nan):.3f} "
                     f"val {m['val'].get(key, nan):.3f} test {m['test'].get(key, nan):.3f} "
                     f"(best epoch {result.best_epoch}/{result.epochs_run}, "
                     f"{result.timings['total_seconds']:.1f}s)")
        else:
            self._say(f"instance {k} fold {i}: FAILED: {result.message}")
