"""The speech models (wav2vec2, HuBERT, WavLM, data2vec-audio): the waveform in, a state
every 20 ms per transformer layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from architectures.hf.base import Family, from_disk, hidden_states, register_family


@register_family
class SpeechFamily(Family):
    """wav2vec2, HuBERT, WavLM, data2vec-audio: `hidden_states[0]` is the input of the first
    transformer layer, `[i]` the output of layer `i`, 320 samples (20 ms) apart at 16 kHz."""

    name = "speech"
    model_types = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
    waveform_input = True
    extractor_class = "Wav2Vec2FeatureExtractor"

    @classmethod
    def accepts(cls, config: Mapping[str, Any]) -> bool:
        """Its model types, and any model with `conv_stride` (a wav2vec2-like encoder)."""
        return super().accepts(config) or "conv_stride" in config

    @property
    def hop_length(self) -> int:
        return int(np.prod(self.config.get("conv_stride", (5, 2, 2, 2, 2, 2, 2))))

    @property
    def shortest(self) -> int:
        return int(self.config.get("conv_kernel", (10,))[0]) + self.hop_length

    def frames(self, n_samples: int) -> int:
        for kernel, stride in zip(self.config["conv_kernel"], self.config["conv_stride"]):
            n_samples = (n_samples - kernel) // stride + 1
        return max(0, n_samples)

    def extractor(self) -> Any:
        if not self.preprocessor:
            import transformers  # noqa: PLC0415  (optional: [pretrained])

            return transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True)
        return super().extractor()

    def build(self) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return transformers.AutoModel.from_config(self.transformers_config())

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return from_disk(transformers.AutoModel, folder)

    def extract(self, extractor: Any, batch: np.ndarray) -> Any:
        return extractor(list(batch), sampling_rate=self.sample_rate,
                         return_tensors="pt")["input_values"]

    @property
    def normalize(self) -> bool:
        return bool(self.preprocessor.get("do_normalize", True))

    def network_input(self, features: Any) -> Any:
        return features[..., 0]

    def states(self, network: Any, inputs: Any, layers: Sequence[int], frames: int) -> list[Any]:
        return hidden_states(network(inputs, output_hidden_states=True), layers)

    def blocks(self, network: Any) -> list[list[Any]]:
        encoder = network.encoder
        blocks: list[list[Any]] = [[layer] for layer in encoder.layers]
        if self.config.get("do_stable_layer_norm"):  # the final norm is on top of the last
            blocks[-1].append(encoder.layer_norm)
        return blocks
