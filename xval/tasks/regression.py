"""Regression: one number per row, a linear output (the layer `prediction`), MSE loss."""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import xval.tasks.figures as plots
from xval.core.errors import DatasetError
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, InstanceSummary
from xval.tasks.base import Params, Task
from xval.tasks.metrics import regression_metrics
from xval.tasks.registry import register


@register
class Regression(Task):
    """Scalar regression: the store's labels are numbers."""

    name = "regression"
    head_name = "prediction"
    history_metrics = ("loss", "rmse", "mae")
    metric_names = ("loss", "rmse", "mae", "r2")
    metric_ranges = {"loss": (0.0, math.inf), "rmse": (0.0, math.inf), "mae": (0.0, math.inf),
                     "r2": (-math.inf, 1.0)}
    maximize = ("r2",)
    selection_metric = "rmse"
    has_classes = False

    def encode_targets(self, meta: pd.DataFrame,
                       classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        try:
            meta["target"] = meta["label"].astype(float)
        except ValueError as e:
            raise DatasetError(f"Regression labels must be numbers: {e}") from e
        return meta, []

    def targets(self, meta: pd.DataFrame) -> np.ndarray:
        return meta["target"].to_numpy(np.float32)

    def loss(self, params: Params) -> Any:
        return "mse"

    def keras_metrics(self, params: Params) -> list[Any]:
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        return [keras.metrics.RootMeanSquaredError(name="rmse"),
                keras.metrics.MeanAbsoluteError(name="mae")]

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 **context: Any) -> dict[str, Any]:
        return regression_metrics(y_true, outputs)

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        out = [("segment", "rmse", "RMSE"), ("segment", "mae", "MAE"), ("segment", "r2", "R²")]
        return ([("clip", "rmse", "clip RMSE")] if clips else []) + out

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           **context: Any) -> dict[str, Any]:
        return {"predicted": outputs.ravel()}

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str],
                       **context: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        segments = [{"start": start, "scores": {"value": float(v)}}
                    for start, v in zip(starts, outputs[:, 0])]
        mean = float(outputs[:, 0].mean())
        return segments, {"scores": {"value": mean}, "predicted": mean}

    def plots(self, layout: InstanceLayout, folds: Sequence[FoldResult],
              summary: InstanceSummary) -> list[Path]:
        paths = [layout.predictions(f.fold) for f in folds]
        tables = [pd.read_csv(p) for p in paths if p.is_file()]
        if not tables:
            return []
        table = pd.concat(tables)
        return [plots.predicted_vs_true(table["target"].to_numpy(float),
                                        table["predicted"].to_numpy(float),
                                        layout.plots_dir / "predicted_vs_true.png")]

    def file_targets(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        values = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(float)
        if np.isnan(values).any():
            bad = sorted(set(np.asarray(labels)[np.isnan(values)].tolist()))[:5]
            raise DatasetError(
                f"Regression targets must be numbers; got {bad}. Use a label column of numbers."
            )
        return values

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        m = regression_metrics(y_true, outputs[:, 0])
        return {k: m[k] for k in ("rmse", "mae", "r2")}
