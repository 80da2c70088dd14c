"""CLAP's audio tower (HTSAT) and its projection: 48 kHz log-mel of the segment repeated to
fill the window, one frame per segment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from architectures.hf.base import Family, Spectrogram, dft_kernel, from_disk, register_family
from xval.core.errors import ConfigurationError


@register_family
class ClapFamily(Family):
    """CLAP's audio tower (HTSAT) and its projection, from a `ClapModel`: one frame per
    segment, the segment repeated to fill the window (the extractor's `repeatpad`), the
    single-channel mel of `rand_trunc` (fused checkpoints are refused). Layers `0` to `S`:
    the patch embedding and each Swin stage's output, averaged over patches (their sizes
    differ: 96 to 768 at base); `S + 1`: the pooled output; `S + 2`: the projected, unit
    norm audio embedding (`ClapModel.get_audio_features`)."""

    name = "clap"
    model_types = ("clap",)
    extractor_class = "ClapFeatureExtractor"

    @property
    def audio(self) -> dict[str, Any]:
        return dict(self.config.get("audio_config") or {})

    @property
    def sample_rate(self) -> int:
        return int(self.preprocessor.get("sampling_rate", 48000))

    @property
    def window(self) -> int:
        return int(self.preprocessor.get("max_length_s", 10)) * self.sample_rate

    @property
    def hop_length(self) -> int:
        return self.window

    @property
    def shortest(self) -> int:
        return 1

    @property
    def dims(self) -> tuple[int, ...]:
        audio = self.audio
        stages = len(audio.get("depths", (2, 2, 6, 2)))
        embed = int(audio.get("patch_embeds_hidden_size", 96))
        hidden = int(audio.get("hidden_size", 768))
        projection = int(audio.get("projection_dim", 512))
        return (*(embed * 2 ** min(i, stages - 1) for i in range(stages + 1)), hidden,
                projection)

    def frames(self, n_samples: int) -> int:
        return 1 if n_samples >= 1 else 0

    def check(self, what: str) -> None:
        """Refuses a fused checkpoint (its input is random crops of long audio)."""
        if self.audio.get("enable_fusion"):
            raise ConfigurationError(
                f"the model {what!r} is a fused CLAP checkpoint (enable_fusion), which reads "
                "random crops of long audio, so its states would change from one run to the "
                "next; use an unfused one (e.g. laion/clap-htsat-unfused).")

    def store_defaults(self) -> dict[str, Any]:
        """Its projected embedding alone (its layers differ in size), one frame a segment."""
        return {"layers": "last", "frame_pool": 1}

    def build(self) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return transformers.ClapAudioModelWithProjection(
            self.transformers_config().audio_config)

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        clap = from_disk(transformers.ClapModel, folder)
        network = self.build()
        network.load_state_dict({k: v for k, v in clap.state_dict().items()
                                 if k.startswith(("audio_model.", "audio_projection."))})
        return network

    def extract(self, extractor: Any, batch: np.ndarray) -> Any:
        return extractor(list(batch), sampling_rate=self.sample_rate, truncation="rand_trunc",
                         padding="repeatpad", return_tensors="pt")["input_features"]

    def states(self, network: Any, inputs: Any, layers: Sequence[int], frames: int) -> list[Any]:
        from torch.nn import functional  # noqa: PLC0415  (optional: [pretrained])

        out = network.audio_model(inputs, output_hidden_states=True)
        pooled = out.pooler_output
        projected = functional.normalize(network.audio_projection(pooled), dim=-1)
        every = [*(h.mean((2, 3)) for h in out.hidden_states), pooled, projected]
        return [every[k][:, None] for k in layers]

    def blocks(self, network: Any) -> list[list[Any]]:
        encoder = network.audio_model.audio_encoder
        blocks: list[list[Any]] = [[stage] for stage in encoder.layers]
        blocks[-1].append(encoder.norm)
        return [*blocks, [network.audio_projection]]

    def block_count(self) -> int:
        return len(self.audio.get("depths", (2, 2, 6, 2))) + 1

    def spectrogram(self) -> Spectrogram:
        """`ClapFeatureExtractor` with `repeatpad` and `rand_trunc` (a segment shorter than
        the window repeated, whole copies, then zero-padded to it): a periodic Hann window
        of `fft_window_size`, centred frames (reflection), the power through its Slaney
        filter bank, in dB (`10 log10`, floored at 1e-10)."""
        from transformers.audio_utils import window_function  # noqa: PLC0415  (optional)

        n_fft = int(self.preprocessor.get("fft_window_size", 1024))
        window = window_function(n_fft, "hann")
        return Spectrogram(kernel=dft_kernel(np.diag(window), n_fft),
                           hop=int(self.preprocessor.get("hop_length", 480)),
                           mel=np.asarray(self.extractor().mel_filters_slaney, np.float32),
                           floor=1e-10, log="db", repeat_to=self.window, center=n_fft // 2)

    def network_input(self, features: Any) -> Any:
        return features[:, None]
