"""The custom layers, registered with Keras once Keras is imported.

`import architectures` imports no deep-learning backend: a dry run reads every builder's
keywords without one (the builders import Keras when they build). Yet a saved model must
load with plain `keras.saving.load_model` after `import architectures`, and Keras finds a
custom layer only among the classes registered with
`keras.saving.register_keras_serializable`, which needs Keras imported. So the modules that
define layers (`LAYERS`) are imported as soon as Keras is: at once when it already is, else
right after Keras's own import finishes (a finder on `sys.meta_path` that wraps Keras's
loader, as wrapt's post-import hooks do). Either order of `import architectures` and
`import keras` then loads a saved model by name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["LAYERS", "import_layers", "layer", "when_imported"]

LAYERS = {
    "architectures.layers": ("FeatureNormalization", "FrequencyWarp", "RowNormalization", "SpecAugment",
                             "TRAINING_ONLY", "TimeWarp"),
    "architectures.pooling": ("AttentiveStatisticsPooling", "LabelAttentionPooling",
                              "LayerWeightedSum", "StatisticsPooling"),
    "architectures.front_end": ("SpectralFrontEnd",),
    "architectures.encoders": ("AisfxFrontEnd", "AisfxNetwork", "TransformersFeatures",
                               "TransformersNetwork", "build_encoder"),
    "architectures.frames": ("RepeatFrames",),
    "architectures.optimizers": ("DeviceLossScaleOptimizer", "EpochSchedule",
                                 "WarmupCosineDecay"),
}
"""Module -> the names it gives `architectures` (its layers, registered on import)."""


def import_layers() -> None:
    """Imports every module of `LAYERS`, which registers its layers with Keras.

    Keras may be imported by one of them (`architectures.front_end`, imported first): that
    one is then in progress and registers its own layers when it ends, and the others import
    no class of another at the top, so none of them needs a module still in progress.
    """
    for module in LAYERS:
        importlib.import_module(module)


def layer(name: str) -> Any:
    """The object `name` of a module of `LAYERS` (the module imported, Keras with it): the
    package's `__getattr__`, so `architectures.SpecAugment` imports Keras only when asked.

    Raises:
        AttributeError: for a name no module of `LAYERS` gives.
    """
    for module, given in LAYERS.items():
        if name in given:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'architectures' has no attribute {name!r}")


class _ThenLoader(importlib.abc.Loader):
    """A module's own loader, then `then()` once the module has run."""

    def __init__(self, loader: importlib.abc.Loader, then: Callable[[], None]) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.then()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds the module `name` as the other finders do, its loader wrapped (once)."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once: the other finders find it
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenLoader(spec.loader, self.then)
        return spec


def when_imported(name: str, then: Callable[[], None]) -> None:
    """Calls `then()` once the top-level module `name` is imported: now when it is, else
    right after its import finishes (before the `import` statement returns).

    Args:
        name: a top-level module (`"keras"`).
        then: what to do; an exception it raises fails that import.
    """
    if name in sys.modules:
        then()
    elif not any(isinstance(f, _AfterImport) and f.name == name and f.then is then
                 for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, then))
