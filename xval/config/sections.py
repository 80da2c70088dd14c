"""The typed sections of a `Config`: one `Settings` record per section of `config.ini`.

Each field is the one declaration of its key (`xval.core.settings.setting`: type, default,
valid values, help); `xval.config.schema.SCHEMA` is derived from these records. The
`[training]` section is `xval.core.parameters.TrainingParams` and the registered tasks' own
parameters (`TrainingSettings`); `[features]` and
`[augmentation]` extend the records a store and the augmentation pipeline carry
(`FeatureParams`, `AugmentationParams`) with their `workers` (and seed); the other sections
are declared here (`config.folds.val_fraction`, `config.report.selection_metric`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from xval.config.schema.choices import describe_metric, selection_metrics
from xval.core.backend import AUTO, BACKENDS
from xval.core.parameters import AugmentationParams, FeatureParams, TrainingParams
from xval.core.records.job import DEVICE_DATA_MB
from xval.core.settings import OpenSettings, Settings, setting

__all__ = ["SECTIONS", "AugmentationSettings", "BackendSettings", "DataSettings",
           "FeatureSettings", "FoldSettings", "PathSettings", "ReportSettings",
           "TrainingSettings"]


@dataclasses.dataclass(frozen=True, eq=False)
class PathSettings(Settings):
    """`[paths]` (absolute once loaded)."""

    data_dir: str = setting(
        "data", "folder of feature stores, one sub-folder per dataset",
        notes=("Folder of feature stores, one sub-folder per dataset (features.npy, meta.csv, "
               "dataset.json)."))
    results_dir: str = setting(
        "results", "folder receiving <dataset>/experiment_<N>/ result folders",
        notes="Folder receiving <dataset>/experiment_<N>/ result folders.")


@dataclasses.dataclass(frozen=True, eq=False)
class BackendSettings(Settings):
    """`[backend]`."""

    backend: str = setting(
        AUTO, "Keras backend (KERAS_BACKEND wins)", choices=(AUTO, *BACKENDS),
        notes=("Keras backend: auto | jax | torch | tensorflow. auto: jax where installed "
               "(its steps are compiled with XLA), else torch, else tensorflow; torch for an "
               "instance whose model runs a transformers network. The KERAS_BACKEND "
               "environment variable wins."))
    # The choices are the registered executors (`xval.executors.registry`), bound when that
    # registry is imported (`xval.config.schema.bind_choices`).
    executor: str = setting(
        "inline", "how jobs run: in this process, in worker processes, or as Ray tasks",
        notes="How jobs run: {choices}.")
    jobs_per_gpu: int = setting(
        1, "jobs sharing one GPU (process executor; Ray: 1/N GPU each)", low=1, high=64,
        notes=("How many jobs share one GPU at the same time (process executor; Ray: 1/N of a GPU "
               "each). Each job's framework is told before it starts: JAX neither "
               "preallocates nor takes more than 0.9/N of the GPU's memory, TensorFlow grows "
               "its memory; an inline run's own process too, so that N scripts can share a "
               "GPU."))
    compile_cache: str | None = setting(
        "~/.cache/xval", "folder of compiled training steps kept between runs (JAX; none: "
        "off)",
        notes=("JAX compiles a fold's training, validation and prediction steps once; the "
               "programs are kept in this folder, so later folds, runs and worker processes "
               "load them instead of compiling again (relative paths: to this file; none: "
               "nothing kept). Checked before anything trains: a file in the path is "
               "refused; a folder that cannot be written, or under 64 MiB free, and the run "
               "compiles without it, saying so in one line; damaged programs are replaced. "
               "On a Ray cluster, the folder on each node (shared only where the path is on "
               "a shared filesystem). Whoever can write to it can run code in your runs: "
               "keep it your own."))
    device_data_mb: int = setting(
        DEVICE_DATA_MB, "most of a fold's training and validation rows copied to the device "
        "once (MiB; 0: never)", low=0, high=1 << 24,
        notes=("In memory mode on the torch and JAX backends: a fold whose training and "
               "validation rows take at most this many MiB is copied to the device (the GPU; "
               "the host on a CPU) once, and every batch, its crops and mixup are gathered "
               "there, so a step never waits for a copy. A larger fold, or 0, gathers batches "
               "in numpy and (on a GPU) copies them from pinned memory in prefetching "
               "threads. Per job: with jobs_per_gpu = N, N folds share the GPU's memory."))


@dataclasses.dataclass(frozen=True, eq=False)
class FoldSettings(Settings):
    """`[folds]`."""

    val_fraction: float = setting(
        0.2, "fraction of each fold's training items held out for validation", low=0, high=1,
        open_low=True, open_high=True,
        notes="Fraction of each fold's training items held out as validation items.")
    test_fraction: float = setting(
        0.2, "with num_folds = 1: fraction of items in the test set", low=0, high=1, open_low=True,
        open_high=True,
        notes="With num_folds = 1 only: fraction of the items used as the single test set.")
    stratify: bool = setting(
        True, "balance labels across folds where the items allow it",
        notes=("Balance the label proportions of the rows across folds (StratifiedGroupKFold over "
               "items)."))
    fold_seed: int = setting(
        0, "seed of the fold assignment", low=0, high=2**32 - 1,
        notes=("Seed of the fold assignment (>= 0). The same folds are used by every instance of "
               "an experiment."))


@dataclasses.dataclass(frozen=True, eq=False)
class DataSettings(Settings):
    """`[data]`."""

    duplicates: str = setting(
        "warn", "files holding the same audio under two items (the duplicate check of the "
        "store): warn, or refuse to run", choices=("warn", "error"),
        notes=("Files that hold the same audio under two items (the store's duplicate check: "
               "copies re-encoded, resampled, trimmed or with noise added; `python -m "
               "preprocessing check STORE`) could sit on both sides of a fold: warn (the dry "
               "run and the run say how many test items of each fold share audio with "
               "training or validation items) | error (refuse to run until they are merged: "
               "`--merge-duplicates`)."))


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingSettings(OpenSettings, TrainingParams):
    """`[training]`: the keys every task reads, and in `tasks` the registered tasks' own
    parameters (`xval.tasks.Task.parameters`), flat as config.ini holds them."""

    tasks: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    EXTRA: ClassVar[str] = "tasks"


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureSettings(FeatureParams):
    """`[features]`: a store's feature parameters (`FeatureParams`) and the extraction's
    `workers`, which no store records."""

    workers: int = setting(
        0, "extraction processes, which also verify the duplicate check (0: all cores, "
        "fewer for a small folder)",
        low=0, high=1024,
        notes="Extraction processes (0 = all cores, fewer for a folder too small to pay for "
              "their start: this process alone under 16 files a process); the duplicate "
              "check's verification runs in as many.")


@dataclasses.dataclass(frozen=True, eq=False)
class AugmentationSettings(AugmentationParams):
    """`[augmentation]`: the pipeline's parameters, its seed and workers."""

    seed: int = setting(
        0, "base seed of the augmented versions", low=0, high=2**32 - 1)
    workers: int = setting(
        0, "augmentation processes (0: all cores, fewer for a small folder)", low=0,
        high=1024,
        notes="Augmentation processes (0 = all cores, fewer for a folder too small to pay "
              "for their start).")


