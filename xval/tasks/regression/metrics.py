"""Regression metrics with scikit-learn (imported when a split is scored)."""

import numpy as np


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
