"""Resemblyzer's GE2E speaker encoder, frame by frame (weights in the `Resemblyzer` wheel)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from preprocessing.features.encoders.base import (
    Encoder,
    distribution_file,
    package_version,
    sha256_of_files,
    torch_module,
)
from xval.core.optional import WHEELS

__all__ = ["RESEMBLYZER", "ResemblyzerEncoder", "resemblyzer_weights"]

RESEMBLYZER = "resemblyzer"


def resemblyzer_weights() -> Path:
    """The `pretrained.pt` of the installed Resemblyzer wheel, found without importing it.

    Returns:
        `pathlib.Path` of the weights.

    Raises:
        ConfigurationError: when Resemblyzer is not installed, naming the install command.
    """
    return distribution_file("Resemblyzer", "pretrained.pt", WHEELS["resemblyzer"].install,
                             RESEMBLYZER)


class ResemblyzerEncoder(Encoder):
    """The GE2E speaker encoder of the `Resemblyzer` wheel, frame by frame.

    Its input is a 40-band mel power spectrogram (25 ms windows, 10 ms hop, as
    `resemblyzer.audio.wav_to_mel_spectrogram`) of audio whose level is raised to -30 dBFS
    RMS (never lowered), as `resemblyzer.preprocess_wav` does without its VAD trimming.
    Its layers are the three LSTM outputs and the per-frame projection `relu(linear(h3))`:
    4 layers of 256 at 100 frames/s.

    Args:
        device: torch device, e.g. `"cpu"` or `"cuda"`; `None`: CUDA when available.
    """

    n_layers = 4
    dim = 256
    n_mels = 40
    n_fft = 400
    target_dbfs = -30.0
    licence = "Apache-2.0"

    def __init__(self, device: str | None = None) -> None:
        torch = torch_module()
        weights = resemblyzer_weights()
        self.name = RESEMBLYZER
        self.revision = package_version("Resemblyzer")
        self.sha256 = sha256_of_files([weights])
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
        self.lstms = torch.nn.ModuleList(
            [torch.nn.LSTM(self.n_mels if k == 0 else self.dim, self.dim, batch_first=True)
             for k in range(3)])
        for k, lstm in enumerate(self.lstms):
            lstm.load_state_dict({f"{name}_l0": state[f"lstm.{name}_l{k}"] for name in
                                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        self.linear = torch.nn.Linear(self.dim, self.dim)
        self.linear.load_state_dict({"weight": state["linear.weight"],
                                     "bias": state["linear.bias"]})
        for module in (self.lstms, self.linear):
            module.to(self.device).train(False)  # inference mode (dropout off)

    def frames(self, n_samples: int, hop_length: int | None = None) -> int:
        return 1 + n_samples // self.hop_length

    def mel(self, y: np.ndarray) -> np.ndarray:
        """The encoder's input of one signal: `(frames, 40)` mel power, float32."""
        y = np.asarray(y, dtype=np.float32)
        power = float(np.mean(np.square(y)))
        if power > 0:
            change = self.target_dbfs - 10 * np.log10(power)
            if change > 0:
                y = y * np.float32(10 ** (change / 20))
        mel = librosa.feature.melspectrogram(y=y, sr=self.sample_rate, n_fft=self.n_fft,
                                             hop_length=self.hop_length, n_mels=self.n_mels)
        return mel.astype(np.float32).T

    def states(self, batch: np.ndarray, layers: Sequence[int],
               hop_length: int | None = None) -> np.ndarray:
        torch = torch_module()
        mels = np.stack([self.mel(y) for y in batch])
        out = []
        with torch.inference_mode():
            x = torch.from_numpy(mels).to(self.device)
            for lstm in self.lstms:
                x, _ = lstm(x)
                out.append(x)
            out.append(torch.relu(self.linear(x)))
            return torch.stack([out[k] for k in layers], 2).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": "GE2E LSTM speaker encoder (Resemblyzer)"}
