"""Keras 3 cross-validation experiment manager for audio.

Importing `xval` imports nothing heavy: the public names below are loaded on first use
(PEP 562), so `import xval.errors` from `preprocessing` does not pull in the engine,
scikit-learn or pandas, and an experiment script can choose the backend and the GPU before
Keras is imported.
"""

from xval.compat import install as _install_compat
from xval.core.backend import import_paused as _import_paused

_install_compat()  # documented old paths (`from xval.search import Search`) work until 0.3

# Public name -> the module that defines it.
_EXPORTS = {
    "Config": "xval.config.loader",
    "find_config": "xval.config.loader",
    "load_config": "xval.config.loader",
    "ConfigurationError": "xval.core.errors",
    "DatasetError": "xval.core.errors",
    "ParameterError": "xval.core.errors",
    "ResultsConflictError": "xval.core.errors",
    "TrainingError": "xval.core.errors",
    "XvalError": "xval.core.errors",
    "Experiment": "xval.running.experiment",
    "RunOutcome": "xval.running.experiment",
    "Ensemble": "xval.running.declaration",
    "ItemKFold": "xval.folds",
    "PredefinedItemSplit": "xval.folds",
    "ExperimentResults": "xval.report.results",
    "Job": "xval.core.records",
    "FoldResult": "xval.core.records",
    "Status": "xval.core.records",
    "Search": "xval.config.space",
    "Float": "xval.config.space",
    "Int": "xval.config.space",
    "Categorical": "xval.config.space",
    "PLAIN_TRAINING": "xval.config.params",
}

__all__ = sorted([*_EXPORTS, "search"])


# Public name -> a module exported under it (`from xval import search`).
_MODULES = {"search": "xval.config.space"}


def __getattr__(name: str) -> object:
    # The engine's modules (pandas, scikit-learn, SciPy...) with the collector paused.
    if name in _MODULES:
        value = _import_paused(_MODULES[name])
        globals()[name] = value
        return value
    if name in _EXPORTS:
        value = getattr(_import_paused(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'xval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
