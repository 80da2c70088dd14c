"""A model's front end: the features computed inside the model from a waveform store's rows
(`front_end = mel | stft | mfcc`), their per-fold normalisation statistics, and the random
training crops of `random_crop_seconds`.

With `front_end = "mel"` on a `feature = waveform` store, the fold's model is

    audio (samples, 1) -> SpectralFrontEnd (the store's mel settings) -> Normalization
    (statistics of the fold's training rows, computed through that front end) -> the rest
    of the usual input layers -> the architecture

so a saved fold model takes audio, and computes what a `feature = mel` store built with the
same `[features]` values holds (`architectures.SpectralFrontEnd`). `front_end = "none"`
(the default) feeds the rows as they are.

Imports Keras where used: set the backend first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from preprocessing.features import PCM_SCALE, feature_shape, front_ends, get
from xval.core.constraints import StrOptions, satisfies
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import ConfigurationError
from xval.core.parameters import FeatureParams, InstanceParams, TrainingParams
from xval.training.encoder import check_model_encoder, encoder_front_end, uses_encoder
from xval.training.normalization import moments

LAYER_NAME = "front_end"
"""The name of the front-end layer in a fold model."""
SETTINGS = ("sample_rate", "n_fft", "hop_length", "n_mels", "n_mfcc", "fmin", "fmax",
            "compression", "power_exponent")
"""The feature parameters a front end reads from its store."""


def uses_front_end(params: TrainingParams) -> bool:
    """Whether an instance computes its features inside the model."""
    return params.front_end != "none"


def model_feature_params(feature_params: FeatureParams, params: TrainingParams
                         ) -> FeatureParams:
    """The feature parameters of what the model's first trained layer sees: the store's,
    with `feature` replaced by the front end when there is one.

    Args:
        feature_params: the store's (`dataset.json` `feature_params`).
        params: the instance's parameters (`front_end`).

    Returns:
        `FeatureParams`.
    """
    if uses_front_end(params):
        return feature_params.replace(feature=params.front_end)
    return feature_params


def check_front_end(params: InstanceParams, store_info: DatasetInfo, where: str) -> None:
    """Refuses a front end or a crop the store cannot take, before anything is written (the
    task's refusals are `Task.check_params`').

    Args:
        params: the instance's resolved parameters (`front_end`, `random_crop_seconds`,
            `reshaping_type`).
        store_info: the store's `dataset.json` (its `feature_params`).
        where: the instance, for messages (`"instance 3"`).

    Raises:
        ConfigurationError: naming the value, what was expected and the fix.
    """
    feature_params = store_info.feature_params
    feature = store_info.feature
    front_end = params.front_end
    if not satisfies(front_end, [StrOptions(front_ends)]):
        raise ConfigurationError(f"{where}: front_end={front_end!r}: expected one of "
                                 f"{', '.join(front_ends())}.")
    check_model_encoder(params, store_info, where)
    if front_end != "none":
        if not uses_encoder(params) and (feature is None or not get(str(feature)).waveform):
            raise ConfigurationError(
                f"{where}: front_end={front_end!r} computes {front_end} features from audio, "
                f"but the store holds {feature or 'unrecorded'} features; build a waveform "
                "store (`python -m preprocessing ... --feature waveform`) or set "
                "front_end='none'.")
        compression = feature_params.compression if feature_params is not None else None
        if compression == "pcen" and not uses_encoder(params) \
                and "compression" in get(str(front_end)).params:
            raise ConfigurationError(
                f"{where}: front_end={front_end!r} with the store's compression='pcen': "
                "pcen (a recursive filter over time) is computed by a store, not by a "
                f"model's front end; build a {front_end} store with --compression pcen and "
                "front_end='none', or the waveform store with another compression.")
    crop = float(params.random_crop_seconds or 0.0)
    if crop:
        segment = float(feature_params.segment_seconds) if feature_params is not None else 0.0
        if feature_params is None or crop >= segment:
            raise ConfigurationError(
                f"{where}: random_crop_seconds={crop:g} must be shorter than the store's "
                f"segments (segment_seconds={segment:g}); lower it, or build the store with "
                "longer segments.")
        if params.reshaping_type == "none":
            raise ConfigurationError(
                f"{where}: random_crop_seconds={crop:g} trains on windows shorter than the "
                "rows, so the model takes rows of any length: it needs reshaping_type "
                "'conv' or 'rnn' with an architecture that pools over time (audio_cnn, "
                "vgg_mini_pool, ...); set random_crop_seconds=0 otherwise.")


def crop_frames(params: TrainingParams, feature_params: FeatureParams | None) -> int:
    """The length of a training crop along a row's time axis (samples for a waveform
    store, frames otherwise), or 0 when the instance does not crop.

    Args:
        params: the instance's parameters (`random_crop_seconds`).
        feature_params: the store's (`None`: not recorded; then no crop is allowed).

    Returns:
        The length, or 0.
    """
    crop = float(params.random_crop_seconds or 0.0)
    if not crop or feature_params is None:
        return 0
    return int(feature_shape(feature_params.replace(segment_seconds=crop))[0])


def front_end_layer(params: InstanceParams, store_info: DatasetInfo) -> Any:
    """The front-end layer of an instance on a store, or `None` (`front_end = "none"`).

    Args:
        params: the instance's parameters (`front_end`).
        store_info: the store's `dataset.json` (`feature_params`; an `int16` store's rows
            are scaled back to [-1, 1) first).

    Returns:
        An `architectures.SpectralFrontEnd` named `front_end`, or `None`.
    """
    if not uses_front_end(params):
        return None
    if uses_encoder(params):
        return encoder_front_end(params, store_info)
    from architectures.front_end import (  # noqa: PLC0415  (imports Keras: backend set first)
        SpectralFrontEnd,
    )

    feature_params = store_info.feature_params or FeatureParams()  # a waveform store's
    scale = 1.0 / PCM_SCALE if feature_params.dtype == "int16" else 1.0
    settings = {k: v for k, v in feature_params.to_dict().items() if k in SETTINGS}
    if "compression" not in get(str(params.front_end)).params:  # mfcc: none applies
        settings.pop("compression", None)
    return SpectralFrontEnd(params.front_end, input_scale=scale, name=LAYER_NAME,
                            **settings)


def front_end_stats(layer: Any, features: Any, rows: np.ndarray, batch_rows: int = 64
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance per output bin of the front end over `rows` (the fold's original
    training rows), computed through the layer in batches.

    Args:
        layer: the front-end layer.
        features: the store's rows, `np.ndarray [shape=(n, samples, 1)]` (a memmap is fine).
        rows: the rows to use.
        batch_rows: rows per batch. Defaults to `64`.

    Returns:
        `(mean, variance)`, each `np.ndarray [shape=(bins,)]`, float32 (a constant bin's
        variance 1, as `xval.training.normalization.normalization_stats`).
    """
    from keras import ops  # noqa: PLC0415  (Keras: only once the backend is set)

    total = squares = None
    count = 0
    for start in range(0, len(rows), batch_rows):
        block = np.asarray(features[rows[start:start + batch_rows]], dtype=np.float32)
        out = ops.convert_to_numpy(layer(block)).astype(np.float64)
        out = out.reshape(-1, out.shape[-1])
        total = out.sum(axis=0) + (0.0 if total is None else total)
        squares = np.einsum("ij,ij->j", out, out) + (0.0 if squares is None else squares)
        count += out.shape[0]
    if total is None or squares is None:
        raise ConfigurationError("front_end_stats: no training rows.")
    return moments(total, squares, count)
