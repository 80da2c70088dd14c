"""Representation learning (`task_type="representation"`): autoencoders.

An autoencoder learns to reconstruct its (normalised) input through a narrow bottleneck;
no labels are used. The bottleneck layer is named `bottleneck`, so `python -m xval embed`
takes it by default.
"""

from typing import TYPE_CHECKING

from architectures.common import Shape, batch_norm, check_output, l2
from architectures.keywords import Filters, Layers, Momentum, Regularization
from architectures.registry import register

if TYPE_CHECKING:
    import keras


@register("conv_autoencoder", reshaping=("conv",), outputs=("input",))
def conv_autoencoder(input_shape: Shape, num_outputs: int | None = None,
                     task_type: str | None = None, *, filters: Filters = 16,
                     blocks: Layers = 2, bottleneck_channels: Filters = 8,
                     regularization_lambda: Regularization = 0.0,
                     bn_momentum: Momentum = 0.9) -> "keras.Model":
    """A convolutional autoencoder over `(time, frequency)` features.

    The encoder halves time and frequency in each of `blocks` blocks (3x3 convolution,
    BatchNormalization, ReLU, 2x2 max pooling); a 1x1 convolution to
    `bottleneck_channels` channels is the code (layer `bottleneck`); the decoder mirrors
    the encoder with transposed convolutions and a final linear 3x3 convolution, and the
    output is cropped to the input's shape.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: unused (the output has the input's shape).
        task_type: a task whose models reconstruct their input, or `None` (any). Defaults
            to `None`.
        filters: filters of the first encoder block, doubled per block. Defaults to `16`.
        blocks: encoder (and decoder) blocks. Defaults to `2`.
        bottleneck_channels: channels of the code. Defaults to `8`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics (see
            `architectures.common.batch_norm`). Defaults to `0.9`.

    Returns:
        A `keras.Model` from `(time, frequency, 1)` to a reconstruction `(time, frequency)`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    check_output(task_type, "input", "conv_autoencoder learns representations")
    if blocks < 1 or bottleneck_channels < 1:
        raise ValueError(
            f"blocks={blocks}, bottleneck_channels={bottleneck_channels}: expected "
            "integers >= 1."
        )
    reg = l2(regularization_lambda)
    time, freq = input_shape[0], input_shape[1]
    inputs = keras.Input(input_shape)
    x = inputs
    for i in range(blocks):
        x = layers.Conv2D(filters * 2**i, 3, padding="same", kernel_regularizer=reg)(x)
        x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(bottleneck_channels, 1, kernel_regularizer=reg, name="bottleneck")(x)
    for i in reversed(range(blocks)):
        x = layers.Conv2DTranspose(filters * 2**i, 3, strides=2, padding="same",
                                   kernel_regularizer=reg)(x)
        x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
    x = layers.Conv2D(1, 3, padding="same", kernel_regularizer=reg)(x)
    x = layers.Cropping2D(((0, x.shape[1] - time), (0, x.shape[2] - freq)))(x)
    outputs = layers.Reshape((time, freq), dtype="float32", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="conv_autoencoder")
