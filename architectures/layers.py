"""Layers applied to a model's `(time, frequency)` input: SpecAugment masking, frequency and
time warping (training only), and per-row normalisation.

Registered with Keras by name (`package="architectures"`), so saved models that hold them
load after `import architectures` (see `architectures.custom_layers`).
"""

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from xval.core.constraints import check


class DeviceDraws:
    """A layer's random draws, made on the device without reading anything back to the host.

    Keras's seeded draws on the torch backend (eager) turn the layer's `SeedGenerator` state,
    a device tensor, into a Python `int` at every call (`torch.Generator.manual_seed(int(...))`):
    on a GPU each draw then waits for every kernel queued before it. Here, on torch, a layer
    built without a seed draws from torch's own generator of the input's device, which
    `keras.utils.set_random_seed` seeds (so a seeded job repeats its draws, as Keras's own
    unseeded `Dropout` does on torch), and a layer given a `seed` from a `torch.Generator`
    of that device seeded once with it. JAX and TensorFlow compile the step, where Keras's
    seeded draws stay on the device: they are used there as before.

    Args:
        seed: the layer's seed, or `None`.
        seed_generator: the layer's `keras.random.SeedGenerator` (JAX, TensorFlow).
    """

    def __init__(self, seed: int | None, seed_generator: Any) -> None:
        self.seed = seed
        self.seed_generator = seed_generator
        self.generators: dict[str, Any] = {}

    def _generator(self, device: Any) -> Any:
        """The `torch.Generator` of `device` (`None`: torch's default one, and on the
        `meta` device of Keras's shape inference, which has none)."""
        if self.seed is None or device.type == "meta":
            return None
        key = str(device)
        if key not in self.generators:
            import torch  # noqa: PLC0415  (the backend, imported by Keras already)

            self.generators[key] = torch.Generator(device=device).manual_seed(int(self.seed))
        return self.generators[key]

    def uniform(self, shape: tuple[Any, ...], like: Any) -> Any:
        """Floats uniform in `[0, 1)`, float32, of `shape`, on the device of `like`."""
        if keras.backend.backend() != "torch":
            return keras.random.uniform(shape, seed=self.seed_generator)
        import torch  # noqa: PLC0415  (the backend, imported by Keras already)

        return torch.rand(shape, generator=self._generator(like.device), device=like.device,
                          dtype=torch.float32)

    def randint(self, shape: tuple[Any, ...], high: int, like: Any) -> Any:
        """Integers uniform in `[0, high)`, int32, of `shape`, on the device of `like`."""
        if keras.backend.backend() != "torch":
            return keras.random.randint(shape, 0, high, seed=self.seed_generator)
        import torch  # noqa: PLC0415  (the backend, imported by Keras already)

        return torch.randint(0, high, shape, generator=self._generator(like.device),
                             device=like.device, dtype=torch.int32)


