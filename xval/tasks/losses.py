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

BOUNDARY_FRAMES = 3
"""Frames on each side of an onset or offset that `boundary_weight` weighs (60 ms on a
detection store's 20 ms frames)."""


@keras.saving.register_keras_serializable(package="xval")
class WeightedFrameCrossentropy(keras.losses.Loss):
    """Per-frame binary cross-entropy on logits, positive frames weighted per class, and the
    frames near an event's bounds weighted more.

    For targets `y` and logits `z` of shape `(batch, frames, classes)`, the loss of one
    frame is the mean over classes of `w_c(y) * b_c(y) * bce(y, z)` with `w_c =
    positive_weights[c]` where `y = 1` and `1` where `y = 0` (soft targets interpolate),
    and `b_c = 1 + boundary_weight` within `boundary_frames` frames of a change of `y[:, c]`
    (an onset or an offset: so every frame of a short event), `1` elsewhere. With every
    weight 1 and `boundary_weight` 0 it equals `keras.losses.BinaryCrossentropy(
    from_logits=True)`. The detection task sets the weights from a fold's training rows
    when `class_weights=True` (`xval.tasks.detection.positive_weights`) and the boundary
    weight from `boundary_weight`. Everything is computed on the device from the batch's
    targets.

    Args:
        positive_weights: weight of an active frame, one per class (list of floats).
        boundary_weight: extra weight of the frames near a bound (>= 0). Defaults to `0.0`.
        boundary_frames: frames on each side of a bound. Defaults to `BOUNDARY_FRAMES`.
        name: the loss's name. Defaults to `"weighted_frame_crossentropy"`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        dtype: the loss's dtype. Defaults to `None` (Keras' float type).

    Raises:
        ValueError: when `positive_weights` is empty or holds a value that is not a finite
            number > 0, or for a negative `boundary_weight` or `boundary_frames`.
    """

    def __init__(self, positive_weights: Sequence[float], boundary_weight: float = 0.0,
                 boundary_frames: int = BOUNDARY_FRAMES,
                 name: str = "weighted_frame_crossentropy",
                 reduction: str = "sum_over_batch_size", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        weights = [float(w) for w in positive_weights]
        if not weights or not all(0 < w < float("inf") for w in weights):
            raise ValueError(f"positive_weights={positive_weights!r}: expected one finite "
                             "number > 0 per class.")
        if not 0 <= float(boundary_weight) < float("inf") or int(boundary_frames) < 0:
            raise ValueError(f"boundary_weight={boundary_weight!r}, boundary_frames="
                             f"{boundary_frames!r}: expected a finite number >= 0 and a "
                             "count >= 0.")
        self.positive_weights = weights
        self.boundary_weight = float(boundary_weight)
        self.boundary_frames = int(boundary_frames)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        weights = ops.convert_to_tensor(self.positive_weights, dtype=y_pred.dtype)
        bce = ops.binary_crossentropy(y_true, y_pred, from_logits=True)
        weight = 1.0 + (weights - 1.0) * y_true
        if self.boundary_weight:
            weight = weight * (1.0 + self.boundary_weight * self._near_bounds(y_true))
        return ops.mean(weight * bce, axis=-1)

    def _near_bounds(self, y_true: Any) -> Any:
        """1 within `boundary_frames` of a change of the targets along time, else 0."""
        step = ops.abs(y_true[:, 1:] - y_true[:, :-1])  # between frames t and t + 1
        edge = ops.zeros_like(y_true[:, :1])
        near = ops.maximum(ops.concatenate([edge, step], axis=1),
                           ops.concatenate([step, edge], axis=1))
        if self.boundary_frames:
            near = ops.max_pool(near, pool_size=2 * self.boundary_frames + 1, strides=1,
                                padding="same")
        return near

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "positive_weights": list(self.positive_weights),
                "boundary_weight": self.boundary_weight,
                "boundary_frames": self.boundary_frames}
