"""The job contract: a `Job` is one (instance, fold) to train; a `FoldResult` is what it gave.

Every executor (inline, process, Ray) takes `Job`s and yields `FoldResult`s; none of them
writes result files. Both round-trip through JSON (`to_dict` / `from_dict`), so a job can
travel to a fresh process or another machine and its result come back to the driver, which
alone writes files (`xval.recorder.Recorder`).
"""

import base64
import dataclasses
import enum
import traceback as _traceback
from pathlib import Path

from xval.errors import ConfigurationError


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
        params_hash: the parameters' hash (see `xval.params.params_hash`).
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
    params: dict
    items: dict
    task_type: str
    generator: bool
    store: str
    params_hash: str = ""
    store_hash: str = ""
    log_dir: str | None = None
    refit_epochs: int | None = None

    def __post_init__(self):
        if not Path(self.store).is_absolute():
            raise ConfigurationError(
                f"Job store path {self.store!r} must be absolute, so that a worker in another "
                "directory or on another machine resolves it to the same store."
            )

    @property
    def key(self):
        """`(instance, fold)`."""
        return (self.instance, self.fold)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class FoldResult:
    """What one job produced.

    `model_bytes` (the best model as a `.keras` file), `predictions_csv` (the test
    predictions) and `plot_data` (what the task's per-fold plots draw,
    `Task.fold_plot_data`) travel with the result but are not part of `to_dict()`: the
    recorder writes them as their own files and records the model's size and hash in the
    fold file. A worker sends `to_transport()` and the model's bytes back.
    """

    instance: int
    fold: int
    status: Status
    message: str = ""
    traceback: str = ""
    items: dict = dataclasses.field(default_factory=dict)
    params_hash: str | None = None
    task_type: str | None = None
    metrics: dict | None = None
    clip_metrics: dict | None = None
    history: dict | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    monitor: str | None = None
    monitor_mode: str | None = None
    timings: dict = dataclasses.field(default_factory=dict)
    n_rows: dict = dataclasses.field(default_factory=dict)
    classes: list | None = None
    backend: str | None = None
    keras_version: str | None = None
    device: str | None = None
    host: str | None = None
    pid: int | None = None
    model_size: int | None = None
    model_sha256: str | None = None
    embedding_classifier: dict | None = None
    refit: dict | None = None
    model_bytes: bytes | None = dataclasses.field(default=None, repr=False)
    predictions_csv: str | None = dataclasses.field(default=None, repr=False)
    plot_data: dict | None = dataclasses.field(default=None, repr=False)
    classifier_bytes: bytes | None = dataclasses.field(default=None, repr=False)
    exception: BaseException | None = dataclasses.field(default=None, repr=False)

    _TRANSIENT = ("model_bytes", "predictions_csv", "plot_data", "classifier_bytes",
                  "exception")
    _CARRIED = ("predictions_csv", "plot_data")  # the JSON-ready transient fields

    @property
    def ok(self):
        return self.status == Status.OK

    @property
    def key(self):
        return (self.instance, self.fold)

    def to_dict(self):
        """The JSON content of `fold_<i>.json` (without the model and predictions)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in self._TRANSIENT}
        out["status"] = Status(self.status).value
        return out

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)} - set(cls._TRANSIENT)
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["status"] = Status(data.get("status", "failed"))
        return cls(**kwargs)

    def to_transport(self):
        """`to_dict()` with the predictions, plot data and embedding classifier (base64):
        what a worker process or Ray task sends back as JSON (the model's bytes travel
        apart)."""
        out = {**self.to_dict(), **{k: getattr(self, k) for k in self._CARRIED}}
        if self.classifier_bytes is not None:
            out["classifier_b64"] = base64.b64encode(self.classifier_bytes).decode("ascii")
        return out

    @classmethod
    def from_transport(cls, data, model_bytes=None):
        """The result a worker sent (`to_transport()`), with the model's bytes."""
        result = cls.from_dict(data)
        for name in cls._CARRIED:
            setattr(result, name, data.get(name))
        if data.get("classifier_b64"):
            result.classifier_bytes = base64.b64decode(data["classifier_b64"])
        result.model_bytes = model_bytes
        return result

    @classmethod
    def failure(cls, job, error, message=None):
        """The result of `job` when it raised `error` (or could not run: `message`)."""
        text = message or f"{type(error).__name__}: {error}"
        trace = "".join(_traceback.format_exception(error)) if error is not None else text
        return cls(instance=job.instance, fold=job.fold, status=Status.FAILED, message=text,
                   traceback=trace, items=job.items, params_hash=job.params_hash,
                   task_type=job.task_type, exception=error)
