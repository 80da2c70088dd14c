"""Light heads on the frame-level states of a pretrained encoder (`feature = pretrained`).

A `pretrained` store row is `(frames, layers * dim)`, the encoder's layers side by side
(layer-major; `dataset.json` `front_end.layers` lists them). `LayerWeightedSum` learns a
softmax weight per layer (SUPERB's weighted sum) and gives `(frames, dim)`; `pretrained_pool`
pools it over time (mean, max, statistics or attentive statistics) into a small MLP, or
scores every frame and pools the scores with one attention per label (`label_attention`), and
`pretrained_bigru` reads it with a small bidirectional GRU (pooled), `pretrained_detector`
frame by frame (detection).
`encoder_layers=0` (the default) takes the number of layers of the experiment's store
(`dataset.json` `front_end.layers`); 1 reads a row as one layer.
"""

from numbers import Integral
from typing import TYPE_CHECKING, Annotated, Any, Literal

from architectures.common import DEFAULT_TASK, Shape, check_output, l2, output_head
from architectures.detection import frame_head
from architectures.keywords import Interval, OptionalUnits, Probability, Regularization, Units
from architectures.registry import register

if TYPE_CHECKING:
    import keras

EncoderLayers = Annotated[int, Interval(Integral, 0, 64)]
"""Encoder layers side by side in a store row: 1 to 64, or 0: the store's (the planner sets
it from `dataset.json` `front_end.layers`; a builder called directly reads 0 as 1)."""
Pooling = Literal["attentive", "stats", "meanmax", "mean", "max", "label_attention"]
LABEL_ATTENTION = "label_attention"
"""The pooling of the frames' scores rather than their features (`_label_attention`)."""


def _pool(x: Any, pooling: str, attention_units: int) -> Any:
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)

    from architectures.pooling import (  # noqa: PLC0415  (imports Keras)
        AttentiveStatisticsPooling,
        StatisticsPooling,
    )
    if pooling == "attentive":
        return AttentiveStatisticsPooling(attention_units)(x)
    if pooling == "stats":
        return StatisticsPooling()(x)
    if pooling == "meanmax":
        return layers.Concatenate(name="mean_max")(
            [layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    if pooling == "max":
        return layers.GlobalMaxPooling1D()(x)
    return layers.GlobalAveragePooling1D()(x)


def _label_attention(x: Any, num_outputs: int, task_type: str) -> Any:
    """The task's output layer on every frame, pooled over time by one attention per label
    (`LabelAttentionPooling`, decision-level as AudioSet taggers pool)."""
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)

    from architectures.pooling import LabelAttentionPooling  # noqa: PLC0415  (imports Keras)
    scores = layers.Dense(num_outputs, dtype="float32", name="label_attention")(x)
    return LabelAttentionPooling(name="label_pool")([output_head(x, num_outputs, task_type),
                                                     scores])


def _frames_in(x: Any, encoder_layers: int, layer_norm: bool, projection: int,
               reg: Any) -> Any:
    """The weighted sum of the layers (when there are several), then a per-frame projection."""
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)

    from architectures.pooling import LayerWeightedSum  # noqa: PLC0415  (imports Keras)
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
                    regularization_lambda: Regularization = 0.0) -> "keras.Model":
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
            `"meanmax"` (mean and max: the linear probe of a block encoder's embeddings),
            `"mean"`, `"max"`, or `"label_attention"`: the MLP and the output layer score
            every frame, and each label (class) pools its scores over time with its own
            attention (`LabelAttentionPooling`; for tagging, a label present in one block
            of a row is read where it is). Defaults to `"attentive"`.
        attention_units: hidden units of the attentive pooling. Defaults to `128`.
        hidden_units: units of the MLP's hidden layer, 0 for none. Defaults to `128`.
        dropout: dropout before the hidden layer and the output. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frames_in(inputs, encoder_layers, layer_norm, projection, reg)
    if pooling != LABEL_ATTENTION:
        x = _pool(x, pooling, attention_units)
    x = layers.Dropout(dropout)(x)
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", kernel_regularizer=reg)(x)
        x = layers.Dropout(dropout)(x)
    output = _label_attention(x, num_outputs, task_type) if pooling == LABEL_ATTENTION \
        else output_head(x, num_outputs, task_type)
    return keras.Model(inputs, output, name="pretrained_pool")


def _bigru(x: Any, units: int, dropout: float, reg: Any) -> Any:
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    x = layers.Bidirectional(layers.GRU(units, return_sequences=True,
                                        kernel_regularizer=reg))(x)
    return layers.Dropout(dropout)(x)


@register("pretrained_bigru", reshaping=("rnn",))
def pretrained_bigru(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
                     encoder_layers: EncoderLayers = 0, layer_norm: bool = True,
                     projection: OptionalUnits = 128, units: Units = 64,
                     pooling: Pooling = "attentive", attention_units: Units = 64,
                     dropout: Probability = 0.3,
                     regularization_lambda: Regularization = 0.0) -> "keras.Model":
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
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frames_in(inputs, encoder_layers, layer_norm, projection, reg)
    x = _bigru(x, units, dropout, reg)
    output = _label_attention(x, num_outputs, task_type) if pooling == LABEL_ATTENTION \
        else output_head(_pool(x, pooling, attention_units), num_outputs, task_type)
    return keras.Model(inputs, output, name="pretrained_bigru")


@register("pretrained_detector", reshaping=("rnn",), outputs=("frames",))
def pretrained_detector(input_shape: Shape, num_outputs: int, task_type: str | None = None, *,
                        encoder_layers: EncoderLayers = 0, layer_norm: bool = True,
                        projection: OptionalUnits = 128, units: Units = 64,
                        dropout: Probability = 0.3,
                        regularization_lambda: Regularization = 0.0) -> "keras.Model":
    """A frame-level detector on encoder states: layer-weighted sum, a projection and one
    small bidirectional GRU, one logit per frame and class (in float32).

    Args:
        input_shape: `(time, encoder_layers * dim)`.
        num_outputs: number of event classes.
        task_type: a task whose models make frames, or `None` (any). Defaults to `None`.
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
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    check_output(task_type, "frames", "pretrained_detector makes frame-level detectors "
                 "(pretrained_bigru pools instead)")
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frames_in(inputs, encoder_layers, layer_norm, projection, reg)
    x = _bigru(x, units, dropout, reg)
    return keras.Model(inputs, frame_head(x, num_outputs), name="pretrained_detector")
