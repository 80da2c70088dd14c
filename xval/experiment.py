"""`Experiment`: numbered instances of parameter overrides, cross-validated over items.

Example (an experiment script):

```python
from xval import Experiment

experiment = Experiment(description="...", dataset="demo", number=1, num_folds=4)
experiment[1] = ['architecture="example_cnn"', 'reshaping_type="conv"',
                 'comment_1="lr 1e-3"', 'comment_2="baseline"', 'learning_rate=0.001']

if __name__ == "__main__":
    experiment.main()
```
"""

import os
import shutil
import sys
import time
from pathlib import Path

from xval.errors import ConfigurationError, ResultsConflictError, XvalError
from xval.logs import quiet_framework_logs

TASK_TYPES = ("classification", "regression")
_INSTANCE_FILES = ("fold_*.json", "fold_*.keras", "predictions_fold_*.csv", "summary.json",
                   "error.txt", "params.json")


def _check(name, value, kind):
    """Returns `value` if it is a `kind` (a bool is not an int here), else raises."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigurationError(f"{name}={value!r}: expected {kind.__name__}.")
    return value


def _valid_gpu(gpu):
    """A GPU id: an int >= -1, or a string of one: digits, `-1` or `cpu`."""
    if isinstance(gpu, bool):
        return False
    if isinstance(gpu, int):
        return gpu >= -1
    return isinstance(gpu, str) and (gpu.strip().isdigit() or gpu.strip() in ("-1", "cpu"))


def setup_environment(backend, gpu=None):
    """Sets `KERAS_BACKEND` and `CUDA_VISIBLE_DEVICES` before Keras is imported.

    Args:
        backend: backend from config.ini; the `KERAS_BACKEND` environment variable wins.
        gpu: GPU id for `CUDA_VISIBLE_DEVICES` (`"-1"` hides every GPU), or `None`.

    Returns:
        The backend in use.

    Raises:
        ConfigurationError: when Keras is already imported with another backend or GPU.
    """
    backend = os.environ.get("KERAS_BACKEND") or backend
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise ConfigurationError(
                f"Keras was imported with backend {keras.backend.backend()!r} before the "
                f"experiment asked for {backend!r}; run the experiment in a fresh process."
            )
        if gpu is not None and os.environ.get("CUDA_VISIBLE_DEVICES") != str(gpu):
            raise ConfigurationError(
                f"GPU {gpu} was asked for after Keras was imported; choose the GPU before "
                "importing Keras (run the experiment script directly)."
            )
        return backend
    os.environ["KERAS_BACKEND"] = backend
    # Keras's serializer imports TensorFlow when it is installed; keep its logs quiet.
    quiet_framework_logs()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = "" if str(gpu) in ("-1", "cpu") else str(gpu)
    return backend


class Experiment:
    """An experiment: settings, plus numbered instances set with `experiment[k] = ...`.

    Args:
        description: short description (first line of the description file).
        dataset: name of the feature store under `config.ini [paths] data_dir`.
        number: experiment number `N` (results go to `<dataset>/experiment_<N>`).
        num_folds: folds over items; 1 means one train/validation/test split. Defaults to `5`.
        experiment_folder: results folder; `None` uses `config.ini [paths] results_dir`.
        overwrite_results: rerun instances that already have results. Defaults to `False`.
        debug_mode: stop at the first error with its traceback; otherwise a failing instance
            is recorded and the run goes on. Defaults to `False`.
        task_type: `"classification"` or `"regression"`. Defaults to `"classification"`.
        generator: stream batches from the memory-mapped store. Defaults to `False`.
        gpu_ID: GPU id, overridden by the command line. Defaults to `None` (leave as is).
        parameters: parameters applied to every instance (dict or list of strings).
        n_repeats: repeat the k-fold with other shuffles. Defaults to `1`.
        config: path of config.ini; `None` finds it (see `xval.config.find_config`).
        allow_outside_data_dir: accept a `dataset` that leads outside data_dir (an absolute
            path or `..`). Defaults to `False`.

    Raises:
        ConfigurationError: for a setting of the wrong type or out of range, named with its
            value and what is expected.
    """

    def __init__(self, *, description, dataset, number, num_folds=5, experiment_folder=None,
                 overwrite_results=False, debug_mode=False, task_type="classification",
                 generator=False, gpu_ID=None, parameters=None, n_repeats=1, config=None,
                 allow_outside_data_dir=False):
        self.description = _check("description", description, str)
        self.dataset = _check("dataset", dataset, str)
        _check("allow_outside_data_dir", allow_outside_data_dir, bool)
        dataset_path = Path(dataset)
        if not dataset.strip() or dataset_path.name in ("", ".", ".."):
            raise ConfigurationError(
                f"dataset={dataset!r}: expected the name of a feature store under config.ini "
                "[paths] data_dir, e.g. 'demo'."
            )
        if not allow_outside_data_dir and (dataset_path.is_absolute()
                                           or ".." in dataset_path.parts):
            raise ConfigurationError(
                f"dataset={dataset!r} leads outside config.ini [paths] data_dir; expected a "
                "store name under data_dir, e.g. 'demo'. Move the store there, change "
                "data_dir, or pass allow_outside_data_dir=True if this is intended."
            )
        self.number = _check("number", number, int)
        if number < 0:
            raise ConfigurationError(f"number={number}: expected an integer >= 0.")
        self.num_folds = _check("num_folds", num_folds, int)
        if num_folds < 1:
            raise ConfigurationError(f"num_folds={num_folds}: expected an integer >= 1.")
        if experiment_folder is not None and not isinstance(experiment_folder,
                                                            (str, os.PathLike)):
            raise ConfigurationError(
                f"experiment_folder={experiment_folder!r}: expected a path string (the "
                f"results folder), or None for config.ini [paths] results_dir; got "
                f"{type(experiment_folder).__name__}."
            )
        self.experiment_folder = experiment_folder
        self.overwrite_results = _check("overwrite_results", overwrite_results, bool)
        self.debug_mode = _check("debug_mode", debug_mode, bool)
        if task_type not in TASK_TYPES:
            raise ConfigurationError(
                f"task_type={task_type!r}: expected one of {', '.join(TASK_TYPES)}."
            )
        self.task_type = task_type
        self.generator = _check("generator", generator, bool)
        if gpu_ID is not None and not _valid_gpu(gpu_ID):
            raise ConfigurationError(
                f"gpu_ID={gpu_ID!r}: expected a GPU number such as 0 or '1', -1 or 'cpu' for "
                "the CPU, or None to leave CUDA_VISIBLE_DEVICES as it is."
            )
        self.gpu_ID = gpu_ID
        if parameters is not None and not isinstance(parameters, (dict, list, tuple)):
            raise ConfigurationError(
                f"parameters={parameters!r}: expected a dict or a list of 'name=value' "
                f"strings applied to every instance; got {type(parameters).__name__}."
            )
        self.parameters = parameters or {}
        self.n_repeats = _check("n_repeats", n_repeats, int)
        if n_repeats < 1:
            raise ConfigurationError(f"n_repeats={n_repeats}: expected an integer >= 1.")
        if config is not None and not isinstance(config, (str, os.PathLike)):
            raise ConfigurationError(
                f"config={config!r}: expected the path of a config.ini, or None to find it; "
                f"got {type(config).__name__}."
            )
        self.config_path = config
        self.allow_outside_data_dir = allow_outside_data_dir
        self.instances = {}
        caller = sys._getframe(1).f_code.co_filename  # the experiment script
        self.script = caller if caller and Path(caller).is_file() else None

    def __setitem__(self, instance_id, spec):
        if not isinstance(instance_id, int) or isinstance(instance_id, bool) or instance_id < 0:
            raise ConfigurationError(
                f"Instance id {instance_id!r}: expected an integer >= 0."
            )
        if not isinstance(spec, (dict, list, tuple)):
            raise ConfigurationError(
                f"instance {instance_id}: expected a dict or a list of 'name=value' strings, "
                f"got {type(spec).__name__}."
            )
        if instance_id in self.instances:
            raise ConfigurationError(
                f"instance {instance_id} is assigned twice; each instance number is declared "
                "once. Give the second one a new number."
            )
        self.instances[instance_id] = spec

    def __getitem__(self, instance_id):
        return self.instances[instance_id]

    def __len__(self):
        return len(self.instances)

    def __repr__(self):
        return (f"Experiment(dataset={self.dataset!r}, number={self.number}, "
                f"instances={sorted(self.instances)})")

    def main(self, argv=None):
        """Runs the command line (`FIRST LAST [GPU]`, options) and exits with its code."""
        from xval.cli import run_experiment_cli

        sys.exit(run_experiment_cli(self, argv))

    # -- running ------------------------------------------------------------------------

    def select(self, first=None, last=None, instances=None):
        """The instance ids to run, checked against the declared ones.

        Raises:
            ConfigurationError: for ids or a range outside the declared instances.
        """
        declared = sorted(self.instances)
        if not declared:
            raise ConfigurationError("The experiment declares no instances.")
        span = f"{declared[0]}..{declared[-1]}" if len(declared) > 1 else str(declared[0])
        if instances is not None:
            unknown = [i for i in instances if i not in self.instances]
            if unknown:
                raise ConfigurationError(
                    f"Instance(s) {unknown} are not declared; the experiment declares "
                    f"{declared}."
                )
            return list(dict.fromkeys(instances))
        if first is None:
            return declared
        last = first if last is None else last
        if last < first:
            raise ConfigurationError(f"Instance range {first}..{last} is empty: FIRST > LAST.")
        if first < declared[0] or last > declared[-1]:
            raise ConfigurationError(
                f"Instance range {first}..{last} is outside the declared instances {span}."
            )
        return [i for i in declared if first <= i <= last]

    def run(self, instances=None, *, overrides=None, overwrite=None, dry_run=False, gpu=None,
            config=None, executor=None, gpus=None, debug=None, out=print):
        """Validates, then runs the selected instances.

        Every instance is resolved and every conflict with existing results is found before
        anything is written or trained.

        Args:
            instances: instance ids (see `select`); `None` runs all.
            overrides: dict of `--set` parameter values.
            overwrite: rerun instances with results; `None` uses `overwrite_results`.
            dry_run: print the resolved parameters and folds, write nothing.
            gpu: GPU id (`CUDA_VISIBLE_DEVICES`); `None` uses `gpu_ID`.
            config: a `Config`, a path, or `None` to find config.ini.
            executor: `"inline"` or `"process"`; `None` uses config.ini.
            gpus: GPU ids for the process executor. Defaults to `[gpu]`.
            debug: `None` uses `debug_mode`.
            out: print function for progress. Defaults to `print`.

        Returns:
            `RunOutcome` with `results` (`ExperimentResults`), `failed`, `skipped`,
            `exit_code`.
        """
        from xval.config import Config, find_config, load_config

        if not isinstance(config, Config):
            config = load_config(config or self.config_path or find_config(self.script))
        gpu = self.gpu_ID if gpu is None else gpu
        backend = setup_environment(config.backend["backend"], gpu)
        overwrite = self.overwrite_results if overwrite is None else overwrite
        debug = self.debug_mode if debug is None else debug
        selected = self.select(instances=None if instances is None else list(instances))
        plan = self._plan(config, selected, overrides or {}, overwrite)
        if dry_run:
            self._print_plan(plan, out)
            return RunOutcome(None, [], [], 0)
        from xval.executors import make_executor

        name = executor or config.backend["executor"]
        gpu_list = gpus or ([str(gpu)] if gpu is not None else [None])
        runner = make_executor(name, gpu_list, config.backend["jobs_per_gpu"], backend)
        return self._execute(plan, runner, backend, config, overwrite, debug, out)

    def _plan(self, config, selected, overrides, overwrite):
        from preprocessing.store import FeatureStore
        from xval import params as P
        from xval.folds import ItemKFold, PredefinedItemSplit, check_fold, fold_manifest
        from xval.results import read_json

        resolved = {
            k: P.resolve(k, self.instances[k], training_defaults=config.training,
                         experiment_params=self.parameters, overrides=overrides,
                         task_type=self.task_type)
            for k in selected
        }
        store = FeatureStore(Path(config.data_dir) / self.dataset)
        if store.task_type != self.task_type:
            raise ConfigurationError(
                f"Dataset {self.dataset!r} is a {store.task_type} store but the experiment "
                f"says task_type={self.task_type!r}."
            )
        if "split" in store.meta.columns:
            if self.num_folds != 1:
                raise ConfigurationError(
                    f"Dataset {self.dataset!r} has predefined train/validation/test splits; "
                    f"set num_folds=1 (it is {self.num_folds})."
                )
            splitter = PredefinedItemSplit(store.meta["split"].to_numpy(str))
        else:
            splitter = ItemKFold(self.num_folds, val_fraction=config.folds["val_fraction"],
                                 test_fraction=config.folds["test_fraction"],
                                 stratify=config.folds["stratify"], n_repeats=self.n_repeats,
                                 random_state=config.folds["fold_seed"])
        y = store.meta["label"].to_numpy(str) if self.task_type == "classification" else None
        folds = splitter.split_items(store.items, y)
        for fold in folds:
            check_fold(fold)
        manifest = fold_manifest(splitter, folds, store.content_hash)
        root = Path(self.experiment_folder or config.results_dir)
        exp_dir = root / self.dataset / f"experiment_{self.number}"
        folds_file = exp_dir / "folds.json"
        if folds_file.exists():
            old = read_json(folds_file)
            if old.get("hash") != manifest["hash"]:
                raise ResultsConflictError(
                    f"{folds_file} holds other folds (the dataset, num_folds or [folds] "
                    "settings changed since the results there were made). Use a new "
                    "experiment number, or move that folder away."
                )
        conflicts = []
        for k, p in resolved.items():
            params_file = exp_dir / f"instance_{k}" / "params.json"
            if params_file.exists() and not overwrite:
                old = read_json(params_file)
                if old.get("hash") != P.params_hash(p):
                    names = P.differing(old.get("params", {}), p)
                    detail = ", ".join(f"{n}: {old.get('params', {}).get(n, '<absent>')!r} -> "
                                       f"{p.get(n, '<absent>')!r}" for n in names)
                    conflicts.append(f"instance {k} ({detail})")
        if conflicts:
            raise ResultsConflictError(
                "Existing results were made with other parameters: " + "; ".join(conflicts)
                + ". Rerun with --overwrite (or overwrite_results=True) to replace them, or "
                "declare a new instance."
            )
        return {"resolved": resolved, "store": store, "manifest": manifest, "folds": folds,
                "exp_dir": exp_dir, "config": config}

    def _print_plan(self, plan, out):
        out(f"Dry run of experiment {self.number} on {self.dataset!r} "
            f"({len(plan['store'])} rows, {plan['store'].info['n_items']} items): nothing is "
            "trained or written.")
        out(f"Results would go to {plan['exp_dir']}")
        out(f"Folds ({plan['manifest']['splitter']}, hash {plan['manifest']['hash'][:12]}):")
        for i, fold in enumerate(plan["folds"]):
            out(f"  fold {i}: train {len(fold['train'])} items, val {fold['val']}, "
                f"test {fold['test']}")
        for k, p in plan["resolved"].items():
            out(f"Instance {k}:")
            for name in sorted(p):
                out(f"  {name} = {p[name]!r}")

    def _write_experiment_files(self, plan, backend):
        from xval.results import atomic_write_json, atomic_write_text, lock, read_json
        from xval.snapshot import write_snapshot

        exp_dir = plan["exp_dir"]
        exp_dir.mkdir(parents=True, exist_ok=True)
        with lock(exp_dir / "experiment"):
            folds_file = exp_dir / "folds.json"
            if not folds_file.exists():
                atomic_write_json(folds_file, plan["manifest"])
            elif read_json(folds_file)["hash"] != plan["manifest"]["hash"]:
                raise ResultsConflictError(f"{folds_file} changed under this run.")
            lines = [self.description, "", f"dataset: {self.dataset}",
                     f"experiment: {self.number}", f"task_type: {self.task_type}",
                     f"num_folds: {self.num_folds}", f"generator: {self.generator}",
                     f"folds: {plan['manifest']['splitter']}", "", "instances:"]
            for k in sorted(self.instances):
                spec = self.instances[k]
                lines.append(f"  {k}: {spec!r}")
            atomic_write_text(exp_dir / f"experiment_{self.number}_description.txt",
                              "\n".join(lines) + "\n")
            # What prediction needs to extract features as the dataset did.
            info = {k: v for k, v in plan["store"].info.items() if k != "skipped"}
            atomic_write_json(exp_dir / "dataset.json",
                              {**info, "store": str(plan["store"].path)})
            write_snapshot(exp_dir / "code", script=self.script,
                           config_path=plan["config"].path, backend=backend)

    def _execute(self, plan, runner, backend, config, overwrite, debug, out):
        from filelock import Timeout

        from xval import params as P
        from xval.results import (
            ExperimentResults,
            atomic_write_json,
            atomic_write_text,
            lock,
            read_json,
        )

        exp_dir = plan["exp_dir"]
        self._write_experiment_files(plan, backend)
        folds = plan["folds"]
        n_folds = len(folds)
        held, skipped, jobs_by_instance = [], [], {}
        t0 = time.perf_counter()
        try:
            for k, p in plan["resolved"].items():
                inst_dir = exp_dir / f"instance_{k}"
                inst_dir.mkdir(parents=True, exist_ok=True)
                instance_lock = lock(inst_dir / "instance")
                try:
                    instance_lock.acquire(timeout=0)
                except Timeout:
                    out(f"instance {k}: running in another runner; skipped here.")
                    skipped.append(k)
                    continue
                held.append(instance_lock)
                if overwrite:
                    for pattern in _INSTANCE_FILES:
                        for path in inst_dir.glob(pattern):
                            path.unlink()
                    shutil.rmtree(inst_dir / "plots", ignore_errors=True)
                digest = P.params_hash(p)
                atomic_write_json(inst_dir / "params.json", {"instance": k, "hash": digest,
                                                             "params": p})
                done = []
                for i in range(n_folds):
                    f = inst_dir / f"fold_{i}.json"
                    if f.exists() and read_json(f).get("status") == "ok" \
                            and (inst_dir / f"fold_{i}.keras").exists():
                        done.append(i)
                todo = [i for i in range(n_folds) if i not in done]
                if not todo:
                    out(f"instance {k}: all {n_folds} folds already done; skipped.")
                    summary = inst_dir / "summary.json"
                    if not summary.exists() or read_json(summary).get("status") != "complete":
                        self._finish_instance(inst_dir, n_folds)
                    continue
                if done:
                    out(f"instance {k}: folds {done} already done; resuming at fold {todo[0]}.")
                (inst_dir / "error.txt").unlink(missing_ok=True)
                jobs_by_instance[k] = [{
                    "instance": k, "fold": i, "params": p, "params_hash": digest,
                    "items": folds[i], "task_type": self.task_type,
                    "generator": self.generator, "store": str(plan["store"].path),
                    "model_path": str(inst_dir / f"fold_{i}.keras"),
                    "predictions_path": str(inst_dir / f"predictions_fold_{i}.csv"),
                    "log_dir": str(inst_dir / "logs" / f"fold_{i}"),
                } for i in todo]
            failed, finished = set(), set()
            remaining = {k: len(v) for k, v in jobs_by_instance.items()}

            def job_stream():
                for k, jobs in jobs_by_instance.items():
                    for job in jobs:
                        if k in failed:
                            remaining[k] -= 1
                            continue
                        yield job

            for job, result in runner.run(job_stream(), stop_on_error=debug):
                k, i = job["instance"], job["fold"]
                inst_dir = exp_dir / f"instance_{k}"
                atomic_write_json(inst_dir / f"fold_{i}.json", result)
                remaining[k] -= 1
                if result["status"] == "ok":
                    m = result["metrics"]
                    key = "accuracy" if self.task_type == "classification" else "rmse"
                    out(f"instance {k} fold {i}: {key} train {m['train'][key]:.3f} "
                        f"val {m['val'][key]:.3f} test {m['test'][key]:.3f} "
                        f"(best epoch {result['best_epoch']}/{result['epochs_run']}, "
                        f"{result['timings']['total_seconds']:.1f}s)")
                else:
                    failed.add(k)
                    out(f"instance {k} fold {i}: FAILED: {result['message']}")
                    atomic_write_text(inst_dir / "error.txt", result.get("traceback", "")
                                      or result["message"])
                if (remaining[k] == 0 or result["status"] != "ok") and k not in finished:
                    finished.add(k)
                    self._finish_instance(inst_dir, n_folds)
                    self._rebuild_report(exp_dir, config, out)
            for k in jobs_by_instance:
                if k not in finished:
                    self._finish_instance(exp_dir / f"instance_{k}", n_folds)
        finally:
            for instance_lock in held:
                instance_lock.release()
        if not jobs_by_instance or set(jobs_by_instance) - finished:
            self._rebuild_report(exp_dir, config, out)
        results = ExperimentResults(exp_dir)
        failed_ids = [k for k in plan["resolved"] if k in results.instances
                      and results[k].status == "failed"]
        self._print_table(results, list(plan["resolved"]), config, out)
        out(f"Results: {exp_dir} ({time.perf_counter() - t0:.1f}s)")
        code = 1 if failed_ids else 0
        if failed_ids:
            out(f"{len(failed_ids)} instance(s) failed: {failed_ids}; see error.txt in their "
                "folders.")
        return RunOutcome(results, failed_ids, skipped, code)

    def _finish_instance(self, inst_dir, n_folds):
        """Writes the instance's summary and plots from its fold files."""
        from xval.plots import instance_plots
        from xval.results import atomic_write_json, read_json, summarize

        folds = [read_json(p) for p in sorted(inst_dir.glob("fold_*.json"))]
        folds = [f for f in folds if f.get("fold", n_folds) < n_folds]
        summary = summarize(folds, n_folds)
        atomic_write_json(inst_dir / "summary.json", summary)
        instance_plots(inst_dir, folds, summary)

    def _rebuild_report(self, exp_dir, config, out):
        from xval.report import build_workbook

        try:
            build_workbook(exp_dir, config=config)
        except (XvalError, OSError) as e:
            out(f"workbook not rebuilt: {e}")

    def _print_table(self, results, selected, config, out):
        from xval.report import terminal_table

        out(terminal_table(results, config=config, only=selected))


class RunOutcome:
    """What a run did: `results`, `failed` and `skipped` instance ids, `exit_code`."""

    def __init__(self, results, failed, skipped, exit_code):
        self.results = results
        self.failed = failed
        self.skipped = skipped
        self.exit_code = exit_code

    def __repr__(self):
        return (f"RunOutcome(failed={self.failed}, skipped={self.skipped}, "
                f"exit_code={self.exit_code})")
