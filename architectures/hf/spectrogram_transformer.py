"""The Audio Spectrogram Transformer (AST): a Kaldi fbank padded to its window in, each
layer's patch tokens averaged over frequency, one frame per patch column (100 ms)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from architectures.hf.base import (
    Family,
    Spectrogram,
    dft_kernel,
    from_disk,
    hidden_states,
    register_family,
)


@register_family
class AstFamily(Family):
    """The Audio Spectrogram Transformer: its extractor pads (or cuts) the Kaldi fbank to
    `max_length` frames; a layer's state is its patch tokens averaged over frequency, one
    frame per patch column (`time_stride` fbank frames: 100 ms), the columns that hold audio
    only (the classification tokens left out)."""

    name = "ast"
    model_types = ("audio-spectrogram-transformer",)
    extractor_class = "ASTFeatureExtractor"

    @property
    def patch(self) -> tuple[int, int, int]:
        """`(patch_size, frequency_stride, time_stride)`."""
        return (int(self.config.get("patch_size", 16)),
                int(self.config.get("frequency_stride", 10)),
                int(self.config.get("time_stride", 10)))

    @property
    def max_frames(self) -> int:
        return int(self.config.get("max_length", 1024))

    @property
    def hop_length(self) -> int:
        return self.patch[2] * 160

    @property
    def window(self) -> int:
        return (self.max_frames - 1) * 160 + 400

    @property
    def shortest(self) -> int:
        return (self.patch[0] - 1) * 160 + 400

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along frequency and along time."""
        size, f_stride, t_stride = self.patch
        mels = int(self.config.get("num_mel_bins", 128))
        return (mels - size) // f_stride + 1, (self.max_frames - size) // t_stride + 1

    def frames(self, n_samples: int) -> int:
        size, _, stride = self.patch
        fbank = min(1 + (n_samples - 400) // 160, self.max_frames) if n_samples >= 400 else 0
        return (fbank - size) // stride + 1 if fbank >= size else 0

    def build(self) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return transformers.ASTModel(self.transformers_config())

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return from_disk(transformers.ASTModel, folder)

    def extract(self, extractor: Any, batch: np.ndarray) -> Any:
        return extractor(list(batch), sampling_rate=self.sample_rate,
                         return_tensors="pt")["input_values"]

    def states(self, network: Any, inputs: Any, layers: Sequence[int], frames: int) -> list[Any]:
        f_dim, t_dim = self.grid
        out = network(inputs, output_hidden_states=True)
        return [h[:, -f_dim * t_dim:].reshape(h.shape[0], f_dim, t_dim, h.shape[-1])
                .mean(1)[:, :frames] for h in hidden_states(out, layers)]

    def blocks(self, network: Any) -> list[list[Any]]:
        blocks: list[list[Any]] = [[layer] for layer in network.layers]
        blocks[-1].append(network.layernorm)
        return blocks

    def spectrogram(self) -> Spectrogram:
        """`ASTFeatureExtractor` (its Kaldi fbank): frames of 400 samples every 160, not
        centred; in each, the mean removed, pre-emphasis 0.97 (the first sample scaled by
        0.03), a symmetric Hann window, a 512-point DFT; the power through Kaldi's mel
        filters (20 Hz to Nyquist), floored at float32's epsilon, natural log; padded with
        zeros (or cut) to `max_length` frames; `(x - mean) / (2 std)`."""
        from transformers.audio_utils import (  # noqa: PLC0415  (optional: [pretrained])
            mel_filter_bank,
            window_function,
        )

        n = 400
        centre = np.eye(n) - 1.0 / n
        emphasis = np.eye(n) - 0.97 * np.eye(n, k=-1)
        emphasis[0, 0] = 1 - 0.97
        operator = np.diag(window_function(n, "hann", periodic=False)) @ emphasis @ centre
        mels = int(self.preprocessor.get("num_mel_bins", 128))
        mel = mel_filter_bank(num_frequency_bins=257, num_mel_filters=mels, min_frequency=20,
                              max_frequency=self.sample_rate // 2,
                              sampling_rate=self.sample_rate, norm=None, mel_scale="kaldi",
                              triangularize_in_mel_space=True)
        normalize = bool(self.preprocessor.get("do_normalize", True))
        mean = float(self.preprocessor.get("mean", -4.2677393)) if normalize else 0.0
        std = float(self.preprocessor.get("std", 4.5689974)) if normalize else 0.5
        return Spectrogram(kernel=dft_kernel(operator, 512), hop=160,
                           mel=np.asarray(mel, np.float32), floor=1.192092955078125e-07,
                           log="log", frames_to=self.max_frames, scale=1 / (2 * std),
                           offset=-mean / (2 * std))
