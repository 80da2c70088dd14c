"""The `transformers` audio encoders the project runs, by family: what their input, a layer
and a frame are, their networks loaded from the local disk or rebuilt from a configuration,
and their states.

| family | model types | input | a layer | a frame | window |
|---|---|---|---|---|---|
| `speech` | wav2vec2, HuBERT, WavLM, data2vec-audio (any with `conv_stride`) | the waveform, normalised | a transformer layer's output (0: its input) | 20 ms | none |
| `whisper` | whisper (the encoder) | 80-band log-mel, 10 ms | an encoder layer's output (0: its input) | 20 ms | 30 s, cut to the segment |
| `ast` | audio-spectrogram-transformer | 128-band Kaldi fbank, 10 ms | a layer's patch tokens, averaged over frequency | 100 ms (a patch column) | 1024 frames (10.24 s), padded |
| `clap` | clap (its audio tower, HTSAT) | 64-band log-mel at 48 kHz | a Swin stage, the pooled output or the projection, averaged over patches | the window | 10 s, repeat-padded |

Whisper's encoder has positions for 30 s only (1500 frames). A segment shorter than that is
read as it is: its log-mel frames go through the convolutions and only the first
`frames` positions are added (`WhisperFamily.states`), so a 5 s segment costs a sixth of a
30 s window (and less in attention). Padding it to 30 s and keeping the frames that hold
audio gives other states (the padding takes part in attention): measured in
`benchmarks/hf_encoders.py`, see docs/pretrained.md.

A network is identified by its family and two dictionaries, its `config.json` and its
feature extractor's `preprocessor_config.json` (`Family(config, features)`): everything a
model saved with an encoder inside needs to rebuild it (`build`) without running anything
from the file. Nothing is ever downloaded: a model is a folder written by `save_pretrained`
or a hub id already in the local cache. torch and transformers are imported where used.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xval.core.errors import ConfigurationError
from xval.core.hashing import files_digest

__all__ = ["FAMILIES", "HF_PREFIX", "WEIGHT_SUFFIXES", "AstFamily", "ClapFamily", "Family",
           "LocalModel", "SpeechFamily", "Spectrogram", "WhisperFamily",
           "UnknownEncoderError", "family_class", "family_of", "model_name", "read_model"]

HF_PREFIX = "hf:"
"""How a command line or `front_end` names a transformers model: `hf:PATH_OR_ID`."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
"""The files whose SHA-256 identifies a model's weights."""
INSTALL = "pip install -e '.[pretrained]'"
"""What installs torch, transformers and safetensors."""


class UnknownEncoderError(ConfigurationError):
    """An encoder name that is no transformers model on this disk; its message says why
    (`preprocessing.features.pretrained.load_encoder` adds the encoders there are)."""


def model_name(reference: str) -> str:
    """The folder or hub id of `hf:PATH_OR_ID` (a name without the prefix as it is)."""
    return reference[len(HF_PREFIX):] if reference.startswith(HF_PREFIX) else reference


def _model_folder(name: str, revision: str | None) -> tuple[Path, str | None]:
    """The local folder of a transformers model and its revision (a hub snapshot's commit)."""
    folder = Path(name)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise UnknownEncoderError(f"the folder {folder} holds no config.json, so it is no "
                                      "model written by save_pretrained")
        return folder, revision
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415  (optional: [pretrained])
    except ImportError as e:
        raise UnknownEncoderError(f"no folder {name} here, and transformers models need "
                                  f"huggingface_hub ({INSTALL})") from e
    try:
        snapshot = Path(snapshot_download(name, revision=revision, local_files_only=True))
    except Exception as e:  # huggingface_hub's offline errors vary between versions
        raise UnknownEncoderError(
            "not a built-in encoder, not a folder, and not in the local hub cache "
            f"(nothing is downloaded here: fetch it once with `huggingface-cli download "
            f"{name}`, or give a folder written by save_pretrained)") from e
    return snapshot, snapshot.name


