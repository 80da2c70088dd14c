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

import functools
import os
import re
import sys
import time
from pathlib import Path

from xval import tasks
from xval.core.errors import ConfigurationError, ResultsConflictError, XvalError
from xval.core.logs import quiet_framework_logs

EXIT_PENDING_ELSEWHERE = 3


def normalize_gpu(gpu, what="GPU id"):
    """Checks a GPU id: `None`, an integer >= 0, or -1 / `"cpu"` for no GPU.

    Returns:
        `None`, or the id as a string (`"-1"` for CPU only).

    Raises:
        ConfigurationError: for anything else (`"abc"`, `1.5`, `""`).
    """
    if gpu is None:
        return None
    text = str(gpu).strip().lower()
    if isinstance(gpu, bool) or isinstance(gpu, float) or \
            not (text == "cpu" or re.fullmatch(r"-1|\d+", text)):
        raise ConfigurationError(
            f"{what} {gpu!r}: expected a GPU number (0, 1, ...) or -1 for CPU only."
        )
    return "-1" if text == "cpu" else text


def _declaration(method):
    """Runs `method`; when the experiment script itself is running (`__main__`), a
    configuration error in its declaration prints one line on stderr and exits with 2
    instead of a traceback. Imported and called from other code, it raises as usual."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except XvalError as e:
            caller = sys._getframe(1).f_globals.get("__name__")
            if caller == "__main__":
                print(f"error: {e}", file=sys.stderr)
                raise SystemExit(2) from None
            raise

    return wrapper


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
    quiet_framework_logs(backend=backend)
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
        task_type: a task registered in `xval.tasks` (`xval.tasks.names()`). Defaults to
            `xval.tasks.DEFAULT` (classification).
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

    @_declaration
    def __init__(self, *, description, dataset, number, num_folds=5, experiment_folder=None,
                 overwrite_results=False, debug_mode=False, task_type=tasks.DEFAULT,
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
        self.task_type = tasks.get(task_type).name  # an unknown name lists the known ones
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
        self.search = None  # a xval.search.Search, run with --search
        caller = sys._getframe(2).f_code.co_filename  # the experiment script (past the wrapper)
        self.script = caller if caller and Path(caller).is_file() else None

    @_declaration
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
        from xval.running.command import run_experiment_cli

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
            config=None, executor=None, gpus=None, debug=None, out=print, ray_address=None,
            progress=False, verbose=False, search=False, trials=None, timeout=None,
            listeners=()):
        """Validates, then runs the selected instances.

        Every instance is resolved and every conflict with existing results is found before
        anything is written or trained (see `xval.planner.make_plan`); the scheduler then
        feeds the jobs to the executor and the recorder writes what comes back.

        Args:
            instances: instance ids (see `select`); `None` runs all.
            overrides: dict of `--set` parameter values.
            overwrite: rerun instances with results; `None` uses `overwrite_results`.
            dry_run: print the resolved parameters and folds, write nothing.
            gpu: GPU id (`CUDA_VISIBLE_DEVICES`); `None` uses `gpu_ID`.
            config: a `Config`, a path, or `None` to find config.ini.
            executor: `"inline"`, `"process"` or `"ray"`; `None` uses config.ini.
            gpus: GPU ids for the process executor. Defaults to `[gpu]`.
            debug: `None` uses `debug_mode`.
            out: print function for progress. Defaults to `print`.
            ray_address: Ray cluster to join (`"auto"`, `"HOST:PORT"`); `None` starts a
                local Ray instance (with `executor="ray"`).
            progress: show a progress bar over all jobs on stderr, and say what slow
                start-up steps are running. Defaults to `False` (the command line turns it
                on unless `-q`).
            verbose: print one line per epoch, labelled with its instance and fold.
                Defaults to `False`.
            search: run the declared `search` (Optuna) instead of the declared instances;
                trials become instances numbered after them. Defaults to `False`.
            trials: with `search`, the number of trials in the study (overrides
                `n_trials`). timeout: with `search`, seconds after which this runner starts
                no new trial.
            listeners: objects told about every recorded fold and instance, e.g.
                `xval.tracking.MLflowListener` (see `xval.recorder.Recorder`).

        Returns:
            `RunOutcome` with `results` (`ExperimentResults`), `failed`, `skipped` (held by
            another runner), `exit_code`.
        """
        from xval.config.loader import Config, find_config, load_config
        from xval.executors import ExecutorOptions, make_executor
        from xval.running.planner import make_plan

        if not isinstance(config, Config):
            config = load_config(config or self.config_path or find_config(self.script))
        gpu = normalize_gpu(self.gpu_ID if gpu is None else gpu, "GPU id")
        gpus = [normalize_gpu(g, "--gpus") for g in gpus] if gpus else None
        backend = setup_environment(config.backend["backend"], gpu)
        overwrite = self.overwrite_results if overwrite is None else overwrite
        debug = self.debug_mode if debug is None else debug
        if search:
            if self.search is None:
                raise ConfigurationError(
                    "--search: the experiment declares no search; set `experiment.search = "
                    "xval.Search(base=..., space=...)` in the script."
                )
            if instances is not None:
                raise ConfigurationError("--search runs the search's trials; do not select "
                                         "instances with it.")
            for name_, value in (("--trials", trials), ("--timeout", timeout)):
                if value is not None and (isinstance(value, bool) or value <= 0):
                    raise ConfigurationError(f"{name_} {value!r}: expected a number > 0.")
            self.search.check(self._resolver(config))
            selected = []
        else:
            selected = self.select(instances=None if instances is None else list(instances))
        name = executor or config.backend["executor"]
        gpu_list = gpus or ([gpu] if gpu is not None else None)
        runner = make_executor(name, ExecutorOptions(
            gpus=tuple(gpu_list) if gpu_list else None,
            jobs_per_gpu=config.backend["jobs_per_gpu"], backend=backend,
            ray_address=ray_address))
        self._check_selection_metric(config, overrides, search)
        plan = make_plan(self, config, selected, overrides or {}, overwrite)
        if dry_run:
            plan.describe(out, self.number, self.dataset)
            if search:
                from xval.config.selection import metric_direction, selection_metric

                metric = selection_metric(config, self.task_type)
                self.search.describe(out, max(self.instances, default=0) + 1, metric,
                                     metric_direction(metric))
            return RunOutcome(None, [], [], 0)
        if progress and name == "inline":
            out(f"Importing Keras ({backend} backend)...")
            import keras  # noqa: F401  (a few seconds, said above rather than silent)
        elif progress and name == "ray":
            out("Starting Ray..." if not ray_address else f"Joining Ray at {ray_address}...")
        runner.start()
        try:
            runner.preflight(plan)
            if search:
                return self._run_search(config, runner, backend, overrides or {}, out,
                                        trials=trials, timeout=timeout, progress=progress,
                                        verbose=verbose, listeners=listeners)
            return self._execute(plan, runner, backend, overwrite, debug, out,
                                 progress=progress, verbose=verbose, listeners=listeners)
        finally:
            runner.close()

    def _resolver(self, config, overrides=None):
        """`(instance_id, spec) -> params`: instance resolution with this experiment's
        defaults, parameters, task and the registered architectures."""
        import architectures  # noqa: PLC0415  (imports Keras: only once the backend is set)
        from xval.config import params as P

        def resolve(instance_id, spec):
            return P.resolve(instance_id, spec, training_defaults=config.training,
                             architectures=architectures, experiment_params=self.parameters,
                             overrides=overrides, task_type=self.task_type)

        return resolve

    def _check_selection_metric(self, config, overrides, search):
        """Refuses, before anything trains, a `[report] selection_metric` that no instance
        will record: one the task does not record, or an embedding classifier's metric
        when no instance (or, with `--search`, neither the base nor the space) sets
        `embedding_classifier`."""
        from xval.config import embedding
        from xval.config.selection import check_selection_metric

        metric = check_selection_metric(config, self.task_type)
        if not metric.startswith(embedding.PREFIX):
            return
        if search:
            found = ("embedding_classifier" in self.search.space or embedding.enabled(
                {**config.training, **self.search.base, **(overrides or {})}))
        else:
            found = False
            for k, spec in self.instances.items():
                try:
                    found = embedding.enabled(self._resolver(config, overrides)(k, spec))
                except XvalError:
                    continue  # an instance not run now may be broken; make_plan says so
                if found:
                    break
        if not found:
            raise ConfigurationError(
                f"[report] selection_metric = {metric!r} is an embedding classifier's metric, "
                "but no instance sets embedding_classifier (svm or logreg), so no instance "
                "could be selected; set it in an instance (with --search: in the base or the "
                "space), or choose another selection_metric.")

    def _write_experiment_files(self, plan, backend):
        from xval.core.files import atomic_write_json, atomic_write_text, lock
        from xval.core.snapshot import write_snapshot
        from xval.running.recorder import read_result_file

        exp_dir = plan.exp_dir
        exp_dir.mkdir(parents=True, exist_ok=True)
        with lock(exp_dir / "experiment"):
            folds_file = exp_dir / "folds.json"
            if not folds_file.exists():
                atomic_write_json(folds_file, plan.manifest)
            elif read_result_file(folds_file, "restore it or use a new experiment number.")\
                    .get("hash") != plan.manifest["hash"]:
                raise ResultsConflictError(f"{folds_file} changed under this run.")
            lines = [self.description, "", f"dataset: {self.dataset}",
                     f"experiment: {self.number}", f"task_type: {self.task_type}",
                     f"num_folds: {self.num_folds}", f"generator: {self.generator}",
                     f"folds: {plan.manifest['splitter']}", "", "instances:"]
            for k in sorted(self.instances):
                lines.append(f"  {k}: {self.instances[k]!r}")
            atomic_write_text(exp_dir / f"experiment_{self.number}_description.txt",
                              "\n".join(lines) + "\n")
            # What prediction needs to extract features as the dataset did.
            info = {k: v for k, v in plan.store.info.items() if k != "skipped"}
            atomic_write_json(exp_dir / "dataset.json", {**info, "store": str(plan.store.path)})
            write_snapshot(exp_dir / "code", script=self.script,
                           config_path=plan.config.path, backend=backend)

    def _execute(self, plan, runner, backend, overwrite, debug, out, progress=False,
                 verbose=False, listeners=()):
        from filelock import Timeout

        from xval.report.results import ExperimentResults
        from xval.running.recorder import Recorder
        from xval.running.scheduler import Scheduler

        exp_dir = plan.exp_dir
        self._write_experiment_files(plan, backend)
        recorder = Recorder(exp_dir, plan.config, plan.num_folds, out=out, listeners=listeners,
                            task_type=plan.task_type)
        held, skipped, jobs_by_instance = [], [], {}
        t0 = time.perf_counter()
        try:
            for k, p in plan.resolved.items():
                instance_lock = recorder.instance_lock(k)
                try:
                    instance_lock.acquire(timeout=0)
                except Timeout:
                    out(f"instance {k}: running in another runner; skipped here.")
                    skipped.append(k)
                    continue
                held.append(instance_lock)
                done = recorder.begin_instance(k, p, plan.hashes[k], overwrite)
                todo = [i for i in range(plan.num_folds) if i not in done]
                if not todo:
                    out(f"instance {k}: all {plan.num_folds} folds already done; skipped.")
                    summary = exp_dir / f"instance_{k}" / "summary.json"
                    if not summary.exists() or not (exp_dir / f"instance_{k}" / "plots").exists():
                        recorder.finish_instance(k)
                    continue
                if done:
                    out(f"instance {k}: folds {done} already done; resuming at fold {todo[0]}.")
                jobs_by_instance[k] = plan.jobs(k, todo)
            scheduler = Scheduler(runner, recorder, debug=debug, out=out, progress=progress,
                                  epoch_lines=verbose)
            scheduler.run(jobs_by_instance)
        finally:
            for instance_lock in held:
                instance_lock.release()
        if not jobs_by_instance:
            recorder.rebuild_report()
        results = ExperimentResults(exp_dir)
        failed_ids = [k for k in plan.resolved if k in results.instances
                      and results[k].status == "failed"]
        self._print_table(results, list(plan.resolved), plan.config, out)
        out(f"Results: {exp_dir} ({time.perf_counter() - t0:.1f}s)")
        code = 0
        if failed_ids:
            code = 1
            out(f"{len(failed_ids)} instance(s) failed: {failed_ids}; see error.txt in their "
                "folders.")
        elif skipped:
            code = EXIT_PENDING_ELSEWHERE
            out(f"instance(s) {skipped} are running in another runner and are not complete "
                "here; rerun this command after that runner ends to see them.")
        return RunOutcome(results, failed_ids, skipped, code)

    def _run_search(self, config, runner, backend, overrides, out, **kwargs):
        from xval.report.results import ExperimentResults
        from xval.running.planner import make_plan
        from xval.running.study import run_search

        declared = dict(self.instances)
        try:
            done = run_search(self, self.search, config=config, runner=runner,
                              backend=backend, out=out,
                              plan_for=lambda ids: make_plan(self, config, ids, overrides,
                                                             False),
                              **kwargs)
        finally:
            self.instances = declared  # trial instances are not declarations
        results = ExperimentResults(done["exp_dir"])
        trial_ids = [k for k in results.instances if k >= done["first_instance"]]
        self._print_table(results, sorted(set(declared) | set(trial_ids)), config, out)
        out(f"search: this runner ran {len(done['ran'])} trial(s) ({len(done['pruned'])} "
            f"pruned, {len(done['failed'])} failed); results in {done['exp_dir']}")
        code = 1 if done["failed"] else 0
        return RunOutcome(results, done["failed"], [], code)

    def _print_table(self, results, selected, config, out):
        from xval.report.terminal import terminal_table

        out(terminal_table(results, config=config, only=selected))

    def refit(self, instance, config=None, out=print, *, executor=None, gpu=None):
        """Trains the final model of a complete instance on all its items.

        The model trains once on the train, validation and test items of fold 0 together,
        for the median of the folds' best epochs, with no validation and no early stopping,
        through the configured executor. It is saved as `instance_<k>/final.keras` with
        `final.json` (epochs, items, parameter hash, model size and hash, timings, training
        metrics); an earlier final model is replaced. `predict` then uses it by default.

        Args:
            instance: the instance id.
            config: a `Config`, a path, or `None` to find config.ini.
            out: print function for progress. Defaults to `print`.
            executor: `"inline"`, `"process"` or `"ray"`; `None` uses config.ini.
            gpu: GPU id (`CUDA_VISIBLE_DEVICES`); `None` uses `gpu_ID`.

        Returns:
            The path of `final.keras`.

        Raises:
            ConfigurationError: when the instance is not declared, or not complete.
            ResultsConflictError: when its results were made with other parameters or folds.
            TrainingError: when the refit fails.
        """
        import statistics

        from xval.config.loader import Config, find_config, load_config
        from xval.core.errors import TrainingError
        from xval.core.records import Job
        from xval.executors import ExecutorOptions, JobQueue, make_executor
        from xval.running.planner import make_plan
        from xval.running.recorder import Recorder, fold_state, read_result_file

        if not isinstance(config, Config):
            config = load_config(config or self.config_path or find_config(self.script))
        selected = self.select(instances=[instance])
        gpu = normalize_gpu(self.gpu_ID if gpu is None else gpu, "GPU id")
        backend = setup_environment(config.backend["backend"], gpu)
        plan = make_plan(self, config, selected, {}, False)
        inst_dir = plan.exp_dir / f"instance_{instance}"
        missing = [i for i in range(plan.num_folds) if not fold_state(inst_dir, i)[0]]
        if missing:
            raise ConfigurationError(
                f"Instance {instance} is not complete (folds {missing} of {plan.num_folds} are "
                f"not done in {inst_dir}), so there is no epoch count to refit with. Run it "
                f"first: `python {Path(self.script or 'EXPERIMENT.py').name} {instance} "
                f"{instance}`."
            )
        best_epochs = [read_result_file(inst_dir / f"fold_{i}.json", "rerun the instance.")
                       ["best_epoch"] for i in range(plan.num_folds)]
        epochs = max(1, int(round(statistics.median(best_epochs))))
        fold = plan.folds[0]
        items = sorted({*fold["train"], *fold["val"], *fold["test"]})
        job = Job(instance=instance, fold=0, params=plan.resolved[instance],
                  items={"train": items, "val": [], "test": []}, task_type=plan.task_type,
                  generator=plan.generator, store=str(Path(plan.store.path).resolve()),
                  params_hash=plan.hashes[instance], store_hash=plan.store.content_hash,
                  refit_epochs=epochs)
        recorder = Recorder(plan.exp_dir, config, plan.num_folds, out=out,
                            task_type=plan.task_type)
        runner = make_executor(executor or config.backend["executor"], ExecutorOptions(
            gpus=(gpu,) if gpu is not None else None, backend=backend))
        out(f"instance {instance}: refitting on all {len(items)} items for {epochs} epochs "
            f"(median of the folds' best epochs {best_epochs}).")
        from filelock import Timeout

        instance_lock = recorder.instance_lock(instance)
        try:
            instance_lock.acquire(timeout=0)
        except Timeout:
            raise ConfigurationError(
                f"Instance {instance} is running in another runner; refit it after that "
                "runner ends."
            ) from None
        try:
            runner.start()
            try:
                results = runner.run(JobQueue([job]))
                try:
                    result = next(results)
                finally:
                    results.close()
            finally:
                runner.close()
            if not result.ok:
                raise TrainingError(f"Refit of instance {instance} failed: {result.message}"
                                    ) from result.exception
            path = recorder.record_refit(result, fold_best_epochs=best_epochs)
        finally:
            instance_lock.release()
        out(f"instance {instance}: final model {path} ({result.timings['total_seconds']:.1f}s)")
        return path


class RunOutcome:
    """What a run did: `results`, `failed` and `skipped` instance ids, `exit_code`.

    Exit codes: 0 every selected instance is complete; 1 one failed; 2 a usage,
    configuration or data error (nothing trained); 3 some selected instances are held by
    another runner (`skipped`); 130 interrupted.
    """

    def __init__(self, results, failed, skipped, exit_code):
        self.results = results
        self.failed = failed
        self.skipped = skipped
        self.exit_code = exit_code

    def __repr__(self):
        return (f"RunOutcome(failed={self.failed}, skipped={self.skipped}, "
                f"exit_code={self.exit_code})")
