"""Custom Keras losses, registered so that saved models load them by name.

Importing this module imports Keras: set `KERAS_BACKEND` and `CUDA_VISIBLE_DEVICES` first.
`xval.predict.load` imports it, so models trained with these losses load everywhere the
engine loads models; a script loading such a model itself with `compile=True` imports
`xval.losses` first (or loads with `compile=False`).
"""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="xval")
class WeightedFrameCrossentropy(keras.losses.Loss):
    """Per-frame binary cross-entropy on logits, positive frames weighted per class.

    For targets `y` and logits `z` of shape `(batch, frames, classes)`, the loss of one
    frame is the mean over classes of `w_c(y) * bce(y, z)` with `w_c = positive_weights[c]`
    where `y = 1` and `1` where `y = 0` (soft targets interpolate). With every weight 1 it
    equals `keras.losses.BinaryCrossentropy(from_logits=True)`. The detection task sets the
    weights from a fold's training rows when `class_weights=True`
    (`xval.tasks.detection.positive_weights`).

    Args:
        positive_weights: weight of an active frame, one per class (list of floats).
        name: the loss's name. Defaults to `"weighted_frame_crossentropy"`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        dtype: the loss's dtype. Defaults to `None` (Keras' float type).

    Raises:
        ValueError: when `positive_weights` is empty or holds a value that is not a finite
            number > 0.
    """

    def __init__(self, positive_weights: Sequence[float],
                 name: str = "weighted_frame_crossentropy",
                 reduction: str = "sum_over_batch_size", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        weights = [float(w) for w in positive_weights]
        if not weights or not all(0 < w < float("inf") for w in weights):
            raise ValueError(f"positive_weights={positive_weights!r}: expected one finite "
                             "number > 0 per class.")
        self.positive_weights = weights

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        weights = ops.convert_to_tensor(self.positive_weights, dtype=y_pred.dtype)
        bce = ops.binary_crossentropy(y_true, y_pred, from_logits=True)
        return ops.mean((1.0 + (weights - 1.0) * y_true) * bce, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "positive_weights": list(self.positive_weights)}
