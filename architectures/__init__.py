"""Keras 3 model builders for audio, looked up by name.

Importing this package imports Keras: set `KERAS_BACKEND` and `CUDA_VISIBLE_DEVICES` first.
A builder declares the valid values of its keywords in their annotations
(`architectures.keywords`); `check_keywords` refuses values outside them.
"""

# The builders register themselves on import; the encoders' layers too (saved models that
# hold them load after `import architectures`).
from architectures import autoencoder, cnn, detection, fast_detection, pretrained, recurrent  # noqa: F401
from architectures.encoders import AisfxFrontEnd, AisfxNetwork, build_encoder
from architectures.front_end import SpectralFrontEnd
from architectures.layers import (
    TRAINING_ONLY,
    FrequencyWarp,
    RowNormalization,
    SpecAugment,
    StatisticsPooling,
    TimeWarp,
)
from architectures.registry import (
    check_keywords,
    get,
    keyword_defaults,
    keyword_domains,
    names,
    outputs,
    register,
    reshaping_types,
)

__all__ = [
    "TRAINING_ONLY",
    "AisfxFrontEnd",
    "AisfxNetwork",
    "build_encoder",
    "FrequencyWarp",
    "RowNormalization",
    "SpecAugment",
    "SpectralFrontEnd",
    "StatisticsPooling",
    "TimeWarp",
    "check_keywords",
    "get",
    "keyword_defaults",
    "keyword_domains",
    "names",
    "register",
    "outputs",
    "reshaping_types",
]
