"""Layers that pool a sequence of frames, or an encoder's layers, into fewer values:
statistics pooling (x-vector), attentive statistics pooling, per-label attention over the
frames' logits (AudioSet taggers) and the SUPERB layer-weighted sum.

Registered with Keras by name (`package="architectures"`), so saved models that hold them
load after `import architectures` (see `architectures.custom_layers`).
"""

from typing import Any

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="architectures")
class StatisticsPooling(keras.layers.Layer):
    """Mean and standard deviation over time, concatenated (x-vector style pooling).

    Input shape: `(batch, time, features)`. Output shape: `(batch, 2 * features)`.

    Args:
        epsilon: floor of the variance before the square root. Defaults to `1e-6`.
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs: Any) -> Any:
        mean = ops.mean(inputs, axis=1)
        var = ops.mean(ops.square(inputs - ops.expand_dims(mean, 1)), axis=1)
        return ops.concatenate([mean, ops.sqrt(ops.maximum(var, self.epsilon))], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        last = None if input_shape[-1] is None else 2 * input_shape[-1]
        return (input_shape[0], last)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="architectures")
class LayerWeightedSum(keras.layers.Layer):
    """Softmax-weighted sum of an encoder's layers (the SUPERB weighted sum).

    Input shape: `(batch, time, num_layers * dim)`, layer-major. Output shape:
    `(batch, time, dim)`. The weights start equal; with `layer_norm`, each layer's state is
    first normalised over its `dim` features (no parameters), so that layers of different
    scales weigh by their weight alone.

    Args:
        num_layers: layers side by side on the last axis.
        layer_norm: normalise each layer before the sum. Defaults to `True`.
        epsilon: added to the variance of the layer norm. Defaults to `1e-5`.

    Raises:
        ValueError: for `num_layers < 1`, or a last axis that is not `num_layers` layers.
    """

    def __init__(self, num_layers: int, layer_norm: bool = True, epsilon: float = 1e-5,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"num_layers={num_layers!r}: expected an integer >= 1.")
        self.num_layers = int(num_layers)
        self.layer_norm = bool(layer_norm)
        self.epsilon = epsilon

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        last = input_shape[-1]
        if last is None or last % self.num_layers:
            raise ValueError(
                f"The rows have {last} values per frame, not num_layers={self.num_layers} "
                "layers side by side; set encoder_layers to the store's number of layers "
                "(dataset.json front_end.layers).")
        self.dim = last // self.num_layers
        self.layer_weights = self.add_weight(shape=(self.num_layers,), initializer="zeros",
                                             name="layer_weights")

    def call(self, inputs: Any) -> Any:
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (shape[0], shape[1], self.num_layers, self.dim))
        if self.layer_norm:
            mean = ops.mean(x, axis=-1, keepdims=True)
            var = ops.var(x, axis=-1, keepdims=True)
            x = (x - mean) / ops.sqrt(var + self.epsilon)
        weights = ops.cast(ops.softmax(self.layer_weights), x.dtype)
        return ops.einsum("btld,l->btd", x, weights)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        last = input_shape[-1]
        return (*input_shape[:-1], None if last is None else last // self.num_layers)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_layers": self.num_layers,
                "layer_norm": self.layer_norm, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="architectures")
class AttentiveStatisticsPooling(keras.layers.Layer):
    """Attentive statistics pooling (Okabe et al. 2018): an attention-weighted mean and
    standard deviation over time.

    Each frame gets a score `v . tanh(W h_t + b)`; the softmax of the scores over time
    weighs the mean and the standard deviation of the frames.

    Input shape: `(batch, time, features)`. Output shape: `(batch, 2 * features)`.

    Args:
        units: size of the attention's hidden layer. Defaults to `128`.
        epsilon: floor of the variance before the square root. Defaults to `1e-6`.
    """

    def __init__(self, units: int = 128, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.epsilon = epsilon
        self.hidden = layers.Dense(self.units, activation="tanh", name="attention_hidden")
        self.score = layers.Dense(1, name="attention_score")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.hidden.build(input_shape)
        self.score.build((*input_shape[:-1], self.units))

    def call(self, inputs: Any) -> Any:
        alpha = ops.softmax(self.score(self.hidden(inputs)), axis=1)  # (batch, time, 1)
        mean = ops.sum(alpha * inputs, axis=1)
        var = ops.sum(alpha * ops.square(inputs), axis=1) - ops.square(mean)
        return ops.concatenate([mean, ops.sqrt(ops.maximum(var, self.epsilon))], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        last = input_shape[-1]
        return (input_shape[0], None if last is None else 2 * last)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="architectures")
class LabelAttentionPooling(keras.layers.Layer):
    """Per-label attention over time (decision-level, as AudioSet taggers pool): each label
    weighs the frames by the softmax over time of its own attention scores and averages its
    logits with those weights, so a label present in one block of a row is read from that
    block, another label from another.

    Input: `[logits, scores]`, both `(batch, time, labels)`. Output shape: `(batch, labels)`,
    float32.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"dtype": "float32", **kwargs})

    def call(self, inputs: Any) -> Any:
        logits, scores = inputs
        # The softmax over time written out: `ops.softmax` warns on a row of one block (a
        # clip shorter than two blocks), where the weight is 1 and the logits are read as
        # they are.
        scores = ops.cast(scores, "float32")
        weights = ops.exp(scores - ops.max(scores, axis=1, keepdims=True))
        weights = weights / ops.sum(weights, axis=1, keepdims=True)
        return ops.sum(weights * ops.cast(logits, "float32"), axis=1)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        shape = input_shape[0]
        return (shape[0], shape[-1])
