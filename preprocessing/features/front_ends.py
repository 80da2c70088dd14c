"""The values of the `front_end` instance parameter: what a model computes from a waveform
store's rows in its first layers (a spectral feature type, or a pretrained encoder's
layers: a built-in one, or a transformers model, `hf:NAME` or a path or hub id with a `/`,
`architectures.hf.names_model`), bound to the schema's `[training] front_end` key."""

import xval.config.schema as schema
from architectures.hf import HF_PREFIX, LocalModel, names_model
from preprocessing.features.encoders import BUILT_IN as ENCODERS
from preprocessing.features.encoders import in_model as encoders_in_model
from preprocessing.features.registry import TYPES, FeatureType, get, names
from xval.core.errors import ConfigurationError

HF_FRONT_END = f"{HF_PREFIX}*"
"""The `front_end` choice that stands for every transformers model named `hf:NAME`."""
PATH_FRONT_END = "*/*"
"""The `front_end` choice that stands for a transformers model named by its path or hub id
without `hf:` (`./wavlm`, `/models/wavlm`, `ORG/NAME`): what `names_model` says."""

__all__ = ["front_end_features", "front_ends"]


def front_ends() -> list[str]:
    """The values of the `front_end` instance parameter: `none` (the rows as they are), the
    feature types a model computes from a waveform store (`FeatureType.in_model`) and the
    encoders whose networks are Keras layers (`preprocessing.features.encoders.in_model`)."""
    return ["none", *(name for name in names() if TYPES.get(name).in_model),
            *encoders_in_model(), HF_FRONT_END, PATH_FRONT_END]


def front_end_features(name: str) -> FeatureType:
    """The features that a front end's training options act on: the feature type itself,
    or for an encoder inside the model its log-mel input spectrogram (its SpecAugment masks
    act there; a transformers speech model's input is the waveform)."""
    if names_model(name):
        try:
            waveform = LocalModel(name).family.waveform_input
        except ConfigurationError:  # refused with the instance named, before training
            waveform = False           # (`xval.training.encoder.check_model_encoder`)
        return get("waveform" if waveform else "mel")
    return get("mel" if name in ENCODERS else name)


def _front_end_summary(name: str) -> str:
    if name == "none":
        return ""
    if name in ENCODERS:
        return f"the {name} encoder's layers ({ENCODERS.get(name).trained_on})"
    if name == HF_FRONT_END:
        return ("a transformers model's layers, hf:FOLDER_OR_HUB_ID: wav2vec2, HuBERT, WavLM, "
                "data2vec-audio, Whisper, AST, CLAP; torch backend")
    if name == PATH_FRONT_END:
        return "the same, named by a path or ORG/NAME hub id without hf: (./wavlm)"
    return TYPES.get(name).summary


# An instance's front_end accepts `none`, the types a model can compute and the encoders.
schema.bind_choices("training", "front_end", front_ends, describe=_front_end_summary)
