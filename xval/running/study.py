"""Running a `xval.config.space.Search`: an Optuna study whose trials are the experiment's
instances.

Trial `t` of the study is instance `first + t`, where `first` follows the declared instances
and is fixed when the study is created (kept in the study), so every runner agrees. A runner
asks the study for a trial, trains its folds through the same planner, scheduler, executor
and recorder as declared instances, reports the running mean of the validation selection
metric after each fold, and tells the study the final mean (or that it was pruned or failed).

Resume: a trial whose runner died stays `RUNNING` in the study, and its instance lock is free;
the next runner finds it, takes the lock, and finishes that same trial from its first
unfinished fold. Trials held by a live runner keep their lock and are left alone.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
import numpy as np
from filelock import FileLock, Timeout
from matplotlib import pyplot as plt

from xval import tasks
from xval.config.loader import Config
from xval.config.selection import metric_direction, selection_metric
from xval.config.space import Search
from xval.core.errors import ConfigurationError
from xval.core.layout import ExperimentLayout
from xval.core.records import FoldResult, TrialRecord
from xval.executors.base import Executor
from xval.running.declaration import ExperimentDeclaration
from xval.running.experiment_files import begin_experiment, instance_dataset_info
from xval.running.planner import Plan
from xval.running.recorder import Out, Recorder
from xval.running.scheduler import Scheduler

PlanFor = Callable[[list[int]], Plan]
"""`(instance_ids) -> Plan`: the planner, bound to the run's settings."""


def import_optuna() -> Any:
    """Optuna, quiet, or a clear error when it is not installed.

    Raises:
        ConfigurationError: when Optuna is not installed.
    """
    try:
        import optuna  # noqa: PLC0415  (optional: only --search needs it)
    except ImportError as e:
        raise ConfigurationError(
            "--search needs Optuna, which is not installed: `pip install -e '.[search]'`."
        ) from e
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_sampler(search: Search, trial_number: int) -> Any:
    """The sampler for one trial, seeded with `seed + trial_number`.

    Seeding per trial keeps a search reproducible and, with several runners on one study,
    keeps them from drawing the same random parameters (each trial number is unique in the
    study); TPE still learns from every finished trial, which it reads from the storage.
    """
    optuna = import_optuna()
    seed = search.seed + trial_number
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, search.n_trials))
    return optuna.samplers.RandomSampler(seed=seed)


def _pruner(search: Search) -> Any:
    optuna = import_optuna()
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials,
                                           n_warmup_steps=0)
    if search.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def open_study(layout: ExperimentLayout, search: Search, first_instance: int,
               direction: str) -> tuple[Any, int]:
    """Creates or loads the experiment's study (its `search.journal`).

    Returns:
        `(study, first_instance)`: the first instance id stored in the study wins.

    Raises:
        ConfigurationError: when the stored study optimises in the other direction.
    """
    optuna = import_optuna()
    from optuna.storages import JournalStorage  # noqa: PLC0415  (optional: Optuna)
    from optuna.storages.journal import JournalFileBackend  # noqa: PLC0415  (as above)

    layout.root.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(layout.search_journal)))
    study = optuna.create_study(study_name=layout.name, storage=storage,
                                sampler=make_sampler(search, 0), pruner=_pruner(search),
                                direction=direction + "imize", load_if_exists=True)
    if study.direction.name.lower() != direction + "imize":
        raise ConfigurationError(
            f"{layout.search_journal} holds a study that {study.direction.name.lower()}s, "
            f"but the selection metric asks to {direction}imize: use a new experiment number."
        )
    stored = study.user_attrs.get("first_instance")
    if stored is None:
        study.set_user_attr("first_instance", first_instance)
        for params in search.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
        stored = first_instance
    return study, int(stored)


def objective_of(folds: Sequence[FoldResult], metric: str,
                 clip_falls_back: bool = True) -> tuple[float | None, int]:
    """Mean over the finished folds of the validation `metric` (clip level where files were
    cut into segments, as the report selects), and the number of folds it covers."""
    ok = [f for f in folds if f.ok and f.metrics]
    level = "clip" if any(f.clip_metrics for f in ok) else "segment"
    values = []
    for fold in ok:
        metrics = fold.level_metrics(level, clip_falls_back) or {}
        value = metrics.get("val", {}).get(metric)
        if value is not None:
            values.append(value)
    return (float(np.mean(values)) if values else None), len(values)


