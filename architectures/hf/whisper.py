"""Whisper's encoder: 80-band log-mel in, a state every 20 ms per encoder layer, the
positions cut to the segment (a short clip costs what it holds)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from architectures.hf.base import Family, Spectrogram, dft_kernel, from_disk, register_family


@register_family
class WhisperFamily(Family):
    """Whisper's encoder: `[0]` the input of the first layer (convolutions and positions),
    `[i]` the output of layer `i` (the last after the final layer norm, as transformers
    gives it), 320 samples (20 ms) apart; a segment of at most 30 s, read as it is (the
    positions cut to its frames)."""

    name = "whisper"
    model_types = ("whisper",)
    extractor_class = "WhisperFeatureExtractor"
    width_key = "d_model"
    depth_key = "encoder_layers"

    @property
    def mel_hop(self) -> int:
        """Samples between two log-mel frames (two per frame of states)."""
        return int(self.preprocessor.get("hop_length", 160))

    @property
    def hop_length(self) -> int:
        return 2 * self.mel_hop

    @property
    def window(self) -> int:
        positions = int(self.config.get("max_source_positions", 1500))
        chunk = int(self.preprocessor.get("chunk_length", 30)) * self.sample_rate
        return min(chunk, 2 * positions * self.mel_hop)

    @property
    def shortest(self) -> int:
        return self.mel_hop

    def frames(self, n_samples: int) -> int:
        return (n_samples // self.mel_hop + 1) // 2 if n_samples >= self.mel_hop else 0

    def build(self) -> Any:
        from transformers.models.whisper.modeling_whisper import (  # noqa: PLC0415
            WhisperEncoder,  # (optional: [pretrained])
        )

        return WhisperEncoder(self.transformers_config())

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return from_disk(transformers.WhisperModel, folder).get_encoder()

    def extract(self, extractor: Any, batch: np.ndarray) -> Any:
        return extractor(list(batch), sampling_rate=self.sample_rate, padding="max_length",
                         max_length=batch.shape[-1], return_tensors="pt")["input_features"]

    def states(self, network: Any, inputs: Any, layers: Sequence[int], frames: int) -> list[Any]:
        """`WhisperEncoder.forward` with the positions cut to the input's frames."""
        from torch.nn import functional  # noqa: PLC0415  (optional: [pretrained])

        x = functional.gelu(network.conv1(inputs))
        x = functional.gelu(network.conv2(x)).permute(0, 2, 1)
        x = x + network.embed_positions.weight[:x.shape[1]]
        x = functional.dropout(x, p=network.dropout, training=network.training)
        states = [x]
        for layer in network.layers:
            x = layer(x, None)
            states.append(x)
        states[-1] = network.layer_norm(x)
        return [states[k][:, :frames] for k in layers]

    def blocks(self, network: Any) -> list[list[Any]]:
        blocks: list[list[Any]] = [[layer] for layer in network.layers]
        blocks[-1].append(network.layer_norm)
        return blocks

    def spectrogram(self) -> Spectrogram:
        """`WhisperFeatureExtractor`: a periodic Hann window of `n_fft`, centred frames
        (reflection), the power through its Slaney filter bank, `log10` floored at 1e-10,
        the last frame dropped, each row floored at its maximum minus 8, `(x + 4) / 4`."""
        from transformers.audio_utils import window_function  # noqa: PLC0415  (optional)

        n_fft = int(self.preprocessor.get("n_fft", 400))
        window = window_function(n_fft, "hann")
        return Spectrogram(kernel=dft_kernel(np.diag(window), n_fft), hop=self.mel_hop,
                           mel=np.asarray(self.extractor().mel_filters, np.float32),
                           floor=1e-10, log="log10", center=n_fft // 2, drop_last=True,
                           dynamic_range=8.0, scale=0.25, offset=1.0)

    def network_input(self, features: Any) -> Any:
        return features.permute(0, 2, 1)
