"""Model assembly: a fold's network from the instance parameters (input augmentation and
normalisation, reshaping, the architecture or a transferred backbone) and its optimizer.

Imports Keras where used: set the backend first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import architectures
from preprocessing.features import bin_frequencies, feature_shape
from preprocessing.store import FeatureStore
from xval import tasks
from xval.core.errors import ConfigurationError, TrainingError
from xval.core.parameters import InstanceParams
from xval.training.encoder import scale_encoder_rate, uses_encoder
from xval.training.front_end import model_feature_params, uses_front_end
from xval.training.layers import inner_model
from xval.training.loading import load

OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
"""`optimizer` parameter -> the `keras.optimizers` class."""


def reshape_layer(reshaping_type: str, shape: tuple[int, ...]) -> tuple[Any, tuple[int, ...]]:
    """The layer between the features and the architecture, and the shape it gives.

    Args:
        reshaping_type: `"conv"` (a channel axis: `(time, frequency, 1)`), `"none"`
            (flattened) or anything else (the features as they are).
        shape: `(time, frequency)` of one row (`time` `None`: any length).

    Returns:
        `(layer or None, output shape)`.
    """
    from keras import layers  # noqa: PLC0415  (Keras: only once the backend is set)

    if reshaping_type == "conv":
        # Rows of any length (random crops): the time axis is inferred.
        target = (-1, *shape[1:], 1) if shape[0] is None else (*shape, 1)
        return layers.Reshape(target, name="to_image"), (*shape, 1)
    if reshaping_type == "none":
        return layers.Flatten(name="flatten_features"), (int(np.prod(shape)),)
    return None, tuple(shape)


def store_frequencies(store: FeatureStore, params: InstanceParams) -> np.ndarray | None:
    """The centre frequency of every feature bin the model sees (the store's, or its front
    end's) when `params` warp frequencies (`freq_warp`), else `None` (also for a store
    without recorded feature parameters)."""
    feature_params = store.info.feature_params
    if not params.freq_warp or not feature_params or uses_encoder(params):
        return None
    seen = model_feature_params(feature_params, params)
    freqs = bin_frequencies(seen)
    bins = feature_shape(seen)[1] if uses_front_end(params) else store.features.shape[-1]
    if freqs is None or len(freqs) != bins:
        return None
    return freqs


def input_layers(params: InstanceParams, x: Any, mean: np.ndarray, variance: np.ndarray,
                 frequencies: np.ndarray | None) -> Any:
    """The layers before the architecture: warps, normalisation, row normalisation and
    SpecAugment, applied to the features `x` (a Keras tensor). After an encoder inside the
    model, the normalisation alone: its SpecAugment acts on its own spectrogram
    (`xval.training.encoder`), and warps and row normalisation do not apply to embeddings."""
    # The warps and the normalisation in float32 under mixed precision: they take the raw
    # features (a power spectrogram passes float16's 65,504), and a small variance
    # underflows float16, a division by it being infinite.
    normalization = architectures.FeatureNormalization(mean=mean, variance=variance,
                                                       dtype="float32", name="normalization")
    if uses_encoder(params):
        return normalization(x)
    if params.freq_warp:
        # On the raw features, before the per-bin normalisation: the stretch moves content
        # between bins, and each bin is then normalised with its own statistics as usual.
        x = architectures.FrequencyWarp(max_warp=params.freq_warp, frequencies=frequencies,
                                        dtype="float32", name="freq_warp")(x)
    if params.time_warp:
        x = architectures.TimeWarp(max_warp=params.time_warp, dtype="float32",
                                   name="time_warp")(x)
    x = normalization(x)
    if params.row_normalization != "none":
        # After the dataset normalisation (a per-bin affine map, which this undoes exactly),
        # so the statistics of the first layer stay those of the raw features.
        x = architectures.RowNormalization(mode=params.row_normalization,
                                           ignore_floor_frames=True,
                                           name="row_normalization")(x)
    if params.time_masks or params.freq_masks:
        x = architectures.SpecAugment(
            time_masks=params.time_masks, time_mask_fraction=params.time_mask_fraction,
            freq_masks=params.freq_masks, freq_mask_fraction=params.freq_mask_fraction,
            name="spec_augment")(x)
    return x


def build_model(params: InstanceParams, input_shape: tuple[int | None, ...], num_outputs: int,
                task_type: str, mean: np.ndarray, variance: np.ndarray,
                frequencies: np.ndarray | None = None, front_end: Any = None) -> Any:
    """Builds the fold's model: the front end, normalisation and reshaping, then the
    architecture.

    The normalisation statistics (from the fold's training rows) live in the model, so a
    saved model takes raw features `(time, frequency)` (or, with a front end, audio) and
    predicts on its own.

    Args:
        params: resolved instance parameters.
        input_shape: `(time, frequency)` of one row (`(samples, 1)` for a waveform store;
            `time` `None`: rows of any length, for random crops).
        num_outputs: units of the output head (`Targets.num_outputs`).
        task_type: the task's name (see `xval.tasks`).
        mean: per-frequency mean, `np.ndarray [shape=(frequency,)]`.
        variance: per-frequency variance, same shape.
        frequencies: centre frequency (Hz) of every bin, for `freq_warp`
            (`preprocessing.features.bin_frequencies`); `None`: evenly spaced bins.
        front_end: the layer computing features from the rows (`xval.training.front_end`),
            or `None`; `mean`, `variance` and `frequencies` are then those of its output.
            Defaults to `None`.

    Returns:
        A `keras.Model` from `(time, frequency)` features (or audio) to logits (or values).

    Raises:
        TrainingError: for a `load_model` that cannot be used (see `transfer_backbone`).
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    inputs = keras.Input(tuple(input_shape), name="features" if front_end is None else "audio")
    x = inputs if front_end is None else front_end(inputs)
    shape = tuple(x.shape[1:])
    x = input_layers(params, x, mean, variance, frequencies)
    reshape, shape = reshape_layer(params.reshaping_type, shape)
    if reshape is not None:
        x = reshape(x)
    if params.load_model:
        base = transfer_backbone(params, num_outputs, task_type)
    else:
        builder = architectures.get(params.architecture)
        kwargs = {k: params[k] for k in architectures.keyword_defaults(params.architecture)}
        base = builder(shape, num_outputs, task_type, **kwargs)
    return keras.Model(inputs, base(x), name=f"xval_{params.architecture}")


def transfer_backbone(params: InstanceParams, num_outputs: int, task_type: str) -> Any:
    """The backbone of the saved model `load_model`, its head replaced when the outputs
    differ, with its first `freeze_layers` layers frozen (-1: every convolution).

    Raises:
        TrainingError: for a model that cannot be loaded, a head that is not `Dense`, or
            more layers to freeze than it has.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)
    from keras import layers  # noqa: PLC0415  (as above)

    path = Path(str(params.load_model))
    try:
        saved = load(path, what="load_model")
    except ConfigurationError as e:
        raise TrainingError(str(e)) from e
    base = inner_model(saved) or saved
    if base.outputs[0].shape[-1] != num_outputs:
        head = base.layers[-1]
        if not isinstance(head, layers.Dense):
            raise TrainingError(
                f"Cannot replace the head of {path.name}: its last layer is "
                f"{type(head).__name__}, not Dense."
            )
        base = keras.Model(base.inputs,
                           tasks.get(task_type).head.layer(head.input, num_outputs),
                           name=f"{base.name}_transfer")
    freeze_layers(base, params.freeze_layers, path.name)
    return base


def check_transfer(params: InstanceParams, row_shape: tuple[int, ...], where: str) -> None:
    """Checks an instance's `load_model` when the run is planned, before anything is
    written: the file is a model Keras loads (safe mode), it takes rows of the store's shape,
    and it has at least `freeze_layers` layers.

    Args:
        params: the resolved parameters (`load_model`, `freeze_layers`).
        row_shape: the shape of one store row, `(time, frequency)`.
        where: the instance, for the message (`"instance 3"`).

    Raises:
        ConfigurationError: naming the model, what it holds and the fix.
    """
    path = Path(str(params.load_model))
    saved = load(path, what=f"{where}: load_model")
    base = inner_model(saved) or saved
    takes = tuple(base.inputs[0].shape[1:])
    if not _shapes_match(takes, tuple(row_shape)):
        raise ConfigurationError(
            f"{where}: load_model={str(path)!r} takes rows of shape "
            f"{tuple(d for d in takes)}, but the store's rows are {tuple(row_shape)}; load a "
            "model trained on features made with the same parameters (dataset.json "
            "feature_params), or build the store with its parameters.")
    body = [layer for layer in base.layers if type(layer).__name__ != "InputLayer"]
    freeze = int(params.freeze_layers or 0)
    if freeze > len(body):
        raise ConfigurationError(
            f"{where}: freeze_layers={freeze} but {path.name} has {len(body)} layers; use at "
            f"most {len(body)}.")


def _shapes_match(takes: tuple[Any, ...], rows: tuple[int, ...]) -> bool:
    """Whether a model input of shape `takes` (`None`: any size; a trailing channel of 1
    allowed) accepts rows of shape `rows`."""
    if len(takes) == len(rows) + 1 and takes[-1] == 1:
        takes = takes[:-1]
    return len(takes) == len(rows) and all(t is None or t == r for t, r in zip(takes, rows))


def freeze_layers(base: Any, freeze: int, name: str) -> None:
    """Freezes the first `freeze` layers of `base` (-1: every convolution).

    Raises:
        TrainingError: when `base` has fewer layers than `freeze`.
    """
    from keras import layers  # noqa: PLC0415  (Keras: only once the backend is set)

    body = [layer for layer in base.layers if not isinstance(layer, layers.InputLayer)]
    if freeze == -1:
        for layer in body:
            if isinstance(layer, (layers.Conv1D, layers.Conv2D)):
                layer.trainable = False
    elif freeze > len(body):
        raise TrainingError(
            f"freeze_layers={freeze} but {name} has {len(body)} layers; use at most "
            f"{len(body)}."
        )
    else:
        for layer in body[:freeze]:
            layer.trainable = False


def make_optimizer(params: InstanceParams, steps_per_epoch: int, model: Any = None) -> Any:
    """The optimizer, with the learning-rate schedule and warm-up of `params`.

    Args:
        params: the instance parameters (`optimizer`, `learning_rate`, `lr_schedule`,
            `warmup_epochs`, `epochs`).
        steps_per_epoch: batches per epoch (the schedules count steps).
        model: the model it will train; with an encoder inside whose blocks train, their
            rate is scaled. Defaults to `None`.

    Returns:
        A `keras.optimizers.Optimizer` (an encoder's trained blocks at `encoder_lr_scale`
        times the rate: `xval.training.encoder.scale_encoder_rate`), in a loss-scale
        optimizer under `mixed_precision`. Neither its schedule nor its loss scaling reads
        a value back to the host in a step (`architectures.optimizers`).
    """
    optimizer = _optimizer(params, steps_per_epoch)
    if model is not None and uses_encoder(params) and params.encoder_trainable_blocks:
        optimizer = scale_encoder_rate(optimizer, model, float(params.encoder_lr_scale))
    if params.mixed_precision:  # what Keras's compile would wrap it in, without host branch
        optimizer = architectures.DeviceLossScaleOptimizer(optimizer)
    return optimizer


def _optimizer(params: InstanceParams, steps_per_epoch: int) -> Any:
    """`make_optimizer` without the encoder's rate. A schedule's steps per epoch are a
    variable of the optimizer (`architectures.EpochSchedule`): the folds of an instance,
    whose training rows differ, compile one training step."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    cls = getattr(keras.optimizers, OPTIMIZERS[params.optimizer])
    kwargs = {"momentum": 0.9} if params.optimizer == "sgd" else {}
    if params.lr_schedule != "cosine" and not params.warmup_epochs:
        return cls(learning_rate=params.learning_rate, **kwargs)
    schedule = architectures.EpochSchedule(
        params.learning_rate, epochs=params.epochs, warmup_epochs=params.warmup_epochs,
        cosine=params.lr_schedule == "cosine", steps_per_epoch=steps_per_epoch)
    return schedule.attach(cls(learning_rate=schedule, **kwargs))
