"""`FoldResult`: what one job gave (`fold_<i>.json`), the `Postprocessing` a fold chose,
and `check_fold`, whether a fold record can be believed."""

from __future__ import annotations

import base64
import dataclasses
import math
import traceback as _traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from xval.core.constraints import FINITE
from xval.core.records.base import FORMAT_VERSION, Metrics, Record, Status, expect
from xval.core.records.job import Job
from xval.core.settings import Settings

M = TypeVar("M", bound=Mapping[str, Any])

LATE_EPOCH_SHARE = 0.1
"""A fold whose best epoch falls in this last share of `epochs` was still improving when
training stopped: the terminal and the workbook say so (`FoldResult.late_best_epoch`)."""


@dataclasses.dataclass
class Postprocessing(Record):
    """Post-processing a fold chose on its validation rows (detection: the per-class
    threshold and the median filter that maximise the validation recordings' event F1).

    It travels in the fold record (`FoldResult.postprocessing`, in `fold_<i>.json` beside
    `fold_<i>.keras`) and is applied wherever the fold's model turns outputs into decisions:
    its test scoring, `python -m xval detect`. Only parameters the instance left unset
    (`None`) are chosen; an instance value always wins.

    Args:
        values: instance parameter name -> chosen value (e.g. `detection_threshold`: a list,
            one per class; `median_filter_seconds`: a float).
        classes: the classes of per-class values, in order.
        split: the rows it was chosen on. Defaults to `"val"` (never the test rows).
        level: `"clip"` (stitched recordings) or `"segment"` (windows).
        score: the validation score of the choice (`event_f1`), or `None`.
        chosen_on: what it was chosen on, in words (the task's: detection names its
            validation recordings and events, and the training annotations its defaults
            come from); `""` where the task says nothing.
    """

    KIND: ClassVar[str] = "post-processing record"

    values: dict[str, Any]
    classes: list[str] = dataclasses.field(default_factory=list)
    split: str = "val"
    level: str = "segment"
    score: float | None = None
    chosen_on: str = ""

    def apply(self, params: M) -> M:
        """`params` (a parameter record, or a mapping read from `params.json`) with the
        chosen values where it leaves them unset (`None`)."""
        chosen = {n: v for n, v in self.values.items() if params.get(n) is None}
        if isinstance(params, Settings):
            return params.replace(**chosen)
        return {**params, **chosen}  # type: ignore[return-value]

    @classmethod
    def merged(cls, records: Iterable[Postprocessing]) -> Postprocessing | None:
        """One choice for several fold models used together (an ensemble, or the refit
        model of an instance): the median of the folds' values, per class.

        Returns:
            The merged record, or `None` when `records` is empty.
        """
        found = list(records)
        if not found:
            return None
        names = sorted(set().union(*(r.values for r in found)))
        values = {}
        for name in names:
            given = [np.asarray(r.values[name], dtype=float) for r in found if name in r.values]
            values[name] = np.median(np.stack(given), axis=0).round(4).tolist()
        scores = [r.score for r in found if r.score is not None]
        return cls(values=values, classes=found[0].classes, split=found[0].split,
                   level=found[0].level, score=float(np.mean(scores)) if scores else None,
                   chosen_on=(f"the median of {len(found)} folds' choices" if len(found) > 1
                              else found[0].chosen_on))


