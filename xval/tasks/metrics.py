"""Fold metrics with scikit-learn, computed from model outputs in numpy.

The tasks (`xval.tasks`) choose which of these score a split. scikit-learn (with scipy,
about 1 s of CPU to import) is imported by the functions that score, so that naming the
tasks costs numpy alone (`xval.tasks.base`).
"""

from typing import Any

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of `np.ndarray [shape=(n, classes)]`."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Element-wise logistic function of logits, clipped to +-60 (no overflow)."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def pool_by_clip(outputs: np.ndarray, targets: np.ndarray,
                 clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Averages segment outputs (logits) per clip.

    Args:
        outputs: `np.ndarray [shape=(n, k)]`.
        targets: `np.ndarray [shape=(n,)]`; every segment of a clip has the same target.
        clips: clip id of each row, `np.ndarray [shape=(n,)]`.

    Returns:
        `(clip_ids, clip_outputs [shape=(c, k)], clip_targets [shape=(c,)])`, clips in order
        of first appearance.
    """
    clips = np.asarray(clips).astype(str)
    ids, first, inverse = np.unique(clips, return_index=True, return_inverse=True)
    order = np.argsort(first)
    sums = np.zeros((len(ids), outputs.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, outputs)
    counts = np.bincount(inverse, minlength=len(ids))[:, None]
    means = sums / counts
    return ids[order], means[order], np.asarray(targets)[first][order]


def f1_per_class(matrix: Any) -> np.ndarray:
    """F1 of every class from a confusion matrix (rows true classes); 0 where a class is
    neither true nor predicted.

    Args:
        matrix: `np.ndarray [shape=(n_classes, n_classes)]`.

    Returns:
        `np.ndarray [shape=(n_classes,)]`.
    """
    m = np.asarray(matrix, dtype=float)
    tp = np.diag(m)
    denominator = m.sum(axis=0) + m.sum(axis=1)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
