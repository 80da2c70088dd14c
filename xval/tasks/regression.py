"""Regression: one number per row, a linear output (the layer `prediction`), MSE loss."""

import math

import numpy as np

import xval.tasks.figures as plots
from xval.core.errors import DatasetError
from xval.tasks.base import Task
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

    def encode_targets(self, meta, classes):
        try:
            meta["target"] = meta["label"].astype(float)
        except ValueError as e:
            raise DatasetError(f"Regression labels must be numbers: {e}") from e
        return meta, []

    def targets(self, meta):
        return meta["target"].to_numpy(np.float32)

    def loss(self, params):
        return "mse"

    def keras_metrics(self, params):
        import keras

        return [keras.metrics.RootMeanSquaredError(name="rmse"),
                keras.metrics.MeanAbsoluteError(name="mae")]

    def evaluate(self, y_true, outputs, num_outputs, **context):
        from xval.tasks.metrics import regression_metrics

        return regression_metrics(y_true, outputs)

    def headline_metrics(self, clips):
        out = [("segment", "rmse", "RMSE"), ("segment", "mae", "MAE"), ("segment", "r2", "R²")]
        return ([("clip", "rmse", "clip RMSE")] if clips else []) + out

    def prediction_columns(self, outputs, classes, **context):
        return {"predicted": outputs.ravel()}

    def predict_record(self, outputs, starts, classes, **context):
        segments = [{"start": start, "scores": {"value": float(v)}}
                    for start, v in zip(starts, outputs[:, 0])]
        mean = float(outputs[:, 0].mean())
        return segments, {"scores": {"value": mean}, "predicted": mean}

    def plots(self, instance_dir, folds, summary):
        import pandas as pd

        tables = [pd.read_csv(p) for p in sorted(instance_dir.glob("predictions_fold_*.csv"))]
        if not tables:
            return []
        table = pd.concat(tables)
        return [plots.predicted_vs_true(table["target"].to_numpy(float),
                                        table["predicted"].to_numpy(float),
                                        instance_dir / "plots" / "predicted_vs_true.png")]

    def file_targets(self, labels, classes):
        import pandas as pd

        values = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(float)
        if np.isnan(values).any():
            bad = sorted(set(np.asarray(labels)[np.isnan(values)].tolist()))[:5]
            raise DatasetError(
                f"Regression targets must be numbers; got {bad}. Use a label column of numbers."
            )
        return values

    def evaluation_level(self, y_true, outputs, classes):
        from xval.tasks.metrics import regression_metrics

        m = regression_metrics(y_true, outputs[:, 0])
        return {k: m[k] for k in ("rmse", "mae", "r2")}
