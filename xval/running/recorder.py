"""The recorder: a run's results, written through the results store and told to listeners.

Fold files, models, predictions, error files, parameter records, instance summaries, final
models, trial records and the experiment-level files are written by the results store
handed in (`results_store`: the process's `xval.core.storage.RESULTS_STORE` unless a
caller gives another), in the driver, whatever executor trained the folds; the recorder
says what to write and when, and what the files already there mean for the run (the folds
done, a fold to rerun). What is derived from the records (plots, the workbook,
an experiment tracker) is made by listeners (`RecorderListener`), handed the records the
recorder has: never re-read.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from xval import tasks
from xval.config.loader import Config
from xval.core.errors import ConfigurationError
from xval.core.layout import ExperimentLayout, InstanceLayout
from xval.core.parameters import InstanceParams
from xval.core.records import (
    EnsembleRecord,
    FoldResult,
    FoldsManifest,
    InstanceStatus,
    InstanceSummary,
    NestedRecord,
    ParamsRecord,
    RunCommand,
    TrialRecord,
)
from xval.core.storage import InstanceFolds, ResultsStore
from xval.report.results import ExperimentResults

Out = Callable[..., None]


class RecorderListener(Protocol):
    """What a listener of the recorder may define (every method is optional).

    - `on_fold(result: FoldResult, inst_dir: Path)`: a fold's files were written.
    - `on_instance(result: InstanceResult)`: an instance's summary was written (its last
      fold ended, or it was resumed complete); `result` holds its folds, summary,
      parameters and folder, read once.
    - `on_refit(result: FoldResult, inst_dir: Path)`: a final model was written.
    - `on_results(results: ExperimentResults)`: the results changed; views of the whole
      experiment (the workbook) may be rebuilt from `results`.

    Before the recorder starts, the run reads two more (`xval.running.runner`):

    - `requires`: `(what, extra)` pairs naming the optional packages the listener needs
      (`xval.core.optional.EXTRAS`), checked with the run's other packages before
      anything trains (the dry run too; `xval.running.packages`);
    - `on_run_begin(results_store)`: every check passed and the run is about to train (not
      in a dry run), reading and writing through `results_store`; what it raises stops the
      run before any fold trains (MLflow connects here).

    A listener that raises once the recorder has started is reported and dropped; it never
    stops the run.
    """


def folds_on_disk(layout: InstanceLayout, num_folds: int, *, params_hash: str | None,
                  task_type: str | None, results_store: ResultsStore) -> InstanceFolds:
    """The fold files of an instance within `num_folds`, read and checked to resume from
    (`ResultsStore.resume_folds`, with the ranges of `task_type`: `None` for the folds'
    own task)."""
    return results_store.resume_folds(layout, num_folds, params_hash, tasks.rules(task_type))


class Recorder:
    """Writes one experiment's result files through the results store, and tells its
    listeners.

    Args:
        layout: the `experiment_<N>` folder's paths.
        config: the run's `Config`, or `None`.
        num_folds: the number of folds of the experiment.
        out: print function for progress lines. Defaults to `print`.
        listeners: objects told about what was recorded (see `RecorderListener`), in order.
        task_type: the experiment's task, written into every `params.json` (the report
            reads it there). Defaults to `None` (not written).
        results: the experiment's results to keep up to date (several recorders of one
            run share them); `None` reads them when first needed.
        results_store: the results store every file is read and written through (the
            plan's, `Plan.results_store`).
    """

    def __init__(self, layout: ExperimentLayout, config: Config | None, num_folds: int, *,
                 out: Out = print, listeners: Iterable[object] = (),
                 task_type: str | None = None,
                 results: ExperimentResults | None = None, results_store: ResultsStore) -> None:
        self.layout = layout
        self.task_type = task_type
        self.config = config
        self.num_folds = num_folds
        self.out = out
        self.listeners = list(listeners)
        self.results_store = results_store
        self._results = results
        self._unsaid = False  # a fold recorded since the derived files were last made

    @property
    def results(self) -> ExperimentResults:
        """The experiment's results as the run keeps them: read once, then updated as the
        recorder writes (`ExperimentResults.reload`, `refresh`)."""
        if self._results is None:
            self._results = ExperimentResults(self.layout.root, results_store=self.results_store,
                                              num_folds=self.num_folds)
        return self._results

    def _notify(self, event: str, *args: Any) -> None:
        for listener in list(self.listeners):
            method = getattr(listener, event, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception as e:  # a tracker must never cost a result  # noqa: BLE001
                print(f"error: {type(listener).__name__} failed ({type(e).__name__}: {e}); "
                      "it is disabled for the rest of this run.", file=sys.stderr)
                self.listeners.remove(listener)

    def instance_layout(self, instance: int) -> InstanceLayout:
        return self.layout.instance(instance)

    def claim(self, instance: int) -> FileLock | None:
        """Takes the lock a runner holds while it runs an instance (outside the instance
        folder, which --overwrite moves aside), without waiting: the one way to try it.

        Returns:
            The held lock (the caller releases it), or `None` when another runner holds it.
        """
        held = self.results_store.instance_lock(self.layout.instance(instance))
        try:
            held.acquire(timeout=0)
        except Timeout:
            return None
        return held

    @contextlib.contextmanager
    def holding(self, instance: int, refusal: str) -> Iterator[None]:
        """Holds the instance's lock (`claim`) while the block runs.

        Args:
            instance: the instance id.
            refusal: the error's words when another runner holds it (what to do then).

        Raises:
            ConfigurationError: `refusal`, when another runner holds the lock.
        """
        held = self.claim(instance)
        if held is None:
            raise ConfigurationError(refusal)
        try:
            yield
        finally:
            held.release()

    def begin_experiment(self, manifest: FoldsManifest, description: str,
                         dataset_info: Mapping[str, Any], *, script: str | None,
                         config_path: str | Path | None, backend: str,
                         command: RunCommand | None = None) -> None:
        """Writes the experiment-level files (`ResultsStore.begin_experiment`): the planned
        folds, the description, the store's description, the code snapshot of `script`,
        `config_path` and `backend`, and the run's `command`.

        Raises:
            ResultsConflictError: when `folds.json` changed under this run.
        """
        self.results_store.begin_experiment(self.layout, manifest, description, dataset_info,
                                    script=script, config_path=config_path, backend=backend,
                                    command=command, out=self.out)

    def results_changed(self) -> None:
        """Tells the listeners that the experiment's results changed (`on_results`), with
        the results refreshed (only instances whose files changed are read again)."""
        self._notify("on_results", self.results.refresh())
        self._unsaid = False

    def begin_instance(self, instance: int, params: InstanceParams, params_hash: str,
                       overwrite: bool, dataset_info: Mapping[str, Any] | None = None,
                       overrides: Mapping[str, Any] | None = None) -> list[int]:
        """Prepares an instance folder (`ResultsStore.begin_instance`: its `params.json`,
        the folder set aside with `overwrite`); returns the folds already done. A fold file
        that cannot be believed is named, with why, and its fold is rerun.

        Args:
            instance: the instance id.
            params: its resolved parameters.
            params_hash: their hash.
            overwrite: replace its results.
            dataset_info: the description of the instance's own store (its `dataset`),
                written as `instance_<k>/dataset.json`; `None` for the experiment's.
            overrides: the run's `--set` values, recorded in `params.json` (what `--refit`
                resolves the instance with). Defaults to `None`: none.

        Returns:
            The sorted list of fold indices already done.
        """
        layout = self.instance_layout(instance)
        record = ParamsRecord(instance=instance, hash=params_hash, params=params.to_dict(),
                              task_type=self.task_type, overrides=dict(overrides or {}))
        folds = self.results_store.begin_instance(layout, record, num_folds=self.num_folds,
                                          rules=tasks.rules(self.task_type),
                                          overwrite=overwrite, dataset_info=dataset_info,
                                          out=self.out)
        for i, reason in folds.said(layout).items():
            self.out(f"instance {instance} fold {i}: {reason}; it will be rerun.")
        return folds.done

    def record_fold(self, result: FoldResult) -> None:
        """Writes one fold's files (`ResultsStore.write_fold`) and tells the listeners."""
        layout = self.instance_layout(result.instance)
        self.results_store.write_fold(layout, result)
        self._unsaid = True
        self._notify("on_fold", result, layout.root)

    def interrupted(self, instances: Iterable[int]) -> None:
        """After Ctrl-C or SIGTERM (the run's instances still held): each of `instances`
        whose --overwrite did not complete gets its previous results back
        (`ResultsStore.restore_previous`), and the derived files (the workbook) are made
        again from what is now on disk, where a fold landed since they were last made.
        What is left is what the run found, plus the folds it finished: the same command
        resumes it."""
        restored = [self.results_store.restore_previous(self.instance_layout(k))
                    for k in instances]
        if any(restored) or self._unsaid:
            self.results_changed()

    def record_refit(self, result: FoldResult, fold_best_epochs: Sequence[int | None]
                     ) -> Path:
        """Writes the final model of an instance (`ResultsStore.write_final`) and tells the
        listeners; returns the path of `final.keras`."""
        layout = self.instance_layout(result.instance)
        path = self.results_store.write_final(layout, result, fold_best_epochs)
        self._notify("on_refit", result, layout.root)
        return path

    def record_trial(self, record: TrialRecord) -> None:
        """Writes the `trial.json` of the instance a search trial made."""
        self.results_store.write(self.instance_layout(record.instance).trial_file, record)

    def record_nested(self, instance: int, record: NestedRecord) -> None:
        """Writes the `nested.json` of the instance holding a nested search's outer
        scores: what each outer fold's inner search chose."""
        self.results_store.write(self.instance_layout(instance).nested_file, record)

    def record_ensemble(self, instance: int, params: ParamsRecord, record: EnsembleRecord,
                        folds: Sequence[FoldResult], overwrite: bool = False
                        ) -> InstanceSummary:
        """Writes an ensemble of instances (`ResultsStore.write_ensemble`: its parameters,
        its `ensemble.json`, its fold files and predictions), tells the listeners of every
        fold, then finishes it as any instance (`finish_instance`).

        Raises:
            ResultsConflictError: when the folder holds other results and not `overwrite`.
        """
        layout = self.instance_layout(instance)
        self.results_store.write_ensemble(layout, params, record, list(folds),
                                          overwrite=overwrite, out=self.out)
        for result in folds:
            self._notify("on_fold", result, layout.root)
        return self.finish_instance(instance)

    def finish_instance(self, instance: int) -> InstanceSummary:
        """Writes the instance's summary from its believable fold files (those that are not
        are listed in the summary's `invalid`) and hands the listeners the instance as read
        (`on_instance`). When the instance is complete, the folder set aside by
        --overwrite is removed.

        Returns:
            The summary.
        """
        result = self.results.reload(instance)
        summary = result.summary
        self.results_store.write_summary(self.instance_layout(instance), summary,
                                 complete=summary.status == InstanceStatus.COMPLETE.value)
        self._notify("on_instance", result)
        return summary
