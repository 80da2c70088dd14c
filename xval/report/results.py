"""The read side of a results folder: `ExperimentResults` and `InstanceResult`.

Every file is read through the typed records (`xval.core.records`) at the paths the layout
names (`xval.core.layout`), and every fold file is checked as it is read
(`xval.report.validation`): a file that is not a fold record, or an `ok` fold that cannot be
believed (another fold's number, another instance's parameters, a metric that is not finite
or out of its range, a model missing or not the recorded one), is *invalid*. An invalid
fold is not counted and never selected; its instance is `partial`, and the reason is kept in
`InstanceSummary.invalid` for the terminal table and the workbook to show.

The summary is recomputed from the fold files every time (never read from `summary.json`),
so it cannot contradict them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from xval import tasks
from xval.config.params import edited_params
from xval.config.selection import metric_direction
from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.files import read_json
from xval.core.layout import ExperimentLayout, InstanceLayout
from xval.core.records import (
    FoldResult,
    FoldsManifest,
    InstanceStatus,
    InstanceSummary,
    ParamsRecord,
    RecordError,
    TrialRecord,
)
from xval.report.validation import FoldCheck, read_record, task_rules

COMMENTS = ("comment_1", "comment_2")
"""The two free-text parameters every instance has: shown, never compared."""


# Means closer than this are a tie (the report shows four decimals).
TIE_TOLERANCE = 1e-9
TIE_RULE = ("ties on the selection metric are broken by the lower validation loss, then "
            "by the lower instance id")

def check_experiment_folder(exp_dir: str | Path) -> None:
    """Checks that `exp_dir` holds an experiment's results, before anything is written.

    Raises:
        ConfigurationError: when it is missing, or has neither `folds.json` nor an
            `instance_<k>` folder (e.g. a feature store).
    """
    layout = ExperimentLayout(Path(exp_dir))
    if not layout.root.is_dir():
        raise ConfigurationError(
            f"{layout.root} is not a folder; pass an experiment's results folder, "
            "results/<dataset>/experiment_<N>.")
    if not layout.looks_like_experiment():
        raise ConfigurationError(
            f"{layout.root} is not an experiment folder (no folds.json, no instance_<k> "
            "folders); pass an experiment's results folder, results/<dataset>/experiment_<N>.")


class InstanceResult:
    """What is on disk for one instance.

    Args:
        path: the `instance_<k>` folder.
        num_folds: the experiment's number of folds; `None` reads it from `summary.json`
            or counts the fold files.

    Attributes:
        id: the instance id.
        layout: the folder's `InstanceLayout`.
        params: the instance's parameters (`params.json`; empty when it is unreadable or
            another instance's).
        folds: the believed fold records (`ok` and `failed`), by fold number; invalid ones
            are left out (see `invalid`).
        invalid: fold number -> why its file is not believed.
        unreadable: names of the files that are not valid JSON or not records of their
            kind.
        summary: the `InstanceSummary` of `folds`.
        trial: the search trial that made the instance (`trial.json`), or `None`.
        rules: what the fold checks and the summary take from its task (`TaskRules`).
    """

    def __init__(self, path: str | Path, num_folds: int | None = None) -> None:
        path = Path(path)
        layout = InstanceLayout.parse(path)
        if layout is None:
            raise ConfigurationError(f"{path} is not an instance_<k> folder.")
        self.layout = layout
        self.path = path
        self.id = layout.id
        self.unreadable: list[str] = []
        self.params_record, params_problem = self._read_params()
        self.params: dict[str, Any] = dict(self.params_record.params) \
            if self.params_record is not None else {}
        records, invalid = self._read_folds()
        if num_folds is None:
            num_folds = self._num_folds(records, invalid)
        records = {i: r for i, r in records.items() if i < num_folds}
        invalid = {i: why for i, why in invalid.items() if i < num_folds}
        self._task_type = self._recorded_task(records)
        self.rules = rules = task_rules(self._task_type or _inferred_task(records.values()))
        check = FoldCheck(layout, params_hash=self.params_record.hash
                          if self.params_record is not None else None,
                          params_problem=params_problem, rules=rules)
        for i, record in list(records.items()):
            reason = check(i, record)
            if reason:
                invalid[i] = reason
                del records[i]
        self.folds: list[FoldResult] = [records[i] for i in sorted(records)]
        self.summary = InstanceSummary.from_folds(
            self.folds, num_folds, clip_falls_back=rules.clip_falls_back,
            invalid=dict(sorted(invalid.items())))
        self.trial: TrialRecord | None = self._read(layout.trial_file, TrialRecord.from_dict)

    def _read(self, path: Path, parse: Any) -> Any:
        """`parse(JSON of path)`, or `None` when it is missing or unreadable (named in
        `unreadable`)."""
        record, problem = read_record(path, parse)
        if problem:
            self.unreadable.append(path.name)
        return record

    def _read_params(self) -> tuple[ParamsRecord | None, str]:
        """The parameter record and, when it cannot be used to check the folds, why."""
        path = self.layout.params_file
        record, problem = read_record(path, ParamsRecord.from_dict)
        if problem:
            self.unreadable.append(path.name)
            return None, f"the instance's {path.name} {problem}"
        if record is not None and record.instance != self.id:  # its parameters are not ours
            return None, (f"the instance's {path.name} is instance {record.instance}'s, "
                          f"not instance {self.id}'s")
        edited = edited_params(record.params, record.hash) if record is not None else ""
        if edited:  # the parameters shown would not be the ones trained with
            return None, f"the instance's {path.name} {edited}"
        return record, ""

    def _read_folds(self) -> tuple[dict[int, FoldResult], dict[int, str]]:
        """Every `fold_<i>.json` as a record, or why it is not one."""
        records: dict[int, FoldResult] = {}
        invalid: dict[int, str] = {}
        for i, path in self.layout.fold_files().items():
            record, problem = read_record(path, FoldResult.from_dict)
            if problem:
                self.unreadable.append(path.name)
                invalid[i] = f"{path.name} {problem}"
            elif record is not None:
                records[i] = record
        return records, invalid

    def _num_folds(self, records: dict[int, FoldResult], invalid: dict[int, str]) -> int:
        """The number of folds from `summary.json`, else from the fold files present."""
        old = self._read(self.layout.summary_file, InstanceSummary.from_dict)
        if old is not None and old.num_folds:
            return int(old.num_folds)
        return max([*records, *invalid], default=-1) + 1

    def _recorded_task(self, records: dict[int, FoldResult]) -> str | None:
        if self.params_record is not None and self.params_record.task_type:
            return self.params_record.task_type
        return next((r.task_type for r in records.values() if r.task_type), None)

    @property
    def invalid(self) -> dict[int, str]:
        """Fold number -> why its file is not believed (`InstanceSummary.invalid`)."""
        return self.summary.invalid

    @property
    def task_type(self) -> str | None:
        """The task the instance was trained for, as recorded in `params.json` (or its fold
        files); `None` for results written before the task was recorded."""
        return self._task_type

    @property
    def status(self) -> str:
        """`complete`, `partial`, `failed`, `pending`, or `pruned` (a search stopped it)."""
        if self.trial is not None and self.trial.state == InstanceStatus.PRUNED.value \
                and self.summary.status != InstanceStatus.FAILED.value:
            return InstanceStatus.PRUNED.value
        return self.summary.status

    def metric(self, name: str, split: str = "val", level: str = "segment",
               stat: str = "mean") -> float | None:
        """A summary statistic, e.g. `metric("accuracy", "test")`; `None` when absent."""
        return self.summary.metric(name, split, level, stat)

    def comments(self) -> list[str]:
        """The instance's two comments (`comment_1`, `comment_2`), as text."""
        values = (self.params.get(name) for name in COMMENTS)
        return ["" if value is None else str(value) for value in values]

    def __repr__(self) -> str:
        return f"InstanceResult(id={self.id}, status={self.status!r})"


