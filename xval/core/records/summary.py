"""`InstanceSummary` (`summary.json`): an instance's state and its metrics over folds, each
a `Stat` (mean, standard deviation, 95% CI half-width, number of folds)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from xval.core.constraints import FINITE
from xval.core.records.base import (
    FORMAT_VERSION,
    LEVELS,
    SCORED_SPLITS,
    InstanceStatus,
    Record,
)
from xval.core.records.fold import FoldResult


@dataclasses.dataclass
class Stat(Record):
    """A metric over folds: mean, standard deviation, 95% CI half-width, number of folds."""

    KIND: ClassVar[str] = "statistic"

    mean: float | None
    std: float | None
    ci95: float | None
    n: int


@dataclasses.dataclass
class InstanceSummary(Record):
    """`summary.json`: an instance's state and its metrics over folds.

    Attributes:
        status: an `InstanceStatus` value.
        metrics: level -> split -> metric -> `Stat`.
        confusion_matrix: level -> the test confusion matrix pooled over folds.
        invalid: fold number -> why its file cannot be believed (`check_fold`): such a fold
            is not counted, and a rerun trains it again.
        num_repeats: the repeats of the k-fold (`num_folds` counts every repeat's folds);
            with more than one, each `Stat.ci95` is over the means per fold order
            (`mean_std_ci`).
    """

    KIND: ClassVar[str] = "instance summary"

    status: str
    num_folds: int
    num_repeats: int = 1
    folds_done: int = 0
    folds_failed: int = 0
    metrics: dict[str, dict[str, dict[str, Stat]]] = dataclasses.field(default_factory=dict)
    confusion_matrix: dict[str, list] = dataclasses.field(default_factory=dict)
    message: str = ""
    best_epochs: list[int | None] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    invalid: dict[int, str] = dataclasses.field(default_factory=dict)
    format: int = FORMAT_VERSION

    def metric(self, name: str, split: str = "val", level: str = "segment",
               stat: str = "mean") -> float | None:
        """A statistic over folds, e.g. `metric("accuracy", "test")`; `None` when absent."""
        found = self.metrics.get(level, {}).get(split, {}).get(name)
        return None if found is None else getattr(found, stat)

    def levels(self) -> list[str]:
        """The levels with metrics, segment first."""
        return [level for level in LEVELS if level in self.metrics]

    def metric_names(self, level: str = "segment", split: str = "test") -> list[str]:
        """The metrics recorded at `level` on `split`, in their recorded order."""
        return list(self.metrics.get(level, {}).get(split, {}))

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `summary.json`."""
        out = super().to_dict()
        out["invalid"] = {str(k): v for k, v in self.invalid.items()}
        return out

    @classmethod
    def pending(cls, num_folds: int) -> InstanceSummary:
        """The summary of an instance with no fold file yet."""
        return cls(status=InstanceStatus.PENDING.value, num_folds=num_folds)

    @classmethod
    def _finish(cls, read: dict[str, Any]) -> dict[str, Any]:
        """The statistics as `Stat`s, the invalid folds by number."""
        metrics = {
            level: {split: {name: Stat.from_dict(stat) for name, stat in names.items()}
                    for split, names in splits.items()}
            for level, splits in read.get("metrics", {}).items()}
        invalid = {int(k): str(v) for k, v in read.get("invalid", {}).items()}
        return {**read, "metrics": metrics, "invalid": invalid}

    @classmethod
    def from_folds(cls, folds: Iterable[FoldResult], num_folds: int, *,
                   clip_falls_back: bool = True,
                   invalid: Mapping[int, str] | None = None,
                   num_repeats: int = 1) -> InstanceSummary:
        """The summary of an instance from its valid fold records.

        Args:
            folds: the instance's fold records (invalid ones left out by the caller).
            num_folds: the number of folds the experiment has.
            clip_falls_back: the task's `clip_is_segment_without_clips` (see
                `FoldResult.level_metrics`).
            invalid: fold -> reason, for folds whose files were not believed.
            num_repeats: the repeats of the k-fold among the `num_folds` folds.

        Returns:
            The summary: `complete`, `partial` or `failed`, and for every level, split and
            metric the mean, std and 95% CI half-width over folds, plus the test confusion
            matrix pooled over folds.
        """
        folds = list(folds)
        ok = [f for f in folds if f.ok]
        failed = [f for f in folds if not f.ok]
        if failed:
            status = InstanceStatus.FAILED
        elif len(ok) == num_folds:
            status = InstanceStatus.COMPLETE
        elif ok or invalid:
            status = InstanceStatus.PARTIAL
        else:
            status = InstanceStatus.PENDING
        repeats = num_repeats if num_repeats > 1 and num_folds % num_repeats == 0 else 1
        summary = cls(status=status.value, num_folds=num_folds, num_repeats=repeats,
                      folds_done=len(ok),
                      folds_failed=len(failed), invalid=dict(invalid or {}),
                      message=failed[0].message if failed else "")
        for level in LEVELS:
            _summarize_level(summary, ok, level, clip_falls_back)
        if ok:
            summary.best_epochs = [f.best_epoch for f in ok]
            summary.seconds = round(sum(f.seconds for f in ok), 3)
        return summary


def _summarize_level(summary: InstanceSummary, ok: list[FoldResult], level: str,
                     clip_falls_back: bool) -> None:
    """Adds one level's statistics (and pooled confusion matrix) to `summary`."""
    field = "metrics" if level == "segment" else "clip_metrics"
    if not any(getattr(f, field) for f in ok):
        return
    found = [f.level_metrics(level, clip_falls_back) for f in ok]
    if level == "clip" and not all(found):
        return  # some folds only scored at the other level: not comparable
    with_level = [m for m in found if m]
    summary.metrics[level] = {}
    for split in SCORED_SPLITS:
        if split not in with_level[0]:
            continue
        names = [n for n in with_level[0][split] if n != "confusion_matrix"]
        orders = [f.fold % (summary.num_folds // summary.num_repeats) for f, m
                  in zip(ok, found) if m] if summary.num_repeats > 1 else None
        summary.metrics[level][split] = {
            n: mean_std_ci([m[split].get(n) if split in m else None for m in with_level],
                           orders)
            for n in names}
    matrices = [m["test"].get("confusion_matrix") for m in with_level if "test" in m]
    if matrices and all(m is not None for m in matrices):
        summary.confusion_matrix[level] = np.sum(np.asarray(matrices), axis=0).tolist()


def _finite(value: Any) -> bool:
    return FINITE.is_satisfied_by(value)


def mean_std_ci(values: Iterable[Any], orders: Iterable[int] | None = None) -> Stat:
    """Mean, sample std and the 95% t-interval half-width of the finite `values`.

    Args:
        values: one value per fold (non-finite ones are left out).
        orders: with repeated cross-validation, the fold order (the fold within its
            repeat) of each value: the interval is then the t-interval of the means over
            repeats per fold order (`k` of them, `k - 1` degrees of freedom), since the
            repeats test the same items again and `k * r` folds would give an interval
            about `sqrt(r)` times too narrow. Mean, std and `n` stay over every fold.
            `None`: one repeat.

    Returns:
        A `Stat`.
    """
    pairs = [(v, o) for v, o in zip(values, itertools.repeat(0) if orders is None
                                    else orders) if _finite(v)]
    clean = np.asarray([v for v, _ in pairs], float)
    n = len(clean)
    if n == 0:
        return Stat(mean=None, std=None, ci95=None, n=0)
    std = float(clean.std(ddof=1)) if n > 1 else 0.0
    spread = clean
    if orders is not None:
        by_order: dict[int, list[float]] = {}
        for value, order in pairs:
            by_order.setdefault(order, []).append(value)
        spread = np.asarray([np.mean(v) for v in by_order.values()], float)
    m = len(spread)
    half = float(_t_quantile(0.975, m - 1) * spread.std(ddof=1) / np.sqrt(m)) \
        if m > 1 else None
    return Stat(mean=float(clean.mean()), std=std, ci95=half, n=int(n))


def _t_quantile(p: float, df: int) -> float:
    """Student's t quantile (`scipy.stats.t.ppf(p, df)`, computed by the function it calls,
    `scipy.special.stdtrit`: a third of the import time of `scipy.stats`)."""
    from scipy.special import stdtrit  # noqa: PLC0415  (scipy: when a summary is computed)

    return float(stdtrit(df, p))
