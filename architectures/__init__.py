"""Keras 3 model builders for audio, looked up by name.

Importing this package imports Keras: set `KERAS_BACKEND` and `CUDA_VISIBLE_DEVICES` first.
"""

from architectures import autoencoder, cnn, detection, recurrent  # noqa: F401  (registers the builders)
from architectures.layers import (
    FrequencyWarp,
    RowNormalization,
    SpecAugment,
    StatisticsPooling,
    TimeWarp,
)
from architectures.registry import (
    get,
    keyword_defaults,
    names,
    outputs,
    register,
    reshaping_types,
)

__all__ = [
    "FrequencyWarp",
    "RowNormalization",
    "SpecAugment",
    "StatisticsPooling",
    "TimeWarp",
    "get",
    "keyword_defaults",
    "names",
    "register",
    "outputs",
    "reshaping_types",
]