@dataclasses.dataclass
class FoldResult(Record):
    """What one job produced: the content of `fold_<i>.json`.

    `model_bytes` (the best model as a `.keras` file), `predictions_csv` (the test
    predictions), `val_predictions_csv` (the validation rows' predictions, with a `split`
    column: what an ensemble of instances chooses its weights on; `None` in a refit, and
    never written before this field existed), `plot_data` (what the task's per-fold plots draw,
    `Scoring.fold_plot_data`) and `classifier_bytes` travel with the result but are not part of
    `to_dict()`: the recorder writes them as their own files and records the model's size
    and hash in the fold file, and the SHA-256 of every other file it writes for the fold
    (`outputs_sha256`: file name -> hash), so that what an ensemble, a figure or a report
    reads of them is as sealed as the metrics (`xval.core.storage.ResultsStore.predictions`).
    A worker sends `to_transport()` and the model's bytes back.

    `backend` is the Keras backend the fold trained on, `compiled` whether its steps ran
    compiled (XLA), and `compilation` what the fold compiled (JAX,
    `xval.training.compilation.CompileCount`: `seconds`, `programs` compiled anew, `cached`
    programs loaded from the persistent cache).
    """

    instance: int
    fold: int
    status: Status
    message: str = ""
    traceback: str = ""
    items: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    params_hash: str | None = None
    task_type: str | None = None
    metrics: Metrics | None = None
    clip_metrics: Metrics | None = None
    history: dict[str, list[float]] | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    epochs: int | None = None
    monitor: str | None = None
    monitor_mode: str | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    n_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    classes: list[str] | None = None
    backend: str | None = None
    compiled: bool | None = None
    compilation: dict[str, float] | None = None
    keras_version: str | None = None
    device: str | None = None
    device_settings: dict[str, str] | None = None
    host: str | None = None
    pid: int | None = None
    model_size: int | None = None
    model_sha256: str | None = None
    outputs_sha256: dict[str, str] = dataclasses.field(default_factory=dict)
    embedding_classifier: dict[str, Any] | None = None
    refit: dict[str, Any] | None = None
    postprocessing: Postprocessing | None = None
    format: int = FORMAT_VERSION
    model_bytes: bytes | None = dataclasses.field(default=None, repr=False)
    predictions_csv: str | None = dataclasses.field(default=None, repr=False)
    val_predictions_csv: str | None = dataclasses.field(default=None, repr=False)
    plot_data: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    classifier_bytes: bytes | None = dataclasses.field(default=None, repr=False)
    cache_notes: dict[str, str] | None = dataclasses.field(default=None, repr=False)
    exception: BaseException | None = dataclasses.field(default=None, repr=False)

    KIND: ClassVar[str] = "fold record"
    TRANSIENT: ClassVar[tuple[str, ...]] = ("model_bytes", "predictions_csv",
                                            "val_predictions_csv", "plot_data",
                                            "classifier_bytes", "cache_notes", "exception")
    _CARRIED = ("predictions_csv", "val_predictions_csv", "plot_data",
                "cache_notes")  # JSON-ready, transient

    @property
    def ok(self) -> bool:
        """Whether the fold trained (`Status.OK`)."""
        return self.status == Status.OK

    @property
    def key(self) -> tuple[int, int]:
        """`(instance, fold)`."""
        return (self.instance, self.fold)

    @property
    def late_best_epoch(self) -> bool:
        """Whether the best epoch is in the last `LATE_EPOCH_SHARE` (10 %) of the `epochs`
        asked for (at least the last epoch): the model was still improving when training
        stopped. `False` when unknown (a fold record written before `epochs` was kept)."""
        if not self.ok or not self.best_epoch or not self.epochs:
            return False
        return self.best_epoch > self.epochs - max(1, int(self.epochs * LATE_EPOCH_SHARE))

    def late_epoch_note(self) -> str:
        """One line saying that the best epoch came late (`""` when it did not)."""
        if not self.late_best_epoch:
            return ""
        return (f"instance {self.instance} fold {self.fold}: best epoch {self.best_epoch} of "
                f"{self.epochs} is in the last {LATE_EPOCH_SHARE:.0%} of epochs: the model was "
                "still improving when training stopped; raise epochs (or the learning rate).")

    @property
    def seconds(self) -> float:
        """The fold's wall time (training, evaluation and packaging), 0 when unknown."""
        return float(self.timings.get("total_seconds", 0.0) or 0.0)

    @property
    def train_rows(self) -> int | None:
        """Original (not augmented) training rows: what the corrected t-test counts."""
        return self.n_rows.get("train_original", self.n_rows.get("train"))

    def level_metrics(self, level: str, clip_falls_back: bool = True) -> Metrics | None:
        """The fold's metrics at `level` (`"segment"` or `"clip"`).

        A fold without clip metrics has one segment per clip (or was written before every
        fold of a segmented store recorded them), so its clip level is its segment level;
        except for tasks whose two levels score differently (`clip_falls_back=False`, e.g.
        detection's windows and recordings), where it has no clip level.

        Returns:
            Split -> metric -> value, or `None` when the fold has none at that level.
        """
        if level == "clip":
            if self.clip_metrics:
                return self.clip_metrics
            return self.metrics if clip_falls_back else None
        return self.metrics

    def as_ensemble_fold(self) -> FoldResult:
        """The record read as a fold of an ensemble of instances: clip scores only.

        An ensemble fuses its members' clip scores, so its fold records hold `clip_metrics`
        and no segment-level `metrics`. Ensembles recorded before this release wrote their
        clip scores under `metrics` (read as segment scores, they repeated the clip score
        there); such a record is read with them moved to `clip_metrics`.

        Returns:
            `self`, or a copy with the scores moved.
        """
        if self.clip_metrics or not self.metrics:
            return self
        return dataclasses.replace(self, metrics=None, clip_metrics=self.metrics)

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `fold_<i>.json` (without the model and predictions)."""
        return super().to_dict()

    @classmethod
    def _check(cls, data: Mapping[str, Any], read: dict[str, Any]) -> None:
        """Every split of the metrics is a dict (`metrics['test']`)."""
        for name in ("metrics", "clip_metrics"):
            for split, values in (data.get(name) or {}).items():
                expect(isinstance(values, dict),
                        f"its {name}[{split!r}] is {type(values).__name__}, not a dict")

    def to_transport(self) -> dict[str, Any]:
        """`to_dict()` with the predictions, plot data and embedding classifier (base64):
        what a worker process or Ray task sends back as JSON (the model's bytes travel
        apart)."""
        out = {**self.to_dict(), **{k: getattr(self, k) for k in self._CARRIED}}
        if self.classifier_bytes is not None:
            out["classifier_b64"] = base64.b64encode(self.classifier_bytes).decode("ascii")
        return out

    @classmethod
    def from_transport(cls, data: Mapping[str, Any],
                       model_bytes: bytes | None = None) -> FoldResult:
        """The result a worker sent (`to_transport()`), with the model's bytes."""
        result = cls.from_dict(data)
        for name in cls._CARRIED:
            setattr(result, name, data.get(name))
        if data.get("classifier_b64"):
            result.classifier_bytes = base64.b64decode(data["classifier_b64"])
        result.model_bytes = model_bytes
        return result

    @classmethod
    def failure(cls, job: Job, error: BaseException | None,
                message: str | None = None) -> FoldResult:
        """The result of `job` when it raised `error` (or could not run: `message`)."""
        text = message or f"{type(error).__name__}: {error}"
        trace = "".join(_traceback.format_exception(error)) if error is not None else text
        return cls(instance=job.instance, fold=job.fold, status=Status.FAILED, message=text,
                   traceback=trace, items=job.items, params_hash=job.params_hash,
                   task_type=job.task_type, exception=error)


