"""`fast_detector`: the stock frame-level detector, cheap enough to train on a CPU.

`resnet_detector` (residual blocks, stacked GRUs) behind a stem that pools time, as the
DCASE task 4 baseline CRNN does, so that its blocks and its recurrent layers read a fraction
of the frames; each output frame is then repeated `time_pool` times (`RepeatFrames`), so
that its logits line up with the store's frame targets like every detector's.
"""

from typing import TYPE_CHECKING, Literal

from architectures.common import Shape, batch_norm, check_output, l2
from architectures.detection import OptionalLayers, frame_head, residual_block
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

if TYPE_CHECKING:
    import keras


@register("fast_detector", reshaping=("conv",), outputs=("frames",))
def fast_detector(input_shape: Shape, num_outputs: int, task_type: str | None = None, *,
                  filters: Filters = 16, conv_blocks: Layers = 3, freq_pool: Pool = 2,
                  time_pool: Pool = 4, units: Units = 64, rnn_layers: OptionalLayers = 2,
                  dropout: Probability = 0.2, regularization_lambda: Regularization = 0.0,
                  bn_momentum: Momentum = 0.9,
                  upsample: Literal["repeat", "linear"] = "repeat") -> "keras.Model":
    """`resnet_detector` reading a fraction of the frames: the detection default for CPUs
    (docs/results.md).

    A stem (one 3x3 convolution of `filters` channels, batch normalisation, ReLU) pools
    time by `time_pool`; then, as in `resnet_detector`, residual blocks whose channels
    double from `filters` up to `4 * filters`, each pooling frequency by `freq_pool`, the
    frequency axis left flattened into each frame's features, `rnn_layers` bidirectional
    GRUs, and a dense layer giving each frame a logit per class, repeated `time_pool` times
    back to the input's frames (`RepeatFrames`). Everything after the stem reads
    `1 / time_pool` of the frames.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of event classes.
        task_type: a task whose models make frames, or `None` (any). Defaults to `None`.
        filters: channels of the stem and the first block (doubled per block, at most 4x).
            Defaults to `16`.
        conv_blocks: residual blocks. Defaults to `3`.
        freq_pool: frequency pooling factor after each block. Defaults to `2`.
        time_pool: time pooling factor of the stem; the outputs are repeated back to every
            input frame. Defaults to `4` (80 ms on the 20 ms frames of a detection store's
            defaults; measured on the hard set, docs/results.md: 2, 40 ms, scored the same
            test event F1 for 1.7x the CPU time).
        units: GRU units in each direction. Defaults to `64`.
        rnn_layers: bidirectional GRU layers (0: none). Defaults to `2`.
        dropout: dropout after each block and GRU layer. Defaults to `0.2`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics. Defaults to
            `0.9`.
        upsample: how the pooled logits come back to every input frame (`RepeatFrames`):
            `"repeat"` (each `time_pool` times: bounds on the pooled grid) or `"linear"`
            (interpolated between the pooled frames' centres, so that a bound may fall
            between them). Defaults to `"repeat"`.

    Returns:
        A `keras.Model` from `(time, frequency, 1)` to `(time, num_outputs)` logits.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)

    from architectures.frames import RepeatFrames  # noqa: PLC0415  (imports Keras)

    check_output(task_type, "frames", "this builder makes frame-level detectors")
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                      name="stem")(inputs)
    x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
    x = layers.MaxPooling2D((time_pool, 1), padding="same")(x)
    for block in range(conv_blocks):
        x = residual_block(x, filters * 2 ** min(block, 2), reg, bn_momentum)
        x = layers.MaxPooling2D((1, min(freq_pool, x.shape[2])), padding="same")(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Reshape((-1, x.shape[2] * x.shape[3]))(x)
    for _ in range(rnn_layers):
        x = layers.Bidirectional(layers.GRU(units, return_sequences=True,
                                            kernel_regularizer=reg))(x)
        x = layers.Dropout(dropout)(x)
    if time_pool == 1:
        return keras.Model(inputs, frame_head(x, num_outputs), name="fast_detector")
    x = layers.Dense(num_outputs, dtype="float32")(x)
    logits = RepeatFrames(time_pool, mode=upsample, dtype="float32",
                          name="frame_logits")([x, inputs])
    return keras.Model(inputs, logits, name="fast_detector")
