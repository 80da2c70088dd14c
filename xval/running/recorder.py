"""The recorder: the one writer of an experiment's result files.

Fold files, models, predictions, error files, parameter records, instance summaries, final
models, trial records and the experiment-level files are written here, by the driver,
whatever executor trained the folds, as the typed records of `xval.core.records` at the
paths of `xval.core.layout`. Every file is written atomically, the model before the fold
file that records its size and hash, so a fold is done exactly when its `fold_<i>.json` is
a believable `ok` record (`xval.core.records.check_fold`) beside its `.keras`.

The recorder reads nothing itself: what it writes goes into the process's results reader
(`xval.core.reader.READER`), so that nobody reads it back from disk, and what it must know of
the files already there (the folds done, an instance's summary) it asks the reader. What is
derived from the records (plots, the workbook, an experiment tracker) is made by listeners
(`RecorderListener`), handed the records the recorder has: never re-read.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock

from xval import tasks
from xval.config.loader import Config
from xval.core.errors import ResultsConflictError
from xval.core.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    json_text,
    lock,
)
from xval.core.hashing import seal
from xval.core.layout import INSTANCE_OUTPUT, ExperimentLayout, InstanceLayout
from xval.core.outputs import remove_output
from xval.core.parameters import InstanceParams
from xval.core.reader import MANIFEST_FIX, READER, FoldCheck, InstanceFolds, ResultsReader
from xval.core.records import (
    CommandLog,
    FinalModelRecord,
    FoldResult,
    FoldsManifest,
    InstanceStatus,
    InstanceSummary,
    NestedRecord,
    ParamsRecord,
    RunCommand,
    TrialRecord,
)
from xval.core.snapshot import write_snapshot
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

    A listener that raises is reported and dropped; it never stops the run.
    """


def folds_on_disk(layout: InstanceLayout, num_folds: int, *, params_hash: str | None,
                  task_type: str | None, reader: ResultsReader = READER) -> InstanceFolds:
    """The fold files of an instance within `num_folds`, read and checked to resume from:
    an `ok` fold needs its model, trained with the instance's parameters (`params_hash`),
    with metrics in the task's ranges (`FoldCheck`).

    Args:
        layout: the instance's folder.
        num_folds: the experiment's number of folds.
        params_hash: the instance's parameter hash, or `None` not to check it.
        task_type: the task whose metric ranges apply, or `None` (the folds' own).
        reader: the results reader. Defaults to the process's.
    """
    rules = tasks.rules(task_type)
    return reader.folds(layout, num_folds, FoldCheck(layout.id, params_hash, rules=rules,
                                                     model_required=True))


