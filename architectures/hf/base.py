"""What every transformers audio family is (`Family`), the families by name (`FAMILIES`,
each added with `@register_family`), what a family's feature extractor computes
(`Spectrogram`, for the in-model layer), and the names and errors the families share.

torch and transformers are imported where used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from xval.core.errors import ConfigurationError
from xval.core.registry import Registry

__all__ = ["FAMILIES", "HF_PREFIX", "WEIGHT_SUFFIXES", "Family", "Held",
           "Spectrogram", "UnknownEncoderError", "dft_kernel", "from_disk", "hidden_states",
           "model_name", "names_model", "register_family", "weights_held"]

HF_PREFIX = "hf:"
"""How a command line or `front_end` may name a transformers model: `hf:PATH_OR_ID` (a path
or an `ORG/NAME` hub id is one without it too: `names_model`)."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
"""The files whose SHA-256 identifies a model's weights."""


class UnknownEncoderError(ConfigurationError):
    """An encoder name that is no transformers model on this disk; its message says why
    (`preprocessing.features.pretrained.load_encoder` adds the encoders there are)."""


def model_name(reference: str) -> str:
    """The folder or hub id of `hf:PATH_OR_ID` (a name without the prefix as it is)."""
    return reference[len(HF_PREFIX):] if reference.startswith(HF_PREFIX) else reference


def names_model(name: str) -> bool:
    """Whether a `front_end` value names a transformers model: `hf:NAME`, or a name with a
    `/` in it (a folder, `./model` or `/models/wavlm`, or a hub id, `ORG/NAME`), which no
    feature type or built-in encoder has. (`init --encoders` takes a bare folder too, and
    refuses any other bare name as a typo of a built-in encoder.)"""
    return str(name).startswith(HF_PREFIX) or "/" in str(name)


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
        preprocessor: its feature extractor's `preprocessor_config.json` (`{}`: the
            family's defaults).

    Attributes:
        name: the family's name.
        model_types: the `model_type` values it runs.
        waveform_input: whether the network reads the waveform itself (no spectrogram).
        width_key: the `config.json` key of the size of every layer's state.
        depth_key: its key of the number of transformer layers.
    """

    name: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    waveform_input: ClassVar[bool] = False
    extractor_class: ClassVar[str] = ""
    width_key: ClassVar[str] = "hidden_size"
    depth_key: ClassVar[str] = "num_hidden_layers"

    def __init__(self, config: Mapping[str, Any], preprocessor: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self.preprocessor = dict(preprocessor)

    def to_dict(self) -> dict[str, Any]:
        """What rebuilds it: `{"family", "config", "preprocessor"}` (JSON)."""
        return {"family": self.name, "config": self.config, "preprocessor": self.preprocessor}

    @classmethod
    def accepts(cls, config: Mapping[str, Any]) -> bool:
        """Whether a model of this `config.json` is of the family (its `model_type`)."""
        return str(config.get("model_type", "")) in cls.model_types

    def check(self, what: str) -> None:
        """Refuses a model of the family that the project cannot run (none by default).

        Args:
            what: the model's name, for the message.

        Raises:
            ConfigurationError: naming the model, why, and the fix.
        """

    def store_defaults(self) -> dict[str, Any]:
        """The layers of the store `init` builds of a model of the family: every layer (the
        head learns their weighted sum, as SUPERB does), frames pooled to about 100 ms (the
        head pools a row's frames anyway: 5x smaller stores).

        Returns:
            `layers`, `frame_pool` and the store's `hop_length` (the frame hop times the
            pool).
        """
        pool = max(1, round(0.1 * self.sample_rate / self.hop_length))
        return {"layers": "all", "frame_pool": pool, "hop_length": self.hop_length * pool}

    # The facts (from the two dictionaries; nothing loaded).
    @property
    def sample_rate(self) -> int:
        """The rate the extractor reads (Hz)."""
        return int(self.preprocessor.get("sampling_rate", 16000))

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
        """The size of each layer's state: the input of the first transformer layer, then
        the output of each (`width_key`, `depth_key` + 1 of them)."""
        return (int(self.config[self.width_key]),) * (self.block_count() + 1)

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

        return getattr(transformers, self.extractor_class).from_dict(dict(self.preprocessor))

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
        """How many blocks `encoder_trainable_blocks` counts: the transformer layers
        (`depth_key`)."""
        return int(self.config[self.depth_key])


FAMILIES: Registry[type[Family]] = Registry("transformers family", setting="family",
                                            where="architectures.hf", sort=True)
"""The families by name (`speech`, `whisper`, `ast`, `clap`), each added where it is defined
(`register_family`); a model's family is the one that `accepts` its configuration."""
_F = TypeVar("_F", bound=type[Family])


