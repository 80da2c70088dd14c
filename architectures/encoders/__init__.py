"""Pretrained encoders as Keras 3 layers: aisfx with the weights that ship in its wheel, and
any supported `transformers` audio model on this disk (`hf:FOLDER_OR_HUB_ID`, torch backend
only: `architectures.encoders.hf`).

| name | what | rate | block | dim | licence |
|---|---|---|---|---|---|
| `aisfx` | sound-effects CNN (ISMIR 2022) | 44.1 kHz | 2.3 s | 512 | CC BY 4.0 |
| `hf:NAME` | wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper, AST, CLAP | the model's | its frames | its | its card's |

An embedding store of one of them (`feature = pretrained`, `encoder = NAME`) is its frozen
output, computed once per file; a model holds the same layers to take audio, frozen or with
its last blocks trained. BirdNET stays a store encoder: its network ships as TFLite, which
cannot be Keras layers (and its weights are for non-commercial use only).

Importing this package imports Keras: set the backend first.
"""

from collections.abc import Sequence
from typing import Any

import keras

from architectures.encoders.aisfx import (
    AISFX,
    FRAME_SHIFTS,
    SPEC_HOP,
    TIME_STRIDE,
    AisfxFrontEnd,
    AisfxNetwork,
    aisfx_encoder,
    aisfx_state,
    aisfx_weights,
)
from architectures.encoders.hf import (
    TransformersFeatures,
    TransformersNetwork,
    transformers_encoder,
)
from architectures.hf import LocalModel, names_model

__all__ = ["AISFX", "AISFX_FRAMES", "ENCODERS", "AisfxFrontEnd", "AisfxNetwork",
           "TransformersFeatures", "TransformersNetwork", "aisfx_encoder", "aisfx_state", "aisfx_weights",
           "build_encoder", "transformers_encoder"]

ENCODERS = (AISFX,)
"""The encoders whose networks are Keras layers here."""
AISFX_FRAMES = "aisfx_frames"
"""aisfx in frame mode (`AisfxNetwork(shifts=...)`): what an `aisfx_frames` store runs."""


def build_encoder(name: str, samples: int, *, hop_length: int, trainable_blocks: int = 0,
                  input_scale: float = 1.0, spectrogram_layers: Sequence[Any] = (),
                  model_name: str | None = None) -> keras.Model:
    """An encoder from audio rows to its embeddings, with its wheel's weights.

    Args:
        name: one of `ENCODERS`, `"aisfx_frames"` (aisfx in frame mode, a frame every
            `hop_length` samples), or a transformers model on this disk, `hf:NAME` or a
            path or hub id with a `/` (`architectures.hf.names_model`; its last layer's
            states; torch backend).
        samples: samples of one row at the encoder's rate.
        hop_length: samples between two embeddings (a block encoder's hop between blocks;
            a transformers model's are its own).
        trainable_blocks: its last blocks that train (0: frozen). Defaults to `0`.
        input_scale: multiplies the rows first. Defaults to `1.0`.
        spectrogram_layers: layers applied to its input spectrogram (SpecAugment).
            Defaults to none.
        model_name: the model's name. Defaults to the encoder's.

    Returns:
        A `keras.Model` from `(batch, samples, 1)` to `(batch, frames, dim)`.

    Raises:
        ValueError: for an unknown encoder, listing the known ones.
    """
    if names_model(name):
        model = LocalModel(name)
        return transformers_encoder(model, samples, trainable_blocks=trainable_blocks,
                                    input_scale=input_scale,
                                    spectrogram_layers=spectrogram_layers,
                                    name=model_name or name)
    if name == AISFX_FRAMES:  # frame mode: a frame every `hop_length` samples
        hops = [TIME_STRIDE * SPEC_HOP // shifts for shifts in FRAME_SHIFTS]
        if hop_length not in hops:
            raise ValueError(f"hop_length={hop_length!r}: {AISFX_FRAMES} gives a frame every "
                             f"{', '.join(map(str, hops))} samples (default 4096).")
        return aisfx_encoder(samples, shifts=TIME_STRIDE * SPEC_HOP // int(hop_length),
                             trainable_blocks=trainable_blocks, input_scale=input_scale,
                             spectrogram_layers=spectrogram_layers, name=model_name or name)
    if name != AISFX:
        raise ValueError(f"encoder={name!r}: expected one of {', '.join(ENCODERS)}, "
                         f"{AISFX_FRAMES} or hf:FOLDER_OR_HUB_ID.")
    return aisfx_encoder(samples, block_hop=int(hop_length) // SPEC_HOP,
                         trainable_blocks=trainable_blocks, input_scale=input_scale,
                         spectrogram_layers=spectrogram_layers, name=model_name or name)
