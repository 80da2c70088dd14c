"""The one reader of result files: reading, checking, and the caches.

Every result file is read here, through its record's `from_dict` (`ResultsReader.
read_record`): the planner and the recorder (which must not resume or overwrite what they
cannot read), the report, the listeners, refit, search and inference. Whether a fold file
can be believed is asked here too (`FoldCheck`, which asks `xval.core.records.check_fold`
with what the folder holds: the fold number its file name gives, the instance its folder
gives, the hash of the instance's `params.json`, the `fold_<i>.keras` beside it and the
valid range of every metric of the task).

One reader serves the whole process (`READER`), with its cache of records keyed by a file's
identity and version (inode, size, modification and change times): the records read (and
those the recorder wrote, `remember`), so that a listener, the workbook and the final table
never read again a file that has not changed. The SHA-256 of a model file (`digest`) comes
from the process's one digest cache, `xval.core.hashing.file_digest`, computed once per
version of the file (a store's files are checked through it too).

A record from the reader is shared between its readers: read it, never change it.

The task's rules (metric ranges, whether a clip level falls back to the segment level) are
handed in (`RulesOf`: `xval.tasks.rules`), since the tasks sit above this layer.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from xval.core import hashing
from xval.core.errors import ResultsConflictError
from xval.core.files import json_text, read_json
from xval.core.hashing import Stamp
from xval.core.layout import ExperimentLayout, InstanceLayout
from xval.core.records import (
    FoldResult,
    FoldsManifest,
    InstanceSummary,
    NestedRecord,
    ParamsRecord,
    RecordError,
    TrialRecord,
    check_fold,
)

T = TypeVar("T")
RACY_NS = 1_000_000_000
"""A file read less than this long after it changed is not kept in the cache: another
write within the file system's timestamp resolution would leave its stamp unchanged."""

MANIFEST_FIX = ("it records which items each fold tests. Restore it from a backup, or move "
                "the experiment folder away (or use a new experiment number) and rerun.")


@dataclasses.dataclass(frozen=True)
class TaskRules:
    """What the fold checks and the summary take from the task.

    Attributes:
        ranges: metric name -> `(low, high)` valid values (`Task.metric_ranges`).
        clip_falls_back: `Task.clip_is_segment_without_clips`.
    """

    ranges: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    clip_falls_back: bool = True


EditedCheck = Callable[[Mapping[str, Any], str], str]
"""`(recorded parameters, recorded hash) -> why they cannot be believed, or ""`: whether a
`params.json` was edited after it was written (`xval.config.params.edited_params`, handed
in: the parameter hash is the configuration's)."""

RulesOf = Callable[[str | None, Iterable[FoldResult]], TaskRules]
"""`(task_type, fold records) -> TaskRules`: the rules of a recorded task, or of the task
inferred from the records when none was recorded (`xval.tasks.rules`)."""


@dataclasses.dataclass(frozen=True)
class FoldCheck:
    """The checks of one instance's fold records (`reason(...)`).

    Args:
        instance: the instance its folder gives.
        params_hash: the hash of its `params.json`, or `None` (no file: not checked).
        params_problem: why its `params.json` cannot be used to check the folds (not valid
            JSON, not a parameter record, another instance's), or `""`.
        rules: the task's `TaskRules`.
        model_required: an `ok` fold needs its `fold_<i>.keras` even when its record names
            no model size or hash (to resume from it). Defaults to `False` (the model is
            checked when the record names it).
    """

    instance: int
    params_hash: str | None = None
    params_problem: str = ""
    rules: TaskRules = dataclasses.field(default_factory=TaskRules)
    model_required: bool = False

    def reason(self, layout: InstanceLayout, fold: int, record: FoldResult,
               digest: Callable[[Path], str]) -> str:
        """Why the record of `fold_<fold>.json` is not believed, or `""`.

        A failed fold is believed (it counts as a failure, never as a result); an `ok` one
        is checked by `check_fold`.
        """
        if not record.ok:
            return ""
        if self.params_problem:
            return (f"{self.params_problem}, so the parameters it was trained with cannot be "
                    "checked")
        recorded = record.model_sha256 is not None or record.model_size is not None
        model = layout.fold_model(fold) if recorded or self.model_required else None
        return check_fold(record, fold=fold, instance=self.instance,
                          params_hash=self.params_hash, model=model, model_digest=digest,
                          ranges=self.rules.ranges)


@dataclasses.dataclass
class InstanceFolds:
    """The fold files of an instance, read and checked.

    Attributes:
        by_file: the believed records (`ok` and failed), by the fold number of their file.
        invalid: fold -> why its file is not believed (rerun on the next run).
        refused: the invalid folds whose files are records that the check refused.
        unreadable: the names of the files that are not valid JSON or not fold records.
    """

    by_file: dict[int, FoldResult] = dataclasses.field(default_factory=dict)
    invalid: dict[int, str] = dataclasses.field(default_factory=dict)
    refused: set[int] = dataclasses.field(default_factory=set)
    unreadable: list[str] = dataclasses.field(default_factory=list)

    @property
    def records(self) -> list[FoldResult]:
        """The believed records, by fold."""
        return [self.by_file[i] for i in sorted(self.by_file)]

    @property
    def done(self) -> list[int]:
        """The folds done (believed `ok` records), sorted."""
        return sorted(i for i, r in self.by_file.items() if r.ok)

    def said(self, layout: InstanceLayout) -> dict[int, str]:
        """Fold -> why it is not used, naming its file: `fold_0.json is invalid: ...`."""
        return {i: f"{layout.fold_file(i).name} is invalid: {why}" if i in self.refused
                else why for i, why in self.invalid.items()}