def register_family(cls: _F) -> _F:
    """Class decorator adding a `Family` subclass to `FAMILIES` under its `name`.

    Raises:
        ValueError: when the name is missing or taken.
    """
    FAMILIES.register(cls.name, cls)
    return cls


def hidden_states(outputs: Any, layers: Sequence[int]) -> list[Any]:
    return [outputs.hidden_states[k] for k in layers]


Held = tuple[tuple[int, ...], Path]
"""A saved weight's shape and the file that holds it."""


def weights_held(folder: Path) -> dict[str, Held]:
    """Name -> shape and file of every weight in a model folder's `.safetensors` files, read
    from their headers (nothing is loaded).

    Raises:
        ConfigurationError: for a file that is no safetensors file, naming it.
    """
    from safetensors import SafetensorError, safe_open  # noqa: PLC0415  (optional: [pretrained])

    held: dict[str, Held] = {}
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt") as f:
                held.update({k: (tuple(f.get_slice(k).get_shape()), path) for k in f.keys()})
        except (SafetensorError, OSError) as e:
            raise ConfigurationError(
                f"{path} is no safetensors file (safetensors: {e}); restore the file "
                "save_pretrained wrote, or save the model again.") from None
    return held


def _mismatch(cls: Any, folder: Path) -> str:
    """The first weight whose shape in the folder's files is not the one its `config.json`
    gives (the network built on the meta device: nothing allocated), with the fields of that
    size; `""` when none differs."""
    import torch  # noqa: PLC0415  (optional heavy dependency: [pretrained])
    import transformers  # noqa: PLC0415  (optional: [pretrained])

    config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    with torch.device("meta"):
        network = cls.from_config(config) if hasattr(cls, "from_config") else \
            cls._from_config(config)
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    prefix = f"{network.base_model_prefix}."
    for key, (shape, path) in weights_held(folder).items():
        key = key if key in expected else key.removeprefix(prefix)
        if key in expected and expected[key] != shape:
            sizes = [f"{name}={value}" for name, value in config.to_dict().items()
                     if type(value) is int and value in set(expected[key]) - set(shape)]
            return (f"{path} holds {key!r} of shape {shape}, but {folder / 'config.json'} "
                    f"describes {expected[key]}" + (f" ({', '.join(sizes)})" if sizes else ""))
    return ""


def from_disk(cls: Any, folder: Path) -> Any:
    """`cls.from_pretrained(folder)` from this disk only, in float32, with no progress bar;
    pickled weights only through torch's safe loader (`weights_only=True`).

    Raises:
        ConfigurationError: when transformers cannot load it, naming the file and the
            field (a weight of another shape than `config.json` gives) where it can.
    """
    import torch  # noqa: PLC0415  (optional heavy dependency: [pretrained])
    from transformers.utils import logging  # noqa: PLC0415  (optional: [pretrained])

    logging.disable_progress_bar()
    try:
        return cls.from_pretrained(folder, local_files_only=True, dtype=torch.float32,
                                   weights_only=True)  # a pickle only through the safe loader
    except Exception as e:  # transformers raises many types  # noqa: BLE001
        try:
            why = _mismatch(cls, folder)
        except Exception:  # noqa: BLE001  (a diagnosis only: transformers' words then)
            why = ""
        why = why or f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
    raise ConfigurationError(
        f"{folder}: transformers cannot load the model it holds ({why}); the configuration "
        "and the weights must be the ones save_pretrained wrote together: restore them, or "
        "save the model again.")
