"""Statistics over folds: confidence intervals and the corrected resampled t-test."""

import math

import numpy as np
from scipy import stats


def mean_ci(values, confidence=0.95):
    """Mean and the half-width of its Student-t confidence interval.

    Args:
        values: one score per fold.
        confidence: coverage. Defaults to `0.95`.

    Returns:
        `(mean, half_width)`; the half-width is `None` with fewer than two values.
    """
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return None, None
    if len(values) < 2:
        return float(values.mean()), None
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) \
        / math.sqrt(len(values))
    return float(values.mean()), float(half)


def corrected_resampled_ttest(a, b, test_train_ratio):
    """Nadeau & Bengio's corrected resampled t-test of paired fold scores.

    Cross-validation folds share training data, so the plain paired t-test
    underestimates the variance; the correction multiplies it by
    `1/k + n_test/n_train` instead of `1/k`.

    Args:
        a: scores of one model, one per fold, `np.ndarray [shape=(k,)]`.
        b: scores of the other model on the same folds.
        test_train_ratio: `n_test / n_train` (averaged over folds).

    Returns:
        `(t, p)`, two-sided; `(nan, nan)` with fewer than two folds. Identical scores
        give `(0.0, 1.0)`.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    k = len(d)
    if k < 2:
        return float("nan"), float("nan")
    var = d.var(ddof=1)
    if var == 0:
        return (0.0, 1.0) if d.mean() == 0 else (math.copysign(math.inf, d.mean()), 0.0)
    t = d.mean() / math.sqrt((1 / k + test_train_ratio) * var)
    p = 2 * stats.t.sf(abs(t), k - 1)
    return float(t), float(p)
