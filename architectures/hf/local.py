"""A transformers model on this disk (`LocalModel`): found without downloading anything,
its configuration read, its family chosen (`family_of`).

torch and transformers are imported where used.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from architectures.hf.base import (
    FAMILIES,
    WEIGHT_SUFFIXES,
    Family,
    Held,
    UnknownEncoderError,
    model_name,
    weights_held,
)
from xval.core.errors import ConfigurationError
from xval.core.hashing import files_digest
from xval.core.optional import EXTRAS, TRANSFORMERS

__all__ = ["LocalModel", "family_class", "family_of", "is_path", "read_model", "regular_file"]

def model_folder(name: str, revision: str | None) -> tuple[Path, str | None]:
    """The local folder of a transformers model and its revision (a hub snapshot's commit):
    a folder whose `config.json` holds a JSON object, or a hub id in the local cache
    (nothing is downloaded; transformers itself is not imported).

    Raises:
        UnknownEncoderError: saying why `name` is neither.
    """
    folder = Path(name)
    if folder.is_dir():
        if os.path.lexists(folder / "config.json"):
            regular_file(folder / "config.json")
        if not (folder / "config.json").is_file():
            raise UnknownEncoderError(f"the folder {folder} holds no config.json, so it is no "
                                      "model written by save_pretrained")
        _read_json(folder / "config.json")
        return folder, revision
    if is_path(name):
        raise UnknownEncoderError(f"there is no folder {name} (a path, not a hub id: the "
                                  "model's folder is not there, or no longer)")
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415  (optional: [pretrained])
    except ImportError as e:
        raise UnknownEncoderError(f"no folder {name} here, and transformers models need "
                                  f"huggingface_hub ({EXTRAS[TRANSFORMERS].install})") from e
    try:
        snapshot = Path(snapshot_download(name, revision=revision, local_files_only=True))
    except Exception as e:  # huggingface_hub's offline errors vary between versions
        raise UnknownEncoderError(
            "not a built-in encoder, not a folder, and not in the local hub cache "
            f"(nothing is downloaded here: fetch it once with `huggingface-cli download "
            f"{name}`, or give a folder written by save_pretrained)") from e
    return snapshot, snapshot.name


def is_path(name: str) -> bool:
    """Whether a model's name is a path on this disk, never a hub id (`ORG/NAME`): an
    absolute path, one starting with `.` or `~`, or one of more than two parts."""
    return os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1


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



_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"),
          (stat.S_ISSOCK, "a socket"))


def regular_file(path: Path) -> None:
    """Refuses a file of a model folder that is not a regular file (a link to `/dev/zero`, a
    FIFO): reading it would never end or block, and transformers says "no file named ..."
    of one that is there.

    Raises:
        ConfigurationError: naming the file, what it is (and where its link leads) and the
            fix.
    """
    link = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
    try:
        mode = os.stat(path).st_mode  # follows links
    except FileNotFoundError:
        raise ConfigurationError(f"{path} is a link to {os.readlink(path)}, which does not "
                                 "exist; put the file itself there.") from None
    except OSError as e:
        raise ConfigurationError(f"{path} cannot be read ({e.strerror}).") from None
    if stat.S_ISREG(mode):
        return
    kind = next((words for test, words in _KINDS if test(mode)), "not a regular file")
    raise ConfigurationError(
        f"{path}{link} is {kind}, not a file: a model folder holds the files save_pretrained "
        "writes; put the file itself there (the weights: model.safetensors).")


def _pickle_refused(path: Path) -> str:
    """Why torch's safe loader (`torch.load(weights_only=True)`) refuses a pickled weight
    file, in torch's own words without its advice to load it unsafely (`""`: it reads).
    Nothing in the file runs; its tensors are mapped, not read, where the format allows."""
    import torch  # noqa: PLC0415  (optional heavy dependency: [pretrained])

    try:
        with warnings.catch_warnings():  # torch's notes on the pickle's protocol
            warnings.simplefilter("ignore")
            try:
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                torch.load(path, map_location="cpu", weights_only=True)  # the legacy format
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        advice = ("Weights only load failed", "Please file an issue", "Check the documentation")
        said = [line for line in lines if not line.startswith(advice)]
        return (said[0] if said else type(e).__name__).removeprefix("WeightsUnpickler error: ")
    return ""


def _refused_weights(path: Path, why: str) -> ConfigurationError:
    """The error for a pickled weight file the safe loader refuses."""
    return ConfigurationError(
        f"{path}: torch's safe loader (weights_only=True, the only way weights are loaded "
        f"here) refuses it: the pickle holds more than tensors (torch: {why}); nothing in it "
        "ran. Use the model's model.safetensors instead, or, only if you trust the file, "
        f"convert it once: `python -c \"import torch, safetensors.torch as st; st.save_file("
        f"torch.load('{path}', weights_only=False), '{path.parent / 'model.safetensors'}')\"` "
        "(that load runs the pickle's code).")


def _known() -> str:
    """The families and their model types, for messages."""
    return "; ".join(f"{cls.name}: {', '.join(cls.model_types)}" for cls in FAMILIES.values())


def family_class(config: Mapping[str, Any], what: str = "") -> type[Family]:
    """The family of a model's configuration: the first of `FAMILIES` that `accepts` it.

    Args:
        config: its `config.json` (`model_type`; a speech model has `conv_stride`).
        what: the model's name, for the message.

    Raises:
        UnknownNameError: (a `ConfigurationError`) for a model type of no family, naming
            the ones there are.
    """
    accepted = FAMILIES.find(lambda cls: cls.accepts(config))
    if accepted:
        return accepted[0]
    raise FAMILIES.error(
        f"the model {what!r} is of type {str(config.get('model_type', ''))!r}, not an audio "
        f"encoder this project runs; use a model of one of these types ({_known()}).")


def family_of(config: Mapping[str, Any], preprocessor: Mapping[str, Any],
              what: str = "") -> Family:
    """The family of a model, bound to its configuration and feature extractor's.

    Args:
        config: its configuration, every key (`transformers` `to_dict`).
        preprocessor: its `preprocessor_config.json` (`{}` when absent).
        what: the model's name, for the messages.

    Raises:
        ConfigurationError: for a model type of no family, or a model its family refuses
            (`Family.check`: a fused CLAP checkpoint).
    """
    family = family_class(config, what)(config, preprocessor)
    family.check(what)
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
    import transformers  # noqa: PLC0415  (optional: [pretrained])

    model_type = str(config["model_type"])
    if model_type not in transformers.CONFIG_MAPPING:
        raise ConfigurationError(
            f"{folder / 'config.json'}: model_type {model_type!r} is not a model type of the "
            f"transformers installed here ({transformers.__version__}), so its network cannot "
            f"be built; use a model of one of these types ({_known()}), or a transformers "
            "release that knows it.")
    try:
        full = transformers.CONFIG_MAPPING[model_type].from_pretrained(folder,
                                                                       local_files_only=True)
    except Exception as e:  # transformers' validators raise several types  # noqa: BLE001
        raise ConfigurationError(
            f"{folder / 'config.json'}: transformers refuses it as a {model_type} "
            f"configuration: {' '.join(str(e).split())[:400]}; fix the field it names, or "
            "restore the file save_pretrained wrote with the weights.") from None
    return dict(json.loads(full.to_json_string(use_diff=False)))


_LAYER = re.compile(r"^(?!text_model\.)(?:\w+\.)?encoder\.layers?\.(\d+)\.")
"""A weight of the encoder's layer `k` (`encoder.layers.3.`, AST's `encoder.layer.3.`, under
a task model's prefix: `wav2vec2.encoder.layers.3.`; not CLAP's text tower's)."""


def _check_layers(folder: Path, config: Mapping[str, Any], held: Mapping[str, Held]) -> None:
    """Refuses a configuration of more encoder layers than the weights hold (4,096 over 2:
    the rest would be random, and built for minutes)."""
    layers = config.get("num_hidden_layers")
    found = {m.group(1) for key in held if (m := _LAYER.search(key))}
    if isinstance(layers, int) and found and layers > len(found):
        files = ", ".join(sorted({held[key][1].name for key in held}))
        raise ConfigurationError(
            f"{folder / 'config.json'}: num_hidden_layers={layers}, but the weights "
            f"({files}) hold {len(found)} layers; the configuration is not that of these "
            "weights: restore config.json, or save the model again with save_pretrained.")


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
        self.folder, self.revision = model_folder(self.name, revision)
        config = _read_json(self.folder / "config.json")
        if "model_type" not in config:
            raise UnknownEncoderError(f"{self.folder / 'config.json'} is not a transformers "
                                      "model configuration (it names no model_type)")
        family_class(config, self.name)  # an unsupported family is refused before transformers
        preprocessor = self.folder / "preprocessor_config.json"
        if os.path.lexists(preprocessor):
            regular_file(preprocessor)
        for path in self.weight_files:  # before anything reads them (`sha256`, `load`)
            regular_file(path)
        extractor = _read_json(preprocessor) if preprocessor.is_file() else {}
        self.family = family_of(_full_config(self.folder, config), extractor, self.name)

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

    def check_weights(self) -> None:
        """Refuses, before a run starts, weights that only an unsafe loader would read: where
        the folder has no `.safetensors` file, each pickled weight file is opened by torch's
        safe loader (`weights_only=True`: no code in it runs, its tensors are mapped).

        Raises:
            ConfigurationError: naming the file torch refuses, why, and how to convert the
                folder to safetensors; a `.safetensors` file that is none; more layers in
                `config.json` than the weights hold.
        """
        weights = self.weight_files
        if any(p.suffix == ".safetensors" for p in weights):  # what transformers loads then
            _check_layers(self.folder, self.family.config, weights_held(self.folder))
            return
        for path in weights:
            why = _pickle_refused(path)
            if why:
                raise _refused_weights(path, why)

    def load(self) -> Any:
        """The network with its weights, in inference mode (pickled weights only through
        torch's safe loader, `weights_only=True`).

        Raises:
            ConfigurationError: for a pickled weight file the safe loader refuses (named).
        """
        self.check_weights()  # a refused pickle named, before transformers opens it
        network = self.family.load(self.folder)
        network.train(False)
        return network


def read_model(name: str, revision: str | None = None) -> LocalModel:
    """`LocalModel(name, revision)`: a transformers model on this disk (see there)."""
    return LocalModel(name, revision)
