"""The feature parameters of a store: `[features]` values with overrides, checked."""

from collections.abc import Mapping
from typing import Any

import xval.config.schema as schema
from preprocessing.features import get, parameter_names
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.parameters import FeatureParams

__all__ = ["feature_params"]


def feature_params(values: Mapping[str, Any] | None = None, *, style: str = "param",
                   **overrides: Any) -> FeatureParams:
    """The feature parameters of a store: `[features]` values with overrides, checked.

    Args:
        values: `[features]` values, e.g. `config.features` (its `workers` is ignored), or
            `None`: then every key is given in `overrides`. The command line reads
            config.ini and passes its section here; nothing here reads a file.
        style: how to name parameters in errors: `"param"` (`n_mels=0`) or `"flag"`
            (`--n-mels 0`). Defaults to `"param"`.
        **overrides: any key of `[features]` except `workers`, and the options of the
            chosen feature type (see `preprocessing.features.register`).

    Returns:
        `xval.core.parameters.FeatureParams`: every `[features]` key but `workers` (`dtype`
        `auto` resolved to the feature type's own), and the options of the feature type
        (their defaults where not given). As a mapping it is the flat dict `dataset.json`
        records: the keys in the schema's order, then the options.

    Raises:
        DatasetError: for an unknown key.
        ConfigurationError: for a missing key, a value of the wrong type or out of range, or
            values that contradict each other (e.g. fmin >= fmax), naming the parameter.
    """
    keys = parameter_names()
    merged = {k: v for k, v in (values or {}).items() if k != "workers"}
    merged.update(overrides)
    options: Mapping[str, Any] = {}
    if "feature" in merged:
        options = get(schema.check("features", "feature", merged["feature"],
                                   style=style)).options
    unknown = [key for key in merged if key not in keys and key not in options]
    if unknown:
        raise DatasetError(
            f"Unknown feature parameter {unknown[0]!r}; valid: "
            f"{', '.join((*keys, *options))}."
        )
    missing = [key for key in keys if key not in merged]
    if missing:
        raise ConfigurationError(
            f"Feature parameters {', '.join(missing)} are missing; pass the [features] "
            "section: preprocessing.feature_params(config.features, ...)."
        )
    params = FeatureParams.of(schema.check_section("features", {k: merged[k] for k in keys},
                                                    style=style))
    kind = get(params.feature)
    if params.dtype == "auto":  # the type's own storage type, recorded as resolved
        params = params.replace(dtype=kind.dtype)
    if params.dtype == "int16" and not kind.waveform:
        raise ConfigurationError(
            f"{schema.label('features', 'dtype', 'int16', style)} stores audio samples "
            f"(16-bit PCM), but {schema.label('features', 'feature', params.feature, style)}"
            " is not a waveform type; use float32 or float16 (or auto).")
    return params.replace(options={k: merged.get(k, default) for k, default in options.items()})
