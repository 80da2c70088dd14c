"""Running a `xval.config.space.Search`: an Optuna study whose trials are the experiment's
instances.

Trial `t` of the study is instance `first + t`, where `first` follows the declared instances
and is fixed when the study is created (kept in the study), so every runner agrees. A runner
asks the study for a trial, trains its folds through the same planner, scheduler, executor
and recorder as declared instances, reports the running mean of the validation selection
metric after each fold, and tells the study the final mean (or that it was pruned or failed).

Resume: a trial whose runner died stays `RUNNING` in the study, and its instance lock is free;
the next runner finds it, takes the lock, and finishes that same trial from its first
unfinished fold. Trials held by a live runner keep their lock and are left alone."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from filelock import FileLock

from xval import tasks
from xval.config.loader import Config
from xval.config.selection import metric_direction, selection_metric
from xval.config.space import Search
from xval.core.errors import ConfigurationError
from xval.core.layout import ExperimentLayout
from xval.core.records import FoldResult, TrialRecord
from xval.executors.base import Executor
from xval.report.results import ExperimentResults
from xval.running.declaration import ExperimentDeclaration
from xval.running.experiment_files import begin_experiment, instance_dataset_info
from xval.running.options import Output, SearchOptions
from xval.running.planner import Plan
from xval.running.recorder import Out, Recorder, folds_on_disk
from xval.running.sampler import (
    import_optuna,
    make_sampler,
    objective_of,
    open_study,
    save_search_plots,
)
from xval.running.scheduler import Scheduler

PlanFor = Callable[[list[int]], Plan]
"""`(instance_ids) -> Plan`: the planner, bound to the run's settings."""


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
    results: ExperimentResults | None = None

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
        output: the run's print function, progress bar, epoch lines and the recorder's
            listeners.
        metric: the validation selection metric the study optimises.
    """

    experiment: ExperimentDeclaration
    search: Search
    config: Config
    plan_for: PlanFor
    executor: Executor
    output: Output
    metric: str
    results: ExperimentResults | None = None

    def recorder(self, plan: Plan) -> Recorder:
        """The recorder of one trial; every trial's recorder keeps the same results."""
        if self.results is None:
            self.results = ExperimentResults(plan.layout.root, num_folds=plan.num_folds,
                                             results_store=plan.results_store)
        return Recorder(plan.layout, self.config, plan.num_folds, out=self.output.out,
                        listeners=self.output.listeners, task_type=plan.task_type,
                        results=self.results, results_store=plan.results_store)


def run_search(experiment: ExperimentDeclaration, search: Search, *, config: Config,
               plan_for: PlanFor, runner: Executor, backend: str, options: SearchOptions,
               output: Output) -> SearchOutcome:
    """Runs trials until the study has `n_trials` (or `timeout` passes for this runner).

    Args:
        experiment: the declaration (its declared instances fix the first trial's id).
        search: the `Search`.
        config: the `Config`.
        plan_for: `(instance_ids) -> Plan` (the planner, bound to this run's settings).
        runner: a started executor.
        backend: the Keras backend name (for the snapshot).
        options: the run's search options (`trials` overrides `search.n_trials`,
            `timeout` `search.timeout`).
        output: the print function, progress bar, epoch lines and the recorder's
            listeners.

    Returns:
        A `SearchOutcome`.
    """
    n_trials = search.n_trials if options.trials is None else options.trials
    limit = search.timeout if options.timeout is None else options.timeout
    metric = selection_metric(config, experiment.task_type)
    context = TrialRunner(experiment, search, config, plan_for, runner, output, metric)
    out = output.out
    started = time.monotonic()
    plan = plan_for([])
    begin_experiment(context.recorder(plan), experiment, plan, backend)
    study, first, storage = open_study(plan.layout, search, experiment.first_trial_instance,
                                       metric_direction(metric, task=experiment.task_type))
    outcome = SearchOutcome(plan.layout, first)
    locks = Recorder(plan.layout, config, 0, results_store=plan.results_store)
    while True:
        if limit is not None and time.monotonic() - started > limit:
            out(f"search: timeout of {limit:.0f}s reached; no new trial started.")
            break
        claimed = claim_trial(study, storage, first, n_trials, locks, out)
        if claimed is None:
            break
        trial, lock = claimed
        try:
            state = run_trial(context, trial, first + trial.number)
        finally:
            lock.release()
        outcome.add(first + trial.number, state)
    save_search_plots(study, plan.layout, out)
    outcome.results = context.results
    return outcome


