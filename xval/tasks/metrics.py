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


def classification_metrics(y_true: np.ndarray, logits: np.ndarray,
                           n_classes: int) -> dict[str, Any]:
    """Loss (cross-entropy), accuracy, macro F1/precision/recall and the confusion matrix.

    Args:
        y_true: class indices, `np.ndarray [shape=(n,)]`.
        logits: model outputs, `np.ndarray [shape=(n, n_classes)]`.
        n_classes: number of classes (rows/columns of the confusion matrix).

    Returns:
        dict of floats, plus `confusion_matrix` as a nested list (rows: true classes).
    """
    from sklearn import metrics as skm  # noqa: PLC0415  (scikit-learn: when scoring)

    y_true = np.asarray(y_true, dtype=int)
    logits = np.asarray(logits, dtype=np.float64)
    z = logits - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    y_pred = logits.argmax(axis=1)
    labels = list(range(n_classes))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "loss": float(-log_probs[np.arange(len(y_true)), y_true].mean()),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Loss (MSE), RMSE, MAE and R².

    Args:
        y_true: targets, `np.ndarray [shape=(n,)]`.
        y_pred: predictions, `np.ndarray [shape=(n,)]` or `(n, 1)`.

    Returns:
        dict of floats.
    """
    from sklearn import metrics as skm  # noqa: PLC0415  (scikit-learn: when scoring)

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    mse = skm.mean_squared_error(y_true, y_pred)
    return {
        "loss": float(mse),
        "rmse": float(np.sqrt(mse)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }


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

