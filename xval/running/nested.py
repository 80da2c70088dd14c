"""Nested search (`--search --inner-folds K`): an unbiased estimate of "model + search".

A plain search chooses the trial with the best validation score, and that score (and the
chosen trial's test score too, once many trials were compared on the same folds) is
optimistic. A nested search keeps choosing and scoring apart. For every outer fold (the
experiment's folds, repeats included):

1. an Optuna study (`xval.running.study.run_search`, unchanged) runs on that fold's
   training items only (its training and validation items: `outer_training_items`),
   cross-validated over `K` inner folds grouped by item (`make_inner_folds`), in
   `nested/outer_<i>/`: a folder laid out as an experiment, whose `folds.json` records the
   inner splits and whose instances are the trials;
2. the trial with the best mean inner validation score is chosen;
3. its parameters train once on the outer fold's training items (its validation items for
   early stopping, as every fold does) and are scored on the outer test items, which no
   inner split ever held.

The outer scores are fold `i` of one instance of the experiment (numbered after the
declared ones), so its summary, the workbook and `compare` see an ordinary instance, whose
test mean is the estimate to report; `instance_<k>/nested.json` (`NestedRecord`) holds the
choice of every outer fold (the workbook's Nested sheet shows it). The fold files record
the instance's parameter hash (the search's base), the choices record what each fold
trained with. A run stopped at any point resumes: outer folds done are kept, each inner
study resumes as a search does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from xval.config.loader import Config
from xval.config.selection import metric_direction, selection_metric
from xval.config.space import Search
from xval.core.layout import ExperimentLayout
from xval.core.records import InstanceStatus, NestedRecord
from xval.core.storage import ResultsStore
from xval.executors.base import Executor
from xval.report.results import ExperimentResults, InstanceResult
from xval.running.declaration import ExperimentDeclaration
from xval.running.experiment_files import begin_experiment
from xval.running.options import Output, RunOptions, SearchOptions
from xval.running.planner import Plan, make_plan
from xval.running.recorder import Recorder
from xval.running.scheduler import Scheduler
from xval.running.splitting import make_inner_folds, outer_training_items
from xval.running.study import run_search


@dataclasses.dataclass
class NestedRun:
    """Everything a nested search needs from its run (see `run_nested`): the run's options
    (settled: `RunOptions.settled`) and its output, with the recorder's listeners."""

    experiment: ExperimentDeclaration
    search: Search
    config: Config
    executor: Executor
    backend: str
    options: RunOptions
    output: Output
    results_store: ResultsStore

    @property
    def study(self) -> SearchOptions:
        """The search's options (`inner_folds` set: a nested search)."""
        return self.options.search or SearchOptions()

    @property
    def inner_folds(self) -> int:
        return int(self.study.inner_folds or 0)

    @property
    def n_trials(self) -> int:
        return self.search.n_trials if self.study.trials is None else self.study.trials


@dataclasses.dataclass
class NestedOutcome:
    """What a nested search did: the instance of its outer scores, whether an outer fold
    failed, and the experiment's results."""

    layout: ExperimentLayout
    instance: int
    failed: bool
    results: ExperimentResults
    shown: list[int] = dataclasses.field(default_factory=list)
    """The instances the results table shows: the declared ones and this one."""

    @property
    def code(self) -> int:
        """The run's exit code: 1 when an outer fold failed, else 0."""
        return 1 if self.failed else 0


def nested_spec(run: NestedRun) -> dict[str, Any]:
    """The instance of the outer scores: the search's base parameters, its comments saying
    what it is (part of its parameter hash: another K or number of trials is another
    instance's results)."""
    return {**run.search.base, "comment_1": "nested search",
            "comment_2": f"{run.n_trials} trials x {run.inner_folds} inner folds"}


def run_nested(run: NestedRun) -> NestedOutcome:
    """Runs the nested search: every outer fold's study, choice and outer fold (see the
    module).

    Raises:
        ConfigurationError: when another runner holds the instance.
        XvalError: for anything the planner refuses (nothing trained then).
    """
    experiment = run.experiment
    declared = dict(experiment.instances)
    instance = experiment.first_trial_instance
    experiment.instances[instance] = nested_spec(run)
    try:
        outcome = _run_nested(run, instance)
    finally:
        experiment.instances = declared  # the nested instance is not a declaration
    outcome.shown = sorted({*declared, instance})
    run.output.out(f"nested search: outer scores in instance {instance} (its test mean is the "
                   f"estimate of model + search); results in {outcome.layout.root}")
    return outcome


