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

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xval.core.errors import ConfigurationError, ParameterError
from xval.tasks.base import (
    NO_CONTEXT,
    Context,
    Head,
    Params,
    Pooled,
    Scoring,
    Targets,
    Task,
    switched_off,
)
from xval.tasks.parts import Normalise
from xval.tasks.registry import register

if TYPE_CHECKING:
    import pandas as pd

_NOT_EVALUATED = (
    "`python -m xval evaluate` scores labelled files; an autoencoder is scored by its "
    "experiment's reconstruction metrics (and used through `python -m xval embed`)."
)


class InputTargets(Targets):
    """The target is the (normalised) input: labels are kept, never used."""

    def encode(self, meta: pd.DataFrame,
               classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        meta["label"] = meta["label"].astype(str)
        meta["target"] = 0
        return meta, list(classes or [])

    def of_meta(self, meta: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(meta), dtype=np.float32)

    def of_files(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        raise ConfigurationError(_NOT_EVALUATED)

    def of_rows(self, normalise: Normalise) -> Normalise:
        """The rows normalised with the fold's statistics: what the model reconstructs."""
        return normalise


class ReconstructionHead(Head):
    """The reconstruction, trained on the mean squared error."""

    exported = None  # a reconstruction, read by `embed`

    def loss(self, params: Params, train_targets: np.ndarray | None = None) -> Any:
        return "mse"

    def metrics(self, params: Params) -> list[Any]:
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        return [keras.metrics.MeanAbsoluteError(name="mae")]


class ReconstructionScoring(Scoring):
    """Errors of the reconstruction beside those of the mean training row."""

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 context: Context = NO_CONTEXT) -> dict[str, Any]:
        y_true = np.asarray(y_true, dtype=np.float64)
        outputs = np.asarray(outputs, dtype=np.float64).reshape(y_true.shape)
        error = outputs - y_true
        out = {"loss": float(np.mean(error ** 2)), "mse": float(np.mean(error ** 2)),
               "mae": float(np.mean(np.abs(error)))}
        if context.reference is not None:
            base = np.asarray(context.reference, dtype=np.float64)[None] - y_true
            out["baseline_mse"] = float(np.mean(base ** 2))
            out["baseline_mae"] = float(np.mean(np.abs(base)))
        return out

    def pool_by_clip(self, outputs: np.ndarray, targets: np.ndarray, clips: np.ndarray,
                     starts: Sequence[float] | np.ndarray | None = None,
                     frame_seconds: float | None = None) -> Pooled | None:
        return None  # reconstruction is scored row by row

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           context: Context = NO_CONTEXT) -> dict[str, Any]:
        outputs = np.asarray(outputs, dtype=np.float64)
        if context.targets is None:
            return {"predicted": np.sqrt(np.mean(outputs ** 2, axis=(1, 2))).round(6)}
        error = outputs - np.asarray(context.targets, dtype=np.float64).reshape(outputs.shape)
        return {"predicted": np.mean(error ** 2, axis=(1, 2)).round(6)}

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str],
                       context: Context = NO_CONTEXT
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        norms = np.sqrt(np.mean(np.asarray(outputs, dtype=np.float64) ** 2, axis=(1, 2)))
        segments = [{"start": s, "scores": {"rms": float(v)}} for s, v in zip(starts, norms)]
        return segments, {"scores": {"rms": float(norms.mean())},
                          "predicted": "reconstruction (use `embed` for the bottleneck)"}

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        raise ConfigurationError(_NOT_EVALUATED)


@register
class Representation(Task):
    """Reconstruction of the normalised input through a bottleneck (autoencoders)."""

    name = "representation"
    parts = (InputTargets, ReconstructionHead, ReconstructionScoring)
    head_name = "reconstruction"
    output = "input"
    history_metrics = ("loss", "mae")
    metric_names = ("loss", "mse", "mae", "baseline_mse", "baseline_mae")
    metric_ranges = {name: (0.0, math.inf) for name in metric_names}
    selection_metric = "mse"
    headline = (("segment", "mse", "MSE"), ("segment", "baseline_mse", "baseline MSE"),
                ("segment", "mae", "MAE"))
    labelled_rows = True
    training_defaults = switched_off("time_masks", "freq_masks", "mixup_alpha")
    """SpecAugment and mixup were measured on classification."""

    def takes_store(self, store_task_type: str) -> bool:
        """Any store: the rows alone are learnt."""
        return True

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        return list(self.headline or ())  # no clip level: rows are scored one by one

    def check_params(self, params: Params, where: str) -> None:
        super().check_params(params, where)
        if params.row_normalization != "none":
            raise ParameterError(
                f"{where}: row_normalization={params.row_normalization!r} with "
                "task_type='representation': the autoencoder reconstructs the input as the "
                "dataset normalisation leaves it; use row_normalization='none'.")
        if params.freq_warp:
            raise ParameterError(
                f"{where}: freq_warp={params.freq_warp!r} with task_type='representation': "
                "the autoencoder reconstructs its own input, so a warped input teaches it "
                "nothing; use freq_warp=0.")
