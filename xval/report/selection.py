"""Which row the report selects, and how sure its ranking scores are of it.

The ranking scores are the selection metric on the split that selects (`rank`: validation
items kept out of the epoch choice; else `val`), one per fold. Over the folds two rows
share, the Bayesian correlated t-test (`xval.report.bayesian`) gives the probability that
one beats the other by more than the ROPE (`[report] rope`); a row is *behind* when another
row beats it with probability `[report] behind_probability` or more (0.8: odds of 4 to 1).
The rows no other row is ahead of *tie*: the ranking scores cannot tell them apart. Among them the selected row is
the first in an order declared before any score was seen (`Experiment(preference=...)`,
recorded with each run in `code/commands.json`; by default the ensembles of instances
first, then the other instances by id), never the luck of a few ranking items. A row ahead
of all the others is a clear winner. No test score is read here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from xval.config.selection import metric_direction
from xval.report.bayesian import BayesianComparison, correlated_bayesian_ttest
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.stats import finished_folds, fold_grid, fold_scores, fold_test_train_ratio

DEFAULT_ORDER = "ensembles of instances first, then the other instances by id"
"""The preference when the experiment declares none, in words."""


@dataclasses.dataclass(frozen=True)
class Preference:
    """The order rows are preferred in when their ranking scores tie.

    Attributes:
        order: instance ids, the most preferred first: the declared ones, then the others
            in the default order.
        declared: the ids the experiment declared (`Experiment(preference=...)` of its
            latest run), or `()` for the default order.
        changed: when the declared order was first recorded by a run that followed runs
            with instances (their scores may have been seen): that run's time, else `None`.
    """

    order: tuple[int, ...]
    declared: tuple[int, ...] = ()
    changed: str | None = None

    def rank(self, instance: int) -> int:
        """The position of `instance` in `order` (past the end when it is not in it)."""
        return self.order.index(instance) if instance in self.order else len(self.order)


def preference_of(results: ExperimentResults) -> Preference:
    """The preference of an experiment: the one its latest run declared (`RunCommand.
    preference`), completed by the default order (`DEFAULT_ORDER`)."""
    runs = results.runs()
    declared = tuple(runs[-1].preference or ()) if runs else ()
    default = [r.id for r in results if r.ensemble is not None] + \
        [r.id for r in results if r.ensemble is None]
    changed = None
    if declared:
        first = len(runs) - 1
        while first > 0 and runs[first - 1].preference == runs[-1].preference:
            first -= 1
        if any(run.instances for run in runs[:first]):
            changed = runs[first].time_utc
    return Preference(declared + tuple(k for k in default if k not in declared), declared,
                      changed)


@dataclasses.dataclass(frozen=True)
class RowComparison:
    """Another row against the selected one, on their ranking scores.

    Attributes:
        id: the other row's instance.
        mean: its mean ranking score.
        better: P(the selected row beats it by more than the ROPE).
        equivalent: P(they are within the ROPE).
        worse: P(it beats the selected row by more than the ROPE).
        behind: the row that beats it with probability `confidence` or more, or `None`
            when no row does (it ties with the selected row).
        ahead: that probability (`None` when it ties).
    """

    id: int
    mean: float
    better: float
    equivalent: float
    worse: float
    behind: int | None = None
    ahead: float | None = None


@dataclasses.dataclass(frozen=True)
class RowRanking:
    """How the selected row was chosen on the ranking scores (`rank_rows`).

    Attributes:
        leader: the row with the best mean ranking score.
        selected: the selected row: the first of `tied` in the preference order.
        tied: the rows no other row is ahead of, in the preference order (the selected
            row first); one row: a clear winner.
        comparisons: every other row against the selected one, best mean first.
        preference: the order that chose among `tied`.
        confidence: the probability with which a row must beat another to put it behind.
        rope: the half-width of the region of practical equivalence.
        folds: the folds the selected row was ranked over.
        items: its ranking items over those folds (an item counted once per fold).
    """

    leader: int
    selected: int
    tied: tuple[int, ...]
    comparisons: tuple[RowComparison, ...]
    preference: Preference
    confidence: float
    rope: float
    folds: int
    items: int

    @property
    def clear(self) -> bool:
        """Whether the selected row is ahead of every other row (no tie)."""
        return len(self.tied) == 1


def rank_rows(candidates: Sequence[InstanceResult], metric: str, split: str, level: str, *,
              confidence: float, rope: float, repeats: tuple[int, int],
              preference: Preference) -> RowRanking | None:
    """Selects among `candidates` on their ranking scores (see the module).

    Args:
        candidates: the rows, best mean ranking score first (`ExperimentResults.ranked`).
        metric: the selection metric.
        split: the split that ranks (`"rank"` or `"val"`).
        level: `"segment"` or `"clip"`.
        confidence: a row is behind another when it is beaten with this probability or
            more (`[report] behind_probability`).
        rope: the half-width of the region of practical equivalence, `> 0`.
        repeats: `(num_repeats, num_folds)` of the experiment.
        preference: the order that chooses among the rows that tie.

    Returns:
        The `RowRanking`, or `None` without candidates.
    """
    if not candidates:
        return None
    rows = {r.id: r for r in candidates}
    scores = {k: fold_scores(r, metric, split, level) for k, r in rows.items()}
    ratios = {k: {i: fold_test_train_ratio([f], split) for i, f in finished_folds(r).items()}
              for k, r in rows.items()}  # n_split / n_train of each fold's first model
    maximise = metric_direction(metric) == "max"

    tested: dict[tuple[int, int], BayesianComparison] = {}

    def versus(a: int, b: int) -> BayesianComparison:
        """P(a beats b), P(equivalent), P(b beats a) on their common folds (each pair
        tested once)."""
        if (b, a) in tested:
            found = tested[(b, a)]
            return found._replace(better=found.worse, worse=found.better)
        if (a, b) not in tested:
            mine, theirs, common = fold_grid(scores[a], scores[b], *repeats)
            if len(common) < 2:  # nothing to tell them apart with
                tested[(a, b)] = BayesianComparison(0.0, 1.0, 0.0)
                return tested[(a, b)]
            known = [r for k in (a, b) for i in common if math.isfinite(r := ratios[k][i])]
            found = correlated_bayesian_ttest(mine, theirs, rope,
                                              float(np.mean(known)) if known else 0.0)
            tested[(a, b)] = found if maximise else \
                found._replace(better=found.worse, worse=found.better)
        return tested[(a, b)]

    behind: dict[int, tuple[int, float] | None] = {}
    for b in rows:
        beaten = ((a, versus(a, b).better) for a in rows if a != b)
        behind[b] = next(((a, p) for a, p in beaten if p >= confidence), None)
    leader = candidates[0].id
    tied = sorted([k for k in rows if behind[k] is None] or [leader], key=preference.rank)
    selected = tied[0]
    comparisons = []
    for k in rows:
        if k == selected:
            continue
        found, mean = versus(selected, k), float(np.mean(list(scores[k].values())))
        ahead = behind[k]
        comparisons.append(RowComparison(k, mean, found.better, found.equivalent, found.worse,
                                      ahead[0] if ahead else None, ahead[1] if ahead else None))
    comparisons.sort(key=lambda c: (-c.mean if maximise else c.mean, c.id))
    own = finished_folds(rows[selected])
    items = sum(len(own[i].items.get(split, [])) for i in scores[selected] if i in own)
    return RowRanking(leader, selected, tuple(tied), tuple(comparisons), preference, confidence,
                   rope, len(scores[selected]), items)
