"""`RepeatFrames`: frame-rate outputs back at the input's frame rate (`fast_detector`)."""

from typing import Any

import keras
from keras import ops

__all__ = ["RepeatFrames"]


@keras.saving.register_keras_serializable(package="architectures")
class RepeatFrames(keras.layers.Layer):
    """Each frame repeated `factor` times, cut to the length of a reference sequence.

    Input: `[x, reference]`, `x` of shape `(batch, time // factor (rounded up), features)`,
    `reference` of shape `(batch, time, ...)`. Output shape: `(batch, time, features)`.

    Args:
        factor: how many times each frame is repeated.
    """

    def __init__(self, factor: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs: Any) -> Any:
        x, reference = inputs
        return ops.repeat(x, self.factor, axis=1)[:, :ops.shape(reference)[1]]

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        x, reference = input_shape
        return (x[0], reference[1], x[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}
