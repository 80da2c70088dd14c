"""`RepeatFrames`: frame-rate outputs back at the input's frame rate (`fast_detector`)."""

from typing import Any

import keras
from keras import ops

__all__ = ["UPSAMPLING", "RepeatFrames"]

UPSAMPLING = ("repeat", "linear")
"""How `RepeatFrames` fills the input's frames: each pooled frame repeated, or the pooled
frames interpolated linearly between their centres."""


@keras.saving.register_keras_serializable(package="architectures")
class RepeatFrames(keras.layers.Layer):
    """Pooled frames back at the input's frame rate, cut to the length of a reference
    sequence: each frame repeated `factor` times (`mode="repeat"`), or the frames
    interpolated linearly between their centres (`mode="linear"`: pooled frame `k` stands
    for input frames `k * factor` to `k * factor + factor - 1`, centred at
    `k * factor + (factor - 1) / 2`; frames before the first centre or after the last take
    its value), so that an event's bound may fall between two pooled frames.

    Input: `[x, reference]`, `x` of shape `(batch, time // factor (rounded up), features)`,
    `reference` of shape `(batch, time, ...)`. Output shape: `(batch, time, features)`.

    Args:
        factor: input frames per pooled frame.
        mode: `"repeat"` or `"linear"`. Defaults to `"repeat"` (models saved before the
            option existed).

    Raises:
        ValueError: for an unknown `mode`.
    """

    def __init__(self, factor: int, mode: str = "repeat", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in UPSAMPLING:
            raise ValueError(f"mode={mode!r}: expected one of {', '.join(UPSAMPLING)}.")
        self.factor = int(factor)
        self.mode = mode

    def call(self, inputs: Any) -> Any:
        x, reference = inputs
        length = ops.shape(reference)[1]
        if self.mode == "repeat":
            return ops.repeat(x, self.factor, axis=1)[:, :length]
        last = ops.cast(ops.shape(x)[1] - 1, "float32")
        at = (ops.cast(ops.arange(length), "float32") - (self.factor - 1) / 2) / self.factor
        at = ops.clip(at, 0.0, last)
        low = ops.floor(at)
        weight = ops.cast(at - low, x.dtype)[None, :, None]
        low = ops.cast(low, "int32")
        high = ops.minimum(low + 1, ops.cast(last, "int32"))
        return ops.take(x, low, axis=1) * (1 - weight) + ops.take(x, high, axis=1) * weight

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        x, reference = input_shape
        return (x[0], reference[1], x[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor, "mode": self.mode}
