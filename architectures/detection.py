"""Frame-level detectors (`task_type="detection"`): one output per frame and class.

Both keep the time resolution of their input, so their output `(time, classes)` lines up
with the frame targets that preprocessing stores beside the features. The output is one
logit per frame and class (a per-frame sigmoid is applied by the loss and at prediction),
computed in float32 so that mixed precision keeps a stable loss.
"""

from typing import Any

import keras
from keras import layers

from architectures.common import Shape, batch_norm, l2
from architectures.keywords import (
    Filters,
    Layers,
    Momentum,
    Pool,
    Probability,
    Regularization,
    Units,
)
from architectures.registry import register


def frame_head(x: Any, num_outputs: int) -> Any:
    """Per-frame logits `(time, num_outputs)`, in float32."""
    return layers.Dense(num_outputs, dtype="float32", name="frame_logits")(x)


def _check_task(task_type: str) -> None:
    if task_type != "detection":
        raise ValueError(
            f"task_type={task_type!r}: this builder makes frame-level detectors; expected "
            "'detection'."
        )


@register("crnn_detector", reshaping=("conv",), outputs=("frames",))
def crnn_detector(input_shape: Shape, num_outputs: int, task_type: str = "detection", *,
                  filters: Filters = 32, conv_blocks: Layers = 3, freq_pool: Pool = 2,
                  units: Units = 64, dropout: Probability = 0.2,
                  regularization_lambda: Regularization = 0.0,
                  bn_momentum: Momentum = 0.9) -> keras.Model:
    """A CRNN sound event detector in the spirit of DENet and the DCASE baselines.

    Convolution blocks over (time, frequency) pool the frequency axis only, so every
    frame keeps its own column; a bidirectional GRU then reads the frames in both
    directions, and a dense layer gives each frame a logit per class.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of event classes.
        task_type: `"detection"`.
        filters: filters of every convolution. Defaults to `32`.
        conv_blocks: convolution blocks, each pooling frequency by `freq_pool`. Defaults
            to `3`.
        freq_pool: frequency pooling factor of each block. Defaults to `2` (measured:
            4 left the recurrent layer one frequency column and underfit).
        units: GRU units in each direction. Defaults to `64`.
        dropout: dropout after each block and before the output. Defaults to `0.2`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics (see
            `architectures.common.batch_norm`). Defaults to `0.9`.

    Returns:
        A `keras.Model` from `(time, frequency, 1)` to `(time, num_outputs)` logits.
    """
    _check_task(task_type)
    if conv_blocks < 1 or freq_pool < 1:
        raise ValueError(
            f"conv_blocks={conv_blocks}, freq_pool={freq_pool}: expected integers >= 1."
        )
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = inputs
    for _ in range(conv_blocks):
        x = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=reg)(x)
        x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
        pool = min(freq_pool, x.shape[2])
        x = layers.MaxPooling2D((1, pool), padding="same")(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Reshape((input_shape[0], x.shape[2] * x.shape[3]))(x)
    x = layers.Bidirectional(layers.GRU(units, return_sequences=True,
                                        kernel_regularizer=reg))(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, frame_head(x, num_outputs), name="crnn_detector")


@register("gru_detector", reshaping=("rnn",), outputs=("frames",))
def gru_detector(input_shape: Shape, num_outputs: int, task_type: str = "detection", *,
                 units: Units = 64, num_layers: Layers = 2, bidirectional: bool = True,
                 dropout: Probability = 0.2,
                 regularization_lambda: Regularization = 0.0) -> keras.Model:
    """A recurrent-only detector: stacked GRUs over the frames, a logit per frame and class.

    Args:
        input_shape: `(time, frequency)`.
        num_outputs: number of event classes.
        task_type: `"detection"`.
        units: units per GRU layer (per direction). Defaults to `64`.
        num_layers: GRU layers. Defaults to `2`.
        bidirectional: read the frames in both directions. Defaults to `True`.
        dropout: dropout after each layer. Defaults to `0.2`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model` from `(time, frequency)` to `(time, num_outputs)` logits.
    """
    _check_task(task_type)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = inputs
    for _ in range(num_layers):
        layer = layers.GRU(units, return_sequences=True, kernel_regularizer=reg)
        x = layers.Bidirectional(layer)(x) if bidirectional else layer(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, frame_head(x, num_outputs), name="gru_detector")
