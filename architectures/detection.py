"""Frame-level detectors (`task_type="detection"`): one output per frame and class.

`resnet_detector` (residual blocks, stacked GRUs: the best measured on the two issue-27
sets, docs/results.md, and the default until `architectures.fast_detection.fast_detector`,
the same network reading a fraction of the frames, replaced it), `crnn_detector` (convolutions, one GRU; the default
before), `gru_detector` and `conformer_detector` (a convolutional front end and conformer
blocks). All keep the time resolution of their input, so their output `(time, classes)`
lines up with the frame targets that preprocessing stores beside the features. The output is one
logit per frame and class (a per-frame sigmoid is applied by the loss and at prediction),
computed in float32 so that mixed precision keeps a stable loss.
"""

from numbers import Integral
from typing import TYPE_CHECKING, Annotated, Any

from architectures.common import Shape, batch_norm, check_output, l2
from architectures.keywords import (
    Count,
    Filters,
    Interval,
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

OptionalLayers = Annotated[int, Interval(Integral, 0, 32)]
"""A number of layers that may be 0 (no recurrent layer, no front end)."""
Kernel = Annotated[int, Interval(Integral, 1, 255)]
"""A kernel length in frames."""


def frame_head(x: Any, num_outputs: int) -> Any:
    """Per-frame logits `(time, num_outputs)`, in float32."""
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    return layers.Dense(num_outputs, dtype="float32", name="frame_logits")(x)


def _frequency_pooling_blocks(x: Any, filters: int, blocks: int, freq_pool: int, reg: Any,
                              bn_momentum: float, dropout: float) -> Any:
    """Convolution blocks that pool the frequency axis only (every frame keeps its column):
    the front of `crnn_detector` and `conformer_detector`."""
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)

    for _ in range(blocks):
        x = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=reg)(x)
        x = layers.Activation("relu")(batch_norm(bn_momentum)(x))
        x = layers.MaxPooling2D((1, min(freq_pool, x.shape[2])), padding="same")(x)
        x = layers.Dropout(dropout)(x)
    return x


def _check_task(task_type: str | None) -> None:
    check_output(task_type, "frames", "this builder makes frame-level detectors")


@register("crnn_detector", reshaping=("conv",), outputs=("frames",))
def crnn_detector(input_shape: Shape, num_outputs: int, task_type: str | None = None, *,
                  filters: Filters = 32, conv_blocks: Layers = 3, freq_pool: Pool = 2,
                  units: Units = 64, dropout: Probability = 0.2,
                  regularization_lambda: Regularization = 0.0,
                  bn_momentum: Momentum = 0.9) -> "keras.Model":
    """A CRNN sound event detector in the spirit of DENet and the DCASE baselines.

    Convolution blocks over (time, frequency) pool the frequency axis only, so every
    frame keeps its own column; a bidirectional GRU then reads the frames in both
    directions, and a dense layer gives each frame a logit per class.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of event classes.
        task_type: a task whose models make frames, or `None` (any). Defaults to `None`.
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
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    _check_task(task_type)
    if conv_blocks < 1 or freq_pool < 1:
        raise ValueError(
            f"conv_blocks={conv_blocks}, freq_pool={freq_pool}: expected integers >= 1."
        )
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frequency_pooling_blocks(inputs, filters, conv_blocks, freq_pool, reg, bn_momentum,
                                  dropout)
    x = layers.Reshape((input_shape[0], x.shape[2] * x.shape[3]))(x)
    x = layers.Bidirectional(layers.GRU(units, return_sequences=True,
                                        kernel_regularizer=reg))(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, frame_head(x, num_outputs), name="crnn_detector")


@register("gru_detector", reshaping=("rnn",), outputs=("frames",))
def gru_detector(input_shape: Shape, num_outputs: int, task_type: str | None = None, *,
                 units: Units = 64, num_layers: Layers = 2, bidirectional: bool = True,
                 dropout: Probability = 0.2,
                 regularization_lambda: Regularization = 0.0) -> "keras.Model":
    """A recurrent-only detector: stacked GRUs over the frames, a logit per frame and class.

    Args:
        input_shape: `(time, frequency)`.
        num_outputs: number of event classes.
        task_type: a task whose models make frames, or `None` (any). Defaults to `None`.
        units: units per GRU layer (per direction). Defaults to `64`.
        num_layers: GRU layers. Defaults to `2`.
        bidirectional: read the frames in both directions. Defaults to `True`.
        dropout: dropout after each layer. Defaults to `0.2`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.

    Returns:
        A `keras.Model` from `(time, frequency)` to `(time, num_outputs)` logits.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    _check_task(task_type)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = inputs
    for _ in range(num_layers):
        layer = layers.GRU(units, return_sequences=True, kernel_regularizer=reg)
        x = layers.Bidirectional(layer)(x) if bidirectional else layer(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, frame_head(x, num_outputs), name="gru_detector")


