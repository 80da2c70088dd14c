"""Ranking models over several datasets: the Friedman test and Nemenyi's critical difference.

Over `N` datasets, each of `k` models gets its rank on every dataset (1 = best, ties share
the mean rank); the Friedman test asks whether the mean ranks differ more than chance
would make them, and Nemenyi's post-hoc test calls two models different when their mean
ranks differ by more than the critical difference
`CD = q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 N))`, `q_alpha` the studentized range
quantile for `k` groups and infinite degrees of freedom (Demšar, 2006). This is what a
critical-difference diagram draws; the table says it in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats


class Ranking(NamedTuple):
    """Result of `friedman_nemenyi`."""

    names: list[str]
    """The models, best mean rank first."""
    mean_ranks: list[float]
    """Their mean ranks over the datasets (1 = best), in the order of `names`."""
    statistic: float
    """Friedman's chi-square statistic (`nan` when every model ties on every dataset)."""
    p: float
    """Its p-value (`k - 1` degrees of freedom)."""
    critical_difference: float
    """Nemenyi's critical difference of mean ranks at `alpha`."""
    groups: list[list[str]]
    """Maximal sets of models whose mean ranks lie within one critical difference of each
    other (not significantly different), best first: the bars of a CD diagram."""


def friedman_nemenyi(scores: np.ndarray, names: Sequence[str], *, alpha: float = 0.05,
                     higher_is_better: bool = True) -> Ranking:
    """The Friedman test and Nemenyi's critical difference of `k` models on `N` datasets.

    Args:
        scores: `np.ndarray [shape=(N, k)]`: row `i` holds every model's score on dataset
            `i` (e.g. the mean test score over folds).
        names: the `k` model names.
        alpha: significance level of the critical difference. Defaults to `0.05`.
        higher_is_better: whether a higher score ranks first (`False` for a loss or an
            error). Defaults to `True`.

    Returns:
        A `Ranking`.

    Raises:
        ValueError: with fewer than 3 models or 2 datasets, a name count that is not `k`,
            or a score that is not finite.
    """
    table = np.asarray(scores, dtype=float)
    if table.ndim != 2 or table.shape[1] < 3 or table.shape[0] < 2:
        raise ValueError(f"scores of shape {table.shape}: the Friedman test ranks at least 3 "
                         "models (columns) over at least 2 datasets (rows).")
    if len(names) != table.shape[1]:
        raise ValueError(f"{len(names)} names for {table.shape[1]} models; give one each.")
    if not np.isfinite(table).all():
        raise ValueError("every model needs a finite score on every dataset.")
    n, k = table.shape
    ranks = stats.rankdata(-table if higher_is_better else table, axis=1)
    mean = ranks.mean(axis=0)
    if np.all(ranks == ranks[:, :1]):  # every model ties on every dataset
        statistic, p = float("nan"), 1.0
    else:
        statistic, p = (float(v) for v in stats.friedmanchisquare(*table.T))
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    cd = q * math.sqrt(k * (k + 1) / (6 * n))
    order = np.argsort(mean, kind="stable")
    ordered = [str(names[i]) for i in order]
    ranked = [float(mean[i]) for i in order]
    return Ranking(ordered, ranked, statistic, p, cd, _groups(ordered, ranked, cd))


def _groups(names: list[str], ranks: list[float], cd: float) -> list[list[str]]:
    """The maximal runs of consecutive models (by mean rank) spanning at most `cd`."""
    groups: list[list[str]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and ranks[j + 1] - ranks[i] <= cd:
            j += 1
        run = names[i:j + 1]
        if len(run) > 1 and not (groups and set(run) <= set(groups[-1])):
            groups.append(run)
    return groups