@dataclasses.dataclass
class SearchOutcome:
    """What one runner did in a search.

    Attributes:
        layout: the experiment folder's paths.
        first_instance: the instance of trial 0.
        ran: instance ids this runner trained; `failed` and `pruned` among them.
    """

    layout: ExperimentLayout
    first_instance: int
    ran: list[int] = dataclasses.field(default_factory=list)
    failed: list[int] = dataclasses.field(default_factory=list)
    pruned: list[int] = dataclasses.field(default_factory=list)

    def add(self, instance: int, state: str) -> None:
        """Counts a trial that ended in `state` (a `TrialRecord.state`)."""
        self.ran.append(instance)
        if state == "failed":
            self.failed.append(instance)
        elif state == "pruned":
            self.pruned.append(instance)


@dataclasses.dataclass
class TrialRunner:
    """Everything a trial needs from its run.

    Attributes:
        experiment: the declaration (a trial's parameters are lent to it as an instance).
        search: the `Search`.
        config: the run's `Config`.
        plan_for: the planner, bound to the run's settings.
        executor: a started executor.
        out: print function.
        metric: the validation selection metric the study optimises.
        progress, verbose: the scheduler's progress bar and epoch lines.
        listeners: the recorder's listeners.
    """

    experiment: ExperimentDeclaration
    search: Search
    config: Config
    plan_for: PlanFor
    executor: Executor
    out: Out
    metric: str
    progress: bool = False
    verbose: bool = False
    listeners: Sequence[object] = ()

    def recorder(self, plan: Plan) -> Recorder:
        return Recorder(plan.layout, self.config, plan.num_folds, out=self.out,
                        listeners=self.listeners, task_type=plan.task_type)


def run_search(experiment: ExperimentDeclaration, search: Search, *, config: Config,
               plan_for: PlanFor, runner: Executor, backend: str, out: Out,
               trials: int | None = None, timeout: float | None = None,
               progress: bool = False, verbose: bool = False,
               listeners: Sequence[object] = ()) -> SearchOutcome:
    """Runs trials until the study has `n_trials` (or `timeout` passes for this runner).

    Args:
        experiment: the declaration (its declared instances fix the first trial's id).
        search: the `Search`.
        config: the `Config`.
        plan_for: `(instance_ids) -> Plan` (the planner, bound to this run's settings).
        runner: a started executor.
        backend: the Keras backend name (for the snapshot).
        out: print function.
        trials: overrides `search.n_trials`. timeout: overrides `search.timeout`.
        progress, verbose: the progress bar and epoch lines.
        listeners: the recorder's listeners.

    Returns:
        A `SearchOutcome`.
    """
    n_trials = search.n_trials if trials is None else trials
    limit = search.timeout if timeout is None else timeout
    metric = selection_metric(config, experiment.task_type)
    context = TrialRunner(experiment, search, config, plan_for, runner, out, metric,
                          progress, verbose, listeners)
    started = time.monotonic()
    plan = plan_for([])
    begin_experiment(context.recorder(plan), experiment, plan, backend)
    study, first = open_study(plan.layout, search, experiment.first_trial_instance,
                              metric_direction(metric))
    outcome = SearchOutcome(plan.layout, first)
    locks = Recorder(plan.layout, config, 0)
    while True:
        if limit is not None and time.monotonic() - started > limit:
            out(f"search: timeout of {limit:.0f}s reached; no new trial started.")
            break
        claimed = claim_trial(study, first, n_trials, locks, out)
        if claimed is None:
            break
        trial, lock = claimed
        try:
            state = run_trial(context, trial, first + trial.number)
        finally:
            lock.release()
        outcome.add(first + trial.number, state)
    save_search_plots(study, plan.layout, out)
    return outcome


def claim_trial(study: Any, first: int, n_trials: int, locks: Recorder,
                out: Out) -> tuple[Any, FileLock] | None:
    """The next trial for this runner, with its instance's lock held: a trial left
    `RUNNING` by a runner that stopped (its lock is free), else a new one while the study
    has fewer than `n_trials`.

    Returns:
        `(trial, lock)`, or `None` when the study has all its trials.
    """
    optuna = import_optuna()
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        candidate = locks.instance_lock(first + frozen.number)
        try:
            candidate.acquire(timeout=0)
        except Timeout:
            continue  # a live runner holds it
        out(f"search: resuming trial {frozen.number} (instance {first + frozen.number}), "
            "left unfinished by a runner that stopped.")
        return optuna.trial.Trial(study, frozen._trial_id), candidate
    counted = [t for t in study.get_trials(deepcopy=False)
               if t.state != optuna.trial.TrialState.WAITING]
    if len(counted) >= n_trials:
        return None
    trial = study.ask()
    lock = locks.instance_lock(first + trial.number)
    lock.acquire(timeout=0)
    return trial, lock


