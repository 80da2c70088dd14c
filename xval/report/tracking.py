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

import hashlib
import json
import math
import re
import time
from pathlib import Path

from xval.core.errors import ConfigurationError

INSTALL = "pip install -e '.[mlflow]'"
DEFAULT_FOLDER = "mlruns"
_TAG = "xval."


def tracking_uri(target=None):
    """The MLflow tracking URI and artifact folder for a `--mlflow` value.

    A folder (the default `mlruns`, relative to the current directory) becomes a local
    store in that folder: an SQLite database `mlflow.db` plus `artifacts/` (MLflow 3 keeps
    its plain-file backend in maintenance mode and refuses it by default). A URI with a
    scheme (`sqlite:///...`, `http://host:5000`, `file:///...`) is used as it is.

    Args:
        target: the `--mlflow` value, or `None` for `mlruns`.

    Returns:
        `(uri, artifact_root)`; `artifact_root` is `None` for a URI given as such.
    """
    target = DEFAULT_FOLDER if target is None else str(target)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", target):
        return target, None
    folder = Path(target).expanduser().resolve()
    return f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts"


def _flat(metrics, prefix=""):
    """`{split: {name: value}}` -> `{f"{prefix}{split}_{name}": value}` (finite scalars)."""
    out = {}
    for split, values in (metrics or {}).items():
        for name, value in (values or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                out[f"{prefix}{split}_{name}"] = float(value)
    return out


def _key(*parts):
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


class MLflowListener:
    """Logs an experiment's instances and folds to MLflow as they are recorded.

    Pass it to `Experiment.run(..., listeners=[MLflowListener()])`; experiment scripts do
    so with `--mlflow [URI]`.

    Args:
        target: a folder (default `mlruns` in the current directory) or a tracking URI;
            see `tracking_uri`.
        experiment_name: the MLflow experiment; `None` uses the dataset name.

    Raises:
        ConfigurationError: when MLflow is not installed (naming the install command).
    """

    def __init__(self, target=None, experiment_name=None):
        try:
            import mlflow  # noqa: F401
        except ImportError as e:
            raise ConfigurationError(
                f"--mlflow needs MLflow, which is not installed: `{INSTALL}` (or `pip "
                "install 'mlflow>=3,<4'`)."
            ) from e
        self.uri, self.artifact_root = tracking_uri(target)
        self.experiment_name = experiment_name
        self._client = None
        self._experiments = {}
        self._parents = {}

    # -- connection ----------------------------------------------------------------------

    def connect(self):
        """Opens the tracking store (creating a local one); call before training so that
        a bad URI fails first.

        Raises:
            ConfigurationError: when MLflow cannot open the store.
        """
        if self._client is not None:
            return self._client
        import logging

        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

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

    def _experiment_id(self, exp_dir):
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

    def _find(self, experiment_id, key):
        runs = self._client.search_runs([experiment_id],
                                        filter_string=f"tags.`{_TAG}key` = '{key}'")
        return runs[0] if runs else None

    def _log(self, run_id, metrics=(), params=(), tags=()):
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        metrics = [m if isinstance(m, Metric) else Metric(m[0], m[1], now, 0) for m in metrics]
        params = [Param(k, str(v)[:6000]) for k, v in params]
        tags = [RunTag(k, str(v)) for k, v in tags]
        # MLflow's limits per batch: 1000 metrics, 100 params, 100 tags.
        for start in range(0, len(params), 100):
            self._client.log_batch(run_id, params=params[start:start + 100])
        for start in range(0, len(tags), 100):
            self._client.log_batch(run_id, tags=tags[start:start + 100])
        for start in range(0, len(metrics), 1000):
            self._client.log_batch(run_id, metrics=metrics[start:start + 1000])

    # -- runs ----------------------------------------------------------------------------

    def _parent(self, inst_dir, instance):
        """The parent run of an instance: found by its tags, or made (with the params)."""
        inst_dir = Path(inst_dir).resolve()
        exp_dir = inst_dir.parent
        params_file = inst_dir / "params.json"
        saved = json.loads(params_file.read_text()) if params_file.exists() else {}
        params_hash, params = saved.get("hash", ""), saved.get("params", {})
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

    def on_fold(self, result, inst_dir):
        """Logs one recorded fold as a child run of its instance's run."""
        from mlflow.entities import Metric

        inst_dir = Path(inst_dir).resolve()
        parent = self._parent(inst_dir, result.instance)
        experiment_id = self._experiment_id(inst_dir.parent)
        key = _key(inst_dir.parent, result.instance, result.fold)
        status = "ok" if result.ok else "failed"
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
        model = inst_dir / f"fold_{result.fold}.keras"
        if result.ok and model.exists():
            self._client.log_artifact(run_id, str(model))
        self._client.set_terminated(run_id, "FINISHED" if result.ok else "FAILED")

    def on_instance(self, instance, summary, params, inst_dir):
        """Logs the fold-averaged metrics (and their std) of the instance's
        `InstanceSummary` on the instance's run."""
        parent = self._parent(inst_dir, instance)
        digest = _key(json.dumps(summary.to_dict(), sort_keys=True, default=str))
        run = self._client.get_run(parent)
        if run.data.tags.get(f"{_TAG}summary") == digest:
            return
        metrics = {}
        for level, prefix in (("segment", ""), ("clip", "clip_")):
            for split, names in summary.metrics.get(level, {}).items():
                for name, stat in names.items():
                    for value, suffix in ((stat.mean, ""), (stat.std, "_std")):
                        if value is not None and math.isfinite(value):
                            metrics[f"{prefix}{split}_{name}{suffix}"] = float(value)
        metrics["folds_done"] = float(summary.folds_done)
        self._log(parent, metrics=list(metrics.items()),
                  tags=[(f"{_TAG}summary", digest), (f"{_TAG}status", summary.status)])
        summary_file = Path(inst_dir) / "summary.json"
        if summary_file.exists():
            self._client.log_artifact(parent, str(summary_file))
        state = {"complete": "FINISHED", "failed": "FAILED"}.get(summary.status, "KILLED")
        self._client.set_terminated(parent, state)
