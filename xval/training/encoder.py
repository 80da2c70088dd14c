"""Pretrained encoders inside a fold's model (`architectures.encoders`), two ways:

- **On the encoder's embedding store** (`feature = pretrained`, `encoder = aisfx`): the head
  trains on the stored embeddings (the encoder's frozen output, computed once per file: as
  fast as a head can train), and the fold's saved model is the encoder's layers followed by
  that head (`audio_model`), so `fold_<i>.keras` and `final.keras` take audio.
- **On a waveform store at the encoder's rate** (`front_end = "aisfx"`, or a transformers
  model, `front_end = "hf:FOLDER_OR_HUB_ID"`): the encoder's layers are the model's first
  layers (`encoder_front_end`), frozen, or with their last `encoder_trainable_blocks`
  blocks trained at `encoder_lr_scale` times the learning rate (`scale_encoder_rate`);
  SpecAugment masks act on its input spectrogram (a speech model's: time masks on its
  waveform), mixup on the audio. Costs the encoder's forward pass every epoch: a GPU job.
  A transformers network runs on the torch backend only (refused on the others before
  anything trains); its last layer's states feed the head (CLAP: the projected embedding).

Both give models from audio `(samples, 1)` to the task's outputs whose first layer (a
nested model) is named `front_end`, as the spectral front ends' (`xval.training.front_end`).

Imports Keras where used: set the backend first.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import architectures
from architectures.hf import LocalModel, names_model
from preprocessing.features import encoders
from preprocessing.features import get as feature_type
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import ConfigurationError
from xval.core.parameters import FeatureParams, InstanceParams

LAYER_NAME = "front_end"
"""The name of the nested encoder model in a fold model (as `xval.training.front_end`)."""


def uses_encoder(params: InstanceParams) -> bool:
    """Whether an instance holds a pretrained encoder inside its model (`front_end`)."""
    return params.front_end in encoders.in_model() or names_model(params.front_end)


def _backend() -> str:
    """The Keras backend of this run (set before Keras is imported; `""`: not yet set)."""
    if "keras" in sys.modules:
        import keras  # noqa: PLC0415  (already imported: no cost)

        return str(keras.backend.backend())
    return os.environ.get("KERAS_BACKEND", "")


def encoder_of_store(info: DatasetInfo) -> str | None:
    """The encoder whose frozen output an embedding store holds, when its network is Keras
    layers and the store was built by them (`front_end.peak == "segment"`: stores built
    before, whose segments were scaled by the file's peak, keep models on embeddings)."""
    described = info.front_end or {}
    name = described.get("encoder")
    if name in encoders.in_model() and described.get("peak") == "segment":
        return str(name)
    return None


def check_model_encoder(params: InstanceParams, store_info: DatasetInfo, where: str) -> None:
    """Refuses an encoder inside the model that the store cannot feed, fine-tuning without
    one, and an embedding store whose encoder's installed weights are not its own, before
    anything is written.

    Args:
        params: the instance's resolved parameters (`front_end`,
            `encoder_trainable_blocks`).
        store_info: the store's `dataset.json`.
        where: the instance, for messages (`"instance 3"`).

    Raises:
        ConfigurationError: naming the value, what was expected and the fix.
    """
    name, trained = params.front_end, int(params.encoder_trainable_blocks)
    if not uses_encoder(params):
        if trained:
            raise ConfigurationError(
                f"{where}: encoder_trainable_blocks={trained} trains the blocks of an "
                f"encoder inside the model, but front_end={name!r}; set front_end to one of "
                f"{', '.join(encoders.in_model())} or hf:FOLDER_OR_HUB_ID (on a waveform "
                "store) or encoder_trainable_blocks=0.")
        _check_store_weights(store_info, where)
        return
    if names_model(name):
        _check_transformers(params, store_info, where)
        return
    entry = encoders.BUILT_IN.get(name)
    if trained > entry.blocks:
        raise ConfigurationError(
            f"{where}: encoder_trainable_blocks={trained}, but {name} has {entry.blocks} "
            f"blocks; use 0 to {entry.blocks}.")
    cls = entry.make
    _check_waveform_store(name, int(cls.sample_rate), store_info, where)
    samples = (store_info.feature_params or FeatureParams()).segment_samples
    rate = int(cls.sample_rate)
    if samples < cls.block_length:
        raise ConfigurationError(
            f"{where}: front_end={name!r}: the store's segments "
            f"({samples / rate:.3g} s) are shorter than one block of {name} "
            f"({cls.block_length / rate:.3g} s); build the store with segment_seconds >= "
            f"{cls.block_length / rate:.2f}.")


def _check_transformers(params: InstanceParams, store_info: DatasetInfo, where: str) -> None:
    """A transformers model inside the model: the torch backend, the model on this disk with
    weights its safe loader reads, a waveform store at its rate with segments it can read,
    blocks it has."""
    name, trained = params.front_end, int(params.encoder_trainable_blocks)
    backend = _backend()
    if backend and backend != "torch":
        raise ConfigurationError(
            f"{where}: front_end={name!r} runs the transformers network in torch, but this "
            f"run's Keras backend is {backend}; set [backend] backend = torch (or "
            "KERAS_BACKEND=torch), or train on the model's embedding store (python -m "
            f"preprocessing ... --encoders {name}) with front_end='none'.")
    try:
        model = LocalModel(name)
        model.check_weights()  # a pickle torch's safe loader refuses: before the run starts
    except ConfigurationError as e:
        raise ConfigurationError(f"{where}: front_end={name!r}: {e}") from None
    family = model.family
    if trained > family.block_count():
        raise ConfigurationError(
            f"{where}: encoder_trainable_blocks={trained}, but {name} has "
            f"{family.block_count()} blocks; use 0 to {family.block_count()}.")
    _check_waveform_store(name, family.sample_rate, store_info, where)
    samples = (store_info.feature_params or FeatureParams()).segment_samples
    try:
        family.check_segment(samples, name)
    except ConfigurationError as e:
        raise ConfigurationError(f"{where}: front_end={name!r}: {e} (the waveform store's "
                                 "segment_seconds)") from None


def _check_waveform_store(name: str, rate: int, store_info: DatasetInfo, where: str) -> None:
    """A waveform store at the encoder's rate."""
    feature = store_info.feature
    if feature is None or not feature_type(str(feature)).waveform:
        raise ConfigurationError(
            f"{where}: front_end={name!r} puts the {name} encoder inside the model, which "
            f"reads audio, but the store holds {feature or 'unrecorded'} features; build a "
            f"waveform store at {rate} Hz (`python -m preprocessing ... --feature "
            f"waveform --sample-rate {rate}`), or train on an {name} embedding "
            f"store (`--encoders {name}`) with front_end='none'.")
    params = store_info.feature_params
    found = int(params.sample_rate) if params is not None else 0
    if params is None or found != rate:
        raise ConfigurationError(
            f"{where}: front_end={name!r} reads {rate} Hz audio, but the store's "
            f"rows are at {found} Hz; build the waveform store with --sample-rate "
            f"{rate}.")


def _check_store_weights(store_info: DatasetInfo, where: str) -> None:
    """An embedding store of an in-model encoder: the installed weights are the store's."""
    name = encoder_of_store(store_info)
    if name is None:
        return
    recorded = (store_info.front_end or {}).get("weights_sha256")
    entry = encoders.BUILT_IN.get(name)
    installed = encoders.weights_sha256(name)
    if recorded and installed != recorded:
        raise ConfigurationError(
            f"{where}: the {name} weights installed here (sha256 {installed[:12]}) are not "
            f"those the store was built with ({str(recorded)[:12]}), so its models could not "
            f"take audio; install the encoder the store was built with ({entry.install}), "
            "or rebuild the store.")


def _spectrogram_layers(params: InstanceParams) -> list[Any]:
    """SpecAugment on the encoder's log-mel spectrogram while training (the masks of
    `time_masks` and `freq_masks`)."""
    if not (params.time_masks or params.freq_masks):
        return []
    return [architectures.SpecAugment(
        time_masks=params.time_masks, time_mask_fraction=params.time_mask_fraction,
        freq_masks=params.freq_masks, freq_mask_fraction=params.freq_mask_fraction,
        name="spec_augment")]


def encoder_front_end(params: InstanceParams, store_info: DatasetInfo) -> Any:
    """The encoder of `front_end` as a fold model's first layer, on a waveform store.

    Args:
        params: the instance's parameters (`front_end`, `encoder_trainable_blocks`, the
            SpecAugment masks).
        store_info: the waveform store's `dataset.json` (rate, segments, hop, dtype).

    Returns:
        A `keras.Model` named `front_end`, from `(samples, 1)` rows to the encoder's
        `(blocks, dim)` embeddings.
    """
    from architectures.encoders import build_encoder  # noqa: PLC0415  (imports Keras)
    from preprocessing.features import PCM_SCALE  # noqa: PLC0415  (a constant)

    feature_params = store_info.feature_params or FeatureParams()  # checked: never None
    scale = 1.0 / PCM_SCALE if feature_params.dtype == "int16" else 1.0
    hop = 0 if names_model(params.front_end) \
        else int(encoders.BUILT_IN.get(params.front_end).make.hop_length)
    return build_encoder(params.front_end, feature_params.segment_samples, hop_length=hop,
                         trainable_blocks=int(params.encoder_trainable_blocks),
                         input_scale=scale, spectrogram_layers=_spectrogram_layers(params),
                         model_name=LAYER_NAME)


def audio_model(model: Any, store_info: DatasetInfo) -> Any:
    """A model trained on an in-model encoder's embedding store, with the encoder's frozen
    layers in front: audio in, as the store's segments (`encoder_of_store`).

    Args:
        model: the trained fold model, from `(blocks, dim)` embeddings.
        store_info: its store's `dataset.json`.

    Returns:
        A `keras.Model` from `(samples, 1)` audio at the store's rate (input `audio`), or
        `None` when the store is not such a store.
    """
    name = encoder_of_store(store_info)
    if name is None:
        return None
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    from architectures.encoders import build_encoder  # noqa: PLC0415  (imports Keras)

    params = store_info.feature_params or FeatureParams()  # an encoder's store: never None
    encoder = build_encoder(name, params.segment_samples,
                            hop_length=int(params.hop_length), model_name=LAYER_NAME)
    inputs = keras.Input(tuple(encoder.inputs[0].shape[1:]), name="audio")
    # `call` runs the head's layers on the encoder's output one by one (its `__call__`
    # would nest it as one layer): one flat graph, as a model built with a front end, so
    # that `embed` and the embedding classifiers find its layers by name.
    return keras.Model(inputs, model.call(encoder(inputs)), name=model.name)


def scale_encoder_rate(optimizer: Any, model: Any, scale: float) -> Any:
    """Makes `optimizer` update the encoder's trained variables (those of `model`'s nested
    `front_end` model) at `scale` times its learning rate.

    Keras optimizers take one learning rate. Every backend's `apply` hands the gradients of
    one step to the optimizer's `_backend_update_step(grads, variables, learning_rate)`
    (the torch backend updates them together there, the others one by one): it is called
    here twice per step, for the head's variables at the rate, and for the encoder's at
    `scale` times it. The step counter still counts one step.

    Args:
        optimizer: a `keras.optimizers.Optimizer`, not yet built.
        model: the fold model.
        scale: the encoder's fraction of the learning rate, in (0, 1].

    Returns:
        The same optimizer.
    """
    if scale == 1.0:
        return optimizer
    paths = {v.path for v in model.get_layer(LAYER_NAME).trainable_variables}
    update = optimizer._backend_update_step

    def backend_update_step(grads: list[Any], variables: list[Any],
                            learning_rate: Any) -> None:
        encoder = [k for k, v in enumerate(variables) if v.path in paths]
        head = [k for k in range(len(variables)) if k not in set(encoder)]
        for group, rate in ((head, learning_rate), (encoder, learning_rate * scale)):
            if group:
                update([grads[k] for k in group], [variables[k] for k in group], rate)

    optimizer._backend_update_step = backend_update_step
    return optimizer