def residual_block(x: Any, channels: int, reg: Any, bn_momentum: float) -> Any:
    """Two 3x3 convolutions with batch normalisation and an identity (or 1x1) shortcut."""
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    shortcut = x
    if x.shape[-1] != channels:
        shortcut = layers.Conv2D(channels, 1, use_bias=False, kernel_regularizer=reg)(x)
        shortcut = batch_norm(bn_momentum)(shortcut)
    y = layers.Conv2D(channels, 3, padding="same", use_bias=False, kernel_regularizer=reg)(x)
    y = layers.Activation("relu")(batch_norm(bn_momentum)(y))
    y = layers.Conv2D(channels, 3, padding="same", use_bias=False, kernel_regularizer=reg)(y)
    y = batch_norm(bn_momentum)(y)
    return layers.Activation("relu")(layers.Add()([y, shortcut]))


@register("resnet_detector", reshaping=("conv",), outputs=("frames",))
def resnet_detector(input_shape: Shape, num_outputs: int, task_type: str | None = None, *,
                    filters: Filters = 16, conv_blocks: Layers = 3, freq_pool: Pool = 2,
                    units: Units = 64, rnn_layers: OptionalLayers = 2,
                    dropout: Probability = 0.2, regularization_lambda: Regularization = 0.0,
                    bn_momentum: Momentum = 0.9) -> "keras.Model":
    """A deeper CRNN: residual convolution blocks, then stacked bidirectional GRUs (measured
    best of the detectors on two detection sets, docs/results.md; `fast_detector` is this
    network behind a stem that pools time, the default).

    Each block is a residual pair of 3x3 convolutions (He et al. 2016) whose channels
    double from `filters` up to `4 * filters`, followed by a frequency-only pooling, so
    that every frame keeps its own column; the frequency axis left is flattened into the
    frame's features, read by `rnn_layers` bidirectional GRUs, and a dense layer gives each
    frame a logit per class.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of event classes.
        task_type: a task whose models make frames, or `None` (any). Defaults to `None`.
        filters: channels of the first block (doubled per block, at most 4x). Defaults to
            `16`.
        conv_blocks: residual blocks. Defaults to `3`.
        freq_pool: frequency pooling factor after each block. Defaults to `2`.
        units: GRU units in each direction. Defaults to `64`. (These three defaults
            were measured: with them the detector fits the training recordings of
            the hard set, frame F1 0.93, where `crnn_detector` reaches 0.88, and detects
            more of its test events.)
        rnn_layers: bidirectional GRU layers (0: none). Defaults to `2`.
        dropout: dropout after each block and GRU layer. Defaults to `0.2`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics. Defaults to
            `0.9`.

    Returns:
        A `keras.Model` from `(time, frequency, 1)` to `(time, num_outputs)` logits.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    _check_task(task_type)
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = inputs
    for block in range(conv_blocks):
        x = residual_block(x, filters * 2 ** min(block, 2), reg, bn_momentum)
        x = layers.MaxPooling2D((1, min(freq_pool, x.shape[2])), padding="same")(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Reshape((input_shape[0], x.shape[2] * x.shape[3]))(x)
    for _ in range(rnn_layers):
        x = layers.Bidirectional(layers.GRU(units, return_sequences=True,
                                            kernel_regularizer=reg))(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, frame_head(x, num_outputs), name="resnet_detector")


def _feed_forward(x: Any, d_model: int, mult: int, dropout: float, reg: Any) -> Any:
    """A conformer's feed-forward module (before its residual connection)."""
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    y = layers.LayerNormalization()(x)
    y = layers.Dense(d_model * mult, activation="swish", kernel_regularizer=reg)(y)
    y = layers.Dropout(dropout)(y)
    y = layers.Dense(d_model, kernel_regularizer=reg)(y)
    return layers.Dropout(dropout)(y)


