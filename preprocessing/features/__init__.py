"""Features of audio, oriented `(frames, bins)`: the feature-type registry (stft, mel, mfcc,
cqt, waveform and any type registered with `register`) and fixed-length segmentation.

Where to add a feature type: see `preprocessing.features.registry`.
"""

import preprocessing.features.spectral  # noqa: F401  (registers the built-in types)
import preprocessing.features.waveform  # noqa: F401  (registers the waveform type)
from preprocessing.features.front_ends import front_end_features, front_ends
from preprocessing.features.registry import (
    PCM_SCALE,
    STORAGE_TYPES,
    TYPES,
    FeatureType,
    bin_frequencies,
    centred_frames,
    compute_features,
    feature_shape,
    front_end,
    get,
    names,
    parameter_names,
    register,
)
from preprocessing.features.segments import segment, window_starts, windows

__all__ = ["PCM_SCALE", "STORAGE_TYPES", "TYPES", "FeatureType", "bin_frequencies",
           "centred_frames", "compute_features",
           "feature_shape", "front_end", "front_end_features", "front_ends", "get", "names", "parameter_names", "register", "segment",
           "window_starts", "windows"]

# Registered after the spectral types (the order of `names()`): the pretrained front ends.
import preprocessing.features.pretrained  # noqa: E402, F401
import preprocessing.features.stacked  # noqa: E402, F401  (encoders' stores side by side)
