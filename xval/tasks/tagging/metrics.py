"""The metrics of multi-label tagging, as the field reports them, from model outputs in numpy.

- **mAP**: the mean over labels of the average precision (scikit-learn's
  `average_precision_score`, `average="macro"`), over the labels with at least one positive
  clip in the split (the average precision of a label without one is undefined).
- **lwlrap**: label-weighted label-ranking average precision, the metric of DCASE 2019
  task 2 (Fonseca et al. 2019): for every positive label of every clip, the share of the
  labels ranked at or above it that are positive, averaged over all (clip, positive label)
  pairs, so every label counts by how often it occurs. It is scikit-learn's
  `label_ranking_average_precision_score` with each clip weighted by its number of
  positive labels (tied scores rank together, scikit-learn's rule; the reference breaks
  ties by order).
- **AUC** and **d-prime**: the macro ROC AUC over the labels with both positive and
  negative clips, and `d' = sqrt(2) * Phi^-1(AUC)` (the AudioSet papers' d-prime), the AUC
  clipped to `[1e-6, 1 - 1e-6]` so that a perfect ranking gives a finite 6.72.
- **micro and macro F1** at per-label thresholds (`xval.tasks.tagging`: chosen on the
  validation clips): micro over every (clip, label) decision, macro over the labels with a
  positive clip.

scikit-learn and scipy are imported by the functions that score, so that naming the tasks
costs numpy alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xval.tasks.metrics import sigmoid

THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""The thresholds tried per label on the validation clips: 0.05 to 0.95 in steps of 0.05."""
DEFAULT_THRESHOLD = 0.5
"""The threshold of a label without a positive validation clip (and when none is chosen)."""
AUC_CLIP = 1e-6
"""The AUC is clipped to `[AUC_CLIP, 1 - AUC_CLIP]` for d-prime (finite at 0 and 1)."""
PROBABILITY_FLOOR = 1e-7
"""Probabilities are kept in `[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]` when turned back
into logits (a pooled clip, an ensemble's average)."""


def logit(probabilities: np.ndarray) -> np.ndarray:
    """The logits of probabilities, `log(p / (1 - p))`, `p` kept within `PROBABILITY_FLOOR`
    of 0 and 1."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), PROBABILITY_FLOOR,
                1 - PROBABILITY_FLOOR)
    return np.log(p) - np.log1p(-p)


def binary_crossentropy(y_true: np.ndarray, logits: np.ndarray) -> float:
    """The mean binary cross-entropy over every (clip, label) entry, from logits (stable:
    `max(z, 0) - z y + log(1 + exp(-|z|))`)."""
    y = np.asarray(y_true, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def _present(y_true: np.ndarray) -> np.ndarray:
    """The labels (columns) with at least one positive clip."""
    return np.flatnonzero(np.asarray(y_true).sum(axis=0) > 0)


def average_precisions(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The average precision of every label (scikit-learn's `average_precision_score`),
    NaN for a label without a positive clip.

    Args:
        y_true: 0/1 targets, `np.ndarray [shape=(clips, labels)]`.
        scores: scores (probabilities or logits), same shape.

    Returns:
        `np.ndarray [shape=(labels,)]`.
    """
    from sklearn.metrics import average_precision_score  # noqa: PLC0415  (when scoring)

    y = np.asarray(y_true)
    out = np.full(y.shape[1], np.nan)
    for label in _present(y):
        out[label] = average_precision_score(y[:, label], np.asarray(scores)[:, label])
    return out


def mean_average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """mAP: `average_precision_score(..., average="macro")` over the labels with a positive
    clip; NaN when none has one."""
    from sklearn.metrics import average_precision_score  # noqa: PLC0415  (when scoring)

    present = _present(y_true)
    if not len(present):
        return float("nan")
    return float(average_precision_score(np.asarray(y_true)[:, present],
                                         np.asarray(scores)[:, present], average="macro"))


