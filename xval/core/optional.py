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

__all__ = ["EXTRAS", "TRANSFORMERS", "Extra", "missing", "missing_modules", "need", "require", "requirements"]


@dataclasses.dataclass(frozen=True)
class Extra:
    """An extra of the project.

    Attributes:
        modules: the modules it installs that the project imports (their import names).
        install: the command that installs it.
    """

    modules: tuple[str, ...]
    install: str


TRANSFORMERS = "pretrained"
"""The extra of transformers models (`hf:NAME` front ends and encoders)."""

EXTRAS: dict[str, Extra] = {
    "search": Extra(("optuna",), "pip install -e '.[search]'"),
    "ray": Extra(("ray",), "pip install -e '.[ray]'"),
    "mlflow": Extra(("mlflow",), "pip install -e '.[mlflow]'"),
    "export": Extra(("onnx", "onnxruntime"), "pip install -e '.[export]'"),
    "augment": Extra(("audiomentations", "pyroomacoustics"), "pip install -e '.[augment]'"),
    "torch": Extra(("torch",), "pip install -e '.[torch]'"),
    "jax": Extra(("jax",), "pip install -e '.[jax]'"),
    "tensorflow": Extra(("tensorflow",), "pip install -e '.[tensorflow]'"),
    "tensorboard": Extra(("tensorflow", "tensorboard"), "pip install -e '.[tensorboard]'"),
    TRANSFORMERS: Extra(("torch", "transformers"), "pip install -e '.[pretrained]'"),
}
"""The extras whose packages the project imports when a feature asks for them, by name."""


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
