"""The Bayesian correlated t-test of two models' fold scores (Benavoli et al., 2017).

A p-value says how surprising the data would be if two models were exactly equal; the
question a reader asks is rather "how probable is it that A is better, that they are
practically equivalent, that B is better?". The correlated t-test answers it: with a flat
prior, the posterior of the mean difference of the fold scores is a Student t with `n - 1`
degrees of freedom, located at their mean difference, whose variance is corrected for the
correlation of cross-validation folds as the corrected resampled t-test's is
(`(1/n + rho/(1 - rho)) * var`). Its mass below `-rope`, within `[-rope, rope]` and above
`rope` are the three probabilities, for a *region of practical equivalence* (ROPE) the
reader chooses in the units of the metric (0.01: one point of accuracy).

This is baycomp's `CorrelatedTTest` (`baycomp.two_on_single`), computed here with scipy;
`tests/test_comparison_stats.py` checks it against baycomp. baycomp takes the correlation
as `1 / k` for `k` folds, i.e. `rho / (1 - rho) = 1 / (k - 1) = n_test / n_train` when the
training set is every other fold; this project passes the measured `n_test / n_train`
(training rows without the validation items and augmented copies, `fold_test_train_ratio`),
the same ratio its corrected t-test uses.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import special


class BayesianComparison(NamedTuple):
    """Result of `correlated_bayesian_ttest` (from the first model's side)."""

    better: float
    """P(first - second > rope): the first model is better (for a higher-is-better score)."""
    equivalent: float
    """P(|first - second| <= rope): practically equivalent."""
    worse: float
    """P(first - second < -rope): the second model is better."""


def correlated_bayesian_ttest(a: np.ndarray, b: np.ndarray, rope: float,
                              test_train_ratio: float) -> BayesianComparison:
    """P(a better), P(practically equivalent), P(b better) of paired fold scores.

    Args:
        a: scores of one model, `np.ndarray [shape=(n,)]` or `[shape=(repeats, folds)]` for
            repeated cross-validation (every repeat's folds; the correction is the same,
            over all `n = repeats * folds` differences).
        b: scores of the other model on the same folds.
        rope: half-width of the region of practical equivalence, `> 0`, in the metric's
            units.
        test_train_ratio: `n_test / n_train` of one fold (`rho / (1 - rho)` in Benavoli et
            al.'s notation; `1 / (k - 1)` is baycomp's).

    Returns:
        A `BayesianComparison(better, equivalent, worse)` that sums to 1, `better` meaning a
        higher score for `a` (for a lower-is-better metric such as a loss, swap the names);
        every field `nan` with fewer than two folds.

    Raises:
        ValueError: when the shapes differ, `rope <= 0` or the ratio is negative.

    Example:
    >>> correlated_bayesian_ttest(np.array([.8, .82, .79, .85]),
    ...                           np.array([.78, .8, .8, .81]), rope=0.01,
    ...                           test_train_ratio=1 / 3)
    """
    first = np.asarray(a, dtype=float)
    second = np.asarray(b, dtype=float)
    if first.shape != second.shape:
        raise ValueError(f"a has shape {first.shape} and b {second.shape}; pass the scores "
                         "of both models on the same folds.")
    if not rope > 0:
        raise ValueError(f"rope={rope}: expected a half-width > 0 in the metric's units "
                         "(e.g. 0.01 for one point of accuracy).")
    if not test_train_ratio >= 0:
        raise ValueError(f"test_train_ratio={test_train_ratio}: expected n_test / n_train >= 0.")
    d = (first - second).ravel()
    n = len(d)
    if n < 2:
        nan = float("nan")
        return BayesianComparison(nan, nan, nan)
    mean = float(d.mean())
    var = float(d.var(ddof=1)) * (1 / n + test_train_ratio)
    if var == 0:  # every fold the same difference: the posterior is a point
        better, worse = float(mean > rope), float(mean < -rope)
        return BayesianComparison(better, 1.0 - better - worse, worse)
    # The posterior of the mean difference: Student's t with n - 1 degrees of freedom,
    # centred on `mean`, of scale sqrt(var) (`scipy.stats.t(n - 1, mean, sqrt(var))`).
    scale = math.sqrt(var)
    worse = float(special.stdtr(n - 1, (-rope - mean) / scale))
    better = float(special.stdtr(n - 1, -((rope - mean) / scale)))
    return BayesianComparison(better, max(0.0, 1.0 - better - worse), worse)
