"""Representation learning: an autoencoder reconstructs its normalised input; no labels.

The model (`conv_autoencoder`) takes the raw features, normalises them with the fold's
training statistics (its first layer) and outputs a reconstruction of that normalised
input; the training target is the normalised input itself, so labels are never used and may
be anything in the store. Every split is scored by the reconstruction's mean squared and
absolute errors, beside those of a baseline that predicts the mean training row (the same
output for every input), so that the numbers mean something: an autoencoder worth its
bottleneck scores well below its baseline. `python -m xval embed` takes the `bottleneck`
layer by default for such models.
"""

import math

import numpy as np

from xval.core.errors import ConfigurationError
from xval.tasks.base import Task
from xval.tasks.registry import register


@register
class Representation(Task):
    """Reconstruction of the normalised input through a bottleneck (autoencoders)."""

    name = "representation"
    head_name = "reconstruction"
    output = "input"
    history_metrics = ("loss", "mae")
    metric_names = ("loss", "mse", "mae", "baseline_mse", "baseline_mae")
    metric_ranges = {name: (0.0, math.inf) for name in metric_names}
    maximize = ()
    selection_metric = "mse"
    has_classes = False
    labelled_rows = True
    reconstructs = True

    # -- targets ---------------------------------------------------------------------------

    def encode_targets(self, meta, classes):
        meta["label"] = meta["label"].astype(str)
        meta["target"] = 0  # the target is the input; labels are kept, never used
        return meta, list(classes or [])

    def targets(self, meta):
        return np.zeros(len(meta), dtype=np.float32)

    def check_params(self, params, where):
        from xval.core.errors import ParameterError

        super().check_params(params, where)
        if params.get("row_normalization", "none") != "none":
            raise ParameterError(
                f"{where}: row_normalization={params['row_normalization']!r} with "
                "task_type='representation': the autoencoder reconstructs the input as the "
                "dataset normalisation leaves it; use row_normalization='none'.")
        if params.get("freq_warp", 0.0):
            raise ParameterError(
                f"{where}: freq_warp={params['freq_warp']!r} with task_type='representation': "
                "the autoencoder reconstructs its own input, so a warped input teaches it "
                "nothing; use freq_warp=0.")

    # -- model -----------------------------------------------------------------------------

    def loss(self, params):
        return "mse"

    def keras_metrics(self, params):
        import keras

        return [keras.metrics.MeanAbsoluteError(name="mae")]

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, y_true, outputs, num_outputs, *, reference=None):
        y_true = np.asarray(y_true, dtype=np.float64)
        outputs = np.asarray(outputs, dtype=np.float64).reshape(y_true.shape)
        error = outputs - y_true
        out = {"loss": float(np.mean(error ** 2)), "mse": float(np.mean(error ** 2)),
               "mae": float(np.mean(np.abs(error)))}
        if reference is not None:
            base = np.asarray(reference, dtype=np.float64)[None] - y_true
            out["baseline_mse"] = float(np.mean(base ** 2))
            out["baseline_mae"] = float(np.mean(np.abs(base)))
        return out

    def pool_by_clip(self, outputs, targets, clips):
        return None  # reconstruction is scored row by row

    def headline_metrics(self, clips):
        return [("segment", "mse", "MSE"), ("segment", "baseline_mse", "baseline MSE"),
                ("segment", "mae", "MAE")]

    # -- outputs ---------------------------------------------------------------------------

    def prediction_columns(self, outputs, classes, *, targets=None):
        outputs = np.asarray(outputs, dtype=np.float64)
        if targets is None:
            return {"predicted": np.sqrt(np.mean(outputs ** 2, axis=(1, 2))).round(6)}
        error = outputs - np.asarray(targets, dtype=np.float64).reshape(outputs.shape)
        return {"predicted": np.mean(error ** 2, axis=(1, 2)).round(6)}

    def predict_record(self, outputs, starts, classes):
        norms = np.sqrt(np.mean(np.asarray(outputs, dtype=np.float64) ** 2, axis=(1, 2)))
        segments = [{"start": s, "scores": {"rms": float(v)}} for s, v in zip(starts, norms)]
        return segments, {"scores": {"rms": float(norms.mean())},
                          "predicted": "reconstruction (use `embed` for the bottleneck)"}

    # -- python -m xval evaluate -----------------------------------------------------------

    def file_targets(self, labels, classes):
        raise ConfigurationError(
            "`python -m xval evaluate` scores labelled files; an autoencoder is scored by its "
            "experiment's reconstruction metrics (and used through `python -m xval embed`)."
        )

    def evaluation_level(self, y_true, outputs, classes):
        return self.file_targets(None, classes)
