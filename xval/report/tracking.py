"""Experiment tracking in MLflow, as a listener of the recorder (`--mlflow [URI]`).

One parent run per instance, named `experiment_<N>/instance_<k>`, holds the instance's
parameters and fold-averaged metrics; one child run per fold holds that fold's metrics
(`train_accuracy`, `val_loss`, `test_f1`, `clip_test_accuracy`, ...), its history
(`history/<name>` per epoch, with `step` = epoch) and its `.keras` model as an artifact.

Runs are tagged with their experiment folder, instance and fold, so a rerun finds them: a
fold already logged with the same model is skipped, one whose model changed (a rerun after a
failure, `--overwrite`) replaces the old run, and an instance whose parameters changed gets
a new parent run. The result files stay the source of truth; MLflow is a view of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xval.core import optional
from xval.core.errors import ConfigurationError
from xval.core.layout import InstanceLayout
from xval.core.network import check_reachable
from xval.core.outputs import check_output_folder
from xval.core.records import FoldResult, InstanceStatus, InstanceSummary, ParamsRecord
from xval.core.storage import ResultsStore
from xval.report.results import InstanceResult
from xval.report.validation import finite

DEFAULT_FOLDER = "mlruns"
_TAG = "xval."


URI_SCHEMES = ("file", "sqlite", "http", "https", "postgresql", "mysql", "mssql",
               "databricks", "uc")
"""Tracking URI schemes MLflow accepts (`scheme+driver:` counts as its scheme)."""


def tracking_uri(target: str | Path | None = None) -> tuple[str, Path | None]:
    """The MLflow tracking URI and artifact folder for a `--mlflow` value.

    A folder (the default `mlruns`, relative to the current directory) becomes a local
    store in that folder: an SQLite database `mlflow.db` plus `artifacts/` (MLflow 3 keeps
    its plain-file backend in maintenance mode and refuses it by default). A URI with a
    scheme (`sqlite:///...`, `http://host:5000`, `file:///...`) is used as it is.

    Args:
        target: the `--mlflow` value, or `None` for `mlruns`.

    Returns:
        `(uri, artifact_root)`; `artifact_root` is `None` for a URI given as such.

    Raises:
        ConfigurationError: for an unknown scheme, a malformed URI (`://bad`), a bare
            number (an instance number swallowed by `--mlflow`), or a folder that cannot be
            written.
    """
    target = DEFAULT_FOLDER if target is None else str(target)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):", target)
    if scheme:
        if scheme.group(1).split("+")[0].lower() not in URI_SCHEMES:
            raise ConfigurationError(
                f"--mlflow {target!r}: unknown tracking URI scheme {scheme.group(1)!r}; "
                f"expected a folder or a URI of {', '.join(URI_SCHEMES)}.")
        return target, None
    if not target.strip() or "://" in target or target.startswith(":"):
        raise ConfigurationError(
            f"--mlflow {target!r}: neither a folder nor a tracking URI (scheme://...); give "
            "a folder such as mlruns or a URI such as http://host:5000.")
    if target.isdigit():
        raise ConfigurationError(
            f"--mlflow {target!r} looks like an instance number taken as the MLflow folder; "
            "give --mlflow last or as --mlflow=URI.")
    folder = check_output_folder(Path(target).expanduser(), what="--mlflow").resolve()
    return f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts"


def _flat(metrics: Mapping[str, Mapping[str, Any]] | None, prefix: str = "") -> dict[str, float]:
    """`{split: {name: value}}` -> `{f"{prefix}{split}_{name}": value}` (finite scalars)."""
    out = {}
    for split, values in (metrics or {}).items():
        for name, value in (values or {}).items():
            if finite(value):
                out[f"{prefix}{split}_{name}"] = float(value)
    return out


def _summary_metrics(summary: InstanceSummary) -> dict[str, float]:
    """The fold-averaged metrics (and their std) of a summary, named as the runs' metrics:
    `test_accuracy`, `test_accuracy_std`, `clip_test_accuracy`, ..."""
    metrics = {}
    for level, prefix in (("segment", ""), ("clip", "clip_")):
        for split, names in summary.metrics.get(level, {}).items():
            for name, stat in names.items():
                for value, suffix in ((stat.mean, ""), (stat.std, "_std")):
                    if finite(value):
                        metrics[f"{prefix}{split}_{name}{suffix}"] = float(value)
    metrics["folds_done"] = float(summary.folds_done)
    return metrics


def _key(*parts: Any) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


class MLflowListener:
    """Logs an experiment's instances and folds to MLflow as they are recorded.

    Pass it to `Experiment.run(..., output=Output(listeners=[MLflowListener()]))`; scripts do
    so with `--mlflow [URI]`.

    Args:
        target: a folder (default `mlruns` in the current directory) or a tracking URI;
            see `tracking_uri`.
        experiment_name: the MLflow experiment; `None` uses the dataset name.
        results_store: the results store the instances' parameters are read through; a
            run hands its own (`on_run_begin`). Defaults to a store of its own.

    Raises:
        ConfigurationError: for a `target` that is no folder or tracking URI. MLflow itself
            is checked before the run trains, with every other package the run needs
            (`requires`), and by `connect`.
    """

    requires = (("--mlflow", "mlflow"),)
    """What needs which extra (`xval.core.optional`): checked by a run before it trains."""

    def __init__(self, target: str | Path | None = None,
                 experiment_name: str | None = None, *,
                 results_store: ResultsStore | None = None) -> None:
        self.uri, self.artifact_root = tracking_uri(target)
        self.experiment_name = experiment_name
        self.results_store = results_store if results_store is not None else ResultsStore()
        self._client: Any = None
        self._experiments: dict[str, str] = {}
        self._parents: dict[Path, tuple[str, str]] = {}

    # -- connection ----------------------------------------------------------------------

    def connect(self) -> Any:
        """Opens the tracking store (creating a local one); call before training so that
        a bad URI fails first.

        Raises:
            ConfigurationError: when MLflow is not installed, or cannot open the store.
        """
        if self._client is not None:
            return self._client
        optional.require(*self.requires[0])
        scheme = self.uri.split(":", 1)[0].lower()
        if scheme in ("http", "https"):  # one try, not minutes of MLflow's own retries
            check_reachable(self.uri, "The MLflow tracking server",
                            "start it (`mlflow server`) or check --mlflow.",
                            default_port=443 if scheme == "https" else 80)
        from mlflow import MlflowClient  # noqa: PLC0415  (optional: --mlflow)
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        for name in ("mlflow.store.db.utils", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if self.artifact_root is not None:
            self.artifact_root.mkdir(parents=True, exist_ok=True)
        try:
            client = MlflowClient(tracking_uri=self.uri)
            client.search_experiments(max_results=1)
        except MlflowException as e:
            raise ConfigurationError(
                f"--mlflow {self.uri!r}: MLflow cannot open this store ({e.message[:300]}). "
                "Give a folder (a local store is made there) or a server URI."
            ) from e
        self._client = client
        return client

    def _experiment_id(self, exp_dir: Path) -> str:
        name = self.experiment_name or exp_dir.parent.name
        if name not in self._experiments:
            client = self.connect()
            found = client.get_experiment_by_name(name)
            if found is None:
                location = None if self.artifact_root is None else \
                    (self.artifact_root / name).as_uri()
                self._experiments[name] = client.create_experiment(
                    name, artifact_location=location)
            else:
                if found.lifecycle_stage == "deleted":
                    client.restore_experiment(found.experiment_id)
                self._experiments[name] = found.experiment_id
        return self._experiments[name]

    def _find(self, experiment_id: str, key: str) -> Any:
        runs = self._client.search_runs([experiment_id],
                                        filter_string=f"tags.`{_TAG}key` = '{key}'")
        return runs[0] if runs else None

    def _log(self, run_id: str, metrics: Iterable[Any] = (),
             params: Iterable[tuple[str, Any]] = (),
             tags: Iterable[tuple[str, Any]] = ()) -> None:
        from mlflow.entities import Metric, Param, RunTag  # noqa: PLC0415  (optional)

        now = int(time.time() * 1000)
        logged = [m if isinstance(m, Metric) else Metric(m[0], m[1], now, 0) for m in metrics]
        named = [Param(k, str(v)[:6000]) for k, v in params]
        tagged = [RunTag(k, str(v)) for k, v in tags]
        # MLflow's limits per batch: 1000 metrics, 100 params, 100 tags.
        for start in range(0, len(named), 100):
            self._client.log_batch(run_id, params=named[start:start + 100])
        for start in range(0, len(tagged), 100):
            self._client.log_batch(run_id, tags=tagged[start:start + 100])
        for start in range(0, len(logged), 1000):
            self._client.log_batch(run_id, metrics=logged[start:start + 1000])

    # -- runs ----------------------------------------------------------------------------

    def _parent(self, inst_dir: str | Path, instance: int) -> str:
        """The parent run of an instance: found by its tags, or made (with the params)."""
        inst_dir = Path(inst_dir).resolve()
        exp_dir = inst_dir.parent
        saved, _ = self.results_store.read_record(
            InstanceLayout(inst_dir, instance).params_file, ParamsRecord.from_dict)
        params_hash = saved.hash if saved is not None else ""
        params = saved.params if saved is not None else {}
        cached = self._parents.get(inst_dir)
        if cached and cached[1] == params_hash:
            return cached[0]
        experiment_id = self._experiment_id(exp_dir)
        key = _key(exp_dir, instance)
        run = self._find(experiment_id, key)
        if run is not None and run.data.tags.get(f"{_TAG}params_hash") != params_hash:
            # Other parameters (--overwrite): the old runs describe results no longer there.
            children = self._client.search_runs(
                [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = "
                                               f"'{run.info.run_id}'")
            for child in children:
                self._client.delete_run(child.info.run_id)
            self._client.delete_run(run.info.run_id)
            run = None
        if run is None:
            run = self._client.create_run(
                experiment_id, run_name=f"{exp_dir.name}/{inst_dir.name}",
                tags={f"{_TAG}key": key, f"{_TAG}kind": "instance",
                      f"{_TAG}experiment_dir": str(exp_dir), f"{_TAG}instance": str(instance),
                      f"{_TAG}params_hash": params_hash})
            self._log(run.info.run_id, params=sorted(params.items()))
        self._parents[inst_dir] = (run.info.run_id, params_hash)
        return run.info.run_id

    def on_run_begin(self, results_store: ResultsStore) -> None:
        """Connects (`connect`) once the run's checks have passed, before any fold trains,
        and reads through the run's results store from then on."""
        self.results_store = results_store
        self.connect()

    def on_fold(self, result: FoldResult, inst_dir: str | Path) -> None:
        """Logs one recorded fold as a child run of its instance's run."""
        from mlflow.entities import Metric  # noqa: PLC0415  (optional: --mlflow)

        inst_dir = Path(inst_dir).resolve()
        parent = self._parent(inst_dir, result.instance)
        experiment_id = self._experiment_id(inst_dir.parent)
        key = _key(inst_dir.parent, result.instance, result.fold)
        status = result.status.value
        fingerprint = result.model_sha256 or _key(status, result.message)
        run = self._find(experiment_id, key)
        if run is not None:
            if run.data.tags.get(f"{_TAG}fingerprint") == fingerprint:
                return  # already logged: a rerun that found this fold done
            self._client.delete_run(run.info.run_id)
        run_id = self._client.create_run(
            experiment_id, run_name=f"{inst_dir.parent.name}/{inst_dir.name}/fold_{result.fold}",
            tags={"mlflow.parentRunId": parent, f"{_TAG}key": key, f"{_TAG}kind": "fold",
                  f"{_TAG}experiment_dir": str(inst_dir.parent),
                  f"{_TAG}instance": str(result.instance), f"{_TAG}fold": str(result.fold),
                  f"{_TAG}status": status, f"{_TAG}fingerprint": fingerprint,
                  f"{_TAG}message": result.message[:5000]}).info.run_id
        metrics = {**_flat(result.metrics), **_flat(result.clip_metrics, "clip_")}
        for name in ("best_epoch", "epochs_run"):
            if getattr(result, name) is not None:
                metrics[name] = float(getattr(result, name))
        for name, value in (result.timings or {}).items():
            metrics[name] = float(value)
        now = int(time.time() * 1000)
        history = [Metric(f"history/{name}", float(v), now, step)
                   for name, values in (result.history or {}).items()
                   for step, v in enumerate(values, start=1)
                   if v is not None and math.isfinite(v)]
        self._log(run_id, metrics=[*metrics.items(), *history])
        model = InstanceLayout(inst_dir, result.instance).fold_model(result.fold)
        if result.ok and model.exists():
            self._client.log_artifact(run_id, str(model))
        self._client.set_terminated(run_id, "FINISHED" if result.ok else "FAILED")

    def on_instance(self, result: InstanceResult) -> None:
        """Logs the fold-averaged metrics (and their std) on the instance's run."""
        instance, summary, inst_dir = result.id, result.summary, result.path
        parent = self._parent(inst_dir, instance)
        digest = _key(json.dumps(summary.to_dict(), sort_keys=True, default=str))
        run = self._client.get_run(parent)
        if run.data.tags.get(f"{_TAG}summary") == digest:
            return
        self._log(parent, metrics=list(_summary_metrics(summary).items()),
                  tags=[(f"{_TAG}summary", digest), (f"{_TAG}status", summary.status)])
        summary_file = InstanceLayout(Path(inst_dir), instance).summary_file
        if summary_file.exists():
            self._client.log_artifact(parent, str(summary_file))
        state = {InstanceStatus.COMPLETE.value: "FINISHED",
                 InstanceStatus.FAILED.value: "FAILED"}.get(summary.status, "KILLED")
        self._client.set_terminated(parent, state)
