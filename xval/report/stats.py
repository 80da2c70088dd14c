"""Statistics over folds: confidence intervals, the corrected resampled t-test (plain and
repeated cross-validation) and Holm's correction for a family of comparisons."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from xval.config.selection import metric_direction
from xval.core.records import FoldResult
from xval.report.bayesian import correlated_bayesian_ttest
from xval.report.results import InstanceResult
from xval.report.validation import finite


def mean_ci(values: Sequence[float] | np.ndarray,
            confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Mean and the half-width of its plain Student-t confidence interval.

    The folds of a cross-validation share training data, so this interval treats them as
    more independent than they are (it is too narrow); it is shown labelled as such. For
    comparing two instances use `corrected_resampled_ttest`.

    Args:
        values: one score per fold.
        confidence: coverage. Defaults to `0.95`.

    Returns:
        `(mean, half_width)`; the half-width is `None` with fewer than two values.
    """
    array = np.asarray(values, dtype=float)
    if len(array) == 0:
        return None, None
    if len(array) < 2:
        return float(array.mean()), None
    half = special.stdtrit(len(array) - 1, 0.5 + confidence / 2) * array.std(ddof=1) \
        / math.sqrt(len(array))
    return float(array.mean()), float(half)


def repeated_mean_ci(scores: dict[int, float], folds_per_repeat: int,
                     confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Mean over every fold, and the plain t-interval half-width of the means over repeats
    per fold order, for repeated cross-validation.

    Fold `j * k + f` is fold `f` of repeat `j`; the repeats test the same items again, so
    the `r * k` scores are far from independent, and an interval over them would be about
    `sqrt(r)` times too narrow. Averaging the repeats of each fold order first leaves `k`
    values (`k - 1` degrees of freedom): the interval of one k-fold, with less partition
    noise. It is still a plain interval (see `mean_ci`).

    Args:
        scores: fold number -> score.
        folds_per_repeat: `k`.
        confidence: coverage. Defaults to `0.95`.

    Returns:
        `(mean, half_width)`, as `mean_ci`.
    """
    if not scores:
        return None, None
    by_order: dict[int, list[float]] = {}
    for fold, value in scores.items():
        by_order.setdefault(fold % max(folds_per_repeat, 1), []).append(value)
    _, half = mean_ci([float(np.mean(v)) for v in by_order.values()], confidence)
    return float(np.mean(list(scores.values()))), half


class CorrectedTTest(NamedTuple):
    """Result of `corrected_resampled_ttest`."""

    t: float
    """t statistic of the mean difference `a - b`."""
    p: float
    """Two-sided p-value (Student t with `k - 1` degrees of freedom)."""
    mean_difference: float
    """Mean over folds of `a - b`."""
    ci_low: float
    """Lower end of the corrected confidence interval of the mean difference."""
    ci_high: float
    """Upper end of the corrected confidence interval of the mean difference."""


def fold_test_train_ratio(folds: Iterable[FoldResult], split: str = "test") -> float:
    """`n_test / n_train` averaged over finished folds, for `corrected_resampled_ttest`.

    The training count excludes augmented rows (`FoldResult.train_rows`): augmented copies
    add no independent training data, and counting them would shrink the correction. Fold
    files written before that count existed fall back to all training rows. A fold whose
    test scores come from a `refit_with_val` model counts the rows that model trained on
    (training plus validation).

    Args:
        folds: fold records; those not `ok` are ignored.
        split: the split whose rows are the `n_test` of the ratio: `"test"`, or `"val"` or
            `"rank"` for a test of validation or ranking scores (always the first model's,
            trained on the training rows only). Defaults to `"test"`.

    Returns:
        The mean ratio, or `nan` without a finished fold.
    """
    ratios = []
    for fold in folds:
        if not fold.ok:
            continue
        train = fold.train_rows
        refit = fold.refit or {}
        if split == "test" and refit.get("train_original"):  # refit_with_val: the test
            train = refit["train_original"]  # scores' model trained on training + validation
        test = fold.n_rows.get(split)
        if train and test is not None:
            ratios.append(test / train)
    return float(np.mean(ratios)) if ratios else float("nan")


def corrected_resampled_ttest(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                              test_train_ratio: float,
                              confidence: float = 0.95) -> CorrectedTTest:
    """Nadeau & Bengio's corrected resampled t-test of paired fold scores.

    Cross-validation folds share training data, so the plain paired t-test underestimates
    the variance of the mean difference; the correction multiplies the variance of the
    differences by `1/k + n_test/n_train` instead of `1/k`. The confidence interval of the
    mean difference uses the same corrected variance:
    `mean ± t(k-1) * sqrt((1/k + n_test/n_train) * var)`.

    Args:
        a: scores of one model, one per fold, `np.ndarray [shape=(k,)]`.
        b: scores of the other model on the same folds.
        test_train_ratio: `n_test / n_train` (averaged over folds, original training rows:
            see `fold_test_train_ratio`).
        confidence: coverage of the interval. Defaults to `0.95`.

    Returns:
        A `CorrectedTTest(t, p, mean_difference, ci_low, ci_high)`, two-sided; every field
        `nan` with fewer than two folds. Identical scores give `t=0, p=1` and an interval of
        zero width.

    Raises:
        ValueError: when `a` and `b` differ in length, or the ratio is negative.

    Example:
    >>> corrected_resampled_ttest([0.8, 0.82, 0.79], [0.78, 0.8, 0.8], 0.25)
    """
    first = np.asarray(a, dtype=float)
    second = np.asarray(b, dtype=float)
    if first.shape != second.shape:
        raise ValueError(f"a has {first.size} scores but b has {second.size}; pass one per "
                         "fold, on the same folds.")
    return corrected_repeated_ttest(first.reshape(1, -1), second.reshape(1, -1),
                                    test_train_ratio, confidence)


def corrected_repeated_ttest(a: np.ndarray, b: np.ndarray, test_train_ratio: float,
                             confidence: float = 0.95) -> CorrectedTTest:
    """Bouckaert & Frank's corrected repeated k-fold cross-validation t-test.

    With `r` repeats of `k` folds the `n = r * k` paired differences share training data
    within and across repeats; Bouckaert & Frank (2004) correct the variance of their mean
    as Nadeau & Bengio do, over all `n` differences:
    `t = mean / sqrt((1/n + n_test/n_train) * var)` with `n - 1` degrees of freedom, `var`
    the sample variance of the `n` differences. One repeat (`r = 1`) is
    `corrected_resampled_ttest`.

    Args:
        a: scores of one model, `np.ndarray [shape=(repeats, folds)]`: row `j` holds
            repeat `j`'s folds.
        b: scores of the other model on the same repeats and folds.
        test_train_ratio: `n_test / n_train` of one fold (see `fold_test_train_ratio`).
        confidence: coverage of the interval of the mean difference. Defaults to `0.95`.

    Returns:
        A `CorrectedTTest`, two-sided; every field `nan` with fewer than two differences.

    Raises:
        ValueError: when `a` and `b` differ in shape or are not 2-d, or the ratio is
            negative.
    """
    first = np.asarray(a, dtype=float)
    second = np.asarray(b, dtype=float)
    if first.ndim != 2 or first.shape != second.shape:
        raise ValueError(f"a has shape {first.shape} and b {second.shape}; pass two arrays "
                         "of the same (repeats, folds) shape, on the same folds.")
    if not test_train_ratio >= 0:
        raise ValueError(f"test_train_ratio={test_train_ratio}: expected n_test / n_train >= 0.")
    d = (first - second).ravel()
    n = len(d)
    nan = float("nan")
    if n < 2:
        return CorrectedTTest(nan, nan, float(d.mean()) if n else nan, nan, nan)
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    if var == 0:
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
        return CorrectedTTest(t, p, mean, mean, mean)
    se = math.sqrt((1 / n + test_train_ratio) * var)
    t = mean / se
    p = 2 * special.stdtr(n - 1, -abs(t))  # Student's t survival (`scipy.stats.t.sf`)
    half = special.stdtrit(n - 1, 0.5 + confidence / 2) * se
    return CorrectedTTest(float(t), float(p), mean, mean - float(half), mean + float(half))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (family-wise error rate).

    The `m` p-values are sorted, the `i`-th smallest (from 1) multiplied by `m - i + 1`,
    made non-decreasing along the order (a running maximum) and capped at 1: an adjusted
    p-value below `alpha` rejects its hypothesis with the family's error rate kept at
    `alpha` (Holm, 1979). `nan` p-values (a pair that could not be tested) stay `nan` and
    do not count in `m`.

    Args:
        p_values: the unadjusted p-values, `np.ndarray [shape=(m,)]`.

    Returns:
        The adjusted p-values, in the order given.

    Example:
    >>> holm([0.01, 0.04, 0.03])  # [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if not m:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


# -- the fold scores a test compares -------------------------------------------------

def finished_folds(r: InstanceResult) -> dict[int, FoldResult]:
    """The `ok` fold records of `r`, by fold number."""
    return {f.fold: f for f in r.folds if f.ok}


def fold_scores(r: InstanceResult, metric: str, split: str, level: str) -> dict[int, float]:
    """`metric` on `split` at `level` of each finished fold of `r` that has a value."""
    out = {}
    for i, fold in finished_folds(r).items():
        found = fold.level_metrics(level, r.rules.clip_falls_back) or {}
        value = found.get(split, {}).get(metric)
        if finite(value):
            out[i] = float(value)
    return out


def fold_grid(a: dict[int, float], b: dict[int, float], repeats: int, num_folds: int
              ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The two entries' scores on their common folds as `(repeats, folds)` arrays.

    Folds are numbered repeat by repeat (fold `f` of repeat `j` is `j * k + f`); with
    repeats, only the repeats both entries completed are kept.

    Returns:
        `(a, b, folds)`: two arrays of the same shape and the fold numbers used.
    """
    common = sorted(set(a) & set(b))
    k = num_folds // repeats if repeats > 1 else max(len(common), 1)
    if repeats > 1:
        whole = [j for j in range(repeats) if all(j * k + f in common for f in range(k))]
        common = [j * k + f for j in whole for f in range(k)]
    shape = (-1, k) if common else (0, 0)
    return (np.array([a[i] for i in common]).reshape(shape),
            np.array([b[i] for i in common]).reshape(shape), common)


def versus(r: InstanceResult, selected: InstanceResult, test: dict[int, float],
           metric: str, level: str, alpha: float, rope: float,
           repeats: tuple[int, int]) -> list[Any]:
    """`[diff, low, high, t, p, p_holm, better, equivalent, worse, verdict]` of `r`
    against `selected` over the folds both finished (the Statistics sheet's row against
    the selected instance, the encoder table's against the best encoder; `p_holm` is left
    `None` for the caller); `test` is `r`'s test scores; `repeats` is `(num_repeats,
    num_folds)`: with repeats, only the repeats both completed count."""
    ref = fold_scores(selected, metric, "test", level)
    mine, theirs, common = fold_grid(test, ref, *repeats)
    if len(common) < 2:
        return [None] * 9 + ["too few common folds"]
    folds = [finished_folds(r)[i] for i in common] + [finished_folds(selected)[i] for i in common]
    ratio = fold_test_train_ratio(folds)
    result = corrected_repeated_ttest(mine, theirs, ratio, confidence=1 - alpha)
    verdict = ("not significantly different" if result.p >= alpha
               else "significantly different") + f" (alpha {alpha})"
    bayes = correlated_bayesian_ttest(mine, theirs, rope, ratio if np.isfinite(ratio) else 0.0)
    if metric_direction(metric) != "max":  # lower is better: a negative difference wins
        bayes = bayes._replace(better=bayes.worse, worse=bayes.better)
    return [result.mean_difference, result.ci_low, result.ci_high, result.t, result.p, None,
            bayes.better, bayes.equivalent, bayes.worse, verdict]