@dataclasses.dataclass(frozen=True, eq=False)
class ReportSettings(Settings):
    """`[report]`."""

    selection_metric: str = setting(
        "auto", "validation metric selecting the best instance", choices=selection_metrics,
        describe=describe_metric,
        notes=("Validation metric selecting the best instance in the workbook (its test score is "
               "reported): {choices}."))
    alpha: float = setting(
        0.05, "significance level of the test against the selected instance", low=0, high=1,
        open_low=True, open_high=True,
        notes=("Significance level (0 < alpha < 1) of the corrected resampled t-test against the "
               "selected instance."))
    rope: float = setting(
        0.01, "region of practical equivalence of the Bayesian comparisons", low=0, open_low=True,
        notes=("Half-width of the region of practical equivalence (ROPE, > 0) of the Bayesian "
               "correlated t-test on the Statistics sheet and of `python -m xval compare`, in the "
               "units of the selection metric: 0.01 is one point of accuracy or F1."))
    behind_probability: float = setting(
        0.8, "probability with which a row must beat another on the ranking scores to put it "
        "behind (the rows behind none tie)", low=0.5, high=1, open_low=True, open_high=True,
        notes=("Selecting the row to report: a row is behind another when the other beats it on "
               "the ranking scores by more than the ROPE with at least this probability "
               "(Bayesian correlated t-test over the folds); the rows behind none tie, and the "
               "experiment's declared preference picks among them (docs/workbook.md, \"Which "
               "row is selected\"). Higher: more ties, the preference decides more often."))
    plots: bool = setting(
        True, "write each instance's figures",
        notes=("Write each instance's figures after its last fold (plots/: learning curves and "
               "the task's figures, shown on the workbook's Plots sheet). false skips them: about "
               "1 s of CPU per instance, which counts in searches of many trials and quick runs."))


SECTIONS: dict[str, type[Settings]] = {
    "paths": PathSettings, "backend": BackendSettings, "folds": FoldSettings,
    "data": DataSettings, "training": TrainingSettings, "features": FeatureSettings,
    "augmentation": AugmentationSettings, "report": ReportSettings,
}
"""Section name -> its record, in the order a config file lists them."""
