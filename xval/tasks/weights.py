"""Per-row training weights from class frequencies."""

import numpy as np
from sklearn.utils.class_weight import compute_class_weight


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Sample weights inversely proportional to class frequency (scikit-learn "balanced").

    Args:
        y: class index of every training row.

    Returns:
        `np.ndarray [shape=(n,)]`, float32; every class carries the same total weight.
    """
    y = np.asarray(y)
    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    lookup = dict(zip(present.tolist(), weights.tolist()))
    return np.array([lookup[t] for t in y.tolist()], dtype=np.float32)
