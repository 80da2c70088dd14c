"""The recorder: the one writer of an experiment's result files.

Fold files, models, predictions, error files, parameter records, instance summaries, final
models, trial records and the experiment-level files are written here, by the driver,
whatever executor trained the folds, as the typed records of `xval.core.records` at the
paths of `xval.core.layout`. Every file is written atomically, the model before the fold
file that records its size and hash, so a fold is done exactly when its `fold_<i>.json` is
a believable `ok` record (`xval.core.records.check_fold`) beside its `.keras`.

What is derived from the records (plots, the workbook, an experiment tracker) is made by
listeners (`RecorderListener`), told after each write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from filelock import FileLock

from xval import tasks
from xval.config.loader import Config
from xval.core.errors import ResultsConflictError
from xval.core.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    lock,
    read_json,
)
from xval.core.layout import INSTANCE_OUTPUT, ExperimentLayout, InstanceLayout
from xval.core.outputs import remove_output
from xval.core.records import (
    FinalModelRecord,
    FoldResult,
    FoldsManifest,
    InstanceStatus,
    InstanceSummary,
    ParamsRecord,
    RecordError,
    TrialRecord,
    check_fold,
)
from xval.core.snapshot import write_snapshot
from xval.report import validation

_R = TypeVar("_R")
Out = Callable[..., None]


class RecorderListener(Protocol):
    """What a listener of the recorder may define (every method is optional).

    - `on_fold(result: FoldResult, inst_dir: Path)`: a fold's files were written.
    - `on_instance(instance: int, summary: InstanceSummary, params: dict, inst_dir: Path)`:
      an instance's summary was written (its last fold ended, or it was resumed complete).
    - `on_refit(result: FoldResult, inst_dir: Path)`: a final model was written.
    - `on_results(exp_dir: Path)`: the results changed; views of the whole experiment (the
      workbook) may be rebuilt.

    A listener that raises is reported and dropped; it never stops the run.
    """


def read_record(path: Path, reader: Callable[[Any], _R], fix: str) -> _R:
    """Reads a JSON result file as a record, naming it and the fix when it is not one.

    Args:
        path: the file.
        reader: the record's `from_dict` (e.g. `ParamsRecord.from_dict`).
        fix: what the user should do (one sentence).

    Returns:
        The record.

    Raises:
        ResultsConflictError: when the file is not valid JSON (truncated, edited by hand) or
            not a record of its kind.
    """
    record, why = validation.read_record(path, reader)  # the report's reading, strict here
    if why:
        raise ResultsConflictError(f"{path} {why}: {fix}")
    if record is None:
        raise ResultsConflictError(f"{path} is missing: {fix}")
    return record


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class FoldRead:
    """What is on disk for one fold.

    Attributes:
        record: the fold's record when its file is readable and believable (an `ok` fold
            that passes `check_fold`, or a failed fold), else `None`.
        reason: why a fold file that exists cannot be used (`""` when it can, or when the
            fold was never run).
    """

    record: FoldResult | None = None
    reason: str = ""

    @property
    def done(self) -> bool:
        """Whether the fold is done: a believable `ok` record."""
        return self.record is not None and self.record.ok


def read_fold(layout: InstanceLayout, fold: int, *, params_hash: str | None = None,
              task_type: str | None = None,
              digest: Callable[[Path], str] = sha256_of) -> FoldRead:
    """Reads and checks fold `fold` of an instance.

    An `ok` fold file is believed only when `check_fold` finds nothing wrong: its fold and
    instance numbers, its parameters' hash, its metrics (finite, in the task's
    `Task.metric_ranges`), and its model (present, with the recorded size and SHA-256).

    Args:
        layout: the instance's folder.
        fold: the fold number.
        params_hash: the instance's parameter hash, or `None` not to check it.
        task_type: the task whose metric ranges apply; `None` takes the fold's own.
        digest: `path -> SHA-256 hex` of the model. Defaults to `sha256_of`.

    Returns:
        A `FoldRead`.
    """
    path = layout.fold_file(fold)
    if not path.exists():
        return FoldRead()
    try:
        result = FoldResult.from_dict(read_json(path))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        return FoldRead(reason=f"{path.name} is unreadable ({type(e).__name__})")
    except RecordError as e:
        return FoldRead(reason=f"{path.name} is not a fold record ({e})")
    if not result.ok:
        return FoldRead(record=result)
    reason = check_fold(result, fold=fold, instance=layout.id, params_hash=params_hash,
                        model=layout.fold_model(fold), model_digest=digest,
                        ranges=_metric_ranges(task_type or result.task_type))
    if reason:
        return FoldRead(reason=f"{path.name} is invalid: {reason}")
    return FoldRead(record=result)


def _metric_ranges(task_type: str | None) -> Mapping[str, tuple[float, float]]:
    if not task_type:
        return {}
    try:
        return tasks.get(task_type).metric_ranges
    except ValueError:  # a task this version does not know: finite values only
        return {}


def _clip_falls_back(task_type: str | None) -> bool:
    if not task_type:
        return True
    try:
        return tasks.get(task_type).clip_is_segment_without_clips
    except ValueError:  # a task this version does not know
        return True


@dataclasses.dataclass
class InstanceFolds:
    """The fold files of an instance, read and checked.

    Attributes:
        records: the believable records (`ok` and failed), by fold.
        invalid: fold -> why its file cannot be believed (rerun on the next run).
    """

    records: list[FoldResult]
    invalid: dict[int, str]

    @property
    def done(self) -> list[int]:
        """The folds done (believable `ok` records), sorted."""
        return [r.fold for r in self.records if r.ok]


def read_folds(layout: InstanceLayout, num_folds: int, *, params_hash: str | None = None,
               task_type: str | None = None,
               digest: Callable[[Path], str] = sha256_of) -> InstanceFolds:
    """Reads and checks folds `0 .. num_folds - 1` of an instance (see `read_fold`)."""
    reads = {i: read_fold(layout, i, params_hash=params_hash, task_type=task_type,
                          digest=digest)
             for i in range(num_folds)}
    return InstanceFolds(records=[r.record for r in reads.values() if r.record is not None],
                         invalid={i: r.reason for i, r in reads.items() if r.reason})


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
    """

    def __init__(self, layout: ExperimentLayout, config: Config | None, num_folds: int, *,
                 out: Out = print, listeners: Iterable[object] = (),
                 task_type: str | None = None) -> None:
        self.layout = layout
        self.task_type = task_type
        self.config = config
        self.num_folds = num_folds
        self.out = out
        self.listeners = list(listeners)
        self._digests: dict[Path, tuple[int, int, str]] = {}

    def digest(self, path: Path) -> str:
        """The SHA-256 of a model file, hashed again only when its size or modification
        time changed (an instance's models are checked at its start, after every fold of a
        search and when its summary is written)."""
        stat = path.stat()
        cached = self._digests.get(path)
        if cached is None or cached[:2] != (stat.st_size, stat.st_mtime_ns):
            cached = (stat.st_size, stat.st_mtime_ns, sha256_of(path))
            self._digests[path] = cached
        return cached[2]

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
                         config_path: str | Path | None, backend: str) -> None:
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

        Raises:
            ResultsConflictError: when `folds.json` changed under this run.
        """
        layout = self.layout
        layout.root.mkdir(parents=True, exist_ok=True)
        with lock(layout.lock_target):
            if not layout.folds_file.exists():
                atomic_write_json(layout.folds_file, manifest.to_dict())
            elif read_record(layout.folds_file, FoldsManifest.from_dict,
                             "restore it or use a new experiment number.").hash \
                    != manifest.hash:
                raise ResultsConflictError(f"{layout.folds_file} changed under this run.")
            atomic_write_text(layout.description_file, description)
            atomic_write_json(layout.dataset_file, dict(dataset_info))
            write_snapshot(layout.code_dir, script=script, config_path=config_path,
                           backend=backend)

    def results_changed(self) -> None:
        """Tells the listeners that the experiment's results changed (`on_results`)."""
        self._notify("on_results", self.layout.root)

    # -- instances ---------------------------------------------------------------------

    def begin_instance(self, instance: int, params: dict[str, Any], params_hash: str,
                       overwrite: bool, dataset_info: Mapping[str, Any] | None = None
                       ) -> list[int]:
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

        Returns:
            The sorted list of fold indices already done.
        """
        layout = self.instance_layout(instance)
        if overwrite and layout.root.exists():
            self._set_aside(layout)
        layout.root.mkdir(parents=True, exist_ok=True)
        if dataset_info is not None:
            atomic_write_json(layout.dataset_file, dict(dataset_info))
        record = ParamsRecord(instance=instance, hash=params_hash, params=params,
                              task_type=self.task_type)
        atomic_write_json(layout.params_file, record.to_dict())
        folds = read_folds(layout, self.num_folds, params_hash=params_hash,
                           task_type=self.task_type, digest=self.digest)
        for i, reason in folds.invalid.items():
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
                stat = model.stat()
                self._digests[model] = (stat.st_size, stat.st_mtime_ns, result.model_sha256)
            if result.predictions_csv is not None:
                atomic_write_text(layout.predictions(i), result.predictions_csv)
            if result.classifier_bytes is not None:
                atomic_write_bytes(layout.fold_classifier(i), result.classifier_bytes)
            if result.plot_data is not None:
                atomic_write_json(layout.plot_data(i), result.plot_data)
        else:
            atomic_write_text(layout.error_file, result.traceback or result.message)
        atomic_write_json(layout.fold_file(i), result.to_dict())
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
        atomic_write_json(layout.final_record, record.to_dict())
        self._notify("on_refit", result, layout.root)
        return layout.final_model

    def record_trial(self, record: TrialRecord) -> None:
        """Writes the `trial.json` of the instance a search trial made."""
        atomic_write_json(self.instance_layout(record.instance).trial_file, record.to_dict())

    def read_params(self, instance: int) -> ParamsRecord | None:
        """The instance's `params.json`, or `None` when it is missing or not a record."""
        path = self.instance_layout(instance).params_file
        try:
            return ParamsRecord.from_dict(read_json(path))
        except (OSError, ValueError, RecordError):
            return None

    def read_folds(self, instance: int,
                   params: ParamsRecord | None = None) -> InstanceFolds:
        """The instance's fold files within `num_folds`, read and checked against its
        `params.json` (see `read_fold`).

        Args:
            instance: the instance id.
            params: its `params.json` record, when the caller has read it already.
        """
        params = params or self.read_params(instance)
        task_type = self.task_type or (params.task_type if params else None)
        return read_folds(self.instance_layout(instance), self.num_folds,
                          params_hash=params.hash if params else None, task_type=task_type,
                          digest=self.digest)

    def finish_instance(self, instance: int) -> InstanceSummary:
        """Writes the instance's summary from its believable fold files (those that are not
        are listed in the summary's `invalid`) and tells the listeners.

        When the instance is complete, the folder set aside by --overwrite is removed.

        Returns:
            The summary.
        """
        layout = self.instance_layout(instance)
        params = self.read_params(instance)
        task_type = self.task_type or (params.task_type if params else None)
        folds = self.read_folds(instance, params)
        summary = InstanceSummary.from_folds(folds.records, self.num_folds,
                                             clip_falls_back=_clip_falls_back(task_type),
                                             invalid=folds.invalid)
        atomic_write_json(layout.summary_file, summary.to_dict())
        if summary.status == InstanceStatus.COMPLETE.value and layout.previous.exists():
            remove_output(layout.previous, INSTANCE_OUTPUT)
        self._notify("on_instance", instance, summary, params.params if params else {},
                     layout.root)
        return summary