def _conformer_block(x: Any, d_model: int, heads: int, kernel_size: int, mult: int,
                     dropout: float, reg: Any, bn_momentum: float) -> Any:
    """Gulati et al. 2020: half feed-forward, self-attention, convolution module, half
    feed-forward, layer normalisation (each with a residual connection)."""
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    x = layers.Add()([x, layers.Rescaling(0.5)(_feed_forward(x, d_model, mult, dropout, reg))])
    y = layers.LayerNormalization()(x)
    y = layers.MultiHeadAttention(heads, d_model // heads, dropout=dropout,
                                  kernel_regularizer=reg)(y, y)
    x = layers.Add()([x, layers.Dropout(dropout)(y)])
    y = layers.LayerNormalization()(x)
    gate = layers.Activation("sigmoid")(layers.Dense(d_model, kernel_regularizer=reg)(y))
    y = layers.Multiply()([layers.Dense(d_model, kernel_regularizer=reg)(y), gate])  # GLU
    y = layers.DepthwiseConv1D(kernel_size, padding="same", depthwise_regularizer=reg)(y)
    y = layers.Activation("swish")(batch_norm(bn_momentum)(y))
    y = layers.Dense(d_model, kernel_regularizer=reg)(y)
    x = layers.Add()([x, layers.Dropout(dropout)(y)])
    x = layers.Add()([x, layers.Rescaling(0.5)(_feed_forward(x, d_model, mult, dropout, reg))])
    return layers.LayerNormalization()(x)


@register("conformer_detector", reshaping=("conv",), outputs=("frames",))
def conformer_detector(input_shape: Shape, num_outputs: int, task_type: str | None = None,
                       *, filters: Filters = 32, conv_blocks: OptionalLayers = 2,
                       freq_pool: Pool = 4, d_model: Units = 128, num_blocks: Layers = 2,
                       heads: Count = 4, kernel_size: Kernel = 15, ff_mult: Count = 4,
                       dropout: Probability = 0.1,
                       regularization_lambda: Regularization = 0.0,
                       bn_momentum: Momentum = 0.9) -> "keras.Model":
    """A small conformer detector: a convolutional front end, then conformer blocks.

    The front end is `crnn_detector`'s (convolutions pooling frequency only); its frames
    are projected to `d_model` features and read by `num_blocks` conformer blocks (Gulati
    et al. 2020; the DCASE 2020 task 4 winner's detector, Miyazaki et al.): self-attention
    over the window's frames and a depthwise convolution of `kernel_size` frames, which
    also gives the attention its sense of position. A dense layer gives each frame a logit
    per class.

    Args:
        input_shape: `(time, frequency, 1)`.
        num_outputs: number of event classes.
        task_type: a task whose models make frames, or `None` (any). Defaults to `None`.
        filters: filters of the front end's convolutions. Defaults to `32`.
        conv_blocks: front-end convolution blocks (0: none). Defaults to `2`.
        freq_pool: frequency pooling factor of each front-end block. Defaults to `4`.
        d_model: features per frame in the conformer blocks. Defaults to `128`.
        num_blocks: conformer blocks. Defaults to `2`.
        heads: attention heads (`d_model` must divide by it). Defaults to `4`.
        kernel_size: frames of the convolution module's depthwise kernel. Defaults to `15`.
        ff_mult: width of the feed-forward modules, in multiples of `d_model`. Defaults
            to `4`.
        dropout: dropout in every module. Defaults to `0.1`.
        regularization_lambda: L2 weight of every kernel. Defaults to `0.0`.
        bn_momentum: momentum of the BatchNormalization moving statistics. Defaults to
            `0.9`.

    Returns:
        A `keras.Model` from `(time, frequency, 1)` to `(time, num_outputs)` logits.

    Raises:
        ValueError: when `d_model` is not a multiple of `heads`.
    """
    import keras  # noqa: PLC0415  (Keras: when a model is built)
    from keras import layers  # noqa: PLC0415  (Keras: when a model is built)
    _check_task(task_type)
    if d_model % heads:
        raise ValueError(f"d_model={d_model} is not a multiple of heads={heads}; choose "
                         f"heads dividing d_model (e.g. heads={_divisor(d_model, heads)}).")
    reg = l2(regularization_lambda)
    inputs = keras.Input(input_shape)
    x = _frequency_pooling_blocks(inputs, filters, conv_blocks, freq_pool, reg, bn_momentum,
                                  dropout)
    x = layers.Reshape((input_shape[0], x.shape[2] * x.shape[3]))(x)
    x = layers.Dense(d_model, kernel_regularizer=reg)(x)
    for _ in range(num_blocks):
        x = _conformer_block(x, d_model, heads, kernel_size, ff_mult, dropout, reg,
                             bn_momentum)
    return keras.Model(inputs, frame_head(x, num_outputs), name="conformer_detector")


def _divisor(n: int, near: int) -> int:
    """The divisor of `n` nearest `near` (a suggestion for `heads`)."""
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - near), d))
