"""Keras 3 model builders for audio, looked up by name.

Importing this package imports no deep-learning backend: the builders import Keras when
they build a model, so their keywords and defaults are read (a dry run, `python -m xval
config`) without one. The custom layers are registered with Keras as soon as Keras is
imported (`architectures.custom_layers`), so a saved model loads with plain
`keras.saving.load_model` after `import architectures`; set `KERAS_BACKEND` and
`CUDA_VISIBLE_DEVICES` before the first model is built or loaded. A builder declares the
valid values of its keywords in their annotations (`architectures.keywords`);
`check_keywords` refuses values outside them.
"""

from typing import TYPE_CHECKING

import xval  # noqa: F401  (first: refuses a namesake of this package, xval.core.namesakes)

# The builders register themselves on import (none imports Keras at the top).
from architectures import (  # noqa: F401
    autoencoder,
    cnn,
    detection,
    fast_detection,
    pretrained,
    recurrent,
)
from architectures.custom_layers import import_layers, layer, when_imported
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

if TYPE_CHECKING:  # the names `__getattr__` gives, for the type checker
    from architectures.encoders import AisfxFrontEnd, AisfxNetwork, build_encoder
    from architectures.front_end import SpectralFrontEnd
    from architectures.layers import (
        TRAINING_ONLY,
        FeatureNormalization,
        FrequencyWarp,
        RowNormalization,
        SpecAugment,
        TimeWarp,
    )
    from architectures.optimizers import (
        DeviceLossScaleOptimizer,
        EpochSchedule,
        WarmupCosineDecay,
    )
    from architectures.pooling import StatisticsPooling

__distribution__ = "audio-xval"
"""Whose package this is (`xval.core.namesakes` tells it from a namesake's)."""

__all__ = [
    "TRAINING_ONLY",
    "AisfxFrontEnd",
    "AisfxNetwork",
    "build_encoder",
    "DeviceLossScaleOptimizer",
    "EpochSchedule",
    "FeatureNormalization",
    "FrequencyWarp",
    "RowNormalization",
    "SpecAugment",
    "SpectralFrontEnd",
    "StatisticsPooling",
    "TimeWarp",
    "WarmupCosineDecay",
    "check_keywords",
    "get",
    "keyword_defaults",
    "keyword_domains",
    "names",
    "register",
    "outputs",
    "reshaping_types",
]

when_imported("keras", import_layers)

__getattr__ = layer  # the layers, imported with Keras when first asked for
