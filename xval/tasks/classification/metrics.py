"""Classification metrics with scikit-learn (imported when a split is scored)."""

from typing import Any

import numpy as np


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

