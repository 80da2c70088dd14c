"""The report's view of a results folder: `ExperimentResults` and `InstanceResult`.

Every file is read through the results store handed in (`xval.core.storage.ResultsStore`;
a store of its own by default), which checks every fold file as it reads it: a fold that
cannot be believed (another fold's number, another instance's parameters, a metric out of
its range, a model missing or not the recorded one) is *invalid*: not counted, never selected, its instance `partial` and the reason kept in
`InstanceSummary.invalid`. The summary is computed from the fold files once per version of
them (never read from `summary.json`), so it cannot contradict them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xval import tasks
from xval.config.params import edited_params
from xval.config.selection import metric_direction
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
    RunCommand,
    TrialRecord,
)
from xval.core.storage import ResultsStore, TaskRules

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COMMENTS", "TIE_RULE", "TIE_TOLERANCE", "ExperimentResults", "InstanceResult"]

COMMENTS = ("comment_1", "comment_2")
"""The two free-text parameters every instance has: shown, never compared."""


# Means closer than this are a tie (the report shows four decimals).
TIE_TOLERANCE = 1e-9
TIE_RULE = ("ties on the selection metric are broken by the lower validation loss, then "
            "by the lower instance id")


class InstanceResult:
    """What is on disk for one instance.

    Args:
        path: the `instance_<k>` folder.
        num_folds: the experiment's number of folds; `None` reads it from `summary.json`
            or counts the fold files.
        results_store: the results store it is read through. Defaults to a store of its
            own.
        num_repeats: the repeats of the k-fold (`folds.json`). Defaults to `1`.

    Attributes:
        id: the instance id.
        layout: the folder's `InstanceLayout`.
        params: the instance's parameters (`params.json`; empty when it is unreadable or
            another instance's).
        folds: the believed fold records (`ok` and `failed`), by fold number; invalid ones
            are left out (see `invalid`).
        unreadable: names of the files that are not valid JSON or not records of their
            kind.
        summary: the `InstanceSummary` of `folds`.
        trial: the search trial that made the instance (`trial.json`), or `None`.
        nested: what a nested search chose per outer fold (`nested.json`), or `None`.
        ensemble: the members and weights of an ensemble of instances (`ensemble.json`),
            or `None` for a trained instance.
        rules: what the fold checks and the summary take from its task (`TaskRules`).
        task_type: the task the instance was trained for, as recorded in `params.json` (or
            its fold files); `None` for results written before the task was recorded.
    """

    def __init__(self, path: str | Path, num_folds: int | None = None, *,
                 results_store: ResultsStore | None = None, num_repeats: int = 1) -> None:
        layout = InstanceLayout.parse(Path(path))
        if layout is None:
            raise ConfigurationError(f"{path} is not an instance_<k> folder.")
        store = results_store if results_store is not None else ResultsStore()
        files = store.instance(layout, num_folds, tasks.rules, edited_params)
        self.layout, self.path, self.id = layout, Path(path), layout.id
        self.results_store = store  # what reads its predictions and plot data later
        self.unreadable: list[str] = files.unreadable
        self.params: dict[str, Any] = dict(files.params.params if files.params else {})
        self.folds: list[FoldResult] = files.folds
        self.rules: TaskRules = files.rules
        self.task_type: str | None = files.task_type
        self.summary = InstanceSummary.from_folds(
            self.folds, files.num_folds, clip_falls_back=files.rules.clip_falls_back,
            invalid=files.invalid, num_repeats=num_repeats)
        self.trial: TrialRecord | None = files.trial
        self.nested: NestedRecord | None = files.nested
        self.ensemble: EnsembleRecord | None = files.ensemble

    @property
    def invalid(self) -> dict[int, str]:
        """Fold number -> why its file is not believed (`InstanceSummary.invalid`)."""
        return self.summary.invalid

    @property
    def status(self) -> str:
        """`complete`, `partial`, `failed`, `pending`, or `pruned` (a search stopped it)."""
        if self.trial is not None and self.trial.state == InstanceStatus.PRUNED.value \
                and self.summary.status != InstanceStatus.FAILED.value:
            return InstanceStatus.PRUNED.value
        return self.summary.status

    def metric(self, name: str, split: str = "val", level: str = "segment",
               stat: str = "mean") -> float | None:
        """A summary statistic, e.g. `metric("accuracy", "test")`; `None` when absent.

        At the clip level, an instance with one row per clip (an embedding store: no fold
        scored clips apart) gives its segment-level value, as its folds do
        (`FoldResult.level_metrics`), unless its task scores the two levels differently
        (detection's windows and recordings).
        """
        value = self.summary.metric(name, split, level, stat)
        if value is None and level == "clip" and self.one_row_per_clip:
            return self.summary.metric(name, split, "segment", stat)
        return value

    @property
    def one_row_per_clip(self) -> bool:
        """Whether the instance's clip level is its segment level: none of its folds has
        clip-level scores and its task counts a row as its clip then."""
        return self.rules.clip_falls_back and "clip" not in self.summary.metrics \
            and "segment" in self.summary.metrics

    @property
    def parameters(self) -> InstanceParams:
        """`params` as the typed record (a name `params.json` lacks takes its default)."""
        return InstanceParams.of(self.params)

    def comments(self) -> list[str]:
        """The instance's two comments (`comment_1`, `comment_2`), as text."""
        values = (self.params.get(name) for name in COMMENTS)
        return ["" if value is None else str(value) for value in values]

    def __repr__(self) -> str:
        return f"InstanceResult(id={self.id}, status={self.status!r})"


class ExperimentResults:
    """The results of one experiment folder: `len`, `[]` by instance id, `to_dataframe()`,
    `best()`.

    Args:
        path: the `experiment_<N>` folder.
        results_store: the results store it is read through. Defaults to a store of its
            own.
        num_folds: the number of folds when the folder has no `folds.json` yet (a run's
            plan); `None` counts each instance's fold files then.

    Raises:
        ResultsConflictError: when its `folds.json` is not a fold manifest.
    """

    def __init__(self, path: str | Path, *, results_store: ResultsStore | None = None,
                 num_folds: int | None = None) -> None:
        self.path = Path(path)
        self.layout = ExperimentLayout(self.path)
        self.results_store = results_store if results_store is not None else ResultsStore()
        self._planned_folds = num_folds
        self.manifest: FoldsManifest | None = None
        self.instances: dict[int, InstanceResult] = {}
        self._stamps: dict[int, tuple[Any, ...]] = {}
        self.refresh()

    @property
    def num_folds(self) -> int | None:
        """The experiment's number of folds (`folds.json`; before it exists, the one given,
        or `None`)."""
        return self.manifest.num_folds if self.manifest is not None else self._planned_folds

    @property
    def num_repeats(self) -> int:
        """The repeats of the k-fold (`folds.json`; 1 before it exists)."""
        return self.manifest.num_repeats if self.manifest is not None else 1

    def refresh(self) -> ExperimentResults:
        """Reads again what changed on disk since the last reading: the manifest, and the
        instances whose files changed (or appeared, or went away); the others, and their
        summaries, are kept.

        Returns:
            `self`.

        Raises:
            ResultsConflictError: when `folds.json` is not a fold manifest.
        """
        self.manifest = self.results_store.manifest(self.layout)
        found = {inst.id for inst in self.layout.instances()}
        for k in [k for k in self.instances if k not in found]:
            del self.instances[k], self._stamps[k]
        for k in found:
            self.reload(k)
        return self

    def reload(self, instance_id: int) -> InstanceResult:
        """Reads one instance again if its files changed (the recorder, when the
        instance's last fold ended).

        Returns:
            Its `InstanceResult`, now also `self[instance_id]`.
        """
        if self.manifest is None:  # written since these results were first read
            self.manifest = self.results_store.manifest(self.layout)
        inst = self.layout.instance(instance_id)
        stamp = self.results_store.stamp(inst, self.num_folds)
        if self._stamps.get(instance_id) != stamp or instance_id not in self.instances:
            self.instances[instance_id] = InstanceResult(inst.root, self.num_folds,
                                                         results_store=self.results_store,
                                                         num_repeats=self.num_repeats)
            self._stamps[instance_id] = stamp
            self.instances = dict(sorted(self.instances.items()))
        return self.instances[instance_id]

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def task_type(self) -> str:
        """The experiment's task, as its instances recorded it (`tasks.DEFAULT` where none
        could be read)."""
        return next((r.task_type for r in self if r.task_type), tasks.DEFAULT)

    def __getitem__(self, instance_id: int) -> InstanceResult:
        return self.instances[instance_id]

    def check_task(self) -> None:
        """Refuses results of a task this process does not register (one an experiment
        script defines), before anything is computed from them.

        Raises:
            ConfigurationError: naming the task, the script its runs recorded and the fix
                (`--script`).
        """
        name = self.task_type
        if name in tasks.names():
            return
        scripts = [word for run in self.runs() for word in run.command.split()
                   if word.endswith(".py")]
        example = scripts[-1] if scripts else "experiments/SCRIPT.py"
        raise ConfigurationError(
            f"{self.path}: its results are of the task {name!r}, which is not registered in "
            f"this process ({', '.join(tasks.names())}): a task defined in an experiment "
            "script is registered when the script is read. Pass the script with --script "
            f"(e.g. --script {example}), or rerun the script itself (its finished instances "
            "are kept, and its report rebuilt).")

    def runs(self) -> list[RunCommand]:
        """The command line of every run of the experiment, oldest first
        (`code/commands.json`; empty when it is missing or cannot be read)."""
        return self.results_store.commands(self.layout)

    def __iter__(self) -> Iterator[InstanceResult]:
        return iter(self.instances.values())

    def to_dataframe(self, level: str = "segment") -> pd.DataFrame:
        """One row per instance: id, status, comments, parameters, then metric mean/std."""
        import pandas as pd  # noqa: PLC0415  (pandas: 0.4 s of CPU the report does without)

        return pd.DataFrame.from_records([{
            "instance": r.id, "status": r.status, **{c: r.params.get(c, "") for c in COMMENTS},
            **{f"param:{k}": v for k, v in r.params.items() if k not in COMMENTS},
            **{f"{split}_{name}_{what}": getattr(stat, what)
               for split, names in r.summary.metrics.get(level, {}).items()
               for name, stat in names.items() for what in ("mean", "std")}} for r in self])

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
        has_clip = any(r.summary.metric(metric, split, "clip") is not None
                       for r in self.complete())
        return "segment" if not has_clip or self.without_clip_level(metric, split) else "clip"

    def without_clip_level(self, metric: str, split: str = "val") -> list[int]:
        """Complete instances scored at the segment level but not at the clip level, where
        others are (detection results from before recordings were scored): their ids. An
        instance with one row per clip is not one (`InstanceResult.one_row_per_clip`)."""
        complete = self.complete()
        if not any(r.summary.metric(metric, split, "clip") is not None for r in complete):
            return []
        return [r.id for r in complete if r.metric(metric, split, "clip") is None
                and r.metric(metric, split) is not None]

    def clip_from_segment(self, metric: str, split: str = "val") -> list[int]:
        """Complete instances with one row per clip (their segment scores are their clip
        scores) beside instances that score clips apart: their ids, for the report's note."""
        complete = self.complete()
        if not any("clip" in r.summary.metrics for r in complete):
            return []
        return [r.id for r in complete if r.one_row_per_clip
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
        sign = -1.0 if metric_direction(metric, task=self.task_type) == "max" else 1.0
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
        ties broken by `TIE_RULE`), or `None` when no instance is complete."""
        return next(iter(self.ranked(metric, split, level)), None)

    def __repr__(self) -> str:
        return f"ExperimentResults({str(self.path)!r}, instances={len(self)})"