def _card_licence(folder: Path) -> str:
    """The `license:` of a model card's front matter (a hub snapshot's README.md)."""
    card = folder / "README.md"
    if card.is_file():
        lines = card.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines and lines[0].strip() == "---":
            for line in lines[1:]:
                if line.strip() == "---":
                    break
                key, _, value = line.partition(":")
                if key.strip() == "license" and value.strip():
                    return value.strip().strip("'\"")
    return "not stated (see the model's card)"


@dataclasses.dataclass(frozen=True)
class Spectrogram:
    """How a family's feature extractor turns a waveform into the network's input, as the
    steps the in-model layer (`architectures.encoders.hf.TransformersFeatures`) takes, in
    this order.

    Attributes:
        kernel: `np.ndarray [shape=(frame_length, 2 * bins)]`: each frame's real then
            imaginary DFT, with the extractor's window and per-frame steps (AST's DC
            removal and pre-emphasis) folded in: one strided convolution.
        hop: samples between frames.
        mel: `np.ndarray [shape=(bins, n_mels)]`, the extractor's filter bank.
        floor: the smallest mel power.
        log: `"log10"`, `"log"` (natural) or `"db"` (`10 log10`).
        repeat_to: CLAP's `repeatpad`: the waveform repeated (whole copies) then zero-padded
            to this many samples (0: not).
        center: samples of reflection padding on each side (0: none).
        drop_last: drop the last frame (Whisper).
        dynamic_range: floor each row at its maximum minus this (Whisper: 8; 0: not).
        frames_to: pad (with zeros) or cut the frames to this many (AST; 0: not).
        scale: the output is `scale * x + offset`.
        offset: see `scale`.
    """

    kernel: np.ndarray
    hop: int
    mel: np.ndarray
    floor: float
    log: str
    repeat_to: int = 0
    center: int = 0
    drop_last: bool = False
    dynamic_range: float = 0.0
    frames_to: int = 0
    scale: float = 1.0
    offset: float = 0.0


