"""Recurrent builders (`reshaping_type="rnn"`, input `(time, frequency)`) and the MLP."""

from typing import TYPE_CHECKING, Any, Literal

from architectures.common import DEFAULT_TASK, Shape, batch_norm, l2, output_head
from architectures.keywords import (
    Filters,
    Layers,
    Momentum,
    Probability,
    Regularization,
    Units,
)
from architectures.registry import register

if TYPE_CHECKING:
    import keras

Cell = Literal["gru", "lstm"]
Pooling = Literal["mean", "stats"]


def _cell(cell: str) -> "type[keras.layers.Layer]":
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)

    cells = {"gru": layers.GRU, "lstm": layers.LSTM}
    if cell not in cells:
        raise ValueError(f"cell={cell!r}: expected one of {', '.join(cells)}.")
    return cells[cell]


def _pool(x: Any, pooling: str) -> Any:
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)

    from architectures.pooling import StatisticsPooling  # noqa: PLC0415  (imports Keras)
    if pooling == "stats":
        return StatisticsPooling()(x)
    if pooling == "mean":
        return layers.GlobalAveragePooling1D()(x)
    raise ValueError(f"pooling={pooling!r}: expected 'mean' or 'stats'.")


@register("rnn", reshaping=("rnn",))
def rnn(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
        cell: Cell = "gru", units: Units = 64, num_layers: Layers = 2,
        bidirectional: bool = False, pooling: Pooling = "mean", dropout: Probability = 0.2,
        regularization_lambda: Regularization = 0.0) -> "keras.Model":
    """Stacked GRU/LSTM over time frames, pooled over time.

    Args:
        input_shape: `(time, frequency)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        cell: `"gru"` or `"lstm"`. Defaults to `"gru"`.
        units: units per recurrent layer. Defaults to `64`.
        num_layers: recurrent layers. Defaults to `2`.
        bidirectional: wrap each layer in `Bidirectional`. Defaults to `False`.
        pooling: `"mean"` or `"stats"` (mean and std, `StatisticsPooling`). Defaults to `"mean"`.
        dropout: dropout rate before the output. Defaults to `0.2`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    reg = l2(regularization_lambda)
    rnn_layer = _cell(cell)
    inputs = keras.Input(input_shape)
    x = inputs
    for _ in range(num_layers):
        layer = rnn_layer(units, return_sequences=True, kernel_regularizer=reg)
        x = layers.Bidirectional(layer)(x) if bidirectional else layer(x)
    x = _pool(x, pooling)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="rnn")


@register("crnn", reshaping=("rnn",))
def crnn(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
         filters: Filters = 16, conv_blocks: Layers = 2, cell: Cell = "gru", units: Units = 64,
         pooling: Pooling = "mean", dropout: Probability = 0.2,
         regularization_lambda: Regularization = 0.0,
         bn_momentum: Momentum = 0.9) -> "keras.Model":
    """Convolutions over (time, frequency), then a recurrent layer over the time frames.

    Pooling halves the frequency axis only, so the time resolution is kept for the RNN.

    Args:
        input_shape: `(time, frequency)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        filters: filters of the first conv block, doubled per block. Defaults to `16`.
        conv_blocks: convolutional blocks. Defaults to `2`.
        cell: `"gru"` or `"lstm"`. Defaults to `"gru"`.
        units: recurrent units. Defaults to `64`.
        pooling: `"mean"` or `"stats"` over time. Defaults to `"mean"`.
        dropout: dropout rate before the output. Defaults to `0.2`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics (see
            `architectures.common.batch_norm`). Defaults to `0.9`.

    Returns:
        A `keras.Model`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    if input_shape[1] is None:
        raise ValueError(f"input_shape={input_shape}: crnn needs a known number of bins.")
    x = layers.Reshape((input_shape[0], input_shape[1], 1))(inputs)
    freq = input_shape[1]
    for i in range(conv_blocks):
        x = layers.Conv2D(filters * 2**i, 3, padding="same", kernel_regularizer=reg)(x)
        x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
        x = layers.MaxPooling2D((1, 2), padding="same")(x)
        freq = (freq + 1) // 2
    x = layers.Reshape((input_shape[0], freq * filters * 2 ** (conv_blocks - 1)))(x)
    x = _cell(cell)(units, return_sequences=True, kernel_regularizer=reg)(x)
    x = _pool(x, pooling)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="crnn")


@register("mlp", reshaping=("none",))
def mlp(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
        hidden_units: Units = 128, num_layers: Layers = 2, dropout: Probability = 0.3,
        regularization_lambda: Regularization = 0.0) -> "keras.Model":
    """Multilayer perceptron over the flattened features (`reshaping_type="none"`).

    Args:
        input_shape: `(time * frequency,)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        hidden_units: units of the first hidden layer, halved per layer. Defaults to `128`.
        num_layers: hidden layers. Defaults to `2`.
        dropout: dropout rate after each hidden layer. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = inputs
    for i in range(num_layers):
        x = layers.Dense(max(1, hidden_units // 2**i), activation="relu",
                         kernel_regularizer=reg)(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="mlp")
