"""`FinalModelRecord` (`final.json`, an instance refit on all its items) and `TrialRecord`
(`trial.json`, the search trial that made an instance)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from xval.core.records.base import FORMAT_VERSION, Metrics, Record
from xval.core.records.fold import FoldResult


@dataclasses.dataclass
class FinalModelRecord(Record):
    """`final.json`: the final model of an instance, refit on all its items."""

    KIND: ClassVar[str] = "final-model record"
    READ_DEFAULTS: ClassVar[Mapping[str, Any]] = {"items": []}

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