class Pruning:
    """The scheduler's `on_result` for a trial: after each fold, reports the running mean
    of the validation metric to the study; a true return (the pruner says so) cancels the
    trial's remaining folds.

    Args:
        trial: the Optuna trial.
        recorder: the trial's recorder (its fold files are read back).
        instance: the trial's instance id.
        context: the trial's run.
        num_folds: the experiment's number of folds.
    """

    def __init__(self, trial: Any, recorder: Recorder, instance: int, context: TrialRunner,
                 num_folds: int) -> None:
        self.trial = trial
        self.recorder = recorder
        self.instance = instance
        self.context = context
        self.num_folds = num_folds
        self.pruned_at: int | None = None
        self.clip_falls_back = tasks.get(context.experiment.task_type) \
            .clip_is_segment_without_clips

    def objective(self) -> tuple[float | None, int]:
        """The running objective over the trial's finished folds, and their number."""
        return objective_of(self.recorder.read_folds(self.instance).records,
                            self.context.metric, self.clip_falls_back)

    def __call__(self, result: FoldResult) -> bool:
        value, n = self.objective()
        if value is None or not result.ok:
            return False
        self.trial.report(value, step=n)
        if n < self.num_folds and self.trial.should_prune():
            self.pruned_at = result.fold
            self.context.out(f"search: trial {self.trial.number} pruned after {n} fold(s) "
                             f"(running mean validation {self.context.metric} {value:.4f}).")
            return True
        return False


def trial_params(search: Search, trial: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's instance parameters and the sampled ones among them (a resumed trial
    keeps the parameters it was given)."""
    params = search.sample(trial) if not trial.params else {**search.base, **trial.params}
    params.setdefault("comment_1", f"trial {trial.number}")
    params.setdefault("comment_2", "search")
    names = trial.params if trial.params else [n for n in search.space if n in params]
    return params, {n: params[n] for n in names}


def run_trial(context: TrialRunner, trial: Any, instance: int) -> str:
    """Trains one trial's instance (from its first unfinished fold) and tells the study.

    Returns:
        The trial's final state: `"complete"`, `"pruned"` or `"failed"`.
    """
    optuna = import_optuna()
    trial.study.sampler = make_sampler(context.search, trial.number)
    params, sampled = trial_params(context.search, trial)
    context.experiment.instances[instance] = params
    plan = context.plan_for([instance])
    recorder = context.recorder(plan)
    done = recorder.begin_instance(instance, plan.resolved[instance], plan.hashes[instance],
                                   overwrite=False,
                                   dataset_info=instance_dataset_info(plan, instance))
    record = TrialRecord(trial=trial.number, instance=instance, state="running",
                         params=sampled, metric=context.metric)
    recorder.record_trial(record)
    context.out(f"search: trial {trial.number} -> instance {instance}: "
                + ", ".join(f"{n}={v!r}" for n, v in sampled.items()))
    pruning = Pruning(trial, recorder, instance, context, plan.num_folds)
    todo = [i for i in range(plan.num_folds) if i not in done]
    failed = False
    if todo:
        scheduler = Scheduler(context.executor, recorder, out=context.out, on_result=pruning,
                              progress=context.progress, epoch_lines=context.verbose)
        failed = bool(scheduler.run({instance: plan.jobs(instance, todo)}))
    else:
        recorder.finish_instance(instance)
    value, _ = pruning.objective()
    if failed:
        record.state = "failed"
        trial.study.tell(trial, state=optuna.trial.TrialState.FAIL)
    elif pruning.pruned_at is not None:
        record.state, record.pruned_at_fold, record.objective = \
            "pruned", pruning.pruned_at, value
        trial.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        record.state, record.objective = "complete", value
        trial.study.tell(trial, value)
    recorder.record_trial(record)
    recorder.finish_instance(instance)
    recorder.results_changed()
    return record.state


def save_search_plots(study: Any, layout: ExperimentLayout, out: Out) -> None:
    """Optuna's optimisation history and parameter importances as PNGs in `search/`."""
    from optuna.visualization import matplotlib as vis  # noqa: PLC0415  (optional: Optuna)

    matplotlib.use("Agg")
    folder = layout.search_dir
    folder.mkdir(exist_ok=True)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    plots: list[tuple[str, Callable[[Any], Any]]] = [
        ("optimization_history.png", vis.plot_optimization_history)]
    if len(complete) >= 2 and len({p for t in complete for p in t.params}) >= 1:
        plots.append(("param_importances.png", vis.plot_param_importances))
    for name, fn in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
                figure = fn(study).figure
            figure.set_size_inches(7, 4)
            figure.tight_layout()
            figure.savefig(folder / name, dpi=100)
            plt.close(figure)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            out(f"search: {name} not drawn ({type(e).__name__}: {e}).")
