"""Old public import paths keep working, with a `DeprecationWarning` naming the new one.

Before the layers (`xval.core`, `xval.config`, `xval.running`, ...) the engine was a flat
package: `from xval.search import Search`, `from xval.errors import ConfigurationError`,
`from xval.results import ExperimentResults`. Every such module name is an alias here: its
names are looked up in the modules that hold them now (`MOVED`), on first use. A package
that replaced a module of the same name (`xval.cli`, `xval.config`, `xval.executors`,
`xval.report`, `xval.training`) finds the old module's names the same way
(`deprecated_names`).

Nothing is imported until a name is asked for, so `import xval` stays light.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MOVED", "deprecated_names", "install"]

MOVED: dict[str, tuple[str, ...]] = {
    "xval.data": ("xval.training.batches",),
    "xval.embeddings": ("xval.training.embeddings", "xval.config.embedding"),
    "xval.errors": ("xval.core.errors",),
    "xval.evaluate": ("xval.inference.evaluate", "xval.cli.inference"),
    "xval.events": ("xval.tasks.events",),
    "xval.experiment": ("xval.running.experiment", "xval.running.environment",
                        "xval.running.runner"),
    "xval.fileio": ("xval.core.files",),
    "xval.interrupts": ("xval.core.interrupts",),
    "xval.jobs": ("xval.core.records",),
    "xval.logs": ("xval.core.logs",),
    "xval.losses": ("xval.tasks.losses",),
    "xval.metrics": ("xval.tasks.metrics",),
    "xval.params": ("xval.config.params",),
    "xval.planner": ("xval.running.planner",),
    "xval.plots": ("xval.report.figures", "xval.report.activity", "xval.report.plots"),
    "xval.predict": ("xval.inference.predict", "xval.inference.models",
                     "xval.inference.detect", "xval.inference.embed", "xval.cli.inference",
                     "xval.training.loading"),
    "xval.ray_executor": ("xval.executors.ray",),
    "xval.recorder": ("xval.running.recorder", "xval.core.layout", "xval.core.storage"),
    "xval.results": ("xval.report.results",),
    "xval.scheduler": ("xval.running.scheduler",),
    "xval.schema": ("xval.config.schema",),
    "xval.search": ("xval.config.space",),
    "xval.snapshot": ("xval.core.snapshot",),
    "xval.stats": ("xval.report.stats",),
    "xval.study": ("xval.running.study",),
    "xval.tracking": ("xval.report.tracking",),
    "xval.worker": ("xval.executors.worker",),
    # Packages that replaced a module of the same name: where the old module's names are.
    "xval.cli": ("xval.running.command",),
    "xval.config": ("xval.config.loader", "xval.config.schema"),
    "xval.executors": ("xval.executors.base", "xval.executors.registry",
                       "xval.executors.inline", "xval.executors.process"),
    "xval.report": ("xval.report.workbook", "xval.report.tables", "xval.report.results",
                    "xval.report.terminal", "xval.report.plots", "xval.config.selection"),
    "xval.training": ("xval.training.fold", "xval.training.model", "xval.training.batches"),
}
"""Old module -> the modules its public names are in now, searched in order."""


def _lookup(old: str, name: str) -> tuple[Any, str]:
    """`(value, module)`: `name` from the first module of `MOVED[old]` that has it."""
    for new in MOVED[old]:
        module = importlib.import_module(new)
        if hasattr(module, name):
            return getattr(module, name), new
    raise AttributeError(f"module {old!r} has no attribute {name!r} (its names moved to "
                         f"{', '.join(MOVED[old])})")


def deprecated_names(package: str) -> Callable[[str], Any]:
    """A module `__getattr__` for a package that replaced an old module: the old module's
    names, found in their new modules, with a `DeprecationWarning`."""
    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value, new = _lookup(package, name)
        warnings.warn(f"{package}.{name} moved: import it from {new} (the old path will be "
                      "removed in a later release).", DeprecationWarning, stacklevel=2)
        sys.modules[package].__dict__[name] = value  # warned once
        return value

    return __getattr__


class _Alias(types.ModuleType):
    """An old module: its attributes are looked up in the new modules."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value, _ = _lookup(self.__name__, name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for new in MOVED[self.__name__]:
            names |= {n for n in dir(importlib.import_module(new)) if not n.startswith("_")}
        return sorted(names)


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _Alias(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        warnings.warn(f"`{module.__name__}` moved: import from "
                      f"{' or '.join(MOVED[module.__name__])} instead (the old path will be "
                      "removed in a later release).", DeprecationWarning, stacklevel=2)


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the old module names that no file holds any more (after the real finders)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader())


def install() -> None:
    """Adds the finder of old module names (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