def _inferred_task(records: Any) -> str | None:
    """The task of fold records written before the task was recorded: the first task whose
    selection metric an `ok` fold's test metrics hold; `None` without such a fold."""
    for record in records:
        if record.ok and record.metrics and isinstance(record.metrics.get("test"), dict):
            return tasks.infer(metrics=record.metrics["test"])
    return None


def read_manifest(layout: ExperimentLayout) -> FoldsManifest | None:
    """The experiment's `folds.json`, or `None` when there is none yet.

    Raises:
        ResultsConflictError: when it is not valid JSON or not a fold manifest.
    """
    path = layout.folds_file
    if not path.exists():
        return None
    fix = ("It records which items each fold tests: restore it from a backup, or move the "
           "experiment folder away and rerun.")
    try:
        manifest = FoldsManifest.from_dict(read_json(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsConflictError(f"{path} is not valid JSON ({e}). {fix}") from e
    except RecordError as e:
        raise ResultsConflictError(f"{path} is not a fold manifest ({e}). {fix}") from e
    except OSError as e:
        raise ResultsConflictError(f"{path} cannot be read ({e.strerror or e}).") from e
    if manifest.content_hash() != manifest.hash:
        raise ResultsConflictError(f"{path} was edited after it was written: its folds no "
                                   f"longer match its recorded hash. {fix}")
    return manifest


class ExperimentResults:
    """The results of one experiment folder: `len`, `[]` by instance id, `to_dataframe()`,
    `best()`.

    Args:
        path: the `experiment_<N>` folder.

    Raises:
        ResultsConflictError: when its `folds.json` is not a fold manifest.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.layout = ExperimentLayout(self.path)
        self.manifest = read_manifest(self.layout)
        num_folds = self.manifest.num_folds if self.manifest is not None else None
        found = (InstanceResult(inst.root, num_folds) for inst in self.layout.instances())
        self.instances = {r.id: r for r in found}

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def task_type(self) -> str:
        """The experiment's task, as its instances recorded it.

        Result folders written before the task was recorded get the task whose selection
        metric their first finished fold has (`xval.tasks.infer`).
        """
        recorded = next((r.task_type for r in self if r.task_type), None)
        if recorded:
            return recorded
        for r in self:
            inferred = _inferred_task(r.folds)
            if inferred:
                return inferred
        return str(tasks.DEFAULT)

    def __getitem__(self, instance_id: int) -> InstanceResult:
        return self.instances[instance_id]

    def __iter__(self) -> Iterator[InstanceResult]:
        return iter(self.instances.values())

    def to_dataframe(self, level: str = "segment") -> pd.DataFrame:
        """One row per instance: id, status, comments, parameters, then metric mean/std."""
        records = []
        for r in self:
            record: dict[str, Any] = {"instance": r.id, "status": r.status,
                                      **dict(zip(COMMENTS, (r.params.get(c, "")
                                                            for c in COMMENTS)))}
            record.update({f"param:{k}": v for k, v in r.params.items()
                           if k not in COMMENTS})
            for split, names in r.summary.metrics.get(level, {}).items():
                for name, stat in names.items():
                    record[f"{split}_{name}_mean"] = stat.mean
                    record[f"{split}_{name}_std"] = stat.std
            records.append(record)
        return pd.DataFrame.from_records(records)

    def complete(self) -> list[InstanceResult]:
        """The complete instances (every fold done and believed)."""
        return [r for r in self if r.status == InstanceStatus.COMPLETE.value]

    def auto_level(self, metric: str, split: str = "val") -> str:
        """The level instances are compared at: `"clip"` when some complete instance has
        clip-level values of `metric` on `split` (the store cuts files into segments) and
        every complete instance with a value has one there, else `"segment"` (e.g. detection
        instances scored before recordings were: all are then compared on windows).

        Returns:
            `"clip"` or `"segment"`.
        """
        has_clip = any(r.metric(metric, split, "clip") is not None for r in self.complete())
        return "clip" if has_clip and not self.without_clip_level(metric, split) \
            else "segment"

    def without_clip_level(self, metric: str, split: str = "val") -> list[int]:
        """Complete instances scored at the segment level but not at the clip level, where
        others are (results from before the clip level existed): their ids."""
        complete = self.complete()
        if not any(r.metric(metric, split, "clip") is not None for r in complete):
            return []
        return [r.id for r in complete if r.metric(metric, split, "clip") is None
                and r.metric(metric, split) is not None]

    def ranked(self, metric: str = "accuracy", split: str = "val",
               level: str = "segment") -> list[InstanceResult]:
        """The complete instances with a mean `metric` on `split`, best first.

        Ties (means equal within `TIE_TOLERANCE`) are broken by the lower mean loss on the
        same split and level, then by the lower instance id (`TIE_RULE`).

        Args:
            metric: metric name (its direction follows the name: max for accuracy-like).
            split: `"train"`, `"val"` or `"test"`. Defaults to `"val"`.
            level: `"segment"`, `"clip"`, or `"auto"` (`auto_level`). Defaults to
                `"segment"`.

        Returns:
            The ranked `InstanceResult`s (an instance with an invalid fold is not complete,
            so it is never ranked).
        """
        if level == "auto":
            level = self.auto_level(metric, split)
        sign = -1.0 if metric_direction(metric) == "max" else 1.0
        scored = [(sign * value, r) for r in self.complete()
                  if (value := r.metric(metric, split, level)) is not None]
        if not scored:
            return []
        best = min(key for key, _ in scored)

        def order(pair: tuple[float, InstanceResult]) -> tuple[float, bool, float, int]:
            key, r = pair
            if key - best > TIE_TOLERANCE:
                return (key, False, 0.0, r.id)
            loss = r.metric("loss", split, level) if metric != "loss" else None
            return (best, loss is None, loss if loss is not None else 0.0, r.id)

        return [r for _, r in sorted(scored, key=order)]

    def best(self, metric: str = "accuracy", split: str = "val",
             level: str = "segment") -> InstanceResult | None:
        """The complete instance with the best mean `metric` on `split` (`ranked`'s first:
        ties broken by `TIE_RULE`).

        Returns:
            The best `InstanceResult`, or `None` when no instance is complete.
        """
        ranked = self.ranked(metric, split, level)
        return ranked[0] if ranked else None

    def tied_with_best(self, metric: str = "accuracy", split: str = "val",
                       level: str = "segment") -> list[InstanceResult]:
        """The other complete instances whose mean `metric` equals the best one's (within
        `TIE_TOLERANCE`): those `TIE_RULE` decided between."""
        ranked = self.ranked(metric, split, level)
        if not ranked:
            return []
        level = self.auto_level(metric, split) if level == "auto" else level
        top = ranked[0].metric(metric, split, level)
        return [r for r in ranked[1:]
                if abs((r.metric(metric, split, level) or 0.0) - (top or 0.0))
                <= TIE_TOLERANCE]

    def __repr__(self) -> str:
        return f"ExperimentResults({str(self.path)!r}, instances={len(self)})"
