"""Keras 3 cross-validation experiment manager for audio.

Importing `xval` does not import Keras, so that an experiment script can choose the
backend and the GPU first.
"""

from xval.config import Config, find_config, load_config
from xval.errors import (
    ConfigurationError,
    DatasetError,
    ParameterError,
    ResultsConflictError,
    TrainingError,
    XvalError,
)
from xval.experiment import Experiment, RunOutcome
from xval.folds import ItemKFold, PredefinedItemSplit
from xval.results import ExperimentResults

__all__ = [
    "Config",
    "ConfigurationError",
    "DatasetError",
    "Experiment",
    "ExperimentResults",
    "ItemKFold",
    "ParameterError",
    "PredefinedItemSplit",
    "ResultsConflictError",
    "RunOutcome",
    "TrainingError",
    "XvalError",
    "find_config",
    "load_config",
]
