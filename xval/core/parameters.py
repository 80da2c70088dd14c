"""The typed parameters: of an instance, `TrainingParams` (the `[training]` keys) and
`InstanceParams` (those, the mandatory names and the architecture's keywords); of the
augmentation pipeline, `AugmentationParams`; of a feature store, `FeatureParams` (the
`[features]` keys but `workers`, and the options of the store's feature type).

The schema (`xval.config.schema`, `[training]`) is the one source of the names, types,
ranges, defaults and help; this record declares the same names with their types, so that
code reads `params.epochs`, never `params["epochs"]`. The configuration layer checks the
two against each other when it is imported (`xval.config.sections.check_record`), so a key
added to the schema without its field here, or with another type or default, stops
everything at once.

A field's default is what a record without the key means: the package default for the keys
of the first release, and for the keys added since (`schema.ADDED_KEYS`) the value that
trains as before they existed (what results recorded before them were made with). Resolved
parameters always hold every key; the defaults serve records and tests that hold some.

Example:

```python
from xval.core.parameters import InstanceParams

params = job.params   # what `xval.config.params.resolve` returns, carried by the Job
params.epochs, params.architecture, params.keywords["filters"]
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from xval.core.settings import OpenSettings, Settings, setting_names

F = TypeVar("F", bound="FeatureParams")

__all__ = ["DATASET", "MANDATORY", "AugmentationParams", "FeatureParams", "InstanceParams",
           "TrainingParams"]

MANDATORY = ("architecture", "reshaping_type", "comment_1", "comment_2")
"""The names every instance gives besides its `[training]` overrides."""
DATASET = "dataset"
"""The optional instance name of another feature store (on the same items) than the
experiment's: the planner sets it, resolution only checks that it is a store name."""


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingParams(Settings):
    """The `[training]` keys (see the parameter reference for each one's meaning)."""

    optimizer: str = "adam"
    learning_rate: float = 0.001
    lr_schedule: str = "cosine"
    batch_size: int = 32
    epochs: int = 60
    patience: int = 10
    save_model_metric: str = "val_loss"
    save_model_mode: str = "auto"
    class_weights: bool = False
    mixed_precision: bool = False
    seed: int = 1
    verbose: int = 0
    load_model: str | None = None
    freeze_layers: int = 0
    tensorboard: bool = False
    generator_workers: int = 0
    min_epochs: int = 0
    warmup_epochs: int = 0
    time_masks: int = 0
    time_mask_fraction: float = 0.1
    freq_masks: int = 0
    freq_mask_fraction: float = 0.1
    freq_warp: float = 0.0
    time_warp: float = 0.0
    row_normalization: str = "none"
    front_end: str = "none"
    encoder_trainable_blocks: int = 0
    encoder_lr_scale: float = 0.1
    random_crop_seconds: float = 0.0
    refit_with_val: bool = False
    rank_split: float = 0.0
    mixup_alpha: float = 0.0
    label_smoothing: float = 0.0
    embedding_classifier: str = "none"
    embedding_models: str | list[str] | None = None
    embedding_layer: str = "auto"
    embedding_c: float | None = None
    detection_threshold: float | list[float] | None = 0.5
    median_filter_seconds: float | None = 0.0
    min_event_seconds: float = 0.0
    min_gap_seconds: float = 0.0

    @property
    def embeds(self) -> bool:
        """Whether an embedding classifier is trained (`embedding_classifier` set)."""
        return self.embedding_classifier not in (None, "none")


@dataclasses.dataclass(frozen=True, eq=False)
class AugmentationParams(Settings):
    """The probabilities and ranges of the augmentation pipeline: the `[augmentation]` keys
    but `seed` and `workers` (`xval.config.sections.AugmentationSettings` adds them)."""

    p_noise: float
    p_eq: float
    p_reverb: float
    p_stretch: float
    min_snr_db: float
    max_snr_db: float
    min_eq_gain_db: float
    max_eq_gain_db: float
    min_rate: float
    max_rate: float
    min_room_size: float
    max_room_size: float


@dataclasses.dataclass(frozen=True, eq=False)
class InstanceParams(OpenSettings, TrainingParams):
    """An instance's resolved parameters: the `[training]` keys, the mandatory names, the
    store it trains on when not the experiment's (`dataset`) and the architecture's keyword
    arguments (`keywords`).

    As a mapping it is the flat dict the planner resolves and `params.json` records.
    """

    architecture: str = ""
    reshaping_type: str = "none"
    comment_1: Any = ""
    comment_2: Any = ""
    dataset: str | None = None
    keywords: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    EXTRA: ClassVar[str] = "keywords"

    def to_dict(self) -> dict[str, Any]:
        """The flat dict of every parameter (what `params.json` records)."""
        out = {name: getattr(self, name) for name in setting_names(TrainingParams)}
        out.update({name: getattr(self, name) for name in MANDATORY})
        if self.dataset is not None:
            out[DATASET] = self.dataset
        out.update(self.keywords)
        return out

    def __getitem__(self, name: str) -> Any:
        if name == DATASET and self.dataset is None:  # as `to_dict` leaves it out
            raise KeyError(name)
        return super().__getitem__(name)


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureParams(OpenSettings):
    """A feature store's parameters (`dataset.json` `feature_params`): the `[features]` keys
    but `workers`, in the schema's order, and the options of the store's feature type
    (`options`: the keywords of its function that are not `[features]` keys, e.g. a
    pretrained encoder's `encoder` and `layers`; see `preprocessing.features.register`).

    `preprocessing.feature_params` makes one, checked; `DatasetInfo.feature_params` reads
    one. Code reads `params.hop_length`; the type's own options are read by the type
    (`params.options`). As a mapping it is the flat dict `dataset.json` records: the
    `[features]` keys, then the options (`compute_features(y, **params)` takes it so).
    A field's default is the schema's: what a record without the key means.
    """

    sample_rate: int = 16000
    feature: str = "mel"
    compression: str = "db"
    power_exponent: float = 0.3
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 64
    n_mfcc: int = 20
    fmin: float = 32.7
    fmax: float | None = None
    n_bins: int = 84
    bins_per_octave: int = 12
    segment_seconds: float = 1.0
    segment_hop_seconds: float = 0.5
    dtype: str = "auto"
    peak_normalize: bool = True
    silence_threshold_db: float = -90.0
    keep_silent_segments: bool = False
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    EXTRA: ClassVar[str] = "options"

    @property
    def seconds_per_frame(self) -> float:
        """The hop between feature frames in seconds (`hop_length / sample_rate`)."""
        return self.hop_length / self.sample_rate

    @property
    def segment_samples(self) -> int:
        """Samples in one segment (`segment_seconds * sample_rate`, rounded, at least 1)."""
        return max(1, int(round(self.segment_seconds * self.sample_rate)))

    def replace(self: F, **changes: Any) -> F:
        """A copy with some parameters changed (a name that is not a field is an option of
        the type; `options=` replaces them all)."""
        names = set(setting_names(type(self)))
        options = {k: v for k, v in changes.items() if k not in names}
        known = {k: v for k, v in changes.items() if k in names}
        if options:
            known["options"] = {**known.get("options", self.options), **options}
        return dataclasses.replace(self, **known)
