"""The old import paths that earlier releases documented, kept until audio-xval 0.3 with a
`DeprecationWarning` naming the new one.

Before the layers (`xval.core`, `xval.config`, `xval.running`, ...) the engine was a flat
package, and the README and docs/ showed some of its names: `from xval.search import
Search`, `from xval.errors import ConfigurationError`, `xval.predict.predict_files`,
`import xval.losses` before loading a detector with `compile=True`. Those names, and only
those, are listed in `MOVED` with the module that holds each now: importing an old module
imports them from there and warns once. A package that replaced a module of the same name
(`xval.report`) gives the old module's documented names the same way (`deprecated_names`).
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

__all__ = ["MOVED", "REMOVED_IN", "deprecated_names", "install"]

REMOVED_IN = "0.3"
"""The release of audio-xval that removes the old paths."""

_ERRORS = ("XvalError", "ConfigurationError", "DatasetError", "ParameterError",
           "ResultsConflictError", "TrainingError")
MOVED: dict[str, dict[str, str]] = {
    "xval.errors": dict.fromkeys(_ERRORS, "xval.core.errors"),
    "xval.search": dict.fromkeys(("Search", "Float", "Int", "Categorical"), "xval.config.space"),
    "xval.results": {"ExperimentResults": "xval.report.results"},
    "xval.jobs": dict.fromkeys(("Job", "FoldResult"), "xval.core.records"),
    "xval.predict": {"predict_files": "xval.inference.predict",
                     "embed_files": "xval.inference.embed"},
    "xval.evaluate": dict.fromkeys(("source_rows", "evaluate_rows"), "xval.inference.evaluate"),
    "xval.events": dict.fromkeys(("activity_to_events", "frame_metrics", "detection_metrics"),
                                 "xval.tasks.detection.events"),
    "xval.losses": {"WeightedFrameCrossentropy": "xval.tasks.losses"},
    "xval.stats": {"corrected_resampled_ttest": "xval.report.stats"},
    "xval.logs": {"quiet_framework_logs": "xval.core.logs"},
    "xval.tracking": {"MLflowListener": "xval.report.tracking"},
    "xval.report": {"MAX_EMBEDDED_PLOTS": "xval.report.workbook.plots"},
    "xval.cli.scripts": dict.fromkeys(("HEADS", "MLP_HEAD", "REFIT_HEAD", "PROBED_HEADS",
                                       "REGULARISED", "encoder_grid", "audio_cnn_recipe"),
                                      "xval.config.recipes"),
}
"""Old module -> {documented name: the module that holds it now}."""


def _moved(old: str, name: str) -> str:
    """The warning for `old.name` (or the module `old` when `name` is empty)."""
    new = sorted(set(MOVED[old].values())) if not name else [MOVED[old][name]]
    what = f"{old}.{name}" if name else f"`{old}`"
    return (f"{what} moved: import from {' or '.join(new)} instead (the old path is removed "
            f"in audio-xval {REMOVED_IN}).")


def deprecated_names(package: str) -> Callable[[str], Any]:
    """A module `__getattr__` for a package that replaced an old module: the old module's
    documented names (`MOVED[package]`), with a `DeprecationWarning`."""
    def __getattr__(name: str) -> Any:
        if name not in MOVED[package]:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(MOVED[package][name]), name)
        warnings.warn(_moved(package, name), DeprecationWarning, stacklevel=2)
        sys.modules[package].__dict__[name] = value  # warned once
        return value

    return __getattr__


class _AliasLoader(importlib.abc.Loader):
    """An old module: its documented names, imported from the modules that hold them."""

    def exec_module(self, module: types.ModuleType) -> None:
        for name, new in MOVED[module.__name__].items():
            setattr(module, name, getattr(importlib.import_module(new), name))
        module.__all__ = list(MOVED[module.__name__])  # type: ignore[attr-defined]
        warnings.warn(_moved(module.__name__, ""), DeprecationWarning, stacklevel=2)


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