def _run_nested(run: NestedRun, instance: int) -> NestedOutcome:
    experiment = run.experiment
    plan = make_plan(experiment, run.config, [instance], run.options.overrides,
                     bool(run.options.overwrite), results_store=run.results_store)
    recorder = Recorder(plan.layout, run.config, plan.num_folds, out=run.output.out,
                        listeners=run.output.listeners, task_type=plan.task_type,
                        results_store=run.results_store)
    begin_experiment(recorder, experiment, plan, run.backend)
    with recorder.holding(instance, f"Instance {instance} (the nested search) is running "
                                    "in another runner; rerun after it ends."):
        failed = outer_folds(run, plan, recorder, instance)
    recorder.results_changed()
    return NestedOutcome(plan.layout, instance, failed, recorder.results.refresh())


def outer_folds(run: NestedRun, plan: Plan, recorder: Recorder, instance: int) -> bool:
    """Searches, chooses, trains and scores every outer fold not done yet.

    Returns:
        Whether an outer fold failed (or had no trial to choose).
    """
    done = recorder.begin_instance(instance, plan.resolved[instance], plan.hashes[instance],
                                   bool(run.options.overwrite))
    metric = selection_metric(run.config, plan.task_type)
    record = recorder.results_store.read_record(recorder.instance_layout(instance).nested_file,
                                        NestedRecord.from_dict)[0]
    if record is None:
        record = NestedRecord(inner_folds=run.inner_folds, n_trials=run.n_trials,
                              metric=metric)
    failed = False
    for i in range(plan.num_folds):
        if i in done:
            continue
        chosen = search_outer_fold(run, plan, i, metric)
        if chosen is None:
            run.output.out(f"nested search: outer fold {i}: no trial completed, so none can be "
                           f"chosen; see {plan.layout.outer_fold(i).root} (rerun to try again).")
            failed = True
            continue
        best, choice = chosen
        record.choices = sorted([c for c in record.choices if c.get("fold") != i] + [choice],
                                key=lambda c: int(c["fold"]))
        recorder.record_nested(instance, record)
        run.output.out(f"nested search: outer fold {i}: trial {choice['trial']} chosen "
                       f"(mean inner validation {metric} {choice['objective']:.4f}); "
                       "training it on the outer training items, scoring it on the outer "
                       "test items.")
        job = dataclasses.replace(plan.job(instance, i), params=best.parameters)
        scheduler = Scheduler(run.executor, recorder, debug=bool(run.options.debug),
                              out=run.output.out, progress=run.output.progress,
                              epoch_lines=run.output.verbose)
        failed |= bool(scheduler.run({instance: [job]}))
    if not failed and len(done) == plan.num_folds:
        recorder.finish_instance(instance)
    return failed


def search_outer_fold(run: NestedRun, plan: Plan, fold: int, metric: str
                      ) -> tuple[InstanceResult, dict[str, Any]] | None:
    """Runs (or resumes) the inner study of outer fold `fold` on its training items.

    Returns:
        `(chosen trial's instance, choice)` for the `NestedRecord`, or `None` when no
        trial completed.
    """
    experiment = run.experiment
    layout = plan.layout.outer_fold(fold)
    folds, manifest = make_inner_folds(experiment, run.config, plan.store, plan.folds[fold],
                                       run.inner_folds)
    inner = (layout, folds, manifest)
    n_items = len(outer_training_items(plan.folds[fold]))
    run.output.out(f"nested search: outer fold {fold}: {run.n_trials} trial(s) over "
                   f"{run.inner_folds} inner folds of its {n_items} training items "
                   f"({layout.root}).")
    declared = dict(experiment.instances)
    try:
        outcome = run_search(
            experiment, run.search, config=run.config, runner=run.executor,
            backend=run.backend, options=run.study,
            output=dataclasses.replace(run.output, listeners=()),
            plan_for=lambda ids: make_plan(experiment, run.config, ids, run.options.overrides,
                                           False, results_store=run.results_store,
                                           inner=inner))
    finally:
        experiment.instances = declared  # trial instances are not declarations
    results = outcome.results.refresh() if outcome.results is not None \
        else ExperimentResults(layout.root, results_store=run.results_store)
    best = best_trial(results, metric)
    if best is None or best.trial is None:
        return None
    return best, {"fold": fold, "trial": best.trial.trial, "instance": best.id,
                  "objective": best.trial.objective, "params": dict(best.trial.params)}


def best_trial(results: ExperimentResults, metric: str) -> InstanceResult | None:
    """The complete trial with the best objective (the mean inner validation `metric`);
    ties go to the earlier trial."""
    sign = -1.0 if metric_direction(metric, task=results.task_type) == "max" else 1.0
    scored = [(sign * r.trial.objective, r.trial.trial, r) for r in results
              if r.trial is not None and r.trial.objective is not None
              and r.trial.state == "complete"
              and r.status == InstanceStatus.COMPLETE.value]
    return min(scored, key=lambda s: (s[0], s[1]))[2] if scored else None
