"""Keras 3 cross-validation experiment manager for audio.

Importing `xval` imports nothing heavy: the public names below are loaded on first use
(PEP 562), so `import xval.errors` from `preprocessing` does not pull in the engine,
scikit-learn or pandas, and an experiment script can choose the backend and the GPU before
Keras is imported.
"""

import importlib

# Public name -> the module that defines it.
_EXPORTS = {
    "Config": "xval.config",
    "find_config": "xval.config",
    "load_config": "xval.config",
    "ConfigurationError": "xval.errors",
    "DatasetError": "xval.errors",
    "ParameterError": "xval.errors",
    "ResultsConflictError": "xval.errors",
    "TrainingError": "xval.errors",
    "XvalError": "xval.errors",
    "Experiment": "xval.experiment",
    "RunOutcome": "xval.experiment",
    "ItemKFold": "xval.folds",
    "PredefinedItemSplit": "xval.folds",
    "ExperimentResults": "xval.results",
    "Job": "xval.jobs",
    "FoldResult": "xval.jobs",
    "Status": "xval.jobs",
    "Search": "xval.search",
    "PLAIN_TRAINING": "xval.params",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'xval' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
