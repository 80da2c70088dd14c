"""Per-row training weights from class frequencies."""

import numpy as np


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Sample weights inversely proportional to class frequency (scikit-learn "balanced").

    Args:
        y: class index of every training row.

    Returns:
        `np.ndarray [shape=(n,)]`, float32; every class carries the same total weight.
    """
    from sklearn.utils import class_weight  # noqa: PLC0415  (scikit-learn: when training)

    y = np.asarray(y)
    present = np.unique(y)
    weights = class_weight.compute_class_weight("balanced", classes=present, y=y)
    lookup = dict(zip(present.tolist(), weights.tolist()))
    return np.array([lookup[t] for t in y.tolist()], dtype=np.float32)


MAX_POSITIVE_WEIGHT = 100.0
"""The largest weight `class_weights=True` gives an active frame (a class active in one
frame of 10,000 would otherwise weigh 10,000 and make training unstable)."""


def positive_weights(y: np.ndarray, max_weight: float = MAX_POSITIVE_WEIGHT,
                     chunk: int = 4096) -> list[float]:
    """Weight of an active frame of each class: inactive over active frames, clipped.

    Args:
        y: frame targets of the fold's training rows, `np.ndarray [shape=(rows, frames,
            classes)]` of 0/1 (a memmap is read in chunks).
        max_weight: the largest weight. Defaults to `MAX_POSITIVE_WEIGHT` (100).
        chunk: rows read at once. Defaults to `4096`.

    Returns:
        list of floats, one per class, in `[1, max_weight]`: `negatives / positives`, 1 for
        a class active in at least half the frames, and 1 for a class never active in
        the training rows (its weight multiplies nothing).
    """
    classes = y.shape[-1]
    positives = np.zeros(classes, dtype=np.float64)
    total = 0
    for start in range(0, len(y), chunk):
        block = np.asarray(y[start:start + chunk], dtype=np.float64).reshape(-1, classes)
        positives += block.sum(axis=0)
        total += block.shape[0]
    negatives = total - positives
    ratio = np.divide(negatives, positives, out=np.ones(classes), where=positives > 0)
    return [float(w) for w in np.clip(ratio, 1.0, max_weight).round(6)]