@dataclasses.dataclass
class InstanceFiles:
    """Everything read from one `instance_<k>` folder.

    Attributes:
        params: its `params.json` record, or `None` (missing, unreadable or another
            instance's).
        folds: the believed fold records, by fold number.
        invalid: fold number -> why its file is not believed.
        unreadable: names of the files that are not valid JSON or not records of their kind.
        trial: its `trial.json` record, or `None`.
        nested: its `nested.json` record (a nested search's choices), or `None`.
        task_type: the task recorded in `params.json` (or its fold files), or `None`.
        rules: the task's `TaskRules` (of the inferred task when none is recorded).
        num_folds: the experiment's number of folds.
    """

    params: ParamsRecord | None
    folds: list[FoldResult]
    invalid: dict[int, str]
    unreadable: list[str]
    trial: TrialRecord | None
    task_type: str | None
    rules: TaskRules
    num_folds: int
    nested: NestedRecord | None = None


class ResultsReader:
    """Reads and checks result files, with one cache of records (model digests come from
    `xval.core.hashing`'s one cache).

    Use the process's reader, `READER`: the recorder, the planner and the report share it.
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, Any], tuple[Stamp, Any]] = {}

    def read_record(self, path: Path, parse: Callable[[Any], T]) -> tuple[T | None, str]:
        """Reads a JSON result file through its record's `from_dict`.

        Args:
            path: the file.
            parse: the record's `from_dict` (e.g. `ParamsRecord.from_dict`).

        Returns:
            `(record, "")`; `(None, "")` when the file does not exist; `(None, why)` when
            it is not valid JSON, not a record of its kind, or was edited after the recorder
            sealed it (`xval.core.hashing.seal_problem`); `why` reads after the file's name.
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
            edited = hashing.seal_problem(data)
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

    def remember(self, path: Path, record: Any) -> None:
        """Keeps the record the recorder has just written to `path` (as a reader would
        read it back), so that nobody reads the file again until it changes."""
        stamp = hashing.file_stamp(path)
        if stamp is not None:
            parsed = type(record).from_dict(json.loads(json_text(record.to_dict())))
            self._records[(str(path), type(record).from_dict)] = (stamp, parsed)

    def digest(self, path: Path) -> str:
        """The SHA-256 of a file, computed once per version of it
        (`xval.core.hashing.file_digest`)."""
        return hashing.file_digest(path)

    def remember_digest(self, path: Path, value: str) -> None:
        """Keeps the SHA-256 of a file the recorder has just written."""
        hashing.remember_digest(path, value)

    def forget(self) -> None:
        """Empties the caches (the records read, and the digests)."""
        self._records.clear()
        hashing.forget_digests()

    # -- experiments and instances -------------------------------------------------------

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
        checked), why the others are not believed, its trial.

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
        if num_folds is None:
            num_folds = self._num_folds(layout, [*raw.by_file, *raw.invalid], unreadable)
        found = {i: r for i, r in raw.by_file.items() if i < num_folds}
        invalid = {i: why for i, why in raw.invalid.items() if i < num_folds}
        recorded = params.task_type if params is not None and params.task_type else \
            next((r.task_type for r in found.values() if r.task_type), None)
        rules = rules_of(recorded, found.values())
        check = FoldCheck(layout.id, params.hash if params is not None else None,
                          params_problem, rules)
        believed = {}
        for i, record in found.items():
            reason = check.reason(layout, i, record, self.digest)
            if reason:
                invalid[i] = reason
            else:
                believed[i] = record
        trial, problem = self.read_record(layout.trial_file, TrialRecord.from_dict)
        if problem:
            unreadable.append(layout.trial_file.name)
        nested, problem = self.read_record(layout.nested_file, NestedRecord.from_dict)
        if problem:
            unreadable.append(layout.nested_file.name)
        return InstanceFiles(params=params, folds=[believed[i] for i in sorted(believed)],
                             invalid=dict(sorted(invalid.items())), unreadable=unreadable,
                             trial=trial, task_type=recorded, rules=rules,
                             num_folds=num_folds, nested=nested)

    def _num_folds(self, layout: InstanceLayout, folds: list[int],
                   unreadable: list[str]) -> int:
        """The number of folds from `summary.json`, else from the fold files present."""
        old, problem = self.read_record(layout.summary_file, InstanceSummary.from_dict)
        if problem:
            unreadable.append(layout.summary_file.name)
        if old is not None and old.num_folds:
            return int(old.num_folds)
        return max(folds, default=-1) + 1

    def stamp(self, layout: InstanceLayout, num_folds: int | None) -> tuple[Any, ...]:
        """The versions of the files `instance` reads: equal stamps, equal readings."""
        names = [layout.params_file, layout.trial_file, layout.nested_file,
                 *layout.fold_files().values(), *layout.fold_models().values()]
        if num_folds is None:
            names.append(layout.summary_file)
        return tuple((p.name, hashing.file_stamp(p)) for p in names)


READER = ResultsReader()
"""The process's results reader."""


def read_manifest(layout: ExperimentLayout) -> FoldsManifest | None:
    """The experiment's `folds.json` through the process's reader (`READER.manifest`)."""
    return READER.manifest(layout)
