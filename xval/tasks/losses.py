"""Custom Keras losses and metrics, registered so that saved models load them by name.

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


@keras.saving.register_keras_serializable(package="xval")
class MultiLabelAUC(keras.metrics.AUC):
    """Keras's `AUC(multi_label=True)` whose counts never wait for the host: the same
    variables, thresholds and `result()` (the same values), each batch's predictions
    counted per threshold by comparison on the device.

    Keras gathers each label's predictions into threshold buckets with `ops.segment_sum`,
    which on torch calls `repeat_interleave` with a size read back from the device (a wait
    at every training and validation step on a GPU) and copies its thresholds from the
    host. Here, with the thresholds evenly spaced (Keras's default), the bucket of a
    prediction is computed as Keras computes it and `true_positives[t]` gets the weighted
    positives whose bucket is at least `t`: one comparison of shape `(batch, labels,
    num_thresholds)` and a sum, on any backend. Other thresholds go to Keras's update.

    Args:
        num_thresholds: thresholds of the curve. Defaults to `200`.
        from_logits: the predictions are logits (a sigmoid is applied). Defaults to `False`.
        name: the metric's name. Defaults to `"auc"`.
        **kwargs: Keras's `AUC` arguments (`curve`, `summation_method`, `thresholds`,
            `label_weights`, `num_labels`, `dtype`); `multi_label` is always `True`.
    """

    def __init__(self, num_thresholds: int = 200, from_logits: bool = False,
                 name: str = "auc", **kwargs: Any) -> None:
        kwargs["multi_label"] = True
        super().__init__(num_thresholds=num_thresholds, from_logits=from_logits, name=name,
                         **kwargs)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if not self._thresholds_distributed_evenly:
            super().update_state(y_true, y_pred, sample_weight)
            return
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = keras.activations.sigmoid(y_pred)
        y_pred = ops.clip(ops.cast(y_pred, self.dtype), 0.0, 1.0)
        positive = ops.cast(ops.cast(y_true, "bool"), self.dtype)
        weights = ops.ones_like(y_pred)
        if sample_weight is not None:  # a row's weight, or one per row and label
            sample_weight = ops.cast(sample_weight, self.dtype)
            if len(sample_weight.shape) < len(y_pred.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        # Keras's bucket: ceil(p * (T - 1)) - 1, the first one taking p = 0 when the end
        # thresholds hold an epsilon (they do by default).
        bucket = ops.ceil(y_pred * (self.num_thresholds - 1)) - 1
        if self._thresholds[0] < 0.0 or self._thresholds[-1] > 1.0:
            bucket = ops.relu(bucket)
        above = ops.cast(ops.greater_equal(
            ops.expand_dims(bucket, -1),
            ops.arange(self.num_thresholds, dtype=self.dtype)), self.dtype)
        true_labels, false_labels = positive * weights, (1.0 - positive) * weights
        tp = ops.einsum("blt,bl->tl", above, true_labels)
        fp = ops.einsum("blt,bl->tl", above, false_labels)
        self.true_positives.assign_add(tp)
        self.false_positives.assign_add(fp)
        self.false_negatives.assign_add(ops.sum(true_labels, axis=0) - tp)
        self.true_negatives.assign_add(ops.sum(false_labels, axis=0) - fp)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("multi_label", None)
        return config
