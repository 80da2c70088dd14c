"""Regression: one number per row, a linear output (the layer `prediction`), MSE loss."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xval.core.errors import DatasetError
from xval.tasks.base import NO_CONTEXT, Context, Head, Params, Scoring, Targets, Task
from xval.tasks.fusion import Fusion, Rows
from xval.tasks.registry import register
from xval.tasks.regression.metrics import regression_metrics

if TYPE_CHECKING:
    import pandas as pd


class NumberTargets(Targets):
    """The store's labels as numbers."""

    def encode(self, meta: pd.DataFrame,
               classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        try:
            meta["target"] = meta["label"].astype(float)
        except ValueError as e:
            raise DatasetError(f"Regression labels must be numbers: {e}") from e
        return meta, []

    def of_meta(self, meta: pd.DataFrame) -> np.ndarray:
        return meta["target"].to_numpy(np.float32)

    def of_files(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        import pandas as pd  # noqa: PLC0415  (pandas: when files are evaluated)

        values = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(float)
        if np.isnan(values).any():
            bad = sorted(set(np.asarray(labels)[np.isnan(values)].tolist()))[:5]
            raise DatasetError(
                f"Regression targets must be numbers; got {bad}. Use a label column of numbers."
            )
        return values


class LinearHead(Head):
    """One linear unit trained on the mean squared error."""

    def loss(self, params: Params, train_targets: np.ndarray | None = None) -> Any:
        return "mse"

    def metrics(self, params: Params) -> list[Any]:
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        return [keras.metrics.RootMeanSquaredError(name="rmse"),
                keras.metrics.MeanAbsoluteError(name="mae")]


class ValueFusion(Fusion):
    """Numbers (regression): a clip's value is the mean of its segments'."""

    objective = "squared error"

    def read(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.array([[float(r["predicted"])] for r in rows])

    def targets(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.array([r["target"] for r in rows]).astype(float)

    def loss(self, targets: np.ndarray, scores: np.ndarray) -> float:
        return float(np.mean((scores[:, 0] - targets) ** 2))

    def decide(self, scores: Mapping[str, float], params: Mapping[str, Any] | None = None
               ) -> Any:
        return scores.get("value")


class RegressionScoring(Scoring):
    """RMSE, MAE and R² of the predicted numbers."""

    fusion = ValueFusion()

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 context: Context = NO_CONTEXT) -> dict[str, Any]:
        return regression_metrics(y_true, outputs)

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           context: Context = NO_CONTEXT) -> dict[str, Any]:
        return {"predicted": outputs.ravel()}

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str],
                       context: Context = NO_CONTEXT
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        segments = [{"start": start, "scores": {"value": float(v)}}
                    for start, v in zip(starts, outputs[:, 0])]
        mean = float(outputs[:, 0].mean())
        return segments, {"scores": {"value": mean}, "predicted": mean}

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        m = regression_metrics(y_true, outputs[:, 0])
        return {k: m[k] for k in ("rmse", "mae", "r2")}


@register
class Regression(Task):
    """Scalar regression: the store's labels are numbers."""

    name = "regression"
    parts = (NumberTargets, LinearHead, RegressionScoring)
    head_name = "prediction"
    history_metrics = ("loss", "rmse", "mae")
    metric_names = ("loss", "rmse", "mae", "r2")
    metric_ranges = {"loss": (0.0, math.inf), "rmse": (0.0, math.inf), "mae": (0.0, math.inf),
                     "r2": (-math.inf, 1.0)}
    maximize = ("r2",)
    selection_metric = "rmse"
    headline = (("segment", "rmse", "RMSE"), ("segment", "mae", "MAE"),
                ("segment", "r2", "R²"))
    figures = ("predicted_vs_true",)
