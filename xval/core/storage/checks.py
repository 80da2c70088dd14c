"""What reading an instance folder gives, and whether a fold file can be believed.

`FoldCheck` asks `xval.core.records.check_fold` with what the folder holds: the fold number
its file name gives, the instance its folder gives, the hash of the instance's
`params.json`, the `fold_<i>.keras` beside it and the valid range of every metric of the
task. The task's rules are handed in (`RulesOf`: `xval.tasks.rules`), since the tasks sit
above this layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from xval.core.layout import InstanceLayout
from xval.core.records import (
    EnsembleRecord,
    FoldResult,
    NestedRecord,
    ParamsRecord,
    TrialRecord,
    check_fold,
)


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

RulesOf = Callable[[str | None], TaskRules]
"""`task_type -> TaskRules`: the rules of a recorded task (`xval.tasks.rules`)."""


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
        clip_only: the folds of an ensemble of instances, scored at the clip level only
            (`check_fold`). Defaults to `False`.
    """

    instance: int
    params_hash: str | None = None
    params_problem: str = ""
    rules: TaskRules = dataclasses.field(default_factory=TaskRules)
    model_required: bool = False
    clip_only: bool = False

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
                          ranges=self.rules.ranges, clip_only=self.clip_only)


def orphaned(layout: InstanceLayout, fold: int) -> str:
    """Why the `fold_<fold>.keras` of an instance is not used when its fold record is
    missing: nothing says what trained it, or how it scored."""
    return (f"{layout.fold_model(fold).name} has no fold record beside it "
            f"({layout.fold_file(fold).name} is missing: deleted, or not written yet by a run "
            "that is training it or stopped), so nothing says which fold trained it or how "
            "it scored")


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
        ensemble: its `ensemble.json` record (an ensemble of instances), or `None`.
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
    ensemble: EnsembleRecord | None = None