def dft_kernel(frame_operator: np.ndarray, fft_length: int) -> np.ndarray:
    """The real and imaginary one-sided DFT of `frame_operator @ frame`, as one matrix.

    Args:
        frame_operator: `np.ndarray [shape=(frame_length, frame_length)]`, what is done to
            a frame before its DFT (its window, at least).
        fft_length: the DFT's length (the frame zero-padded to it).

    Returns:
        `np.ndarray [shape=(frame_length, 2 * (fft_length // 2 + 1))]`, float32.
    """
    n = frame_operator.shape[0]
    angle = 2 * np.pi * np.outer(np.arange(n), np.arange(fft_length // 2 + 1)) / fft_length
    dft = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
    return (frame_operator.T @ dft).astype(np.float32)


class Family:
    """One family of transformers audio encoders, bound to a model's configuration.

    Args:
        config: the model's `config.json`, as a dict.
        features: its feature extractor's `preprocessor_config.json` (`{}`: the family's
            defaults).

    Attributes:
        name: the family's name.
        model_types: the `model_type` values it runs.
        waveform_input: whether the network reads the waveform itself (no spectrogram).
    """

    name: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    waveform_input: ClassVar[bool] = False
    extractor_class: ClassVar[str] = ""

    def __init__(self, config: Mapping[str, Any], features: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self.features = dict(features)

    def to_dict(self) -> dict[str, Any]:
        """What rebuilds it: `{"family", "config", "features"}` (JSON)."""
        return {"family": self.name, "config": self.config, "features": self.features}

    # The facts (from the two dictionaries; nothing loaded).
    @property
    def sample_rate(self) -> int:
        """The rate the extractor reads (Hz)."""
        return int(self.features.get("sampling_rate", 16000))

    @property
    def hop_length(self) -> int:
        """Samples between two frames of states."""
        return 320

    @property
    def window(self) -> int:
        """The most samples a segment may have (0: any)."""
        return 0

    @property
    def shortest(self) -> int:
        """The fewest samples that give one frame."""
        return 400

    @property
    def segment_seconds(self) -> float:
        """A store's default segment: the window (at most 10 s), a second without one."""
        return min(self.window / self.sample_rate, 10.0) if self.window else 1.0

    @property
    def dims(self) -> tuple[int, ...]:
        """The size of each layer's state."""
        raise NotImplementedError

    @property
    def n_layers(self) -> int:
        """How many layers a segment's states can be taken from."""
        return len(self.dims)

    def frames(self, n_samples: int) -> int:
        """Frames of states of a segment of `n_samples` samples (0 when too short)."""
        raise NotImplementedError

    def check_segment(self, n_samples: int, what: str) -> None:
        """Refuses a segment longer than the window or shorter than one frame.

        Args:
            n_samples: its samples at `sample_rate`.
            what: the model's name, for the message.

        Raises:
            ConfigurationError: naming the segment, the limit and the fix.
        """
        seconds = n_samples / self.sample_rate
        if self.window and n_samples > self.window:
            limit = self.window / self.sample_rate
            raise ConfigurationError(
                f"A segment of {seconds:.4g} s is longer than the window of the {self.name} "
                f"encoder {what!r} ({limit:.4g} s), which would drop the rest; pass "
                f"segment_seconds <= {np.floor(limit * 100) / 100:g} (longer files are cut "
                "into several segments).")
        if self.frames(n_samples) < 1:
            raise ConfigurationError(
                f"A segment of {seconds:.4g} s is shorter than one frame of the {self.name} "
                f"encoder {what!r}; pass segment_seconds >= "
                f"{np.ceil(self.shortest / self.sample_rate * 100) / 100:g}.")

    # The network (torch and transformers imported here).
    def transformers_config(self) -> Any:
        """The model's configuration as its transformers class."""
        from transformers import CONFIG_MAPPING  # noqa: PLC0415  (optional: [pretrained])

        return CONFIG_MAPPING[self.config["model_type"]].from_dict(dict(self.config))

    def build(self) -> Any:
        """The network from the configuration, with initial weights (a saved model's are
        then loaded into it): nothing is read from disk or run from a file."""
        raise NotImplementedError

    def load(self, folder: Path) -> Any:
        """The network with the weights of `folder` (read safely: safetensors, or
        `torch.load(weights_only=True)`)."""
        raise NotImplementedError

    def extractor(self) -> Any:
        """Its transformers feature extractor, from `features`."""
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return getattr(transformers, self.extractor_class).from_dict(dict(self.features))

    def extract(self, extractor: Any, batch: np.ndarray) -> Any:
        """The network's input for a batch of equal-length segments, by transformers' own
        feature extractor.

        Args:
            extractor: `extractor()`.
            batch: `np.ndarray [shape=(batch, samples)]`, float32, at `sample_rate`.

        Returns:
            A torch tensor.
        """
        raise NotImplementedError

    def states(self, network: Any, inputs: Any, layers: Sequence[int], frames: int) -> list[Any]:
        """The states of `layers`, each `(batch, frames, dim)` (torch).

        Args:
            network: `build()` or `load()`.
            inputs: its input (`extract`, or the in-model features in their layout).
            layers: layer indices in `[0, n_layers)`.
            frames: the frames that hold audio (`frames(samples)`).
        """
        raise NotImplementedError

    def blocks(self, network: Any) -> list[list[Any]]:
        """The network's trainable blocks, first to last (modules; the last `k` train)."""
        raise NotImplementedError

    def spectrogram(self) -> Spectrogram | None:
        """What its extractor computes, for the in-model layer (`None`: the waveform)."""
        return None

    @property
    def normalize(self) -> bool:
        """Whether a waveform input is scaled to zero mean and unit variance per segment."""
        return False

    def network_input(self, features: Any) -> Any:
        """The in-model features `(batch, frames, n_mels)` (or `(batch, samples, 1)`) in
        the layout the network reads (torch)."""
        return features

    def block_count(self) -> int:
        """How many blocks `encoder_trainable_blocks` counts."""
        raise NotImplementedError


def _hidden(outputs: Any, layers: Sequence[int]) -> list[Any]:
    return [outputs.hidden_states[k] for k in layers]


def _pretrained(cls: Any, folder: Path) -> Any:
    """`cls.from_pretrained(folder)` from this disk only, in float32, with no progress bar."""
    import torch  # noqa: PLC0415  (optional heavy dependency: [pretrained])
    from transformers.utils import logging  # noqa: PLC0415  (optional: [pretrained])

    logging.disable_progress_bar()
    return cls.from_pretrained(folder, local_files_only=True, dtype=torch.float32)


class SpeechFamily(Family):
    """wav2vec2, HuBERT, WavLM, data2vec-audio: `hidden_states[0]` is the input of the first
    transformer layer, `[i]` the output of layer `i`, 320 samples (20 ms) apart at 16 kHz."""

    name = "speech"
    model_types = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
    waveform_input = True
    extractor_class = "Wav2Vec2FeatureExtractor"

    @property
    def hop_length(self) -> int:
        return int(np.prod(self.config.get("conv_stride", (5, 2, 2, 2, 2, 2, 2))))

    @property
    def shortest(self) -> int:
        return int(self.config.get("conv_kernel", (10,))[0]) + self.hop_length

    @property
    def dims(self) -> tuple[int, ...]:
        return (int(self.config["hidden_size"]),) * (int(self.config["num_hidden_layers"]) + 1)

    def frames(self, n_samples: int) -> int:
        for kernel, stride in zip(self.config["conv_kernel"], self.config["conv_stride"]):
            n_samples = (n_samples - kernel) // stride + 1
        return max(0, n_samples)

    def extractor(self) -> Any:
        if not self.features:
            import transformers  # noqa: PLC0415  (optional: [pretrained])

            return transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True)
        return super().extractor()

    def build(self) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return transformers.AutoModel.from_config(self.transformers_config())

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return _pretrained(transformers.AutoModel, folder)

    def extract(self, extractor: Any, batch: np.ndarray) -> Any:
        return extractor(list(batch), sampling_rate=self.sample_rate,
                         return_tensors="pt")["input_values"]

    @property
    def normalize(self) -> bool:
        return bool(self.features.get("do_normalize", True))

    def network_input(self, features: Any) -> Any:
        return features[..., 0]

    def states(self, network: Any, inputs: Any, layers: Sequence[int], frames: int) -> list[Any]:
        return _hidden(network(inputs, output_hidden_states=True), layers)

    def blocks(self, network: Any) -> list[list[Any]]:
        encoder = network.encoder
        blocks: list[list[Any]] = [[layer] for layer in encoder.layers]
        if self.config.get("do_stable_layer_norm"):  # the final norm is on top of the last
            blocks[-1].append(encoder.layer_norm)
        return blocks

    def block_count(self) -> int:
        return int(self.config["num_hidden_layers"])


class WhisperFamily(Family):
    """Whisper's encoder: `[0]` the input of the first layer (convolutions and positions),
    `[i]` the output of layer `i` (the last after the final layer norm, as transformers
    gives it), 320 samples (20 ms) apart; a segment of at most 30 s, read as it is (the
    positions cut to its frames)."""

    name = "whisper"
    model_types = ("whisper",)
    extractor_class = "WhisperFeatureExtractor"

    @property
    def mel_hop(self) -> int:
        """Samples between two log-mel frames (two per frame of states)."""
        return int(self.features.get("hop_length", 160))

    @property
    def hop_length(self) -> int:
        return 2 * self.mel_hop

    @property
    def window(self) -> int:
        positions = int(self.config.get("max_source_positions", 1500))
        chunk = int(self.features.get("chunk_length", 30)) * self.sample_rate
        return min(chunk, 2 * positions * self.mel_hop)

    @property
    def shortest(self) -> int:
        return self.mel_hop

    @property
    def dims(self) -> tuple[int, ...]:
        return (int(self.config["d_model"]),) * (int(self.config["encoder_layers"]) + 1)

    def frames(self, n_samples: int) -> int:
        return (n_samples // self.mel_hop + 1) // 2 if n_samples >= self.mel_hop else 0

    def build(self) -> Any:
        from transformers.models.whisper.modeling_whisper import (  # noqa: PLC0415
            WhisperEncoder,  # (optional: [pretrained])
        )

        return WhisperEncoder(self.transformers_config())

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return _pretrained(transformers.WhisperModel, folder).get_encoder()

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

    def block_count(self) -> int:
        return int(self.config["encoder_layers"])

    def spectrogram(self) -> Spectrogram:
        """`WhisperFeatureExtractor`: a periodic Hann window of `n_fft`, centred frames
        (reflection), the power through its Slaney filter bank, `log10` floored at 1e-10,
        the last frame dropped, each row floored at its maximum minus 8, `(x + 4) / 4`."""
        from transformers.audio_utils import window_function  # noqa: PLC0415  (optional)

        n_fft = int(self.features.get("n_fft", 400))
        window = window_function(n_fft, "hann")
        return Spectrogram(kernel=dft_kernel(np.diag(window), n_fft), hop=self.mel_hop,
                           mel=np.asarray(self.extractor().mel_filters, np.float32),
                           floor=1e-10, log="log10", center=n_fft // 2, drop_last=True,
                           dynamic_range=8.0, scale=0.25, offset=1.0)

    def network_input(self, features: Any) -> Any:
        return features.permute(0, 2, 1)


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

    @property
    def dims(self) -> tuple[int, ...]:
        return (int(self.config["hidden_size"]),) * (int(self.config["num_hidden_layers"]) + 1)

    def frames(self, n_samples: int) -> int:
        size, _, stride = self.patch
        fbank = min(1 + (n_samples - 400) // 160, self.max_frames) if n_samples >= 400 else 0
        return (fbank - size) // stride + 1 if fbank >= size else 0

    def build(self) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return transformers.ASTModel(self.transformers_config())

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return _pretrained(transformers.ASTModel, folder)

    def extract(self, extractor: Any, batch: np.ndarray) -> Any:
        return extractor(list(batch), sampling_rate=self.sample_rate,
                         return_tensors="pt")["input_values"]

    def states(self, network: Any, inputs: Any, layers: Sequence[int], frames: int) -> list[Any]:
        f_dim, t_dim = self.grid
        out = network(inputs, output_hidden_states=True)
        return [h[:, -f_dim * t_dim:].reshape(h.shape[0], f_dim, t_dim, h.shape[-1])
                .mean(1)[:, :frames] for h in _hidden(out, layers)]

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
        mels = int(self.features.get("num_mel_bins", 128))
        mel = mel_filter_bank(num_frequency_bins=257, num_mel_filters=mels, min_frequency=20,
                              max_frequency=self.sample_rate // 2,
                              sampling_rate=self.sample_rate, norm=None, mel_scale="kaldi",
                              triangularize_in_mel_space=True)
        normalize = bool(self.features.get("do_normalize", True))
        mean = float(self.features.get("mean", -4.2677393)) if normalize else 0.0
        std = float(self.features.get("std", 4.5689974)) if normalize else 0.5
        return Spectrogram(kernel=dft_kernel(operator, 512), hop=160,
                           mel=np.asarray(mel, np.float32), floor=1.192092955078125e-07,
                           log="log", frames_to=self.max_frames, scale=1 / (2 * std),
                           offset=-mean / (2 * std))

    def block_count(self) -> int:
        return int(self.config["num_hidden_layers"])


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
        return int(self.features.get("sampling_rate", 48000))

    @property
    def window(self) -> int:
        return int(self.features.get("max_length_s", 10)) * self.sample_rate

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

    def check_fusion(self, what: str) -> None:
        """Refuses a fused checkpoint (its input is random crops of long audio)."""
        if self.audio.get("enable_fusion"):
            raise ConfigurationError(
                f"the model {what!r} is a fused CLAP checkpoint (enable_fusion), which reads "
                "random crops of long audio, so its states would change from one run to the "
                "next; use an unfused one (e.g. laion/clap-htsat-unfused).")

    def build(self) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        return transformers.ClapAudioModelWithProjection(
            self.transformers_config().audio_config)

    def load(self, folder: Path) -> Any:
        import transformers  # noqa: PLC0415  (optional: [pretrained])

        clap = _pretrained(transformers.ClapModel, folder)
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

        n_fft = int(self.features.get("fft_window_size", 1024))
        window = window_function(n_fft, "hann")
        return Spectrogram(kernel=dft_kernel(np.diag(window), n_fft),
                           hop=int(self.features.get("hop_length", 480)),
                           mel=np.asarray(self.extractor().mel_filters_slaney, np.float32),
                           floor=1e-10, log="db", repeat_to=self.window, center=n_fft // 2)

    def network_input(self, features: Any) -> Any:
        return features[:, None]


FAMILIES: tuple[type[Family], ...] = (SpeechFamily, WhisperFamily, AstFamily, ClapFamily)
"""The families, in the order the documentation lists them."""


def family_class(config: Mapping[str, Any], what: str = "") -> type[Family]:
    """The family of a model's configuration.

    Args:
        config: its `config.json` (`model_type`; a speech model has `conv_stride`).
        what: the model's name, for the message.

    Raises:
        ConfigurationError: for a model type of no family, naming the ones there are.
    """
    model_type = str(config.get("model_type", ""))
    for cls in FAMILIES:
        if model_type in cls.model_types or (cls is SpeechFamily and "conv_stride" in config):
            return cls
    known = "; ".join(f"{cls.name}: {', '.join(cls.model_types)}" for cls in FAMILIES)
    raise ConfigurationError(
        f"the model {what!r} is of type {model_type!r}, not an audio encoder this project "
        f"runs; use a model of one of these types ({known}).")


def family_of(config: Mapping[str, Any], features: Mapping[str, Any],
              what: str = "") -> Family:
    """The family of a model, bound to its configuration and feature extractor's.

    Args:
        config: its configuration, every key (`transformers` `to_dict`).
        features: its `preprocessor_config.json` (`{}` when absent).
        what: the model's name, for the messages.

    Raises:
        ConfigurationError: for a model type of no family, or a fused CLAP checkpoint.
    """
    family = family_class(config, what)(config, features)
    if isinstance(family, ClapFamily):
        family.check_fusion(what)
    return family


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UnknownEncoderError(
            f"{path} is not a transformers model configuration "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(data, dict):
        raise UnknownEncoderError(f"{path} is not a transformers model configuration")
    return data


def _full_config(folder: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """Every key of a model's configuration (a `config.json` may leave defaults out), as
    JSON values."""
    from transformers import CONFIG_MAPPING  # noqa: PLC0415  (optional: [pretrained])

    full = CONFIG_MAPPING[str(config["model_type"])].from_pretrained(folder,
                                                                     local_files_only=True)
    return dict(json.loads(full.to_json_string(use_diff=False)))


class LocalModel:
    """A transformers model on this disk, read without its weights.

    Args:
        name: a folder written by `save_pretrained`, or a hub id in the local cache
            (`hf:` in front is allowed).
        revision: the hub revision of a hub id. Defaults to `None`.

    Attributes:
        name: the name as given (without `hf:`).
        folder: where its files are.
        revision: the snapshot's commit, or `revision`.
        family: its `Family`, bound to its configuration.

    Raises:
        UnknownEncoderError: when it is not on this disk.
        ConfigurationError: for a model of no supported family.
    """

    def __init__(self, name: str, revision: str | None = None) -> None:
        self.name = model_name(str(name))
        self.folder, self.revision = _model_folder(self.name, revision)
        config = _read_json(self.folder / "config.json")
        if "model_type" not in config:
            raise UnknownEncoderError(f"{self.folder / 'config.json'} names no model_type, so "
                                      "it is no transformers model configuration")
        family_class(config, self.name)  # an unsupported family is refused before transformers
        features_file = self.folder / "preprocessor_config.json"
        features = _read_json(features_file) if features_file.is_file() else {}
        self.family = family_of(_full_config(self.folder, config), features, self.name)

    @property
    def weight_files(self) -> list[Path]:
        """Its weight files (`WEIGHT_SUFFIXES`)."""
        return sorted(p for p in self.folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)

    @property
    def sha256(self) -> str | None:
        """The SHA-256 of its weight files together (`None` without any)."""
        weights = self.weight_files
        return files_digest(weights) if weights else None

    @property
    def licence(self) -> str:
        """The `license:` of its card, when the folder has one."""
        return _card_licence(self.folder)

    def load(self) -> Any:
        """The network with its weights, in inference mode."""
        network = self.family.load(self.folder)
        network.train(False)
        return network


def read_model(name: str, revision: str | None = None) -> LocalModel:
    """`LocalModel(name, revision)`: a transformers model on this disk (see there)."""
    return LocalModel(name, revision)
