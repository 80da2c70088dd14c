"""The typed sections of a `Config`: one `Settings` record per section of `config.ini`,
checked against the schema when this module is imported.

`config.training` is a `xval.core.parameters.TrainingParams`; the other sections are the
records below (`config.folds.val_fraction`, `config.report.selection_metric`). The schema
(`xval.config.schema`) stays the one source of the names, types, ranges, defaults and help:
`check_record` refuses a record whose fields are not exactly the section's keys with the
same types (and, for `[training]`, the same defaults), so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import xval.config.schema as schema
from xval.core.parameters import AugmentationParams, FeatureParams, TrainingParams
from xval.core.settings import Settings

__all__ = ["SECTIONS", "AugmentationSettings", "BackendSettings", "FeatureSettings",
           "FoldSettings", "PathSettings", "ReportSettings", "check_record"]


@dataclasses.dataclass(frozen=True, eq=False)
class PathSettings(Settings):
    """`[paths]` (absolute once loaded)."""

    data_dir: str
    results_dir: str


@dataclasses.dataclass(frozen=True, eq=False)
class BackendSettings(Settings):
    """`[backend]`."""

    backend: str
    executor: str
    jobs_per_gpu: int
    device_data_mb: int


@dataclasses.dataclass(frozen=True, eq=False)
class FoldSettings(Settings):
    """`[folds]`."""

    val_fraction: float
    test_fraction: float
    stratify: bool
    fold_seed: int


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureSettings(Settings):
    """`[features]` (a store's feature parameters are these, less `workers`)."""

    sample_rate: int
    feature: str
    compression: str
    power_exponent: float
    n_fft: int
    hop_length: int
    n_mels: int
    n_mfcc: int
    fmin: float
    fmax: float | None
    n_bins: int
    bins_per_octave: int
    segment_seconds: float
    segment_hop_seconds: float
    dtype: str
    peak_normalize: bool
    silence_threshold_db: float
    keep_silent_segments: bool
    workers: int


@dataclasses.dataclass(frozen=True, eq=False)
class AugmentationSettings(AugmentationParams):
    """`[augmentation]`: the pipeline's parameters, its seed and workers."""

    seed: int
    workers: int


@dataclasses.dataclass(frozen=True, eq=False)
class ReportSettings(Settings):
    """`[report]`."""

    selection_metric: str
    alpha: float
    rope: float
    plots: bool


SECTIONS: dict[str, type[Settings]] = {
    "paths": PathSettings, "backend": BackendSettings, "folds": FoldSettings,
    "training": TrainingParams, "features": FeatureSettings,
    "augmentation": AugmentationSettings, "report": ReportSettings,
}
"""Section name -> its record."""


def _kinds(annotation: Any) -> set[str]:
    """The type names of a field's annotation (`"float | None"` -> `{"float", "None"}`)."""
    text = annotation if isinstance(annotation, str) else \
        getattr(annotation, "__name__", str(annotation))
    return {part.strip() for part in text.split("|")}


def check_record(cls: type[Settings], section: str, without: tuple[str, ...] = ()) -> None:
    """Checks a settings record against the schema's section.

    The record's fields are the section's keys, in order (but the names in `without`: keys
    the record leaves out, fields the section does not have); each field's type has the key's
    kind (`None` exactly when the key allows `none`); a field's default, where it has one,
    is the key's default, or for a key added since the first release its neutral value
    (`schema.ADDED_KEYS`).

    Raises:
        TypeError: naming the first difference and the fix.
    """
    keys = {k: v for k, v in schema.SCHEMA[section].items() if k not in without}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in without}
    if list(fields) != list(keys):
        missing = [k for k in keys if k not in fields]
        extra = [k for k in fields if k not in keys]
        raise TypeError(f"{cls.__name__} does not match the schema's [{section}]: missing "
                        f"fields {missing}, extra fields {extra}; declare one field per key, "
                        "in the schema's order.")
    neutral = schema.ADDED_KEYS.get(section, {})
    for name, spec in keys.items():
        field, kinds = fields[name], _kinds(fields[name].type)
        if spec.kind not in kinds or ("None" in kinds) != spec.none:
            raise TypeError(f"{cls.__name__}.{name} is {' | '.join(sorted(kinds))}; the "
                            f"schema's [{section}] {name} is {spec.kind}"
                            f"{' or none' if spec.none else ''}.")
        if field.default is dataclasses.MISSING:
            continue
        expected = neutral.get(name, spec.default)
        what = "the neutral value of a key added since the first release" \
            if name in neutral else "its default"
        if field.default != expected:
            raise TypeError(f"{cls.__name__}.{name} defaults to {field.default!r}; the schema "
                            f"says {expected!r} ({what}).")


for _section, _record in SECTIONS.items():
    check_record(_record, _section)
# A store's feature parameters: the [features] keys but `workers`, and the type's options.
check_record(FeatureParams, "features", without=("workers", "options"))
