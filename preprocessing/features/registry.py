"""The feature-type registry: a feature type is one function, registered by name.

A feature type turns a waveform into a `(frames, bins)` matrix. It is a plain function
`function(y, *, sample_rate, **keywords) -> np.ndarray [shape=(frames, bins)]` with
keyword-only parameters, registered with `@register(name, bins=...)`:

- the keywords that are `config.ini [features]` keys (`n_fft`, `hop_length`, `n_mels`,
  `compression`, ...) are the `[features]` parameters it reads: `compute_features` passes
  them from the store's feature parameters;
- any other keyword is an *option* of the type (e.g. a pretrained model's name or the layers
  it keeps), with its default: `feature_params(feature=name, option=value)` accepts it, and
  the store records it in `dataset.json` beside the `[features]` values;
- its facts are given to `register` (`FeatureType`), functions of the store's
  `FeatureParams` (`params.n_mels`): its bins, its frames (by default a
  centred STFT's, and the segments of a file are then sliced from the whole file's
  features), the centre frequency of every bin where they have one (for `freq_warp`).

A type that runs a model (`preprocessing.features.pretrained`) registers with
`batched=True`: its function also takes `(segments, samples)` and returns `(segments,
frames, bins)`, so that the segments of a file go through the model together, and the store
is built in one process (one copy of the model) whatever `workers` says. Its `describe(params)
-> dict` says what `dataset.json` records of it (`front_end`: the encoder, its revision, the
hash of its weights); the entries of that dict that are options of the type are written into
the store's feature parameters too, so that extraction for new files (`predict`, `evaluate`,
`detect`) checks them.

`compute_features`, `feature_shape` and `bin_frequencies` dispatch through the registry, and
`[features] feature` (config.ini, `--feature`) accepts exactly the registered names.

Where to add a feature type
---------------------------
Write one function and register it: a built-in type goes in `preprocessing/features/`
(`spectral.py` holds stft, mel, mfcc and cqt; a new family gets its own module, imported by
`preprocessing/features/__init__.py`); a type of your own may live in any module imported
before the store is built (an experiment's helper, a test):

```python
import librosa
import numpy as np

from preprocessing.features import register


@register("rms", bins=lambda params: 1)
def rms(y: np.ndarray, *, sample_rate: int, n_fft: int = 512,
        hop_length: int = 160) -> np.ndarray:
    '''Frame energy.

    Returns:
        `np.ndarray [shape=(frames, 1)]`.
    '''
    return librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop_length).T
```

Then `python -m preprocessing ... --feature rms`, `feature = rms` in config.ini and
`preprocessing.feature_params(config.features, feature="rms")` build stores of it. Nothing
else changes: the schema, the command line and the store take the name from here.
"""

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import xval.config.schema as schema
from xval.core.parameters import FeatureParams
from xval.core.registry import Registry

__all__ = ["PCM_SCALE", "STORAGE_TYPES", "FeatureType", "bin_frequencies", "centred_frames",
           "compute_features", "feature_shape", "front_end", "get", "names", "parameter_names",
           "register"]

FeatureFunction = Callable[..., np.ndarray]
STORAGE_TYPES = ("float32", "float16", "int16")
"""The storage types of `features.npy`; `int16` is 16-bit PCM (samples times 32768), for
waveform types only."""
PCM_SCALE = 32768.0
"""An `int16` row holds the samples times this."""
Params = FeatureParams  # what a type's facts (`bins`, `frames`, ...) are given


def centred_frames(n_samples: int, params: Params) -> int:
    """Frames of a centred STFT framing (librosa's default) of `n_samples` samples:
    `1 + n_samples // hop_length` (of the feature parameters `params`)."""
    return 1 + n_samples // int(params.hop_length)