def claim_trial(study: Any, storage: Any, first: int, n_trials: int, locks: Recorder,
                out: Out) -> tuple[Any, FileLock] | None:
    """The next trial for this runner, with its instance's lock held: a trial left
    `RUNNING` by a runner that stopped (its lock is free), else a new one while the study
    has fewer than `n_trials`. A trial is found again by its number through the study's
    storage (`BaseStorage.get_trial_id_from_study_id_trial_number`: Optuna's public API).

    Returns:
        `(trial, lock)`, or `None` when the study has all its trials.
    """
    optuna = import_optuna()
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        candidate = locks.claim(first + frozen.number)
        if candidate is None:
            continue  # a live runner holds it
        out(f"search: resuming trial {frozen.number} (instance {first + frozen.number}), "
            "left unfinished by a runner that stopped.")
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        return optuna.trial.Trial(study, trial_id), candidate
    counted = [t for t in study.get_trials(deepcopy=False)
               if t.state != optuna.trial.TrialState.WAITING]
    if len(counted) >= n_trials:
        return None
    trial = study.ask()
    lock = locks.claim(first + trial.number)
    if lock is None:  # a new trial's number: no runner holds it unless the study was edited
        raise ConfigurationError(f"search: instance {first + trial.number}, a new trial, is "
                                 "held by another runner; rerun when that runner ends.")
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
                 num_folds: int, params_hash: str | None = None) -> None:
        self.trial = trial
        self.recorder = recorder
        self.instance = instance
        self.context = context
        self.num_folds = num_folds
        self.params_hash = params_hash
        self.pruned_at: int | None = None
        self.clip_falls_back = tasks.get(context.experiment.task_type) \
            .clip_is_segment_without_clips

    def objective(self) -> tuple[float | None, int]:
        """The running objective over the trial's finished folds, and their number."""
        folds = folds_on_disk(self.recorder.instance_layout(self.instance), self.num_folds,
                              params_hash=self.params_hash,
                              task_type=self.recorder.task_type,
                              results_store=self.recorder.results_store)
        return objective_of(folds.records, self.context.metric, self.clip_falls_back)

    def __call__(self, result: FoldResult) -> bool:
        value, n = self.objective()
        if value is None or not result.ok:
            return False
        self.trial.report(value, step=n)
        if n < self.num_folds and self.trial.should_prune():
            self.pruned_at = result.fold
            self.context.output.out(
                f"search: trial {self.trial.number} pruned after {n} fold(s) (running mean "
                f"validation {self.context.metric} {value:.4f}).")
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
                                   dataset_info=instance_dataset_info(plan, instance),
                                   overrides=plan.overrides)
    record = TrialRecord(trial=trial.number, instance=instance, state="running",
                         params=sampled, metric=context.metric)
    recorder.record_trial(record)
    context.output.out(f"search: trial {trial.number} -> instance {instance}: "
                       + ", ".join(f"{n}={v!r}" for n, v in sampled.items()))
    pruning = Pruning(trial, recorder, instance, context, plan.num_folds,
                      plan.hashes[instance])
    todo = [i for i in range(plan.num_folds) if i not in done]
    failed = False
    if todo:
        scheduler = Scheduler(context.executor, recorder, out=context.output.out,
                              on_result=pruning, progress=context.output.progress,
                              epoch_lines=context.output.verbose)
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
