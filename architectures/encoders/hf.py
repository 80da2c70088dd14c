"""A `transformers` audio encoder inside a Keras model (torch backend): its feature
extractor as Keras operations, its network as a layer whose weights are Keras variables.

    audio (batch, samples[, 1]) at the model's rate
      -> TransformersFeatures: the extractor's input (Whisper's, AST's or CLAP's log-mel
         spectrogram, or the normalised waveform), in Keras operations: a strided
         convolution with the DFT of each frame (window and per-frame steps folded in),
         the mel filter bank, the logarithm (`architectures.hf.Spectrogram`)
      -> [SpecAugment while training]
      -> TransformersNetwork: the transformers network on it, the chosen layers' states
         side by side -> (batch, frames, sum of their sizes)

`TransformersNetwork` subclasses `keras.layers.TorchModuleWrapper` (the module's parameters
are the layer's variables, its `state_dict` is saved with the model), but not its
configuration, which pickles the module: the configuration here is the model's
`config.json` and `preprocessor_config.json` as JSON, and loading a saved model builds the
network from them (transformers' own classes, nothing from the file runs) and then reads
the saved weights, so `keras.saving.load_model(path, safe_mode=True)` loads it. The
network runs on the torch backend only; the features layer on any.

Fine-tuning: `trainable_blocks=k` trains the network's last `k` blocks (`Family.blocks`:
transformer layers; CLAP's Swin stages and projection), the others keep their weights and
stay in inference mode (no dropout, no batch-norm statistics moving) while training.

Importing this module imports Keras: set the backend first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from architectures.hf import Family, LocalModel, Spectrogram, family_of

__all__ = ["TransformersFeatures", "TransformersNetwork", "transformers_encoder"]

BACKEND_FIX = ("set [backend] backend = torch (or KERAS_BACKEND=torch), or train on the "
               "model's embedding store (--encoders hf:NAME) with front_end='none'")
"""What a model holding a transformers network on another backend is told."""


def _family(family: dict[str, Any]) -> Family:
    return family_of(family["config"], family["preprocessor"])


@keras.saving.register_keras_serializable(package="architectures")
class TransformersFeatures(keras.layers.Layer):
    """A transformers feature extractor as Keras operations (`architectures.hf.Spectrogram`),
    for segments of a fixed length.

    Input shape: `(batch, samples)` or `(batch, samples, 1)`. Output shape: `(batch, frames,
    n_mels)` (Whisper: `samples // 160` frames; AST: its `max_length`; CLAP: its window's),
    or `(batch, samples, 1)` for the speech models (the normalised waveform). Fixed weights
    (the DFT kernel, the filter bank); computes in float32.

    Args:
        family: `Family.to_dict()` of the model.
        samples: samples of one segment.
        input_scale: multiplies the input first (`1 / 32768` for an `int16` store). Defaults
            to `1.0`.
    """

    def __init__(self, family: dict[str, Any], samples: int, input_scale: float = 1.0,
                 **kwargs: Any) -> None:
        kwargs.update(trainable=False, dtype="float32")
        super().__init__(**kwargs)
        self.family, self.samples = dict(family), int(samples)
        self.input_scale = float(input_scale)
        self.spec = _family(self.family).spectrogram()

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if self.spec is None:
            return
        self.kernel = self._fixed("dft", self.spec.kernel[:, None, :])
        self.mel = self._fixed("mel_filters", self.spec.mel)

    def _fixed(self, name: str, value: np.ndarray) -> Any:
        weight = self.add_weight(name=name, shape=value.shape, initializer="zeros",
                                 trainable=False)
        weight.assign(value)
        return weight

    def call(self, inputs: Any) -> Any:
        x = inputs if len(inputs.shape) == 2 else inputs[..., 0]
        x = ops.cast(x, "float32") * self.input_scale
        if self.spec is None:
            if _family(self.family).normalize:
                mean = ops.mean(x, axis=1, keepdims=True)
                x = (x - mean) / ops.sqrt(ops.var(x, axis=1, keepdims=True) + 1e-7)
            return x[..., None]
        return self._log_mel(self._frames(x, self.spec), self.spec)

    def _frames(self, x: Any, spec: Spectrogram) -> Any:
        """The power spectrum of each frame, `(batch, frames, bins)`."""
        if spec.repeat_to:  # whole copies, then zeros (the store refuses longer segments)
            copies = max(1, spec.repeat_to // self.samples)
            x = ops.tile(x, (1, copies)) if copies > 1 else x
            x = ops.pad(x, ((0, 0), (0, spec.repeat_to - copies * self.samples)))
        if spec.center:
            x = ops.pad(x, ((0, 0), (spec.center, spec.center)), mode="reflect")
        parts = ops.conv(x[..., None], self.kernel, strides=spec.hop, padding="valid")
        bins = spec.kernel.shape[1] // 2
        return ops.square(parts[..., :bins]) + ops.square(parts[..., bins:])

    def _log_mel(self, power: Any, spec: Spectrogram) -> Any:
        x = ops.maximum(ops.matmul(power, self.mel), spec.floor)
        x = {"log10": ops.log10, "log": ops.log,
             "db": lambda v: 10.0 * ops.log10(v)}[spec.log](x)
        if spec.drop_last:
            x = x[:, :-1]
        if spec.dynamic_range:
            top = ops.max(x, axis=(1, 2), keepdims=True)
            x = ops.maximum(x, top - spec.dynamic_range)
        if spec.frames_to:
            frames = int(x.shape[1])
            x = x[:, :spec.frames_to] if frames >= spec.frames_to else \
                ops.pad(x, ((0, 0), (0, spec.frames_to - frames), (0, 0)))
        return x * spec.scale + spec.offset

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        if self.spec is None:
            return (input_shape[0], self.samples, 1)
        spec = self.spec
        if spec.frames_to:
            frames = spec.frames_to
        else:
            length = (spec.repeat_to or self.samples) + 2 * spec.center
            frames = 1 + (length - spec.kernel.shape[0]) // spec.hop - int(spec.drop_last)
        return (input_shape[0], frames, spec.mel.shape[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "family": self.family, "samples": self.samples,
                "input_scale": self.input_scale}


@keras.saving.register_keras_serializable(package="architectures")
class TransformersNetwork(keras.layers.TorchModuleWrapper):
    """A transformers audio network as a Keras layer (torch backend), rebuilt from its
    configuration when a saved model loads.

    Input: `TransformersFeatures`'s output. Output shape: `(batch, frames, sum of the
    layers' sizes)`, the layers' states side by side (layer-major, as a store's rows).

    Args:
        family: `Family.to_dict()` of the model (its `config.json` and
            `preprocessor_config.json`).
        samples: samples of one segment (the frames that hold audio follow).
        layers: the layers whose states it gives (negative from the last). Defaults to the
            last.
        trainable_blocks: how many of the network's last blocks train (0: frozen).
            Defaults to `0`.
        model: the folder or hub id it was loaded from (recorded). Defaults to `""`.
        load_weights: read the weights from `model` (a folder or the local hub cache) when
            built; a saved model's configuration says `False` (its weights are in the
            file). Defaults to `False`.
        weights_sha256: the SHA-256 of the weights it started from (recorded). Defaults
            to `None`.
        revision: the hub revision it was loaded from (recorded). Defaults to `None`.
        licence: the licence of its weights, from the model's card (recorded). Defaults to
            `""`.

    Raises:
        ValueError: on a backend other than torch, or for blocks or layers out of range.
    """

    def __init__(self, family: dict[str, Any], samples: int, layers: Sequence[int] = (-1,),
                 trainable_blocks: int = 0, model: str = "", load_weights: bool = False,
                 weights_sha256: str | None = None, revision: str | None = None,
                 licence: str = "", **kwargs: Any) -> None:
        if keras.backend.backend() != "torch":
            raise ValueError(f"The transformers network {model or family.get('family')!r} "
                             f"runs on the torch backend only, not "
                             f"{keras.backend.backend()}: {BACKEND_FIX}.")
        spec = _family(family)
        if not 0 <= int(trainable_blocks) <= spec.block_count():
            raise ValueError(f"trainable_blocks={trainable_blocks}: expected 0 to "
                             f"{spec.block_count()}.")
        if not all(-spec.n_layers <= int(k) < spec.n_layers for k in layers):
            raise ValueError(f"layers={list(layers)}: expected indices from "
                             f"{-spec.n_layers} to {spec.n_layers - 1}.")
        network = LocalModel(model, revision).load() if load_weights else spec.build()
        network.requires_grad_(False)
        blocks = spec.blocks(network)
        trained = [m for block in blocks[len(blocks) - int(trainable_blocks):] for m in block]
        for module in trained:
            module.requires_grad_(True)
        kwargs.setdefault("dtype", "float32")
        super().__init__(network, **kwargs)
        self.spec, self.trained = spec, trained
        self.family, self.samples, self.model = dict(family), int(samples), str(model)
        self.layers_chosen = [int(k) % spec.n_layers for k in layers]
        self.trainable_blocks, self.weights_sha256 = int(trainable_blocks), weights_sha256
        self.revision, self.licence = revision, str(licence)

    @property
    def frames(self) -> int:
        """Frames of states of one segment."""
        return self.spec.frames(self.samples)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        self.module.train(False)
        for module in self.trained if training else ():
            module.train(True)
        states = self.spec.states(self.module, self.spec.network_input(inputs),
                                  self.layers_chosen, self.frames)
        return states[0] if len(states) == 1 else ops.concatenate(states, axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        dims = sum(self.spec.dims[k] for k in self.layers_chosen)
        return (input_shape[0], self.frames, dims)

    def get_config(self) -> dict[str, Any]:
        # Not TorchModuleWrapper's (it pickles the module): what rebuilds the network.
        return {**keras.layers.Layer.get_config(self), "family": self.family,
                "samples": self.samples, "layers": self.layers_chosen,
                "trainable_blocks": self.trainable_blocks, "model": self.model,
                "load_weights": False, "weights_sha256": self.weights_sha256,
                "revision": self.revision, "licence": self.licence}

    def describe(self) -> dict[str, Any]:
        """What a model card says of it: `encoder`, `revision`, `weights_sha256` (those it
        started from), `licence`, `family`, `trainable_blocks`."""
        return {"encoder": f"hf:{self.model}", "revision": self.revision,
                "weights_sha256": self.weights_sha256, "licence": self.licence,
                "family": self.spec.name, "trainable_blocks": self.trainable_blocks}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TransformersNetwork:
        return cls(**config)


def transformers_encoder(model: LocalModel, samples: int, *, layers: Sequence[int] = (-1,),
                         trainable_blocks: int = 0, input_scale: float = 1.0,
                         spectrogram_layers: Sequence[Any] = (),
                         name: str = "transformers") -> keras.Model:
    """A transformers model from audio to its states, with its weights from the disk.

    Args:
        model: the model (`architectures.hf.LocalModel`).
        samples: samples of one segment at its rate (at most its window).
        layers: the layers whose states it gives. Defaults to the last.
        trainable_blocks: its last blocks that train (0: frozen). Defaults to `0`.
        input_scale: multiplies the input first (`1 / 32768` for an `int16` store).
            Defaults to `1.0`.
        spectrogram_layers: layers applied to its input features (SpecAugment while
            training). Defaults to none.
        name: the model's name. Defaults to `"transformers"`.

    Returns:
        A `keras.Model` from `(batch, samples, 1)` audio to `(batch, frames, dims)`.
    """
    family = model.family.to_dict()
    inputs = keras.Input((int(samples), 1), name="audio")
    x = TransformersFeatures(family, samples, input_scale=input_scale,
                             name="hf_features")(inputs)
    for layer in spectrogram_layers:
        x = layer(x)
    x = TransformersNetwork(family, samples, layers=layers, trainable_blocks=trainable_blocks,
                            model=model.name, load_weights=True, weights_sha256=model.sha256,
                            revision=model.revision, licence=model.licence,
                            name="hf_network")(x)
    return keras.Model(inputs, x, name=name)