class Recorder:
    """Writes one experiment's result files.

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
    """

    def __init__(self, layout: ExperimentLayout, config: Config | None, num_folds: int, *,
                 out: Out = print, listeners: Iterable[object] = (),
                 task_type: str | None = None,
                 results: ExperimentResults | None = None) -> None:
        self.layout = layout
        self.task_type = task_type
        self.config = config
        self.num_folds = num_folds
        self.out = out
        self.listeners = list(listeners)
        self.reader = READER
        self._results = results

    @property
    def results(self) -> ExperimentResults:
        """The experiment's results as the run keeps them: read once, then updated as the
        recorder writes (`ExperimentResults.reload`, `refresh`)."""
        if self._results is None:
            self._results = ExperimentResults(self.layout.root, reader=self.reader,
                                              num_folds=self.num_folds)
        return self._results

    def _write(self, path: Path, record: Any) -> None:
        """Writes a record as JSON, atomically, sealed with its content hash
        (`xval.core.hashing.seal`: the reader names the file if it is edited), and hands it
        to the reader."""
        atomic_write_json(path, seal(json.loads(json_text(record.to_dict()))))
        self.reader.remember(path, record)

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

    def instance_lock(self, instance: int) -> FileLock:
        """The lock a runner holds while it runs an instance (outside the instance folder,
        which --overwrite moves aside)."""
        return lock(self.layout.instance(instance).root)

    # -- the experiment ----------------------------------------------------------------

    def begin_experiment(self, manifest: FoldsManifest, description: str,
                         dataset_info: Mapping[str, Any], *, script: str | None,
                         config_path: str | Path | None, backend: str,
                         command: RunCommand | None = None) -> None:
        """Writes the experiment-level files, under the experiment's lock.

        Args:
            manifest: the planned folds, written to `folds.json` (or checked against the
                one there).
            description: the text of the description file.
            dataset_info: the store's description with its path, written as the
                experiment's `dataset.json` (what prediction needs to extract features as
                the dataset did).
            script: the experiment script, for the code snapshot (`None`: none).
            config_path: the run's config.ini, for the snapshot.
            backend: the Keras backend, for the snapshot.
            command: the run's command line and `--set` values, appended to
                `code/commands.json` (`None`: not recorded).

        Raises:
            ResultsConflictError: when `folds.json` changed under this run.
        """
        layout = self.layout
        layout.root.mkdir(parents=True, exist_ok=True)
        with lock(layout.lock_target):
            if not layout.folds_file.exists():
                self._write(layout.folds_file, manifest)
            elif self.reader.require(layout.folds_file, FoldsManifest.from_dict,
                                     MANIFEST_FIX).hash != manifest.hash:
                raise ResultsConflictError(f"{layout.folds_file} changed under this run.")
            atomic_write_text(layout.description_file, description)
            atomic_write_json(layout.dataset_file, dict(dataset_info))
            write_snapshot(layout.code_dir, script=script, config_path=config_path,
                           backend=backend)
            if command is not None:
                self._append_command(command)

    def _append_command(self, command: RunCommand) -> None:
        """Appends the run to `code/commands.json`; a log that cannot be read is kept aside
        as `commands.json.unreadable` (said), and a new one begun."""
        path = self.layout.commands_file
        log, why = self.reader.read_record(path, CommandLog.from_dict)
        if why:
            path.replace(path.with_name(path.name + ".unreadable"))
            self.out(f"{path} {why}; kept as {path.name}.unreadable, a new log begun.")
        self._write(path, (log or CommandLog()).appended(command))

    def results_changed(self) -> None:
        """Tells the listeners that the experiment's results changed (`on_results`), with
        the results refreshed (only instances whose files changed are read again)."""
        self._notify("on_results", self.results.refresh())

    # -- instances ---------------------------------------------------------------------

    def begin_instance(self, instance: int, params: InstanceParams, params_hash: str,
                       overwrite: bool, dataset_info: Mapping[str, Any] | None = None,
                       overrides: Mapping[str, Any] | None = None) -> list[int]:
        """Prepares an instance folder; returns the folds already done.

        With `overwrite`, an existing instance folder is moved aside to
        `instance_<k>.previous` (kept until the new results complete, so an interrupted or
        failed overwrite never loses the old results); a folder already aside from an
        earlier, unfinished overwrite is kept and the unfinished one is dropped. A fold
        file that cannot be believed is named, with why, and its fold is rerun.

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
        if overwrite and layout.root.exists():
            self._set_aside(layout)
        layout.root.mkdir(parents=True, exist_ok=True)
        if dataset_info is not None:
            atomic_write_json(layout.dataset_file, dict(dataset_info))
        record = ParamsRecord(instance=instance, hash=params_hash, params=params.to_dict(),
                              task_type=self.task_type, overrides=dict(overrides or {}))
        self._write(layout.params_file, record)
        folds = folds_on_disk(layout, self.num_folds, params_hash=params_hash,
                              task_type=self.task_type, reader=self.reader)
        for i, reason in folds.said(layout).items():
            self.out(f"instance {instance} fold {i}: {reason}; it will be rerun.")
        if len(folds.done) < self.num_folds:
            layout.error_file.unlink(missing_ok=True)
        return folds.done

    def _set_aside(self, layout: InstanceLayout) -> None:
        aside = layout.previous
        if aside.exists():
            remove_output(layout.root, INSTANCE_OUTPUT)
        else:
            layout.root.rename(aside)
        self.out(f"instance {layout.id}: previous results moved to {aside.name} until the "
                 "new ones complete.")

    def record_fold(self, result: FoldResult) -> None:
        """Writes one fold's files: the model, the predictions, classifier and plot data,
        then the fold file (or the error file of a failed fold, then its fold file)."""
        layout = self.instance_layout(result.instance)
        layout.root.mkdir(parents=True, exist_ok=True)
        i = result.fold
        if result.ok:
            if result.model_bytes is not None:
                model = layout.fold_model(i)
                atomic_write_bytes(model, result.model_bytes)
                result.model_size = len(result.model_bytes)
                result.model_sha256 = hashlib.sha256(result.model_bytes).hexdigest()
                self.reader.remember_digest(model, result.model_sha256)
            if result.predictions_csv is not None:
                atomic_write_text(layout.predictions(i), result.predictions_csv)
            if result.classifier_bytes is not None:
                atomic_write_bytes(layout.fold_classifier(i), result.classifier_bytes)
            if result.plot_data is not None:
                atomic_write_json(layout.plot_data(i), result.plot_data)
        else:
            atomic_write_text(layout.error_file, result.traceback or result.message)
        self._write(layout.fold_file(i), result)
        self._notify("on_fold", result, layout.root)

    def record_refit(self, result: FoldResult, fold_best_epochs: Sequence[int | None]
                     ) -> Path:
        """Writes the final model of an instance: `final.keras`, then `final.json`.

        Args:
            result: the refit job's `FoldResult` (status `ok`, with its model's bytes).
            fold_best_epochs: the folds' best epochs the refit's epoch count came from.

        Returns:
            The path of `final.keras`.
        """
        layout = self.instance_layout(result.instance)
        model_bytes = result.model_bytes or b""
        atomic_write_bytes(layout.final_model, model_bytes)
        record = FinalModelRecord.from_refit(
            result, hashlib.sha256(model_bytes).hexdigest(), list(fold_best_epochs))
        self.reader.remember_digest(layout.final_model, record.model_sha256)
        self._write(layout.final_record, record)
        self._notify("on_refit", result, layout.root)
        return layout.final_model

    def record_trial(self, record: TrialRecord) -> None:
        """Writes the `trial.json` of the instance a search trial made."""
        self._write(self.instance_layout(record.instance).trial_file, record)

    def record_nested(self, instance: int, record: NestedRecord) -> None:
        """Writes the `nested.json` of the instance holding a nested search's outer
        scores: what each outer fold's inner search chose."""
        self._write(self.instance_layout(instance).nested_file, record)

    def finish_instance(self, instance: int) -> InstanceSummary:
        """Writes the instance's summary from its believable fold files (those that are not
        are listed in the summary's `invalid`) and hands the listeners the instance as read
        (`on_instance`).

        When the instance is complete, the folder set aside by --overwrite is removed.

        Returns:
            The summary.
        """
        layout = self.instance_layout(instance)
        result = self.results.reload(instance)
        summary = result.summary
        atomic_write_json(layout.summary_file, summary.to_dict())
        if summary.status == InstanceStatus.COMPLETE.value and layout.previous.exists():
            remove_output(layout.previous, INSTANCE_OUTPUT)
        self._notify("on_instance", result)
        return summary
