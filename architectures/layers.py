"""Custom layers, registered so that saved models load them by name."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="architectures")
class StatisticsPooling(keras.layers.Layer):
    """Mean and standard deviation over time, concatenated (x-vector style pooling).

    Input shape: `(batch, time, features)`. Output shape: `(batch, 2 * features)`.

    Args:
        epsilon: floor of the variance before the square root. Defaults to `1e-6`.
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        mean = ops.mean(inputs, axis=1)
        var = ops.mean(ops.square(inputs - ops.expand_dims(mean, 1)), axis=1)
        return ops.concatenate([mean, ops.sqrt(ops.maximum(var, self.epsilon))], axis=-1)

    def compute_output_shape(self, input_shape):
        last = None if input_shape[-1] is None else 2 * input_shape[-1]
        return (input_shape[0], last)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
