"""`ResultsStore`: every read and write of an experiment's result files (the process's one
store: `RESULTS_STORE`), as Optuna's `BaseStorage` is for trials; callers never open them.

A run's recorder (`xval.running.recorder`) writes through it, in the driver, whatever
executor trained the folds; the planner, the report, refit, search and inference read
through it. Every file is written atomically, the model before the fold file that records
its size and hash, so a fold is done exactly when its `fold_<i>.json` is a believable `ok`
record (`FoldCheck`) beside its `.keras`; records are sealed and cached (`read_record`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

from xval.core import hashing
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import ResultsConflictError
from xval.core.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    json_text,
    lock,
    read_json,
)
from xval.core.hashing import Stamp
from xval.core.interrupts import deferred_interrupts
from xval.core.layout import INSTANCE_OUTPUT, ExperimentLayout, InstanceLayout
from xval.core.outputs import remove_output
from xval.core.records import (
    CommandLog,
    EnsembleRecord,
    FinalModelRecord,
    FoldResult,
    FoldsManifest,
    InstanceSummary,
    NestedRecord,
    ParamsRecord,
    RecordError,
    RunCommand,
    TrialRecord,
)
from xval.core.snapshot import write_snapshot
from xval.core.storage.checks import (
    EditedCheck,
    FoldCheck,
    InstanceFiles,
    InstanceFolds,
    RulesOf,
    TaskRules,
    orphaned,
)

T = TypeVar("T")
RACY_NS = 1_000_000_000
"""A file read less than this long after it changed is not kept in the cache: another
write within the file system's timestamp resolution would leave its stamp unchanged."""
MANIFEST_FIX = ("it records which items each fold tests. Restore it from a backup, or move "
                "the experiment folder away (or use a new experiment number) and rerun.")