def check_fold(result: FoldResult, *, fold: int, instance: int | None = None,
               params_hash: str | None = None, model: Path | None = None,
               model_digest: Any = None,
               ranges: Mapping[str, tuple[float, float]] | None = None,
               clip_only: bool = False) -> str:
    """Why a fold record of status `ok` cannot be believed, or `""` when it can.

    A fold file is a claim: that fold `fold` of this instance, trained with these
    parameters, scored these metrics with the model beside it. Each is checked.

    Args:
        result: the record read from `fold_<i>.json`.
        fold: the fold number its file name gives.
        instance: the instance its folder gives, or `None` not to check.
        params_hash: the instance's parameter hash (`params.json`), or `None` not to check.
        model: the `fold_<i>.keras` beside it, or `None` not to check the model.
        model_digest: a function `path -> SHA-256 hex` (the caller's, so that it may cache).
        ranges: metric name -> `(low, high)` valid values (the task's
            `Task.metric_ranges`); a metric not named must only be finite. A metric
            recorded as `null` is undefined on its split (its NaN was written so), not
            refused; a NaN or infinity in the file was not written by this project.
        clip_only: the fold of an ensemble of instances: its test metrics are clip metrics
            (`FoldResult.as_ensemble_fold`); any other fold has segment-level ones.
            Defaults to `False`.

    Returns:
        The reason, in words (`""`: the fold is valid).
    """
    if result.fold != fold:
        return f"it says fold {result.fold} but is the file of fold {fold}"
    if instance is not None and result.instance != instance:
        return f"it says instance {result.instance} but is in the folder of instance {instance}"
    if params_hash and result.params_hash and result.params_hash != params_hash:
        return "it was trained with other parameters than the instance's params.json"
    reason = _check_metrics(result, ranges or {}, clip_only)
    if reason:
        return reason
    if model is not None:
        if not model.is_file():
            return f"{model.name} is missing"
        if result.model_size is not None and model.stat().st_size != result.model_size:
            return (f"{model.name} has {model.stat().st_size} bytes, not the recorded "
                    f"{result.model_size}")
        if result.model_sha256 is not None and model_digest is not None \
                and model_digest(model) != result.model_sha256:
            return f"{model.name} does not match its recorded SHA-256"
    return ""


def _check_metrics(result: FoldResult, ranges: Mapping[str, tuple[float, float]],
                   clip_only: bool = False) -> str:
    if "test" not in ((result.clip_metrics if clip_only else result.metrics) or {}):
        return "it has no test metrics"
    for metrics in (result.metrics, result.clip_metrics):
        for split, values in (metrics or {}).items():
            for name, value in values.items():
                # A confusion matrix; or a metric undefined on this split (NaN when scored,
                # written as null: an event F1 without events, R² of one row).
                if isinstance(value, list) or value is None:
                    continue
                if not FINITE.is_satisfied_by(value):
                    return f"its {split} {name} is {value!r}, not a finite number"
                base = name.removeprefix("embedding_")
                low, high = ranges.get(base, (-math.inf, math.inf))
                if not low <= value <= high:
                    return (f"its {split} {name} is {value!r}, outside the valid range "
                            f"[{low}, {high}]")
    if result.history is not None:
        for name, curve in result.history.items():
            if not isinstance(curve, list):
                return f"its history of {name} is {type(curve).__name__}, not a list"
    return ""
