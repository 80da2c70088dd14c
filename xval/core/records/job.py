"""`Job`: one (instance, fold) to train, what executors take."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from xval.core.errors import ConfigurationError
from xval.core.parameters import InstanceParams
from xval.core.records.base import Record

DEVICE_DATA_MB = 2048
"""`[backend] device_data_mb`'s default: a fold's rows up to 2 GiB are kept on the device."""


@dataclasses.dataclass
class Job(Record):
    """One (instance, fold) to train and evaluate.

    Args:
        instance: the instance id.
        fold: the fold index.
        params: the instance's resolved parameters (`xval.config.params.resolve`); a
            mapping of them (a job read from JSON, written by hand) is made the record.
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
        embedding_items: for each saved embedding model of the fold (its path), the items
            its own fold trained and validated on, read by the planner from the fold record
            beside it, or `None` where there is none: what the job checks for a leak of its
            test items, without reading a result file. Defaults to none.
        device_data_mb: `[backend] device_data_mb`: the most of the fold's training and
            validation rows, in MiB, copied to the device once (batches are then gathered
            there); `0`: batches always come from numpy. Defaults to `DEVICE_DATA_MB`.
        jobs_per_gpu: `[backend] jobs_per_gpu`: the jobs sharing the job's GPU, which share
            its memory (`xval.training.devices.budget_mb`). Defaults to `1`.
        compile_cache: `[backend] compile_cache`: the folder of compiled steps kept between
            runs (JAX), or `None`: none kept. Defaults to `None`.
        script: the experiment script whose folder defines the job's architecture or task
            (a builder or task of the experiment's own, `xval.running.own_code`), which a
            process that does not know them imports before the job; `None` when both come
            from installed packages. Defaults to `None`.
    """

    KIND: ClassVar[str] = "job"

    instance: int
    fold: int
    params: InstanceParams
    items: dict[str, list[str]]
    task_type: str
    generator: bool
    store: str
    params_hash: str = ""
    store_hash: str = ""
    log_dir: str | None = None
    refit_epochs: int | None = None
    embedding_items: dict[str, Any] = dataclasses.field(default_factory=dict)
    device_data_mb: int = DEVICE_DATA_MB
    jobs_per_gpu: int = 1
    compile_cache: str | None = None
    script: str | None = None

    def __post_init__(self) -> None:
        self.params = InstanceParams.of(self.params)
        if not Path(self.store).is_absolute():
            raise ConfigurationError(
                f"Job store path {self.store!r} must be absolute, so that a worker in another "
                "directory or on another machine resolves it to the same store."
            )

    @property
    def key(self) -> tuple[int, int]:
        """`(instance, fold)`."""
        return (self.instance, self.fold)