def lwlrap(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Label-weighted label-ranking average precision (DCASE 2019 task 2), over the clips
    with at least one positive label; NaN when none has one."""
    from sklearn.metrics import label_ranking_average_precision_score  # noqa: PLC0415

    y = np.asarray(y_true)
    weights = y.sum(axis=1)
    keep = weights > 0
    if not keep.any():
        return float("nan")
    return float(label_ranking_average_precision_score(
        y[keep], np.asarray(scores, dtype=np.float64)[keep], sample_weight=weights[keep]))


def macro_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The ROC AUC averaged over the labels with both positive and negative clips; NaN when
    no label has both."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415  (scikit-learn: when scoring)

    y = np.asarray(y_true)
    positives = y.sum(axis=0)
    both = np.flatnonzero((positives > 0) & (positives < len(y)))
    if not len(both):
        return float("nan")
    return float(roc_auc_score(y[:, both], np.asarray(scores)[:, both], average="macro"))


def d_prime(auc: float) -> float:
    """`sqrt(2) * Phi^-1(auc)`, the AUC clipped to `[AUC_CLIP, 1 - AUC_CLIP]`; NaN for a
    NaN AUC."""
    from scipy.stats import norm  # noqa: PLC0415  (scipy: when scoring)

    if not np.isfinite(auc):
        return float("nan")
    return float(np.sqrt(2.0) * norm.ppf(np.clip(auc, AUC_CLIP, 1 - AUC_CLIP)))


def thresholds_of(value: float | Sequence[float] | None, n_labels: int) -> np.ndarray:
    """Per-label thresholds from a parameter value: one number for every label, one per
    label, or `None` (`DEFAULT_THRESHOLD`).

    Raises:
        ValueError: for a list whose length is not `n_labels`.
    """
    if value is None:
        return np.full(n_labels, DEFAULT_THRESHOLD)
    found = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if found.size == 1:
        return np.full(n_labels, float(found[0]))
    if found.size != n_labels:
        raise ValueError(f"tag_threshold has {found.size} values; expected one, or one per "
                         f"label ({n_labels}).")
    return found


def f1_scores(y_true: np.ndarray, probabilities: np.ndarray,
              thresholds: np.ndarray) -> tuple[float, float]:
    """`(micro F1, macro F1)` of the decisions `probabilities >= thresholds` (per label);
    macro over the labels with a positive clip (NaN when none has one)."""
    from sklearn.metrics import f1_score  # noqa: PLC0415  (scikit-learn: when scoring)

    y = np.asarray(y_true).astype(int)
    predicted = (np.asarray(probabilities) >= np.asarray(thresholds)[None, :]).astype(int)
    micro = float(f1_score(y, predicted, average="micro", zero_division=0))
    present = _present(y)
    macro = float(f1_score(y[:, present], predicted[:, present], average="macro",
                           zero_division=0)) if len(present) else float("nan")
    return micro, macro


def choose_thresholds(y_true: np.ndarray, probabilities: np.ndarray,
                      grid: Sequence[float] = THRESHOLD_GRID) -> np.ndarray:
    """Per label, the threshold of `grid` whose decisions have the best F1 on the given
    (validation) clips; ties go to the one nearest `DEFAULT_THRESHOLD`, and a label
    without a positive clip keeps `DEFAULT_THRESHOLD`.

    Args:
        y_true: 0/1 targets, `np.ndarray [shape=(clips, labels)]`.
        probabilities: the clips' probabilities, same shape.
        grid: the thresholds tried. Defaults to `THRESHOLD_GRID`.

    Returns:
        `np.ndarray [shape=(labels,)]`.
    """
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(probabilities, dtype=np.float64)
    candidates = np.asarray(sorted(grid, key=lambda t: (abs(t - DEFAULT_THRESHOLD), t)))
    decided = p[None, :, :] >= candidates[:, None, None]  # (grid, clips, labels)
    tp = (decided & y[None]).sum(axis=1)
    fp = (decided & ~y[None]).sum(axis=1)
    fn = (~decided & y[None]).sum(axis=1)
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    chosen = candidates[np.argmax(f1, axis=0)]  # the first best: the nearest to 0.5
    return np.where(y.any(axis=0), chosen, DEFAULT_THRESHOLD)


def tagging_metrics(y_true: np.ndarray, logits: np.ndarray,
                    thresholds: np.ndarray) -> dict[str, Any]:
    """Every metric of a split (see the module).

    Args:
        y_true: 0/1 targets, `np.ndarray [shape=(clips, labels)]`.
        logits: the model's outputs, same shape.
        thresholds: per-label thresholds of the F1 decisions, `[shape=(labels,)]`.

    Returns:
        dict of `loss`, `map`, `lwlrap`, `auc`, `dprime`, `f1_micro`, `f1_macro` (NaN where
        undefined: no positive clip).
    """
    y = np.asarray(y_true, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64).reshape(y.shape)
    p = sigmoid(z)
    auc = macro_auc(y, z)
    micro, macro = f1_scores(y, p, thresholds)
    return {"loss": binary_crossentropy(y, z), "map": mean_average_precision(y, z),
            "lwlrap": lwlrap(y, z), "auc": auc, "dprime": d_prime(auc),
            "f1_micro": micro, "f1_macro": macro}