class ResultsStore:
    """Reads and writes the result files of experiments (use the process's, `RESULTS_STORE`).

    Every record file is written here (`write`): atomically, sealed with its content hash
    (`xval.core.hashing.seal`), and kept as a reader would read it back, so that nobody
    reads it again until it changes; and read here (`read_record`), through its record's
    `from_dict`, with the seal checked (a file edited by hand is named, never believed).
    The records read are cached by a file's identity and version (inode, size,
    modification and change times); the SHA-256 of a model file comes from the process's
    one digest cache, `xval.core.hashing.file_digest`. A record from the cache is shared
    between its readers: read it, never change it.
    """

    # -- sealed record files, and the cache of what was read or written --------------------

    def __init__(self) -> None:
        self._records: dict[tuple[str, Any], tuple[Stamp, Any]] = {}

    def read_record(self, path: Path, parse: Callable[[Any], T], *,
                    sealed: bool = True) -> tuple[T | None, str]:
        """Reads a JSON result file through its record's `from_dict`.

        Args:
            path: the file.
            parse: the record's `from_dict` (e.g. `ParamsRecord.from_dict`).
            sealed: the file is written sealed (`write`), so one without its seal is
                refused; `False` for a file written unsealed (`summary.json`, the store's
                `dataset.json` copied beside the results). Defaults to `True`.

        Returns:
            `(record, "")`; `(None, "")` when the file does not exist; `(None, why)` when
            it is not valid JSON, not a record of its kind, or was edited after it was
            sealed (`xval.core.hashing.seal_problem`); `why` reads after the file's name.
        """
        stamp = hashing.file_stamp(path)
        if stamp is None:
            return None, ""
        key = (str(path), parse)
        cached = self._records.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1], ""
        try:
            data = read_json(path)
            edited = hashing.seal_problem(data, required=sealed)
            if edited:  # a metric, a model's hash or a parameter changed by hand
                return None, edited
            record = parse(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return None, f"is not valid JSON ({type(e).__name__}: {e})"
        except RecordError as e:
            return None, f"is not a record of its kind: {e}"
        except OSError as e:
            return None, f"cannot be read ({e.strerror or type(e).__name__})"
        if time.time_ns() - stamp[2] >= RACY_NS:
            self._records[key] = (stamp, record)
        return record, ""

    def require(self, path: Path, parse: Callable[[Any], T], fix: str) -> T:
        """Reads a result file that must be a record of its kind.

        Args:
            path: the file.
            parse: the record's `from_dict`.
            fix: what the user should do (one sentence).

        Raises:
            ResultsConflictError: when the file is missing, not valid JSON (truncated,
                edited by hand) or not a record of its kind, naming it and the fix.
        """
        record, why = self.read_record(path, parse)
        if why:
            raise ResultsConflictError(f"{path} {why}: {fix}")
        if record is None:
            raise ResultsConflictError(f"{path} is missing: {fix}")
        return record

    def write(self, path: Path, record: Any) -> None:
        """Writes a record as JSON, atomically, sealed with its content hash, and keeps it
        as `read_record` would read it back (`remember`)."""
        atomic_write_json(path, hashing.seal(json.loads(json_text(record.to_dict()))))
        self.remember(path, record)

    def remember(self, path: Path, record: Any) -> None:
        """Keeps the record just written to `path` (as a reader would read it back: NaN
        as `None`, no model bytes), so that nobody reads the file again until it
        changes."""
        stamp = hashing.file_stamp(path)
        if stamp is not None:
            parsed = type(record).from_dict(json.loads(json_text(record.to_dict())))
            self._records[(str(path), type(record).from_dict)] = (stamp, parsed)

    def digest(self, path: Path) -> str:
        """The SHA-256 of a file, computed once per version of it
        (`xval.core.hashing.file_digest`)."""
        return hashing.file_digest(path)

    def forget(self) -> None:
        """Empties the caches (the records read, and the digests)."""
        self._records.clear()
        hashing.forget_digests()

    # -- the experiment ------------------------------------------------------------------

    def manifest(self, layout: ExperimentLayout) -> FoldsManifest | None:
        """The experiment's `folds.json`, or `None` when there is none yet; its folds are
        checked against its recorded hash (an edited file could leak test items into
        training).

        Raises:
            ResultsConflictError: when it is not valid JSON, not a fold manifest, or was
                edited after it was written.
        """
        path = layout.folds_file
        if not path.exists():
            return None
        manifest = self.require(path, FoldsManifest.from_dict, MANIFEST_FIX)
        if manifest.content_hash() != manifest.hash:
            raise ResultsConflictError(
                f"{path} was edited after it was written: the folds it holds no longer match "
                "its recorded hash, so the results there cannot be trusted to keep test "
                f"items out of training; {MANIFEST_FIX}")
        return manifest

    def begin_experiment(self, layout: ExperimentLayout, manifest: FoldsManifest,
                         description: str, dataset_info: Mapping[str, Any], *,
                         script: str | None, config_path: str | Path | None, backend: str,
                         command: RunCommand | None = None, out: Any = print) -> None:
        """Writes the experiment-level files under its lock: `folds.json` (or checks the one
        there), the description, the store's `dataset.json` (what prediction extracts
        features with), the code snapshot (`write_snapshot`) and the run's `command` in
        `code/commands.json` (one that cannot be read is kept aside as `.unreadable`).

        Raises:
            ResultsConflictError: when `folds.json` changed under this run.
        """
        layout.root.mkdir(parents=True, exist_ok=True)
        with lock(layout.lock_target):
            if not layout.folds_file.exists():
                self.write(layout.folds_file, manifest)
            elif self.require(layout.folds_file, FoldsManifest.from_dict,
                              MANIFEST_FIX).hash != manifest.hash:
                raise ResultsConflictError(f"{layout.folds_file} changed under this run.")
            atomic_write_text(layout.description_file, description)
            atomic_write_json(layout.dataset_file, dict(dataset_info))
            self.remember(layout.dataset_file, DatasetInfo(dict(dataset_info)))
            write_snapshot(layout.code_dir, script=script, config_path=config_path,
                           backend=backend)
            if command is not None:
                path = layout.commands_file
                log, why = self.read_record(path, CommandLog.from_dict)
                if why:
                    path.replace(path.with_name(path.name + ".unreadable"))
                    out(f"{path} {why}; kept as {path.name}.unreadable, a new log begun.")
                self.write(path, (log or CommandLog()).appended(command))

    def commands(self, layout: ExperimentLayout) -> list[RunCommand]:
        """The command line of every run, oldest first (empty when `code/commands.json` is
        missing or cannot be read)."""
        log, _ = self.read_record(layout.commands_file, CommandLog.from_dict)
        return list(log.runs) if log is not None else []

    # -- an instance: reading --------------------------------------------------------------

    def folds(self, layout: InstanceLayout, num_folds: int | None,
              check: FoldCheck | None) -> InstanceFolds:
        """Reads and checks every `fold_<i>.json` of an instance with `i < num_folds`
        (every one present when `num_folds` is `None`; none checked when `check` is
        `None`)."""
        out = InstanceFolds()
        for i, path in layout.fold_files().items():
            if num_folds is not None and i >= num_folds:
                continue
            record, problem = self.read_record(path, FoldResult.from_dict)
            reason = f"{path.name} {problem}" if problem else ""
            if record is not None and check is not None:
                reason = check.reason(layout, i, record, self.digest)
            if not reason and record is not None:
                out.by_file[i] = record
            elif reason:
                out.invalid[i] = reason
                if problem:
                    out.unreadable.append(path.name)
                else:
                    out.refused.add(i)
        return out

    def resume_folds(self, layout: InstanceLayout, num_folds: int, params_hash: str | None,
                     rules: TaskRules) -> InstanceFolds:
        """The fold files of an instance within `num_folds`, checked to resume from: an `ok`
        fold needs its model, trained with the instance's parameters (`params_hash`; `None`
        not to check them), with metrics in the task's ranges (`rules`)."""
        return self.folds(layout, num_folds,
                          FoldCheck(layout.id, params_hash, rules=rules, model_required=True))

    def params(self, layout: InstanceLayout,
               edited: EditedCheck | None = None) -> tuple[ParamsRecord | None, str]:
        """The instance's parameter record and, when it cannot be used to check the folds,
        why (`""` when it can, or when there is none): not readable, another instance's,
        or (with `edited`) edited after it was written."""
        path = layout.params_file
        record, problem = self.read_record(path, ParamsRecord.from_dict)
        if problem:
            return None, f"the instance's {path.name} {problem}"
        if record is not None and record.instance != layout.id:  # not ours
            return None, (f"the instance's {path.name} is instance {record.instance}'s, "
                          f"not instance {layout.id}'s")
        why = edited(record.params, record.hash) if record is not None and edited else ""
        if why:  # the parameters shown would not be the ones trained with
            return None, f"the instance's {path.name} {why}"
        return record, ""

    def instance(self, layout: InstanceLayout, num_folds: int | None, rules_of: RulesOf,
                 edited: EditedCheck | None = None) -> InstanceFiles:
        """Reads an instance folder: its parameters, its believed fold records (each
        checked; an ensemble's read as clip scores only, `FoldResult.as_ensemble_fold`),
        why the others are not believed, its trial, nested and ensemble records.

        Args:
            layout: the `instance_<k>` folder.
            num_folds: the experiment's number of folds; `None` reads it from
                `summary.json`, or counts the fold files.
            rules_of: the task's rules (`xval.tasks.rules`).
            edited: whether `params.json` was edited (`xval.config.params.edited_params`).
                Defaults to `None` (not checked).
        """
        params, params_problem = self.params(layout, edited)
        unreadable = [layout.params_file.name] if params_problem and \
            self.read_record(layout.params_file, ParamsRecord.from_dict)[1] else []
        raw = self.folds(layout, None, None)
        unreadable += raw.unreadable
        models = layout.fold_models()
        if num_folds is None:
            num_folds = self._num_folds(layout, [*raw.by_file, *raw.invalid, *models],
                                        unreadable)
        trial, nested, ensemble = (
            self._optional(layout.trial_file, TrialRecord, unreadable),
            self._optional(layout.nested_file, NestedRecord, unreadable),
            self._optional(layout.ensemble_file, EnsembleRecord, unreadable))
        fused = ensemble is not None  # its folds: clip scores only, older ones read so too
        found = {i: r.as_ensemble_fold() if fused else r for i, r in raw.by_file.items()
                 if i < num_folds}
        invalid = {i: why for i, why in raw.invalid.items() if i < num_folds}
        invalid.update({i: orphaned(layout, i) for i in models  # a model whose record is gone
                        if i < num_folds and i not in found and i not in invalid})
        recorded = params.task_type if params is not None and params.task_type else \
            next((r.task_type for r in found.values() if r.task_type), None)
        rules = rules_of(recorded)
        check = FoldCheck(layout.id, params.hash if params is not None else None,
                          params_problem, rules, clip_only=fused)
        believed = {}
        for i, record in found.items():
            reason = check.reason(layout, i, record, self.digest)
            if reason:
                invalid[i] = reason
            else:
                believed[i] = record
        return InstanceFiles(params=params, folds=[believed[i] for i in sorted(believed)],
                             invalid=dict(sorted(invalid.items())), unreadable=unreadable,
                             trial=trial, task_type=recorded, rules=rules,
                             num_folds=num_folds, nested=nested, ensemble=ensemble)

    def _optional(self, path: Path, kind: Any, unreadable: list[str], *,
                  sealed: bool = True) -> Any:
        """The record of `path`, or `None` (its name added to `unreadable` when it cannot
        be read); `sealed` as for `read_record`."""
        record, problem = self.read_record(path, kind.from_dict, sealed=sealed)
        if problem:
            unreadable.append(path.name)
        return record

    def _num_folds(self, layout: InstanceLayout, folds: list[int],
                   unreadable: list[str]) -> int:
        """The number of folds from `summary.json`, else from the fold files present."""
        old = self._optional(layout.summary_file, InstanceSummary, unreadable,
                             sealed=False)  # derived, written unsealed
        if old is not None and old.num_folds:
            return int(old.num_folds)
        return max(folds, default=-1) + 1

    def stamp(self, layout: InstanceLayout, num_folds: int | None) -> tuple[Any, ...]:
        """The versions of the files `instance` reads: equal stamps, equal readings."""
        names = [layout.params_file, layout.trial_file, layout.nested_file,
                 layout.ensemble_file,
                 *layout.fold_files().values(), *layout.fold_models().values()]
        if num_folds is None:
            names.append(layout.summary_file)
        return tuple((p.name, hashing.file_stamp(p)) for p in names)

    def model_items(self, model: Path) -> list[str] | None:
        """The items the fold model `model` (a `fold_<i>.keras`) was trained and validated
        on, from the fold record beside it; `None` for a model of another name, or without
        a readable fold record."""
        fold = InstanceLayout.fold_of_model(model)
        if fold is None:
            return None
        layout = InstanceLayout.parse(model.parent) or InstanceLayout(model.parent, -1)
        record, _ = self.read_record(layout.fold_file(fold), FoldResult.from_dict)
        if record is None:
            return None
        return sorted(map(str, [*record.items.get("train", []), *record.items.get("val", [])]))

    def predictions(self, layout: InstanceLayout, fold: int) -> list[dict[str, str]] | None:
        """The rows of a fold's `predictions_fold_<i>.csv` (column -> text), or `None`.

        Raises:
            ResultsConflictError: when the file is not the one the fold recorded
                (`sealed_text`).
        """
        text = self.sealed_text(layout, fold, layout.predictions(fold))
        return None if text is None else list(csv.DictReader(io.StringIO(text)))

    def val_predictions(self, layout: InstanceLayout,
                        fold: int) -> list[dict[str, str]] | None:
        """The rows of a fold's `val_predictions_fold_<i>.csv` (column -> text), or `None`
        (a fold recorded before validation predictions were kept).

        Raises:
            ResultsConflictError: when the file is not the one the fold recorded
                (`sealed_text`).
        """
        text = self.sealed_text(layout, fold, layout.val_predictions(fold))
        return None if text is None else list(csv.DictReader(io.StringIO(text)))

    def plot_data(self, layout: InstanceLayout, fold: int) -> dict[str, Any] | None:
        """What a fold's figures draw (`plot_data_fold_<i>.json`), or `None`.

        Raises:
            ResultsConflictError: when the file is not the one the fold recorded
                (`sealed_text`).
        """
        text = self.sealed_text(layout, fold, layout.plot_data(fold))
        return None if text is None else dict(json.loads(text))

    def sealed_text(self, layout: InstanceLayout, fold: int, path: Path) -> str | None:
        """The text of a file written beside a fold record (its predictions, its plot data),
        read once and checked against the SHA-256 the record sealed
        (`FoldResult.outputs_sha256`); `None` when there is no such file. A fold record
        written before these hashes were kept names none: its files are read as they are.

        Raises:
            ResultsConflictError: naming the file and the fix, when its content is not the
                one recorded (edited by hand, replaced), when the record names no such file
                (added beside it), or when there is no fold record to believe, or one of a
                failed fold.
        """
        if not path.is_file():
            return None
        data = path.read_bytes()
        fix = ("restore it from a backup, or write it again: rerun the instance with "
               "--overwrite (an ensemble: compute it again with --overwrite)")
        name = layout.fold_file(fold).name
        record, why = self.read_record(layout.fold_file(fold), FoldResult.from_dict)
        if record is None:
            raise ResultsConflictError(
                f"{path} cannot be believed: its fold record {name} "
                f"{why or 'is missing'}; {fix}.")
        if not record.ok:
            raise ResultsConflictError(
                f"{path} cannot be believed: {name} records fold {fold} as failed, so the file "
                f"is an earlier run's; {fix}.")
        recorded = record.outputs_sha256
        if recorded and path.name not in recorded:
            raise ResultsConflictError(
                f"{path} is not a file fold {fold} wrote ({name} records the SHA-256 of "
                f"{', '.join(sorted(recorded))} only), so it cannot be believed; remove it, "
                f"or {fix}.")
        if recorded and hashlib.sha256(data).hexdigest() != recorded[path.name]:
            raise ResultsConflictError(
                f"{path} was changed after fold {fold} wrote it (its content differs from "
                f"the SHA-256 recorded in {name}), so it cannot be believed; {fix}.")
        return data.decode("utf-8")

    # -- an instance: writing --------------------------------------------------------------

    def instance_lock(self, layout: InstanceLayout) -> FileLock:
        """The lock a runner holds while it runs an instance (outside its folder)."""
        return lock(layout.root)

    def write_ensemble(self, layout: InstanceLayout, params: ParamsRecord,
                       record: EnsembleRecord, folds: Sequence[FoldResult], *,
                       overwrite: bool = False, out: Any = print) -> None:
        """Writes an ensemble of instances (a derived instance): its `params.json`,
        `ensemble.json`, then each fold's predictions and fold file (`write_fold`). An
        instance folder of other parameters is refused unless `overwrite` (then set aside
        as `begin_instance` does); the same ensemble's folder is rewritten in place.

        Raises:
            ResultsConflictError: for a folder of other parameters without `overwrite`.
        """
        old, problem = self.params(layout)
        if old is None and not problem and layout.root.is_dir() and any(layout.root.iterdir()):
            problem = "it has no params.json: its files are not an instance's results"
            overwrite = False  # never replaced: not a folder this project wrote
        if (problem or (old is not None and old.hash != params.hash)) and not overwrite:
            raise ResultsConflictError(
                f"{layout.root} holds other results than the ensemble of instances "
                f"{', '.join(map(str, record.instances))} ({problem or 'its params.json '}"
                f"{'' if problem else 'names other parameters'}); rerun with --overwrite to "
                "replace them, or give the ensemble another number.")
        if overwrite and layout.root.exists() and old is not None and old.hash != params.hash:
            self._set_aside(layout, out)
        layout.root.mkdir(parents=True, exist_ok=True)
        self.write(layout.params_file, params)
        self.write(layout.ensemble_file, record)
        layout.error_file.unlink(missing_ok=True)
        for result in folds:
            self.write_fold(layout, result)

    def _set_aside(self, layout: InstanceLayout, out: Any) -> None:
        """Moves an instance folder aside to `instance_<k>.previous` (kept until the new
        results complete); a folder already aside is kept and this one is dropped."""
        if layout.previous.exists():
            remove_output(layout.root, INSTANCE_OUTPUT)
        else:
            layout.root.rename(layout.previous)
        out(f"instance {layout.id}: previous results moved to {layout.previous.name} "
            "until the new ones complete.")

    def restore_previous(self, layout: InstanceLayout) -> bool:
        """Puts back the folder --overwrite set aside (`instance_<k>.previous`) in place of
        the new results, which did not complete (a run interrupted by Ctrl-C or SIGTERM):
        the instance is as the run found it, and the same command starts it again.

        Returns:
            Whether a folder was put back.
        """
        if not layout.previous.is_dir():
            return False
        with deferred_interrupts():  # a second Ctrl-C waits: never neither folder in place
            if layout.root.exists():
                remove_output(layout.root, INSTANCE_OUTPUT)
            layout.previous.rename(layout.root)
        return True

    def begin_instance(self, layout: InstanceLayout, record: ParamsRecord, *,
                       num_folds: int, rules: TaskRules, overwrite: bool = False,
                       dataset_info: Mapping[str, Any] | None = None,
                       out: Any = print) -> InstanceFolds:
        """Writes an instance's `params.json` (and its own `dataset.json`), and reads the
        folds already there to resume from (`resume_folds`).

        With `overwrite`, an existing instance folder is moved aside to
        `instance_<k>.previous` (kept until the new results complete, so an interrupted or
        failed overwrite never loses the old results); a folder already aside from an
        earlier, unfinished overwrite is kept and the unfinished one is dropped.

        Returns:
            The instance's folds on disk, read and checked.
        """
        if overwrite and layout.root.exists():
            self._set_aside(layout, out)
        layout.root.mkdir(parents=True, exist_ok=True)
        if dataset_info is not None:
            atomic_write_json(layout.dataset_file, dict(dataset_info))
        self.write(layout.params_file, record)
        folds = self.resume_folds(layout, num_folds, record.hash, rules)
        if len(folds.done) < num_folds:
            layout.error_file.unlink(missing_ok=True)
        return folds

    def write_fold(self, layout: InstanceLayout, result: FoldResult) -> None:
        """Writes one fold's files: the model, the predictions, classifier and plot data,
        then the fold file, which records their hashes (or the error file of a failed fold,
        then its fold file). A predictions or plot data file of an earlier record of the
        fold that this one does not write is removed (nothing would seal it)."""
        layout.root.mkdir(parents=True, exist_ok=True)
        i = result.fold
        if result.ok:
            if result.model_bytes is not None:
                result.model_size = len(result.model_bytes)
                result.model_sha256 = self._write_hashed(layout.fold_model(i),
                                                        result.model_bytes)
            outputs = {layout.predictions(i): result.predictions_csv,
                       layout.val_predictions(i): result.val_predictions_csv,
                       layout.plot_data(i): None if result.plot_data is None
                       else json_text(result.plot_data)}
            result.outputs_sha256 = {
                path.name: self._write_hashed(path, text.encode("utf-8"))
                for path, text in outputs.items() if text is not None}
            for path, text in outputs.items():  # an earlier record's, which this one replaces
                if text is None:
                    path.unlink(missing_ok=True)
            if result.classifier_bytes is not None:
                atomic_write_bytes(layout.fold_classifier(i), result.classifier_bytes)
        else:
            atomic_write_text(layout.error_file, result.traceback or result.message)
        self.write(layout.fold_file(i), result)

    def _write_hashed(self, path: Path, data: bytes) -> str:
        """Writes a model (or another file a fold record seals); returns its SHA-256 (kept:
        the file is not read to hash it)."""
        atomic_write_bytes(path, data)
        digest = hashlib.sha256(data).hexdigest()
        hashing.remember_digest(path, digest)
        return digest

    def write_final(self, layout: InstanceLayout, result: FoldResult,
                    fold_best_epochs: Sequence[int | None]) -> Path:
        """Writes the final model of an instance: `final.keras`, then `final.json`.

        Args:
            layout: the instance's folder.
            result: the refit job's `FoldResult` (status `ok`, with its model's bytes).
            fold_best_epochs: the folds' best epochs the refit's epoch count came from.

        Returns:
            The path of `final.keras`.
        """
        digest = self._write_hashed(layout.final_model, result.model_bytes or b"")
        self.write(layout.final_record,
                   FinalModelRecord.from_refit(result, digest, list(fold_best_epochs)))
        return layout.final_model

    def write_summary(self, layout: InstanceLayout, summary: InstanceSummary,
                      complete: bool) -> None:
        """Writes the instance's `summary.json`; when the instance is `complete`, the
        folder set aside by --overwrite is removed."""
        atomic_write_json(layout.summary_file, summary.to_dict())
        if complete and layout.previous.exists():
            remove_output(layout.previous, INSTANCE_OUTPUT)


RESULTS_STORE = ResultsStore()
"""The process's results store."""
