"""A `transformers` audio encoder read from the local disk, as a store encoder: the speech
models (wav2vec2, HuBERT, WavLM, data2vec-audio), Whisper's encoder, the Audio Spectrogram
Transformer and CLAP's audio tower (`architectures.hf`, which says what a layer and a frame
are in each). A folder written by `save_pretrained`, or a hub id already in the local
cache: nothing is ever downloaded.

A store's rows are the network's states on transformers' own features (its feature
extractor), so they are what transformers gives for the same audio; a model that holds the
network (`front_end = "hf:..."`) computes the features with Keras layers instead
(`architectures.encoders.hf`).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from architectures.hf import (
    HF_PREFIX,
    WEIGHT_SUFFIXES,
    LocalModel,
    UnknownEncoderError,
    model_folder,
)
from preprocessing.features.encoders.base import Encoder, package_version, torch_module

__all__ = ["HF_PREFIX", "LocalModel", "TransformersEncoder", "UnknownEncoderError",
           "WEIGHT_SUFFIXES", "model_folder"]


class TransformersEncoder(Encoder):
    """A `transformers` audio encoder read from the local disk (never downloaded).

    Args:
        name: a folder written by `save_pretrained`, or a hub id in the local cache (`hf:`
            in front is allowed).
        revision: the hub revision (branch, tag or commit) of a hub id. Defaults to `None`.
        device: torch device; `None`: CUDA when available, else the CPU.

    Raises:
        UnknownEncoderError: when the model is not on this disk.
        ConfigurationError: for a model of no supported family (`architectures.hf`).
    """

    def __init__(self, name: str, revision: str | None = None,
                 device: str | None = None) -> None:
        torch = torch_module()
        model = LocalModel(name, revision)
        self.family = model.family
        self.name, self.revision = model.name, model.revision
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.load().to(self.device)
        self.extractor = self.family.extractor()
        self.sample_rate = self.family.sample_rate
        self.hop_length = self.family.hop_length
        self.n_layers = self.family.n_layers
        self.dims = self.family.dims
        self.dim = max(self.dims)
        self.licence = model.licence
        self.sha256 = model.sha256

    def frames(self, n_samples: int, hop_length: int | None = None) -> int:
        self.family.check_segment(n_samples, self.name)
        return self.family.frames(n_samples)

    def layer_dims(self, layers: Sequence[int]) -> list[int]:
        """The size of each of `layers`' states."""
        return [self.dims[k] for k in layers]

    def states(self, batch: np.ndarray, layers: Sequence[int],
               hop_length: int | None = None) -> np.ndarray:
        """The states of `layers`, side by side when their sizes differ (CLAP)."""
        torch = torch_module()
        batch = np.asarray(batch, dtype=np.float32)
        frames = self.frames(batch.shape[-1])
        inputs = self.family.extract(self.extractor, batch).to(self.device)
        with torch.inference_mode():
            states = self.family.states(self.model, inputs, layers, frames)
            if len(set(self.layer_dims(layers))) == 1:
                return torch.stack(states, 2).float().cpu().numpy()
            return torch.cat(states, -1)[:, :, None].float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": type(self.model).__name__,
                "family": self.family.name,
                "model_type": self.family.config.get("model_type"),
                "window": self.family.window,
                "transformers_version": package_version("transformers")}