@dataclasses.dataclass(frozen=True)
class FeatureType:
    """A registered feature type (see the module's docstring).

    Attributes:
        name: the value of `[features] feature` that selects it.
        function: `function(y, *, sample_rate, **keywords) -> np.ndarray [shape=(frames,
            bins)]`.
        params: the `[features]` keys the function reads (its keyword-only parameters that
            are keys of the schema's `[features]` section), `sample_rate` first.
        options: its other keyword-only parameters, with their defaults.
        bins: `bins(params) -> int`, the number of bins.
        frames: `frames(n_samples, params) -> int`, the number of frames of a segment of
            `n_samples` samples.
        frequencies: `frequencies(params) -> np.ndarray [shape=(bins,)]`, the centre
            frequency of every bin (Hz, increasing), or `None` when the bins have none.
        batched: the function also takes `(segments, samples)` and returns `(segments,
            frames, bins)`; the store is built in one process.
        describe: `describe(params) -> dict`, what `dataset.json` records of the type
            (`front_end`), or `None`.
        dtype: the storage type of its stores when `[features] dtype` is `auto`.
        waveform: its rows are the audio samples themselves, `(samples, 1)`: a model's
            front end (`front_end` instance parameter) computes features from them, and its
            stores may be `int16` (16-bit PCM).
        in_model: a model can compute it from a waveform store (`front_end`, the Keras
            layer `architectures.SpectralFrontEnd`, checked against this type's function).
        summary: a few words about the type (config.ini's notes list it beside the name).
        neighbouring_bins: neighbouring bins hold neighbouring content (a frequency axis,
            cepstral coefficients), so a band of them can be masked (SpecAugment's
            frequency masks); `False` for an encoder's hidden dimensions.
        check: `check(values, name) -> problem`, the type's rule between `[features]`
            keys (`xval.config.schema.Rule`), or `None`.
        magnitude_power: its rows are a spectrogram's magnitudes (1) or powers (2) before
            their `compression`, so that two sounds' rows can be added back in energy (a
            detection store's event mixing, `xval.tasks.detection.mixing`); `None` otherwise.
    """

    name: str
    function: FeatureFunction
    params: tuple[str, ...]
    options: Mapping[str, Any]
    bins: Callable[[Params], int]
    frames: Callable[[int, Params], int] = centred_frames
    frequencies: Callable[[Params], np.ndarray] | None = None
    batched: bool = False
    describe: Callable[[Params], dict[str, Any]] | None = None
    dtype: str = "float32"
    waveform: bool = False
    in_model: bool = False
    summary: str = ""
    neighbouring_bins: bool = True
    check: schema.Rule | None = None
    magnitude_power: float | None = None

    @property
    def has_frequencies(self) -> bool:
        """Whether the bins have centre frequencies (`frequencies`): a frequency axis that
        can be warped. `False` for MFCCs and an encoder's hidden states."""
        return self.frequencies is not None

    def keywords(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of `function` found in `values` (sample_rate included)."""
        return {k: values[k] for k in (*self.params, *self.options) if k in values}


TYPES: Registry[FeatureType] = Registry("feature type", setting="feature",
                                         where="preprocessing.features")
"""The registered feature types, by name."""


def parameter_names() -> tuple[str, ...]:
    """The `[features]` keys that are feature parameters (every key but `workers`), in the
    schema's order: the keys of a store's `feature_params`."""
    return tuple(key for key in schema.SCHEMA["features"] if key != "workers")


def _signature(name: str, function: FeatureFunction) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The `[features]` keys and the options of a feature function, checked."""
    parameters = list(inspect.signature(function).parameters.values())
    if not parameters or parameters[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                                    inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise TypeError(f"Feature type {name!r}: {function.__name__} must take the waveform "
                        "as its first argument: function(y, *, sample_rate, ...).")
    keywords = parameters[1:]
    wrong = [p.name for p in keywords if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    if wrong or "sample_rate" not in [p.name for p in keywords]:
        raise TypeError(
            f"Feature type {name!r}: {function.__name__} must take keyword-only parameters "
            f"after the waveform, sample_rate among them (function(y, *, sample_rate, ...)); "
            f"{', '.join(wrong) or 'sample_rate'} is not one.")
    known = set(parameter_names())
    params = tuple(p.name for p in keywords if p.name in known)
    options = {p.name: p.default for p in keywords if p.name not in known}
    missing = [k for k, v in options.items() if v is inspect.Parameter.empty]
    if missing:
        raise TypeError(
            f"Feature type {name!r}: {', '.join(missing)} is not a [features] key, so it is "
            "an option of the type and needs a default.")
    return params, options


def register(name: str, *, bins: Callable[[Params], int],
             frames: Callable[[int, Params], int] = centred_frames,
             frequencies: Callable[[Params], np.ndarray] | None = None, batched: bool = False,
             describe: Callable[[Params], dict[str, Any]] | None = None,
             dtype: str = "float32", summary: str = "", neighbouring_bins: bool = True,
             check: schema.Rule | None = None, waveform: bool = False, in_model: bool = False,
             magnitude_power: float | None = None) -> Callable[[FeatureFunction], FeatureFunction]:
    """Decorator registering a feature function under `name`.

    Args:
        name: the value of `[features] feature` that selects the type (an identifier).
        bins, frames, frequencies, batched, describe, dtype, summary, neighbouring_bins,
            check, waveform, in_model, magnitude_power: the type's facts, as `FeatureType`
            documents them (`bins` required; the others default to a centred STFT's frames,
            no frequencies, one signal at a time, no description, `float32`, no summary,
            neighbouring bins, no rule, not a waveform, not computed in a model, not a
            spectrogram's magnitudes).

    Returns:
        The decorator, which returns the function unchanged.

    Raises:
        TypeError: when the function does not take `(y, *, sample_rate, ...)` or an option
            (a keyword that is not a `[features]` key) has no default.
        ValueError: when the name is not an identifier or is taken, or `dtype` is not a
            storage type (`int16` only for a waveform type).
    """
    if dtype not in STORAGE_TYPES or (dtype == "int16" and not waveform):
        raise ValueError(f"Feature type {name!r}: dtype={dtype!r}: expected float32 or "
                         "float16 (int16 for a waveform type).")

    def decorator(function: FeatureFunction) -> FeatureFunction:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"A feature type needs a name that is an identifier; got {name!r}.")
        params, options = _signature(name, function)
        TYPES.register(name, FeatureType(
            name=name, function=function, params=params, options=options, bins=bins,
            frames=frames, frequencies=frequencies, batched=batched, describe=describe,
            dtype=dtype, summary=summary, neighbouring_bins=neighbouring_bins, check=check,
            waveform=waveform, in_model=in_model, magnitude_power=magnitude_power))
        return function

    return decorator


def unregister(name: str) -> None:
    """Removes the feature type registered as `name` (a test's own type, after the test);
    an unknown name is ignored."""
    TYPES.unregister(name, missing_ok=True)


def names() -> list[str]:
    """The registered feature types, in registration order."""
    return TYPES.names()


def get(name: str) -> FeatureType:
    """The feature type registered as `name`.

    Raises:
        UnknownNameError: (a `ConfigurationError`, so a `ValueError`) for an unknown name,
            listing the registered ones.
    """
    return TYPES.get(name)


def compute_features(y: np.ndarray, *, sample_rate: int, feature: str = "mel",
                     dtype: str = "float32", **params: Any) -> np.ndarray:
    """Computes one feature matrix of a signal with the registered type `feature`.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        feature: a registered feature type (`stft`, `mel`, `mfcc`, `cqt`, ...). Defaults to
            `"mel"`.
        dtype: `"float32"`, `"float16"` or, for a waveform type, `"int16"` (16-bit PCM:
            the samples times 32768, rounded and clipped). Defaults to `"float32"`.
        **params: feature parameters (a store's `feature_params`); those the type does not
            read are ignored, those it reads and are not given take the function's
            defaults.

    Returns:
        `np.ndarray [shape=(frames, bins)]`, time first and in order, C-contiguous.

    Raises:
        ConfigurationError: for an unknown feature type.
        ValueError: for a parameter value the type refuses (e.g. an unknown compression).
    """
    kind = get(feature)
    S = kind.function(np.asarray(y, dtype=np.float32),
                      **{**kind.keywords(params), "sample_rate": sample_rate})
    if dtype == "int16":
        if not kind.waveform:
            raise ValueError(f"dtype='int16' stores audio samples (16-bit PCM); feature="
                             f"{feature!r} is not a waveform type: use float32 or float16.")
        S = np.clip(np.round(np.asarray(S, dtype=np.float64) * PCM_SCALE), -PCM_SCALE,
                    PCM_SCALE - 1)
    return np.ascontiguousarray(S, dtype=dtype)


def feature_shape(params: Mapping[str, Any]) -> tuple[int, int]:
    """The `(frames, bins)` shape one segment's features have.

    Args:
        params: the feature parameters (`feature`, `sample_rate`, `segment_seconds` and
            what the type reads).

    Returns:
        `(frames, bins)`.
    """
    params = FeatureParams.of(params)
    kind = get(params.feature)
    return kind.frames(params.segment_samples, params), kind.bins(params)


def front_end(params: Mapping[str, Any]) -> tuple[FeatureParams, dict[str, Any] | None]:
    """The feature parameters completed by the type's `describe`, and what it describes.

    Args:
        params: feature parameters (see `preprocessing.feature_params`).

    Returns:
        `(params, front_end)`: `params` with the described values of the type's options
        (e.g. a pretrained encoder's weight hash) and the description for `dataset.json`,
        or `(params, None)` for a type without `describe`.
    """
    params = FeatureParams.of(params)
    kind = get(params.feature)
    if kind.describe is None:
        return params, None
    described = kind.describe(params)
    return params.replace(**{k: v for k, v in described.items() if k in kind.options}), described


def bin_frequencies(params: Mapping[str, Any]) -> np.ndarray | None:
    """The centre frequency (Hz) of every feature bin, lowest first, or `None` for a type
    whose bins have no frequency (MFCCs: cepstral coefficients).

    Args:
        params: the store's feature parameters (`dataset.json` `feature_params`).

    Returns:
        `np.ndarray [shape=(bins,)]` or `None`.
    """
    params = FeatureParams.of(params)
    kind = get(params.feature)
    return None if kind.frequencies is None else kind.frequencies(params)


def _type_rule(values: Mapping[str, Any], name: Callable[[str], str]) -> str:
    """The chosen type's own rule between `[features]` keys (`FeatureType.check`)."""
    feature = values.get("feature")
    if not isinstance(feature, str) or feature not in TYPES:
        return ""
    check = TYPES.get(feature).check
    return check(values, name) if check is not None else ""


# config.ini's [features] feature accepts the registered names, and each type's rules apply.
schema.bind_choices("features", "feature", names,
                    describe=lambda name: TYPES.get(name).summary)
schema.bind_rules("features", _type_rule)
