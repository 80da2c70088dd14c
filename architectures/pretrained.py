"""Light heads on the frame-level states of a pretrained encoder (`feature = pretrained`).

A `pretrained` store row is `(frames, layers * dim)`, the encoder's layers side by side
(layer-major; `dataset.json` `front_end.layers` lists them). `LayerWeightedSum` learns a
softmax weight per layer (SUPERB's weighted sum) and gives `(frames, dim)`; `pretrained_pool`
pools it over time (mean, statistics or attentive statistics) into a small MLP, and
`pretrained_bigru` reads it with a small bidirectional GRU (pooled), `pretrained_detector`
frame by frame (detection).
`encoder_layers=0` (the default) takes the number of layers of the experiment's store
(`dataset.json` `front_end.layers`); 1 reads a row as one layer.
"""

from numbers import Integral
from typing import Annotated, Any, Literal

import keras
from keras import layers, ops

from architectures.common import DEFAULT_TASK, FRAMES_TASK, Shape, check_output, l2, output_head
from architectures.detection import frame_head
from architectures.keywords import (
    Interval,
    OptionalUnits,
    Probability,
    Regularization,
    Units,
)
from architectures.layers import StatisticsPooling
from architectures.registry import register

EncoderLayers = Annotated[int, Interval(Integral, 0, 64)]
"""Encoder layers side by side in a store row: 1 to 64, or 0: the store's (the planner sets
it from `dataset.json` `front_end.layers`; a builder called directly reads 0 as 1)."""
Pooling = Literal["attentive", "stats", "meanmax", "mean"]


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


def _pool(x: Any, pooling: str, attention_units: int) -> Any:
    if pooling == "attentive":
        return AttentiveStatisticsPooling(attention_units)(x)
    if pooling == "stats":
        return StatisticsPooling()(x)
    if pooling == "meanmax":
        return layers.Concatenate(name="mean_max")(
            [layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    return layers.GlobalAveragePooling1D()(x)


def _frames_in(x: Any, encoder_layers: int, layer_norm: bool, projection: int,
               reg: Any) -> Any:
    """The weighted sum of the layers (when there are several), then a per-frame projection."""
    if encoder_layers > 1:
        x = LayerWeightedSum(encoder_layers, layer_norm=layer_norm, name="layer_sum")(x)
    if projection:
        x = layers.Dense(projection, activation="relu", kernel_regularizer=reg,
                         name="projection")(x)
    return x


@register("pretrained_pool", reshaping=("rnn",))
def pretrained_pool(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
                    encoder_layers: EncoderLayers = 0, layer_norm: bool = True,
                    projection: OptionalUnits = 128, pooling: Pooling = "attentive",
                    attention_units: Units = 128, hidden_units: OptionalUnits = 128,
                    dropout: Probability = 0.3,
                    regularization_lambda: Regularization = 0.0) -> keras.Model:
    """Layer-weighted sum, a per-frame projection, pooling over time and a small MLP.

    Args:
        input_shape: `(time, encoder_layers * dim)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        encoder_layers: encoder layers side by side in a row; 0: the store's
            (`len(front_end.layers)`, set by the planner); 1 reads the row as one layer.
            Defaults to `0`.
        layer_norm: normalise each layer before the weighted sum. Defaults to `True`.
        projection: units of the per-frame dense projection (ReLU), 0 for none. Defaults
            to `128`.
        pooling: `"attentive"` (attentive statistics), `"stats"` (mean and std),
            `"meanmax"` (mean and max: the linear probe of a block encoder's embeddings) or
            `"mean"`. Defaults to `"attentive"`.
        attention_units: hidden units of the attentive pooling. Defaults to `128`.
        hidden_units: units of the MLP's hidden layer, 0 for none. Defaults to `128`.
        dropout: dropout before the hidden layer and the output. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model`.
    """
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frames_in(inputs, encoder_layers, layer_norm, projection, reg)
    x = layers.Dropout(dropout)(_pool(x, pooling, attention_units))
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", kernel_regularizer=reg)(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="pretrained_pool")


def _bigru(x: Any, units: int, dropout: float, reg: Any) -> Any:
    x = layers.Bidirectional(layers.GRU(units, return_sequences=True,
                                        kernel_regularizer=reg))(x)
    return layers.Dropout(dropout)(x)


@register("pretrained_bigru", reshaping=("rnn",))
def pretrained_bigru(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
                     encoder_layers: EncoderLayers = 0, layer_norm: bool = True,
                     projection: OptionalUnits = 128, units: Units = 64,
                     pooling: Pooling = "attentive", attention_units: Units = 64,
                     dropout: Probability = 0.3,
                     regularization_lambda: Regularization = 0.0) -> keras.Model:
    """Layer-weighted sum, a projection and one small bidirectional GRU, pooled over time.

    Args:
        input_shape: `(time, encoder_layers * dim)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        encoder_layers: encoder layers side by side in a row; 0: the store's. Defaults
            to `0`.
        layer_norm: normalise each layer before the weighted sum. Defaults to `True`.
        projection: units of the per-frame projection, 0 for none. Defaults to `128`.
        units: GRU units in each direction. Defaults to `64`.
        pooling: pooling over time (see `pretrained_pool`). Defaults to `"attentive"`.
        attention_units: hidden units of the attentive pooling. Defaults to `64`.
        dropout: dropout before the pooling. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model`.
    """
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frames_in(inputs, encoder_layers, layer_norm, projection, reg)
    x = _pool(_bigru(x, units, dropout, reg), pooling, attention_units)
    return keras.Model(inputs, output_head(x, num_outputs, task_type),
                       name="pretrained_bigru")


@register("pretrained_detector", reshaping=("rnn",), outputs=("frames",))
def pretrained_detector(input_shape: Shape, num_outputs: int, task_type: str = FRAMES_TASK, *,
                        encoder_layers: EncoderLayers = 0, layer_norm: bool = True,
                        projection: OptionalUnits = 128, units: Units = 64,
                        dropout: Probability = 0.3,
                        regularization_lambda: Regularization = 0.0) -> keras.Model:
    """A frame-level detector on encoder states: layer-weighted sum, a projection and one
    small bidirectional GRU, one logit per frame and class (in float32).

    Args:
        input_shape: `(time, encoder_layers * dim)`.
        num_outputs: number of event classes.
        task_type: `"detection"`.
        encoder_layers: encoder layers side by side in a row; 0: the store's. Defaults
            to `0`.
        layer_norm: normalise each layer before the weighted sum. Defaults to `True`.
        projection: units of the per-frame projection, 0 for none. Defaults to `128`.
        units: GRU units in each direction. Defaults to `64`.
        dropout: dropout before the output. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model` with output `(time, num_outputs)`.

    Raises:
        ValueError: for a task other than detection.
    """
    check_output(task_type, "frames", "pretrained_detector makes frame-level detectors "
                 "(pretrained_bigru pools instead)")
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frames_in(inputs, encoder_layers, layer_norm, projection, reg)
    x = _bigru(x, units, dropout, reg)
    return keras.Model(inputs, frame_head(x, num_outputs), name="pretrained_detector")