@keras.saving.register_keras_serializable(package="architectures")
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masking (Park et al. 2019) of `(time, frequency)` features.

    In training, each row gets `time_masks` bands of whole frames and `freq_masks` bands
    of whole frequency bins set to zero (the mean, after the model's normalisation); each
    band's width is drawn uniformly from 0 to the given fraction of the frames or bins and
    its position uniformly. At inference (`training=False`: `predict`, `evaluate`, a
    loaded model) the layer passes its input through unchanged. The layer is part of the
    model, so it is saved with it.

    Input shape: `(batch, time, frequency)`. Output shape: the same.

    Args:
        time_masks: time masks per row. Defaults to `2`.
        time_mask_fraction: widest time mask, as a fraction of the frames. Defaults to
            `0.1`.
        freq_masks: frequency masks per row. Defaults to `2`.
        freq_mask_fraction: widest frequency mask, as a fraction of the bins. Defaults to
            `0.1`.
        seed: seed of the masks. Defaults to `None`.
    """

    def __init__(self, time_masks: int = 2, time_mask_fraction: float = 0.1,
                 freq_masks: int = 2, freq_mask_fraction: float = 0.1, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, count in (("time_masks", time_masks), ("freq_masks", freq_masks)):
            if int(count) != count or count < 0:
                raise ValueError(f"{name}={count!r}: expected an integer >= 0.")
        for name, fraction in (("time_mask_fraction", time_mask_fraction),
                               ("freq_mask_fraction", freq_mask_fraction)):
            if not 0 <= fraction <= 1:
                raise ValueError(f"{name}={fraction!r}: expected a fraction in [0, 1].")
        self.time_masks = int(time_masks)
        self.time_mask_fraction = float(time_mask_fraction)
        self.freq_masks = int(freq_masks)
        self.freq_mask_fraction = float(freq_mask_fraction)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.draws = DeviceDraws(seed, self.seed_generator)

    def _keep(self, batch: Any, length: int, count: int, fraction: float, like: Any) -> Any:
        """`(batch, length)` of 1 (kept) and 0 (masked), or `None` when nothing is masked."""
        widest = int(fraction * length)
        if not count or not widest:
            return None
        positions = ops.expand_dims(ops.arange(length, dtype="float32"), 0)
        keep = ops.ones((batch, length), dtype="float32")
        for _ in range(count):
            width = ops.floor(self.draws.uniform((batch, 1), like) * (widest + 1.0))
            width = ops.minimum(width, float(widest))
            start = ops.floor(self.draws.uniform((batch, 1), like) * (length - width + 1.0))
            inside = ops.logical_and(positions >= start, positions < start + width)
            keep = keep * (1.0 - ops.cast(inside, "float32"))
        return keep

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training:
            return inputs
        batch = ops.shape(inputs)[0]
        frames, bins = inputs.shape[1], inputs.shape[2]
        x = inputs
        keep_time = self._keep(batch, frames, self.time_masks, self.time_mask_fraction,
                               inputs)
        if keep_time is not None:
            x = x * ops.cast(ops.expand_dims(keep_time, 2), x.dtype)
        keep_freq = self._keep(batch, bins, self.freq_masks, self.freq_mask_fraction,
                               inputs)
        if keep_freq is not None:
            x = x * ops.cast(ops.expand_dims(keep_freq, 1), x.dtype)
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "time_masks": self.time_masks,
                "time_mask_fraction": self.time_mask_fraction,
                "freq_masks": self.freq_masks,
                "freq_mask_fraction": self.freq_mask_fraction, "seed": self.seed}


class _Warp(keras.layers.Layer):
    """Base of the random warps: each training row draws one of `steps` factors evenly
    spaced over `[1 - max_warp, 1 + max_warp]`; output position `j` along `axis` takes the
    input at the fractional position `positions(n)[k, j]`, linearly interpolated between
    its two neighbours (two gathers, so the cost is that of reading the input twice)."""

    axis: int = 1

    def __init__(self, max_warp: float = 0.1, steps: int = 21, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= max_warp <= 0.5:
            raise ValueError(f"max_warp={max_warp!r}: expected a fraction in [0, 0.5].")
        if int(steps) != steps or steps < 1:
            raise ValueError(f"steps={steps!r}: expected an integer >= 1.")
        self.max_warp = float(max_warp)
        self.steps = int(steps)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.draws = DeviceDraws(seed, self.seed_generator)
        self.tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.placed: tuple[str, tuple[Any, ...]] | None = None  # torch: (device, tables)

    def factors(self) -> np.ndarray:
        """The factors a row may draw, `np.ndarray [shape=(steps,)]`."""
        if self.steps == 1:
            return np.ones(1)
        return np.linspace(1.0 - self.max_warp, 1.0 + self.max_warp, self.steps)

    def positions(self, n: int) -> np.ndarray:
        """`(steps, n)` fractional input positions in `[0, n - 1]` of the `n` outputs."""
        raise NotImplementedError

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        n = input_shape[self.axis]
        if n is None:
            raise ValueError(f"{type(self).__name__} needs a known length of axis {self.axis} "
                             "of its input (a store of fixed-length segments).")
        position = np.clip(self.positions(int(n)), 0, int(n) - 1)
        low = np.floor(position).astype("int32")
        self.tables = (low, np.minimum(low + 1, int(n) - 1).astype("int32"),
                       (position - low).astype("float32"))
        self.placed = None

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or not self.max_warp or self.steps == 1:
            return inputs
        if self.tables is None:
            raise RuntimeError(f"{type(self).__name__} is called in training before it is "
                               "built.")
        batch = ops.shape(inputs)[0]
        k = self.draws.randint((batch,), self.steps, inputs)
        other = 2 if self.axis == 1 else 1
        shape = ops.shape(inputs)

        def per_row(table: Any) -> Any:  # (batch, n), broadcastable
            return ops.expand_dims(ops.take(table, k, axis=0), other)

        def take(index: Any) -> Any:
            return ops.take_along_axis(inputs, ops.broadcast_to(per_row(index), shape),
                                       axis=self.axis)

        low, high, weights = self.device_tables(inputs)
        weight = ops.cast(per_row(weights), inputs.dtype)
        return take(low) * (1.0 - weight) + take(high) * weight

    def device_tables(self, like: Any) -> tuple[Any, Any, Any]:
        """The tables as tensors where `like` is. On torch (eager) they are copied to its
        device once, not at every step, from pinned memory without blocking (a copy from
        pageable memory waits for the device: 6 waits per fold of the default instance on
        an H200); the other backends trace the step, where they are constants."""
        assert self.tables is not None
        if keras.backend.backend() != "torch":
            low, high, weights = (ops.convert_to_tensor(t) for t in self.tables)
            return low, high, weights
        import torch  # noqa: PLC0415  (the backend, imported by Keras already)

        key = str(like.device)
        if self.placed is None or self.placed[0] != key:
            cuda = like.device.type == "cuda"
            self.placed = (key, tuple(
                torch.from_numpy(t).pin_memory().to(like.device, non_blocking=True) if cuda
                else torch.from_numpy(t).to(like.device) for t in self.tables))
        low, high, weights = self.placed[1]
        return low, high, weights

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_warp": self.max_warp, "steps": self.steps,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="architectures")
class FrequencyWarp(_Warp):
    """Vocal tract length perturbation (Jaitly and Hinton 2013), in training only.

    VTLP imitates new speakers by warping the frequency axis of each utterance. In
    training, each row draws a factor `a` from `steps` values evenly spaced over
    `[1 - max_warp, 1 + max_warp]`, and its spectrum moves by the piecewise-linear warp
    `W(f) = a * f` up to a boundary, then a straight line to the top frequency, which stays
    where it is (the boundary is `0.8 * top * min(1, 1 / a)`): `a > 1` moves the content
    up, `a < 1` down. Bin `j` of the output, of centre frequency `f_j`, takes the input at
    frequency `W^-1(f_j)`, linearly interpolated between the two input bins around it
    (below the lowest bin: the lowest bin). With the bins' centre frequencies given, this is
    the same warp on any frequency scale (linear STFT bins, mel, CQT); without them, the
    bins are taken as evenly spaced from 0 Hz (exact for an STFT). At inference
    (`training=False`: `predict`, `evaluate`, a loaded model) the layer passes its input
    through unchanged. MFCCs have no frequency axis: do not warp them.

    Input shape: `(batch, time, frequency)`. Output shape: the same.

    Args:
        max_warp: largest relative change of the frequency scale, in `[0, 0.5]`. Defaults
            to `0.1`.
        frequencies: centre frequency of every bin (Hz, increasing), e.g.
            `preprocessing.features.bin_frequencies(params)`; `None`: evenly spaced bins.
            Defaults to `None`.
        steps: number of factors drawn from (odd, so that `1` is one of them). Defaults to
            `21`.
        seed: seed of the factors. Defaults to `None`.
    """

    axis = 2

    def __init__(self, max_warp: float = 0.1,
                 frequencies: Sequence[float] | np.ndarray | None = None, steps: int = 21,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(max_warp=max_warp, steps=steps, seed=seed, **kwargs)
        self.frequencies: list[float] | None = None
        if frequencies is not None:
            values = [float(f) for f in frequencies]
            if len(values) < 2 or any(b <= a for a, b in zip(values, values[1:])):
                raise ValueError("frequencies: expected at least 2 increasing centre "
                                 "frequencies, one per bin.")
            self.frequencies = values

    def positions(self, n: int) -> np.ndarray:
        freqs = (np.arange(n, dtype=float) if self.frequencies is None
                 else np.asarray(self.frequencies, dtype=float))
        if len(freqs) != n:
            raise ValueError(f"FrequencyWarp has {len(freqs)} frequencies but its input has "
                             f"{n} bins; pass one centre frequency per bin.")
        top = freqs[-1]
        out = []
        for a in self.factors():
            boundary = 0.8 * top * min(1.0, 1.0 / a)
            source = np.where(freqs <= a * boundary, freqs / a,
                              boundary + (freqs - a * boundary) * (top - boundary)
                              / (top - a * boundary))
            out.append(np.interp(source, freqs, np.arange(n)))
        return np.stack(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "frequencies": self.frequencies}


@keras.saving.register_keras_serializable(package="architectures")
class TimeWarp(_Warp):
    """Speed perturbation of `(time, frequency)` features (Ko et al. 2015), in training only.

    Speakers differ in tempo as well as in voice. In training, each row draws a rate `r`
    from `steps` values evenly spaced over `[1 - max_warp, 1 + max_warp]`, and frame `t` of
    the output takes the input at frame `r * t`, linearly interpolated: `r > 1` plays the
    row faster (its content ends sooner; the frames past the input's end repeat its last
    frame, the zero padding of a short file), `r < 1` slower (its end is cut). Only the time
    axis moves, so pitch and spectral envelope are kept. At inference (`training=False`) the
    layer passes its input through unchanged. The row's frames must be known (the store's
    fixed segment length).

    Input shape: `(batch, time, frequency)`. Output shape: the same.

    Args:
        max_warp: largest relative change of the rate, in `[0, 0.5]`. Defaults to `0.1`.
        steps: number of rates drawn from (odd, so that `1` is one of them). Defaults to
            `21`.
        seed: seed of the rates. Defaults to `None`.
    """

    axis = 1

    def positions(self, n: int) -> np.ndarray:
        return np.stack([r * np.arange(n, dtype=float) for r in self.factors()])


@keras.saving.register_keras_serializable(package="architectures")
class RowNormalization(keras.layers.Layer):
    """Per-row normalisation of `(time, frequency)` features over time (CMN / CMVN).

    Each row's frequency bins are centred on their own mean over the row's frames
    (`mode="mean"`: cepstral mean normalisation) and also scaled to unit standard deviation
    (`mode="standard"`). It removes what is constant over a recording (microphone, channel,
    room, level), which differs between speakers and sites, and is computed from the row
    alone, so training, validation, test and `predict` treat a row the same way.

    With `ignore_floor_frames`, the statistics are taken over the row's sounding frames
    only: the frames at the row's lowest frame level (the mean over frequency) are left out,
    i.e. the padding of a file shorter than its segment (zeros: every bin at the floor of
    the compression) and digital silence. Otherwise a short file's padding, often most of
    its frames, would set its mean, and the same word would be shifted differently
    depending on its duration. A row without any other frame uses all of them.

    Input shape: `(batch, time, frequency)`. Output shape: the same.

    Args:
        mode: `"mean"` or `"standard"`. Defaults to `"standard"`.
        epsilon: floor of the variance before the square root. Defaults to `1e-3`.
        ignore_floor_frames: leave the frames at the row's lowest level out of the
            statistics. Defaults to `False` (the models saved before it existed); the engine
            builds it with `True`.
    """

    def __init__(self, mode: str = "standard", epsilon: float = 1e-3,
                 ignore_floor_frames: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in ("mean", "standard"):
            raise ValueError(f"mode={mode!r}: expected 'mean' or 'standard'.")
        self.mode = mode
        self.epsilon = epsilon
        self.ignore_floor_frames = check("ignore_floor_frames", ignore_floor_frames,
                                         ["boolean"], error=ValueError,
                                         label=f"ignore_floor_frames={ignore_floor_frames!r}")

    def call(self, inputs: Any) -> Any:
        if self.ignore_floor_frames:
            level = ops.mean(inputs, axis=2, keepdims=True)  # (batch, time, 1)
            floor = ops.min(level, axis=1, keepdims=True)
            weight = ops.cast(level > floor + 1e-4 * (1 + ops.abs(floor)), inputs.dtype)
            none = ops.cast(ops.sum(weight, axis=1, keepdims=True) == 0, inputs.dtype)
            weight = weight + none  # a row of floor frames only: all of them
        else:
            weight = ops.ones_like(inputs[:, :, :1])
        count = ops.sum(weight, axis=1, keepdims=True)
        mean = ops.sum(inputs * weight, axis=1, keepdims=True) / count
        centred = inputs - mean
        if self.mode == "mean":
            return centred
        var = ops.sum(ops.square(centred) * weight, axis=1, keepdims=True) / count
        return centred / ops.sqrt(var + self.epsilon)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "epsilon": self.epsilon,
                "ignore_floor_frames": self.ignore_floor_frames}


@keras.saving.register_keras_serializable(package="architectures")
class FeatureNormalization(keras.layers.Layer):
    """Per-bin standardisation with statistics held as weights: `(x - mean) / sqrt(var)`.

    Keras's `Normalization` turns its statistics into constants of the compiled step, so two
    folds (each with the statistics of its own training rows) compile two programs. Here
    they are non-trainable weights, which a compiled step takes as arguments: every fold of
    an instance runs the same program. A model saved with it takes raw features.

    Input shape: `(batch, ..., bins)`. Output shape: the same.

    Args:
        mean: per-bin mean, `np.ndarray [shape=(bins,)]`, or `None` (zeros, set later or
            loaded with the weights).
        variance: per-bin variance, the same shape, or `None` (ones).
    """

    def __init__(self, mean: Any = None, variance: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._given = (mean, variance)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        bins = (input_shape[-1],)
        mean, variance = self._given
        self.mean = self.add_weight(
            name="mean", shape=bins, trainable=False,
            initializer="zeros" if mean is None else keras.initializers.Constant(mean))
        self.variance = self.add_weight(
            name="variance", shape=bins, trainable=False,
            initializer="ones" if variance is None else keras.initializers.Constant(variance))
        self._given = (None, None)  # what the weights hold from now on

    def get_config(self) -> dict[str, Any]:
        return super().get_config()  # the statistics are weights, saved as weights

    def call(self, inputs: Any) -> Any:
        inputs = ops.cast(inputs, self.compute_dtype)
        scale = ops.maximum(ops.sqrt(ops.cast(self.variance, self.compute_dtype)),
                            keras.backend.epsilon())
        return (inputs - ops.cast(self.mean, self.compute_dtype)) / scale

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape


TRAINING_ONLY = (SpecAugment, FrequencyWarp, TimeWarp)
"""Layers that change rows while training only (identity at inference): an exported model
leaves them out (`xval.training.layers.inference_outputs`)."""
