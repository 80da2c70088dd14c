"""The typed records of a run: what travels between processes and what result files hold.

- `Job`: one (instance, fold) to train; `FoldResult`: what it gave (`fold_<i>.json`).
- `ParamsRecord` (`params.json`), `FoldsManifest` (`folds.json`), `InstanceSummary`
  (`summary.json`), `FinalModelRecord` (`final.json`), `TrialRecord` (`trial.json`).

Every record is a dataclass written with `to_dict()` and read with `from_dict()`, and every
reader of a result file goes through them (the files' paths come from
`xval.core.layout.ExperimentLayout`). A record written today carries `"format":
FORMAT_VERSION`; `from_dict` reads every format this project has written (files of release
0.1 have no `"format"`: their missing fields take their defaults) and refuses a file that is
not a record of its kind (a `RecordError` naming the file's problem), so that a reader never
meets a half-typed dict. Whether a well-formed fold file can be believed (its metrics finite
and in range, its model present with the recorded hash, its parameters the instance's) is
`check_fold`'s question.

Executors take `Job`s and yield `FoldResult`s; none of them writes result files: the
recorder (`xval.running.recorder`) does, in the driver.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
import traceback as _traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.hashing import json_digest

FORMAT_VERSION = 2
"""The format of the records written by this release (release 0.1 wrote no version: 1)."""

LATE_EPOCH_SHARE = 0.1
"""A fold whose best epoch falls in this last share of `epochs` was still improving when
training stopped: the terminal and the workbook say so (`FoldResult.late_best_epoch`)."""

SPLITS = ("train", "val", "test")
LEVELS = ("segment", "clip")

Metrics = dict[str, dict[str, Any]]
"""Split (`train`, `val`, `test`) -> metric name -> value (a confusion matrix is a list)."""


class RecordError(ResultsConflictError):
    """A result file that is not a record of its kind (wrong types, a missing field)."""


class Status(str, enum.Enum):
    """State of one fold. The value is what `fold_<i>.json` stores."""

    OK = "ok"  # The fold trained and every split's outputs and loss are finite.
    FAILED = "failed"  # The fold raised, or training diverged; `message` says why.


class InstanceStatus(str, enum.Enum):
    """State of one instance, derived from its fold files."""

    COMPLETE = "complete"  # Every fold is done.
    PARTIAL = "partial"  # Some folds are done, none failed: a rerun resumes it.
    FAILED = "failed"  # A fold failed; the instance's other folds were not started.
    PENDING = "pending"  # No fold is done yet.
    PRUNED = "pruned"  # A search stopped the trial early; its finished folds are kept.


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise RecordError(what)


def _version(data: Mapping[str, Any], kind: str) -> int:
    version = data.get("format", 1)
    _require(isinstance(version, int) and not isinstance(version, bool),
             f"its format {version!r} is not a number")
    if version > FORMAT_VERSION:
        raise RecordError(f"it is a {kind} of format {version}, written by a newer release "
                          f"than this one (format {FORMAT_VERSION}); upgrade to read it")
    return version


def _known(cls: type, data: Mapping[str, Any], transient: Iterable[str] = ()) -> dict:
    names = {f.name for f in dataclasses.fields(cls)} - set(transient)
    return {k: v for k, v in data.items() if k in names}


def _mapping(data: Any, kind: str) -> Mapping[str, Any]:
    _require(isinstance(data, Mapping), f"it holds {type(data).__name__}, not a {kind}")
    return data


def _typed(data: Mapping[str, Any], name: str, kinds: type | tuple[type, ...],
           optional: bool = True) -> None:
    value = data.get(name)
    if value is None and optional:
        return
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in (
        kinds if isinstance(kinds, tuple) else (kinds,)))
    _require(ok, f"its {name!r} is {type(value).__name__} {value!r:.60}")


@dataclasses.dataclass
class Job:
    """One (instance, fold) to train and evaluate.

    Args:
        instance: the instance id.
        fold: the fold index.
        params: the instance's resolved parameters.
        items: `{"train": [...], "val": [...], "test": [...]}` item names.
        task_type: the task's name (see `xval.tasks`).
        generator: stream batches from the memory-mapped store.
        store: absolute path of the feature store (a shared folder when jobs run on
            other machines; the Ray executor checks every node sees the same store).
        params_hash: the parameters' hash (see `xval.config.params.params_hash`).
        store_hash: the store's content hash, checked where the job runs.
        log_dir: TensorBoard log folder, or `None`.
        refit_epochs: when set, the job is a refit (the final model of an instance, or a
            fold's `refit_with_val` model): it trains on every row of `items["train"]` for
            exactly this many epochs, without validation or early stopping, and evaluates
            on the training rows and on the test rows, if `items["test"]` has any.
            Defaults to `None` (a cross-validation fold).
    """

    instance: int
    fold: int
    params: dict[str, Any]
    items: dict[str, list[str]]
    task_type: str
    generator: bool
    store: str
    params_hash: str = ""
    store_hash: str = ""
    log_dir: str | None = None
    refit_epochs: int | None = None

    def __post_init__(self) -> None:
        if not Path(self.store).is_absolute():
            raise ConfigurationError(
                f"Job store path {self.store!r} must be absolute, so that a worker in another "
                "directory or on another machine resolves it to the same store."
            )

    @property
    def key(self) -> tuple[int, int]:
        """`(instance, fold)`."""
        return (self.instance, self.fold)

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """The job of `to_dict()` (unknown keys are ignored)."""
        return cls(**_known(cls, data))


@dataclasses.dataclass
class Postprocessing:
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
    """

    values: dict[str, Any]
    classes: list[str] = dataclasses.field(default_factory=list)
    split: str = "val"
    level: str = "segment"
    score: float | None = None

    def apply(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` with the chosen values where `params` leaves them unset (`None`)."""
        out = dict(params)
        for name, value in self.values.items():
            if out.get(name) is None:
                out[name] = value
        return out

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
                   level=found[0].level, score=float(np.mean(scores)) if scores else None)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Postprocessing:
        """Reads `to_dict()`'s output.

        Raises:
            RecordError: when it is not a post-processing record.
        """
        data = _mapping(data, "post-processing record")
        _typed(data, "values", dict, optional=False)
        _typed(data, "classes", list)
        for name in ("split", "level"):
            _typed(data, name, str)
        _typed(data, "score", (int, float))
        return cls(**_known(cls, data))


@dataclasses.dataclass
class FoldResult:
    """What one job produced: the content of `fold_<i>.json`.

    `model_bytes` (the best model as a `.keras` file), `predictions_csv` (the test
    predictions), `plot_data` (what the task's per-fold plots draw,
    `Task.fold_plot_data`) and `classifier_bytes` travel with the result but are not part of
    `to_dict()`: the recorder writes them as their own files and records the model's size
    and hash in the fold file. A worker sends `to_transport()` and the model's bytes back.
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
    keras_version: str | None = None
    device: str | None = None
    host: str | None = None
    pid: int | None = None
    model_size: int | None = None
    model_sha256: str | None = None
    embedding_classifier: dict[str, Any] | None = None
    refit: dict[str, Any] | None = None
    postprocessing: Postprocessing | None = None
    format: int = FORMAT_VERSION
    model_bytes: bytes | None = dataclasses.field(default=None, repr=False)
    predictions_csv: str | None = dataclasses.field(default=None, repr=False)
    plot_data: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    classifier_bytes: bytes | None = dataclasses.field(default=None, repr=False)
    exception: BaseException | None = dataclasses.field(default=None, repr=False)

    _TRANSIENT = ("model_bytes", "predictions_csv", "plot_data", "classifier_bytes",
                  "exception")
    _CARRIED = ("predictions_csv", "plot_data")  # the JSON-ready transient fields

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

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `fold_<i>.json` (without the model and predictions)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in self._TRANSIENT}
        out["status"] = Status(self.status).value
        if self.postprocessing is not None:
            out["postprocessing"] = self.postprocessing.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> FoldResult:
        """Reads the content of a `fold_<i>.json` of any format.

        Raises:
            RecordError: when it is not a fold record (not a dict, no integer `instance` and
                `fold`, an unknown status, a field of the wrong type).
        """
        data = _mapping(data, "fold record")
        version = _version(data, "fold record")
        for name in ("instance", "fold"):
            _typed(data, name, int, optional=False)
        status = data.get("status", Status.FAILED.value)
        _require(status in {s.value for s in Status},
                 f"its status {status!r} is not one of {', '.join(s.value for s in Status)}")
        for name in ("items", "metrics", "clip_metrics", "history", "timings", "n_rows",
                     "embedding_classifier", "refit"):
            _typed(data, name, dict)
        for name in ("best_epoch", "epochs_run", "epochs", "model_size", "pid"):
            _typed(data, name, int)
        for name in ("message", "traceback", "params_hash", "task_type", "model_sha256"):
            _typed(data, name, str)
        _typed(data, "classes", list)
        for name in ("metrics", "clip_metrics"):
            for split, values in (data.get(name) or {}).items():
                _require(isinstance(values, dict),
                         f"its {name}[{split!r}] is {type(values).__name__}, not a dict")
        kwargs = _known(cls, data, cls._TRANSIENT)
        kwargs["status"] = Status(status)
        kwargs["format"] = version
        if kwargs.get("postprocessing") is not None:
            kwargs["postprocessing"] = Postprocessing.from_dict(kwargs["postprocessing"])
        for name in ("items", "timings", "n_rows"):
            kwargs[name] = kwargs.get(name) or {}
        kwargs["message"] = kwargs.get("message") or ""
        kwargs["traceback"] = kwargs.get("traceback") or ""
        return cls(**kwargs)

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
               ranges: Mapping[str, tuple[float, float]] | None = None) -> str:
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

    Returns:
        The reason, in words (`""`: the fold is valid).
    """
    if result.fold != fold:
        return f"it says fold {result.fold} but is the file of fold {fold}"
    if instance is not None and result.instance != instance:
        return f"it says instance {result.instance} but is in the folder of instance {instance}"
    if params_hash and result.params_hash and result.params_hash != params_hash:
        return "it was trained with other parameters than the instance's params.json"
    reason = _check_metrics(result, ranges or {})
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


def _check_metrics(result: FoldResult, ranges: Mapping[str, tuple[float, float]]) -> str:
    if not result.metrics or "test" not in result.metrics:
        return "it has no test metrics"
    for metrics in (result.metrics, result.clip_metrics):
        for split, values in (metrics or {}).items():
            for name, value in values.items():
                # A confusion matrix; or a metric undefined on this split (NaN when scored,
                # written as null: an event F1 without events, R² of one row).
                if isinstance(value, list) or value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not math.isfinite(value):
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


@dataclasses.dataclass
class ParamsRecord:
    """`params.json`: an instance's resolved parameters and their hash."""

    instance: int
    hash: str
    params: dict[str, Any]
    task_type: str | None = None
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `params.json`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ParamsRecord:
        """Reads a `params.json` of any format.

        Raises:
            RecordError: when it is not a parameter record.
        """
        data = _mapping(data, "parameter record")
        version = _version(data, "parameter record")
        _typed(data, "instance", int, optional=False)
        _typed(data, "hash", str, optional=False)
        _typed(data, "params", dict, optional=False)
        _typed(data, "task_type", str)
        return cls(**{**_known(cls, data), "format": version})


@dataclasses.dataclass
class FoldsManifest:
    """`folds.json`: which items every fold trains, validates and tests on, and a hash."""

    splitter: str
    dataset_hash: str | None
    folds: list[dict[str, list[str]]]
    hash: str
    num_folds: int = 0
    format: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.num_folds = self.num_folds or len(self.folds)

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `folds.json`."""
        return dataclasses.asdict(self)

    def content_hash(self) -> str:
        """The hash of what the manifest holds (splitter, dataset hash, folds), computed
        now: it differs from the recorded `hash` when the file was edited."""
        return json_digest({"splitter": self.splitter, "dataset_hash": self.dataset_hash,
                            "folds": self.folds})

    @classmethod
    def from_dict(cls, data: Any) -> FoldsManifest:
        """Reads a `folds.json` of any format.

        Raises:
            RecordError: when it is not a fold manifest.
        """
        data = _mapping(data, "fold manifest")
        version = _version(data, "fold manifest")
        _typed(data, "folds", list, optional=False)
        _typed(data, "hash", str, optional=False)
        _typed(data, "splitter", str, optional=False)
        _typed(data, "num_folds", int)
        for i, fold in enumerate(data["folds"]):
            _require(isinstance(fold, dict) and all(isinstance(fold.get(s), list)
                                                    for s in SPLITS),
                     f"its fold {i} is not a dict of train, val and test item lists")
        return cls(**{**_known(cls, data), "format": version})


@dataclasses.dataclass
class Stat:
    """A metric over folds: mean, standard deviation, 95% CI half-width, number of folds."""

    mean: float | None
    std: float | None
    ci95: float | None
    n: int

    @classmethod
    def from_dict(cls, data: Any) -> Stat:
        """Reads `{"mean", "std", "ci95", "n"}`."""
        data = _mapping(data, "statistic")
        return cls(mean=data.get("mean"), std=data.get("std"), ci95=data.get("ci95"),
                   n=int(data.get("n", 0) or 0))


@dataclasses.dataclass
class InstanceSummary:
    """`summary.json`: an instance's state and its metrics over folds.

    Attributes:
        status: an `InstanceStatus` value.
        metrics: level -> split -> metric -> `Stat`.
        confusion_matrix: level -> the test confusion matrix pooled over folds.
        invalid: fold number -> why its file cannot be believed (`check_fold`): such a fold
            is not counted, and a rerun trains it again.
    """

    status: str
    num_folds: int
    folds_done: int = 0
    folds_failed: int = 0
    metrics: dict[str, dict[str, dict[str, Stat]]] = dataclasses.field(default_factory=dict)
    confusion_matrix: dict[str, list] = dataclasses.field(default_factory=dict)
    message: str = ""
    best_epochs: list[int | None] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    invalid: dict[int, str] = dataclasses.field(default_factory=dict)
    format: int = FORMAT_VERSION

    def metric(self, name: str, split: str = "val", level: str = "segment",
               stat: str = "mean") -> float | None:
        """A statistic over folds, e.g. `metric("accuracy", "test")`; `None` when absent."""
        found = self.metrics.get(level, {}).get(split, {}).get(name)
        return None if found is None else getattr(found, stat)

    def levels(self) -> list[str]:
        """The levels with metrics, segment first."""
        return [level for level in LEVELS if level in self.metrics]

    def metric_names(self, level: str = "segment", split: str = "test") -> list[str]:
        """The metrics recorded at `level` on `split`, in their recorded order."""
        return list(self.metrics.get(level, {}).get(split, {}))

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `summary.json`."""
        out = dataclasses.asdict(self)
        out["invalid"] = {str(k): v for k, v in self.invalid.items()}
        return out

    @classmethod
    def pending(cls, num_folds: int) -> InstanceSummary:
        """The summary of an instance with no fold file yet."""
        return cls(status=InstanceStatus.PENDING.value, num_folds=num_folds)

    @classmethod
    def from_dict(cls, data: Any) -> InstanceSummary:
        """Reads a `summary.json` of any format.

        Raises:
            RecordError: when it is not an instance summary.
        """
        data = _mapping(data, "instance summary")
        version = _version(data, "instance summary")
        _typed(data, "status", str, optional=False)
        _typed(data, "metrics", dict)
        metrics = {
            level: {split: {name: Stat.from_dict(stat) for name, stat in names.items()}
                    for split, names in splits.items()}
            for level, splits in (data.get("metrics") or {}).items()}
        kwargs = _known(cls, data)
        kwargs.update(metrics=metrics, format=version,
                      num_folds=int(data.get("num_folds") or 0),
                      invalid={int(k): str(v) for k, v in (data.get("invalid") or {}).items()})
        return cls(**kwargs)

    @classmethod
    def from_folds(cls, folds: Iterable[FoldResult], num_folds: int, *,
                   clip_falls_back: bool = True,
                   invalid: Mapping[int, str] | None = None) -> InstanceSummary:
        """The summary of an instance from its valid fold records.

        Args:
            folds: the instance's fold records (invalid ones left out by the caller).
            num_folds: the number of folds the experiment has.
            clip_falls_back: the task's `clip_is_segment_without_clips` (see
                `FoldResult.level_metrics`).
            invalid: fold -> reason, for folds whose files were not believed.

        Returns:
            The summary: `complete`, `partial` or `failed`, and for every level, split and
            metric the mean, std and 95% CI half-width over folds, plus the test confusion
            matrix pooled over folds.
        """
        folds = list(folds)
        ok = [f for f in folds if f.ok]
        failed = [f for f in folds if not f.ok]
        if failed:
            status = InstanceStatus.FAILED
        elif len(ok) == num_folds:
            status = InstanceStatus.COMPLETE
        elif ok or invalid:
            status = InstanceStatus.PARTIAL
        else:
            status = InstanceStatus.PENDING
        summary = cls(status=status.value, num_folds=num_folds, folds_done=len(ok),
                      folds_failed=len(failed), invalid=dict(invalid or {}),
                      message=failed[0].message if failed else "")
        for level in LEVELS:
            _summarize_level(summary, ok, level, clip_falls_back)
        if ok:
            summary.best_epochs = [f.best_epoch for f in ok]
            summary.seconds = round(sum(f.seconds for f in ok), 3)
        return summary


def _summarize_level(summary: InstanceSummary, ok: list[FoldResult], level: str,
                     clip_falls_back: bool) -> None:
    """Adds one level's statistics (and pooled confusion matrix) to `summary`."""
    field = "metrics" if level == "segment" else "clip_metrics"
    if not any(getattr(f, field) for f in ok):
        return
    found = [f.level_metrics(level, clip_falls_back) for f in ok]
    if level == "clip" and not all(found):
        return  # some folds only scored at the other level: not comparable
    with_level = [m for m in found if m]
    summary.metrics[level] = {}
    for split in SPLITS:
        if split not in with_level[0]:
            continue
        names = [n for n in with_level[0][split] if n != "confusion_matrix"]
        summary.metrics[level][split] = {
            n: mean_std_ci([m[split][n] for m in with_level if n in m.get(split, {})])
            for n in names}
    matrices = [m["test"].get("confusion_matrix") for m in with_level if "test" in m]
    if matrices and all(m is not None for m in matrices):
        summary.confusion_matrix[level] = np.sum(np.asarray(matrices), axis=0).tolist()


def mean_std_ci(values: Iterable[Any]) -> Stat:
    """Mean, sample std and the 95% t-interval half-width of the finite `values`."""
    clean = np.asarray([v for v in values if isinstance(v, (int, float))
                        and not isinstance(v, bool) and math.isfinite(v)], float)
    n = len(clean)
    if n == 0:
        return Stat(mean=None, std=None, ci95=None, n=0)
    std = float(clean.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else None
    return Stat(mean=float(clean.mean()), std=std, ci95=half, n=int(n))


@dataclasses.dataclass
class FinalModelRecord:
    """`final.json`: the final model of an instance, refit on all its items."""

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

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `final.json`."""
        return dataclasses.asdict(self)

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

    @classmethod
    def from_dict(cls, data: Any) -> FinalModelRecord:
        """Reads a `final.json` of any format.

        Raises:
            RecordError: when it is not a final-model record.
        """
        data = _mapping(data, "final-model record")
        version = _version(data, "final-model record")
        _typed(data, "instance", int, optional=False)
        _typed(data, "model_sha256", str, optional=False)
        _typed(data, "model_size", int, optional=False)
        kwargs = _known(cls, data)
        kwargs.setdefault("epochs", None)
        kwargs.setdefault("items", [])
        kwargs.setdefault("params_hash", None)
        return cls(**{**kwargs, "format": version})


@dataclasses.dataclass
class TrialRecord:
    """`trial.json`: the search trial that made an instance (`--search`)."""

    trial: int
    instance: int
    state: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    metric: str | None = None
    objective: float | None = None
    pruned_at_fold: int | None = None
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of `trial.json`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrialRecord:
        """Reads a `trial.json` of any format.

        Raises:
            RecordError: when it is not a trial record.
        """
        data = _mapping(data, "trial record")
        version = _version(data, "trial record")
        _typed(data, "trial", int, optional=False)
        _typed(data, "instance", int, optional=False)
        _typed(data, "state", str, optional=False)
        return cls(**{**_known(cls, data), "format": version})
