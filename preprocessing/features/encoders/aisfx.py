"""aiSFX's sound-effects encoder as a store encoder: the frozen Keras network of
`architectures.encoders.aisfx`, run once per file so that heads train on its embeddings.

The network (its input layer, the four convolution blocks and their pooling) is defined once,
in `architectures.encoders.aisfx`; a store's rows are that network's output on each segment,
so a model that holds the same layers (`xval.training.encoder`) computes from audio what the
store holds. Each segment is divided by its own peak inside the network (the wheel divides a
whole file; for the usual one-segment-per-clip store the two agree).
"""

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from preprocessing.features.encoders.base import (
    Encoder,
    distribution_file,
    package_version,
    sha256_of_files,
)
from xval.core.backend import use_backend
from xval.core.errors import ConfigurationError
from xval.core.optional import WHEELS

__all__ = ["AISFX", "AISFX_FRAMES", "AisfxEncoder", "AisfxFramesEncoder"]

AISFX = "aisfx"
AISFX_FRAMES = "aisfx_frames"
SAMPLE_RATE = 44100
SPEC_HOP = 1024
BLOCK_FRAMES = 100
DIM = 512
TIME_STRIDE = 8  # spectrogram frames per step of the network's time axis (186 ms)
LEAD_FRAMES = 2  # silent frames before the first in frame mode (`AisfxNetwork`)


def _build_encoder(samples: int, hop_length: int, name: str = AISFX) -> Any:
    """`architectures.encoders.build_encoder` (imports Keras: the command line chose the
    backend; else `KERAS_BACKEND`, else the first installed framework)."""
    if "keras" not in sys.modules:
        use_backend()
    from architectures.encoders import build_encoder  # noqa: PLC0415  (imports Keras)

    return build_encoder(name, samples, hop_length=hop_length)


class AisfxEncoder(Encoder):
    """aiSFX's sound-effects CNN: 512 values per 2.3 s block of 44.1 kHz audio.

    Args:
        device: unused (Keras places the network on the backend's device).
    """

    sample_rate = SAMPLE_RATE
    block_length = (BLOCK_FRAMES - 1) * SPEC_HOP  # the fewest samples giving 100 frames
    hop_unit = SPEC_HOP
    hop_length = BLOCK_FRAMES // 2 * SPEC_HOP  # half a block (1.16 s), as the paper
    n_layers = 1
    dim = DIM
    licence = "CC BY 4.0"

    def __init__(self, device: str | None = None) -> None:
        self.name = AISFX
        self.revision = package_version("aisfx")
        self.sha256 = sha256_of_files([distribution_file("aisfx", "checkpoint.pth", WHEELS["aisfx"].install,
                                                         AISFX)])
        self._models: dict[tuple[int, int], Any] = {}

    def frames(self, n_samples: int, hop_length: int | None = None) -> int:
        super().frames(n_samples, hop_length)  # refuses a segment shorter than one block
        hop = int(hop_length or self.hop_length) // SPEC_HOP
        return 1 + (1 + n_samples // SPEC_HOP - BLOCK_FRAMES) // hop

    def model(self, samples: int, hop_length: int | None = None) -> Any:
        """The frozen network for segments of `samples` samples (built once per length)."""
        key = (int(samples), int(hop_length or self.hop_length))
        if key not in self._models:
            self._models[key] = _build_encoder(*key)
        return self._models[key]

    def states(self, batch: np.ndarray, layers: Sequence[int],
               hop_length: int | None = None) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        self.frames(batch.shape[-1], hop_length)
        out = np.asarray(self.model(batch.shape[-1], hop_length).predict_on_batch(
            batch[..., None]), dtype=np.float32)
        return out.reshape(out.shape[0], out.shape[1], 1, self.dim)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": "aiSFX X-Sequential-CE sound-effects CNN",
                "trained_on": "sound-effects libraries (UCS and non-UCS, 9 datasets)",
                "peak": "segment"}


class AisfxFramesEncoder(AisfxEncoder):
    """aiSFX's CNN at frame resolution, for detection: the network's time axis is kept (no
    max over a block), one 512-value frame every 93 ms by default (`hop_length` 4096
    samples; 1024, 2048 or 8192 also), from passes offset by a hop interleaved
    (`architectures.encoders.aisfx.AisfxNetwork`, frame mode). A frame encoder: a store
    takes any segment of at least 0.12 s, and its frame grid is the detection targets'.

    Args:
        device: unused (Keras places the network on the backend's device).
    """

    block_length = 0
    hop_unit = SPEC_HOP
    hop_length = TIME_STRIDE // 2 * SPEC_HOP
    HOPS = tuple(TIME_STRIDE // s * SPEC_HOP for s in (1, 2, 4, 8))
    """The hops it gives: 8192, 4096, 2048 and 1024 samples (186 to 23 ms)."""

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.name = AISFX_FRAMES

    def check_hop(self, sample_rate: int, hop_length: int, frame_pool: int) -> None:
        if sample_rate != self.sample_rate or hop_length not in self.HOPS or frame_pool != 1:
            raise ConfigurationError(
                f"sample_rate={sample_rate}, hop_length={hop_length}, frame_pool="
                f"{frame_pool}: the encoder {self.name!r} reads {self.sample_rate} Hz audio "
                f"and gives a frame every {', '.join(map(str, self.HOPS))} samples; pass "
                f"sample_rate={self.sample_rate}, hop_length={self.hop_length} (93 ms) and "
                "frame_pool=1.")

    def frames(self, n_samples: int, hop_length: int | None = None) -> int:
        step = int(hop_length or self.hop_length) // SPEC_HOP
        shortest = (TIME_STRIDE - LEAD_FRAMES - 1) * SPEC_HOP  # 5,120 samples: one frame
        if n_samples < shortest:
            raise ConfigurationError(
                f"A segment of {n_samples / self.sample_rate:.3g} s is shorter than one "
                f"frame of the encoder {self.name!r}; pass segment_seconds >= "
                f"{np.ceil(shortest / self.sample_rate * 100) / 100:g}.")
        return 1 + (int(n_samples) // SPEC_HOP + 1 + LEAD_FRAMES - TIME_STRIDE) // step

    def model(self, samples: int, hop_length: int | None = None) -> Any:
        """The frozen network in frame mode for segments of `samples` samples."""
        key = (int(samples), int(hop_length or self.hop_length))
        if key not in self._models:
            self._models[key] = _build_encoder(*key, name=AISFX_FRAMES)
        return self._models[key]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(),
                "class": "aiSFX X-Sequential-CE sound-effects CNN, frames (shift and stitch)"}
