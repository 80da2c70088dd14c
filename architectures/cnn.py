"""Convolutional builders: a small example model and the VGG family used for speaker ID."""

from numbers import Integral
from typing import TYPE_CHECKING, Annotated, Any

from architectures.common import DEFAULT_TASK, Shape, batch_norm, l2, output_head
from architectures.keywords import (
    Filters,
    Interval,
    Momentum,
    OptionalUnits,
    Probability,
    Regularization,
    Units,
    Width,
)
from architectures.registry import register

if TYPE_CHECKING:
    import keras


def _conv_block(x: Any, filters: int, reg: Any, bn_momentum: float, kernel: int = 3,
                pool: tuple[int, int] | None = (2, 2), convs: int = 1) -> Any:
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    for _ in range(convs):
        x = layers.Conv2D(filters, kernel, padding="same", kernel_regularizer=reg)(x)
        x = batch_norm(bn_momentum)(x)
        x = layers.Activation("relu")(x)
    if pool:
        x = layers.MaxPooling2D(pool, padding="same")(x)
    return x


@register("example_cnn", reshaping=("conv",))
def example_cnn(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
                filters: Filters = 16, dropout: Probability = 0.2,
                regularization_lambda: Regularization = 0.0,
                bn_momentum: Momentum = 0.9) -> "keras.Model":
    """A small two-block CNN, the example to copy when writing a builder.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks` (classification: logits out).
        filters: filters of the first block; the second has twice as many. Defaults to `16`.
        dropout: dropout rate before the output layer. Defaults to `0.2`.
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
    x = _conv_block(inputs, filters, reg, bn_momentum)
    x = _conv_block(x, filters * 2, reg, bn_momentum)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="example_cnn")


def _vgg(name: str, input_shape: Shape, num_outputs: int, task_type: str, widths: list[int],
         convs: int, dense_units: int, dropout: float, regularization_lambda: float,
         global_pooling: bool, bn_momentum: float) -> "keras.Model":
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = inputs
    for width in widths:
        x = _conv_block(x, width, reg, bn_momentum, convs=convs)
    if global_pooling:
        x = layers.GlobalAveragePooling2D()(x)
    else:
        x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", kernel_regularizer=reg)(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name=name)


@register("vgg_ultra_mini", reshaping=("conv",))
def vgg_ultra_mini(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
                   filters: Filters = 8, dense_units: OptionalUnits = 32,
                   dropout: Probability = 0.3, regularization_lambda: Regularization = 0.0,
                   bn_momentum: Momentum = 0.9) -> "keras.Model":
    """VGG-style CNN, two blocks of one convolution each: the smallest of the family.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        filters: filters of the first block, doubled per block. Defaults to `8`.
        dense_units: units of the hidden dense layer (0: none). Defaults to `32`.
        dropout: dropout rate. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics (see
            `architectures.common.batch_norm`). Defaults to `0.9`.

    Returns:
        A `keras.Model`.
    """
    return _vgg("vgg_ultra_mini", input_shape, num_outputs, task_type,
                [filters, filters * 2], 1, dense_units, dropout, regularization_lambda, False,
                bn_momentum)


@register("vgg_mini_pool", reshaping=("conv",), fixed={"global_pooling": True})
@register("vgg_mini", reshaping=("conv",), fixed={"global_pooling": False})
def vgg_mini(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
             filters: Filters = 16, dense_units: OptionalUnits = 64, dropout: Probability = 0.3,
             regularization_lambda: Regularization = 0.0, bn_momentum: Momentum = 0.9,
             global_pooling: bool = False) -> "keras.Model":
    """VGG-style CNN, three blocks of two convolutions, flattened into a dense layer, or
    pooled (`global_pooling`: any input length). Registered twice, each name fixing
    `global_pooling` (`vgg_mini`: flattened, `vgg_mini_pool`: pooled), so that neither
    instance's parameters gain a keyword (their results still resume).

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        filters: filters of the first block, doubled per block. Defaults to `16`.
        dense_units: units of the hidden dense layer (0: none). Defaults to `64`.
        dropout: dropout rate. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics (see
            `architectures.common.batch_norm`). Defaults to `0.9`.
        global_pooling: global average pooling instead of flattening. Defaults to
            `False`.

    Returns:
        A `keras.Model`.
    """
    return _vgg("vgg_mini_pool" if global_pooling else "vgg_mini", input_shape, num_outputs,
                task_type, [filters, filters * 2, filters * 4], 2, dense_units, dropout,
                regularization_lambda, global_pooling, bn_momentum)


@register("vgg_m", reshaping=("conv",))
def vgg_m(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
          width: Width = 1.0, dense_units: Units = 256, dropout: Probability = 0.5,
          regularization_lambda: Regularization = 0.0,
          bn_momentum: Momentum = 0.9) -> "keras.Model":
    """VGG-M-style deep CNN (as in VoxCeleb speaker identification), scaled by `width`.

    Five convolutions (7x7/2, 5x5/2, then three 3x3), max pooling after the first, second
    and fifth, average pooling over time, and a dense layer.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        width: multiplier of the original widths 96, 256, 384, 256, 256. Defaults to `1.0`.
        dense_units: units of the hidden dense layer. Defaults to `256`.
        dropout: dropout rate before the output. Defaults to `0.5`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics (see
            `architectures.common.batch_norm`). Defaults to `0.9`.

    Returns:
        A `keras.Model`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    if width <= 0:
        raise ValueError(f"width={width}: expected a multiplier > 0.")
    reg = l2(regularization_lambda)
    w = [max(1, int(round(c * width))) for c in (96, 256, 384, 256, 256)]
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(w[0], 7, strides=2, padding="same", kernel_regularizer=reg)(inputs)
    x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Conv2D(w[1], 5, strides=2, padding="same", kernel_regularizer=reg)(x)
    x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for width_i in w[2:]:
        x = layers.Conv2D(width_i, 3, padding="same", kernel_regularizer=reg)(x)
        x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
    x = layers.MaxPooling2D((1, 3), strides=(1, 2), padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(dense_units, activation="relu", kernel_regularizer=reg)(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="vgg_m")


@register("genre_cnn", reshaping=("conv",))
def genre_cnn(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
              filters: Filters = 16, hidden_units: Units = 64, dropout: Probability = 0.3,
              regularization_lambda: Regularization = 0.0,
              bn_momentum: Momentum = 0.9) -> "keras.Model":
    """Four convolutional blocks and a two-layer perceptron head (music genre style).

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of classes (or regression targets).
        task_type: a task registered in `xval.tasks`.
        filters: filters of the first block, doubled per block. Defaults to `16`.
        hidden_units: units of both hidden dense layers (the second has half). Defaults to `64`.
        dropout: dropout rate after each dense layer. Defaults to `0.3`.
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
    x = inputs
    for i in range(4):
        x = _conv_block(x, filters * 2**i, reg, bn_momentum)
    x = layers.GlobalMaxPooling2D()(x)
    for units in (hidden_units, max(1, hidden_units // 2)):
        x = layers.Dense(units, activation="relu", kernel_regularizer=reg)(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="genre_cnn")


@register("audio_cnn", reshaping=("conv",))
def audio_cnn(input_shape: Shape, num_outputs: int, task_type: str = DEFAULT_TASK, *,
              filters: Filters = 16, blocks: Annotated[int, Interval(Integral, 1, 6)] = 4,
              dense_units: OptionalUnits = 128, dropout: Probability = 0.3,
              regularization_lambda: Regularization = 0.0,
              bn_momentum: Momentum = 0.9) -> "keras.Model":
    """A PANNs-style CNN (Kong et al. 2020, CNN6/CNN10): the default for new experiments.

    `blocks` blocks of two 3x3 convolutions with BatchNormalization and ReLU, each followed
    by 2x2 average pooling (the last block pools frequency only); then the mean over
    frequency, the maximum plus the mean over time, a dense layer and dropout. Pooling
    over time happens only at the end, so any clip length works and the frames keep their
    order up to the last block.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of classes (or regression targets).
        task_type: `"classification"` or `"regression"`.
        filters: filters of the first block, doubled per block. Defaults to `16`.
        blocks: convolutional blocks (1 to 6). Defaults to `4`.
        dense_units: units of the hidden dense layer (0: none). Defaults to `128`.
        dropout: dropout rate before the dense layer and the output. Defaults to `0.3`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics (see
            `architectures.common.batch_norm`). Defaults to `0.9`.

    Returns:
        A `keras.Model`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    if not 1 <= blocks <= 6:
        raise ValueError(f"blocks={blocks}: expected an integer from 1 to 6.")
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = inputs
    for i in range(blocks):
        x = _conv_block(x, filters * 2**i, reg, bn_momentum, pool=None, convs=2)
        time_pool = 2 if i < blocks - 1 and (x.shape[1] is None or x.shape[1] >= 2) else 1
        freq_pool = 2 if x.shape[2] >= 2 else 1
        x = layers.AveragePooling2D((time_pool, freq_pool), padding="same")(x)
    channels = x.shape[3]
    x = layers.AveragePooling2D((1, x.shape[2]), name="mean_over_frequency")(x)
    x = layers.Reshape((-1, channels))(x)  # (time, channels)
    x = layers.Concatenate()([layers.GlobalMaxPooling1D()(x),
                              layers.GlobalAveragePooling1D()(x)])
    x = layers.Dropout(dropout)(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", kernel_regularizer=reg)(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_outputs, task_type), name="audio_cnn")
