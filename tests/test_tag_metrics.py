"""The tagging metrics (`xval.tasks.tagging.metrics`) equal their references to 1e-6 on fixtures:
mAP scikit-learn's macro average precision (and the definition of AP), lwlrap the DCASE 2019
task 2 formula (written here from the published definition), d-prime sqrt(2) Phi^-1(AUC),
F1 at per-label thresholds by counting; thresholds chosen by their F1 on the given clips."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from xval.tasks.metrics import sigmoid
from xval.tasks.tagging import metrics as tm

TOLERANCE = 1e-6


@pytest.fixture(params=[0, 1, 2])
def clips(request):
    """40 clips x 6 labels: 1-3 labels per clip (label 5 never present), continuous scores
    that follow the labels loosely (no ties)."""
    rng = np.random.default_rng(request.param)
    y = np.zeros((40, 6), dtype=int)
    for row in y:
        row[rng.choice(5, size=rng.integers(1, 4), replace=False)] = 1
    logits = 1.5 * y + rng.normal(0, 1, y.shape)
    return y, logits


def reference_ap(truth, scores):
    """Average precision from its definition: the mean, over the positive clips, of the
    precision among the clips scored at or above each of them."""
    order = np.argsort(-scores, kind="stable")
    hits = truth[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits == 1].mean())


def reference_lwlrap(truth, scores):
    """lwlrap as published for DCASE 2019 task 2 (Fonseca et al. 2019): for each clip and
    each of its positive labels, the precision of the clip's label ranking at that label
    (positive labels ranked at or above it, over its rank); each label's mean of these over
    the clips holding it, weighted by the label's share of all positive labels."""
    n_clips, n_labels = truth.shape
    precisions = np.zeros((n_clips, n_labels))
    for i in range(n_clips):
        ranking = np.argsort(-scores[i], kind="stable")
        rank = np.empty(n_labels, dtype=int)
        rank[ranking] = np.arange(1, n_labels + 1)
        for label in np.flatnonzero(truth[i]):
            above = np.sum(truth[i][rank <= rank[label]])
            precisions[i, label] = above / rank[label]
    per_label = truth.sum(axis=0)
    per_label_lwlrap = precisions.sum(axis=0) / np.maximum(per_label, 1)
    return float(np.sum(per_label_lwlrap * per_label / per_label.sum()))


def test_mean_average_precision_equals_sklearn_macro_and_the_definition(clips):
    y, logits = clips
    present = [0, 1, 2, 3, 4]  # label 5 has no positive clip: its AP is undefined
    expected = average_precision_score(y[:, present], logits[:, present], average="macro")
    assert abs(tm.mean_average_precision(y, logits) - expected) < TOLERANCE
    by_definition = np.mean([reference_ap(y[:, c], logits[:, c]) for c in present])
    assert abs(tm.mean_average_precision(y, logits) - by_definition) < TOLERANCE
    aps = tm.average_precisions(y, logits)
    assert np.isnan(aps[5]) and np.allclose(aps[present], [reference_ap(y[:, c], logits[:, c])
                                                           for c in present], atol=TOLERANCE)


def test_lwlrap_equals_the_dcase_2019_reference_formula(clips):
    y, logits = clips
    assert abs(tm.lwlrap(y, logits) - reference_lwlrap(y, logits)) < TOLERANCE
    # Probabilities rank as their logits do.
    assert abs(tm.lwlrap(y, sigmoid(logits)) - reference_lwlrap(y, logits)) < TOLERANCE


def test_lwlrap_of_a_perfect_and_a_reversed_ranking_and_ties():
    y = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0]])
    spread = np.array([0.03, 0.02, 0.01])  # no ties
    assert tm.lwlrap(y, y + spread) == pytest.approx(1.0)
    assert tm.lwlrap(y, -y + spread) == pytest.approx(reference_lwlrap(y, -y + spread),
                                                     abs=TOLERANCE)
    # Tied scores rank together, below every label they tie with (scikit-learn's rule):
    # one clip, one positive tied with a negative at the top: precision 1/2.
    assert tm.lwlrap(np.array([[1, 0, 0]]), np.array([[0.5, 0.5, 0.1]])) == 0.5


def test_d_prime_is_sqrt2_times_the_normal_quantile_of_the_macro_auc(clips):
    y, logits = clips
    auc = roc_auc_score(y[:, :5], logits[:, :5], average="macro")
    assert abs(tm.macro_auc(y, logits) - auc) < TOLERANCE
    assert abs(tm.d_prime(auc) - np.sqrt(2) * norm.ppf(auc)) < TOLERANCE
    perfect = np.sqrt(2) * norm.ppf(1 - 1e-6)
    assert np.isfinite(tm.d_prime(1.0)) and tm.d_prime(1.0) == pytest.approx(perfect)
    assert tm.d_prime(0.5) == 0.0 and np.isnan(tm.d_prime(float("nan")))


def test_f1_at_per_label_thresholds_equals_counting(clips):
    y, logits = clips
    p = sigmoid(logits)
    thresholds = np.array([0.3, 0.4, 0.5, 0.6, 0.7, 0.5])
    decided = p >= thresholds
    tp, fp, fn = ((decided & (y == 1)).sum(0), (decided & (y == 0)).sum(0),
                  (~decided & (y == 1)).sum(0))
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())
    macro = np.mean((2 * tp / (2 * tp + fp + fn))[:5])  # labels with a positive clip
    got_micro, got_macro = tm.f1_scores(y, p, thresholds)
    assert abs(got_micro - micro) < TOLERANCE and abs(got_macro - macro) < TOLERANCE


def test_choose_thresholds_takes_each_labels_best_f1_on_the_clips_given():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    p = np.array([[0.32, 0.9], [0.81, 0.2], [0.1, 0.58], [0.28, 0.4]])
    chosen = tm.choose_thresholds(y, p)
    # Label 0: any threshold in (0.28, 0.32] separates; 0.30 is on the grid (nearest 0.5).
    # Label 1: its one positive scores 0.58 against 0.9 and 0.4: 0.45..0.55 gives F1 2/3 as
    # 0.6..0.9 gives 0; 0.5 is the nearest to 0.5 of the best.
    assert chosen.tolist() == [0.3, 0.5]
    assert tm.choose_thresholds(np.zeros((3, 1)), np.full((3, 1), 0.9)).tolist() == [0.5]


def test_tagging_metrics_of_a_split_are_finite_and_named(clips):
    y, logits = clips
    out = tm.tagging_metrics(y, logits, np.full(6, 0.5))
    assert set(out) == {"loss", "map", "lwlrap", "auc", "dprime", "f1_micro", "f1_macro"}
    expected_loss = -np.mean(y * np.log(sigmoid(logits)) + (1 - y) * np.log(1 - sigmoid(logits)))
    assert abs(out["loss"] - expected_loss) < TOLERANCE
    assert all(np.isfinite(v) for v in out.values())


def test_thresholds_of_a_parameter_value():
    assert tm.thresholds_of(None, 3).tolist() == [0.5, 0.5, 0.5]
    assert tm.thresholds_of(0.3, 2).tolist() == [0.3, 0.3]
    assert tm.thresholds_of([0.1, 0.2], 2).tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="tag_threshold has 3 values; expected one, or one per "
                                         r"label \(2\)"):
        tm.thresholds_of([0.1, 0.2, 0.3], 2)
