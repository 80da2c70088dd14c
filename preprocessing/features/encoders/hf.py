"""A `transformers` speech encoder read from the local disk (wav2vec2, HuBERT, WavLM,
data2vec-audio): a folder written by `save_pretrained`, or a hub id already in the local
cache. Nothing is ever downloaded."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing.features.encoders.base import (
    Encoder,
    package_version,
    sha256_of_files,
    torch_module,
)
from xval.core.errors import ConfigurationError

__all__ = ["TransformersEncoder", "UnknownEncoderError", "WEIGHT_SUFFIXES", "model_folder"]


class UnknownEncoderError(ConfigurationError):
    """An encoder name that is no transformers model on this disk; its message says why
    (`preprocessing.features.pretrained.load_encoder` adds the encoders there are)."""

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def model_folder(name: str, revision: str | None) -> tuple[Path, str | None]:
    """The local folder of a transformers model and its revision (a hub snapshot's commit):
    a folder holding a `config.json` object, or a hub id in the local cache (nothing is
    downloaded; transformers itself is not imported).

    Raises:
        UnknownEncoderError: saying why `name` is neither.
    """
    folder = Path(name)
    if folder.is_dir():
        config = folder / "config.json"
        if not config.is_file():
            raise UnknownEncoderError(f"the folder {folder} holds no config.json, so it is no "
                                      "model written by save_pretrained")
        try:
            ok = isinstance(json.loads(config.read_text(encoding="utf-8")), dict)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UnknownEncoderError(f"{config} cannot be read as a model configuration "
                                      f"({type(e).__name__}: {e})") from None
        if not ok:
            raise UnknownEncoderError(f"{config} is not a model configuration (it holds no "
                                      "JSON object)")
        return folder, revision
    from huggingface_hub import snapshot_download  # noqa: PLC0415  (optional: [pretrained])

    try:
        snapshot = Path(snapshot_download(name, revision=revision, local_files_only=True))
    except Exception as e:  # huggingface_hub's offline errors vary between versions
        raise UnknownEncoderError(
            "not a built-in encoder, not a folder, and not in the local hub cache "
            f"(nothing is downloaded here: fetch it once with `huggingface-cli download "
            f"{name}`)") from e
    return snapshot, snapshot.name


class TransformersEncoder(Encoder):
    """A `transformers` speech encoder read from the local disk (never downloaded).

    `hidden_states[0]` is the input of the first transformer layer, `[i]` the output of
    layer `i`: `num_hidden_layers + 1` layers, 320 samples (20 ms) apart at 16 kHz.

    Args:
        name: a folder written by `save_pretrained`, or a hub id in the local cache.
        revision: the hub revision (branch, tag or commit) of a hub id. Defaults to `None`.
        device: torch device; `None`: CUDA when available, else the CPU.

    Raises:
        ConfigurationError: when the model cannot be found locally, or does not read raw
            `input_values` (Whisper, AST).
    """

    licence = "see the model's card"

    def __init__(self, name: str, revision: str | None = None,
                 device: str | None = None) -> None:
        torch = torch_module()
        import transformers  # noqa: PLC0415  (optional heavy dependency: [pretrained])

        folder, revision = model_folder(name, revision)
        try:
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        except (ValueError, OSError, KeyError) as e:  # no model_type, unreadable JSON, ...
            raise UnknownEncoderError(
                f"{folder / 'config.json'} is not a transformers model configuration "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        if not hasattr(config, "conv_stride"):
            raise ConfigurationError(
                f"encoder={name!r}: model_type {config.model_type!r} does not read raw "
                "input_values; use wav2vec2, HuBERT, WavLM or data2vec-audio.")
        self.name, self.revision, self.config = str(name), revision, config
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
        self.model.to(self.device).train(False)  # inference mode (dropout off)
        if (folder / "preprocessor_config.json").is_file():
            self.extractor = transformers.AutoFeatureExtractor.from_pretrained(
                folder, local_files_only=True)
        else:
            self.extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000,
                                                                   do_normalize=True)
        self.sample_rate = int(self.extractor.sampling_rate)
        self.hop_length = int(np.prod(config.conv_stride))
        self.n_layers = int(config.num_hidden_layers) + 1
        self.dim = int(config.hidden_size)
        weights = [p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES]
        self.sha256 = sha256_of_files(weights) if weights else None

    def frames(self, n_samples: int, hop_length: int | None = None) -> int:
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride):
            n_samples = (n_samples - kernel) // stride + 1
        return max(0, n_samples)

    def states(self, batch: np.ndarray, layers: Sequence[int],
               hop_length: int | None = None) -> np.ndarray:
        torch = torch_module()
        inputs = self.extractor(list(np.asarray(batch, dtype=np.float32)),
                                sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(inputs["input_values"].to(self.device),
                             output_hidden_states=True)
            return torch.stack([out.hidden_states[k] for k in layers], 2).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class": type(self.model).__name__,
                "model_type": self.config.model_type,
                "transformers_version": package_version("transformers")}
