"""The statistics of comparisons: Holm's adjustment, the corrected repeated t-test, the
Bayesian correlated t-test (against baycomp) and the Friedman + Nemenyi ranking."""

import math

import numpy as np
import pytest
from scipy import stats

from xval.report.bayesian import correlated_bayesian_ttest
from xval.report.ranking import friedman_nemenyi
from xval.report.stats import corrected_repeated_ttest, corrected_resampled_ttest, holm


def test_holm_matches_hand_computed_values():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 -> max(0.04, 0.06)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_untested_pairs_out_of_the_family():
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
    adjusted = holm([0.02, float("nan"), 0.5])  # m = 2, not 3
    assert adjusted[0] == pytest.approx(0.04) and adjusted[2] == pytest.approx(0.5)
    assert math.isnan(adjusted[1])
    assert holm([]).shape == (0,)
    assert holm([0.03]).tolist() == [0.03]  # one comparison: nothing to adjust


def test_corrected_repeated_ttest_matches_hand_computed_values():
    """Bouckaert & Frank: t = mean / sqrt((1/n + n_test/n_train) var), n - 1 dof, over the
    n = repeats x folds differences."""
    a = np.array([[0.82, 0.81, 0.83], [0.80, 0.82, 0.81]])
    b = np.array([[0.80, 0.80, 0.80], [0.80, 0.80, 0.80]])
    # d = .02 .01 .03 .00 .02 .01: mean 0.015, var (ddof 1) 550e-6 / 5 = 110e-6
    result = corrected_repeated_ttest(a, b, 0.25)
    se = math.sqrt((1 / 6 + 0.25) * 110e-6)
    assert result.mean_difference == pytest.approx(0.015)
    assert result.t == pytest.approx(0.015 / se)
    assert result.p == pytest.approx(2 * stats.t.sf(0.015 / se, 5))
    half = stats.t.ppf(0.975, 5) * se
    assert (result.ci_low, result.ci_high) == pytest.approx((0.015 - half, 0.015 + half))


def test_corrected_repeated_ttest_of_one_repeat_is_nadeau_bengio():
    a, b = [0.8, 0.82, 0.79, 0.85], [0.78, 0.8, 0.8, 0.81]
    assert corrected_repeated_ttest(np.array([a]), np.array([b]), 0.3) == \
        corrected_resampled_ttest(a, b, 0.3)


def test_corrected_repeated_ttest_refuses_other_shapes():
    with pytest.raises(ValueError, match=r"same \(repeats, folds\) shape"):
        corrected_repeated_ttest(np.zeros((2, 3)), np.zeros((3, 2)), 0.2)
    with pytest.raises(ValueError, match="same"):
        corrected_repeated_ttest(np.zeros(3), np.zeros(3), 0.2)


@pytest.mark.parametrize("runs", [1, 2])
@pytest.mark.parametrize("rope", [0.005, 0.01, 0.05])
def test_correlated_bayesian_ttest_equals_baycomp(rope, runs):
    baycomp = pytest.importorskip("baycomp")
    rng = np.random.default_rng(runs * 100 + int(rope * 1000))
    k = 5
    x = 0.8 + rng.normal(0, 0.02, runs * k)
    y = x - 0.01 + rng.normal(0, 0.015, runs * k)
    # baycomp: diff = y - x, p_left = P(diff < -rope): x better; rho = 1 / k
    left, middle, right = baycomp.CorrelatedTTest.probs(x, y, rope=rope, runs=runs)
    mine = correlated_bayesian_ttest(x.reshape(runs, k), y.reshape(runs, k), rope,
                                     test_train_ratio=1 / (k - 1))
    assert mine.better == pytest.approx(left, abs=1e-12)
    assert mine.equivalent == pytest.approx(middle, abs=1e-12)
    assert mine.worse == pytest.approx(right, abs=1e-12)


def test_correlated_bayesian_ttest_edges():
    same = correlated_bayesian_ttest(np.array([0.75, 0.5]), np.array([0.5, 0.25]), 0.05, 0.2)
    assert same == (1.0, 0.0, 0.0)  # every fold 0.25 better: a point posterior past the ROPE
    assert all(math.isnan(v) for v in correlated_bayesian_ttest(np.array([0.8]),
                                                                np.array([0.7]), 0.01, 0.2))
    with pytest.raises(ValueError, match="rope=0: expected a half-width > 0"):
        correlated_bayesian_ttest(np.zeros(3), np.zeros(3), 0, 0.2)


def test_friedman_nemenyi_matches_hand_computed_values():
    """A always first, B second, C third on 4 datasets: mean ranks 1, 2, 3; chi2 =
    12N / (k(k+1)) (sum R^2 - k(k+1)^2 / 4) = 4 (14 - 12) = 8, p = exp(-4); CD = q(0.05, 3)
    / sqrt 2 * sqrt(k(k+1) / 6N) with Demsar's q = 2.343."""
    scores = np.array([[0.9, 0.8, 0.7], [0.85, 0.8, 0.6], [0.95, 0.9, 0.85], [0.7, 0.6, 0.5]])
    ranking = friedman_nemenyi(scores, ["A", "B", "C"])
    assert ranking.names == ["A", "B", "C"] and ranking.mean_ranks == [1.0, 2.0, 3.0]
    assert ranking.statistic == pytest.approx(8.0)
    assert ranking.p == pytest.approx(math.exp(-4))
    assert ranking.critical_difference == pytest.approx(2.343 * math.sqrt(0.5), abs=1e-3)
    assert ranking.groups == [["A", "B"], ["B", "C"]]  # 2 apart: beyond CD 1.66
    lower = friedman_nemenyi(-scores, ["A", "B", "C"], higher_is_better=False)
    assert lower.names == ["A", "B", "C"]


def test_friedman_nemenyi_refuses_too_few_models_or_datasets():
    with pytest.raises(ValueError, match="at least 3 models"):
        friedman_nemenyi(np.ones((4, 2)), ["A", "B"])
    with pytest.raises(ValueError, match="3 names for 4 models"):
        friedman_nemenyi(np.ones((3, 4)), ["A", "B", "C"])
