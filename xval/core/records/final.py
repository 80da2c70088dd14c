"""`FinalModelRecord` (`final.json`, an instance refit on all its items) and `TrialRecord`
(`trial.json`, the search trial that made an instance)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from xval.core.records.base import FORMAT_VERSION, Metrics, Record
from xval.core.records.fold import FoldResult


@dataclasses.dataclass
class FinalModelRecord(Record):
    """`final.json`: the final model of an instance, refit on all its items."""

    KIND: ClassVar[str] = "final-model record"

    instance: int
    epochs: int | None
    items: list[str]
    params_hash: str | None
    model_size: int
    model_sha256: str
    task_type: str | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    n_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    metrics: Metrics | None = None
    clip_metrics: Metrics | None = None
    history: dict[str, list[float]] | None = None
    classes: list[str] | None = None
    backend: str | None = None
    keras_version: str | None = None
    device: str | None = None
    host: str | None = None
    pid: int | None = None
    fold_best_epochs: list[int | None] = dataclasses.field(default_factory=list)
    format: int = FORMAT_VERSION

    @classmethod
    def from_refit(cls, result: FoldResult, model_sha256: str,
                   fold_best_epochs: list[int | None]) -> FinalModelRecord:
        """The record of a refit job's result."""
        return cls(instance=result.instance, epochs=result.epochs_run,
                   items=sorted(result.items.get("train", [])),
                   params_hash=result.params_hash,
                   model_size=len(result.model_bytes or b""), model_sha256=model_sha256,
                   task_type=result.task_type, timings=result.timings,
                   n_rows=result.n_rows, metrics=result.metrics,
                   clip_metrics=result.clip_metrics, history=result.history,
                   classes=result.classes, backend=result.backend,
                   keras_version=result.keras_version, device=result.device,
                   host=result.host, pid=result.pid, fold_best_epochs=fold_best_epochs)


@dataclasses.dataclass
class TrialRecord(Record):
    """`trial.json`: the search trial that made an instance (`--search`)."""

    KIND: ClassVar[str] = "trial record"

    trial: int
    instance: int
    state: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    metric: str | None = None
    objective: float | None = None
    pruned_at_fold: int | None = None
    format: int = FORMAT_VERSION


@dataclasses.dataclass
class NestedRecord(Record):
    """`nested.json`: what a nested search (`--search --inner-folds K`) chose in every
    outer fold of the instance that holds its outer scores.

    Attributes:
        inner_folds: `K`, the inner folds over each outer fold's training items.
        n_trials: the trials of each outer fold's study.
        metric: the validation metric the inner studies optimised.
        choices: one dict per outer fold searched, in fold order: `fold` (outer fold),
            `trial` and `instance` (the inner trial chosen, in
            `nested/outer_<fold>/instance_<instance>`), `objective` (its mean inner
            validation score) and `params` (its sampled parameters).
    """

    KIND: ClassVar[str] = "nested search record"

    inner_folds: int
    n_trials: int
    metric: str | None = None
    choices: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    format: int = FORMAT_VERSION

    def choice(self, fold: int) -> dict[str, Any] | None:
        """The choice of outer fold `fold`, or `None`."""
        return next((c for c in self.choices if c.get("fold") == fold), None)
