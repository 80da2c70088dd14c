"""Running an experiment: from a declaration and a request to a `RunOutcome`.

`run_experiment` sets up the process (backend, GPU), validates everything through the
planner before anything is written, then runs the plan's jobs (or the search's trials)
through an executor, the scheduler and the recorder, and prints the results table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import time
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from filelock import Timeout

from xval.config.loader import Config
from xval.config.selection import check_selection_metric, metric_direction
from xval.config.space import Search
from xval.core.constraints import Interval, check
from xval.core.errors import ConfigurationError
from xval.core.parameters import TrainingParams
from xval.core.records import InstanceStatus, Job
from xval.executors import ExecutorOptions, make_executor
from xval.executors.base import Executor
from xval.report.results import ExperimentResults
from xval.report.terminal import terminal_table
from xval.running.checks import data_checks
from xval.running.declaration import ExperimentDeclaration, Selection
from xval.running.derived import derived_failure, report_listeners
from xval.running.ensembles import (
    check_ensembles,
    describe_ensembles,
    record_ensembles,
    split_selection,
    with_stale,
)
from xval.running.environment import (
    check_gpus_visible,
    import_keras,
    normalize_gpu,
    prepare_process,
)
from xval.running.experiment_files import begin_experiment, instance_dataset_info
from xval.running.nested import NestedRun, run_nested
from xval.running.planner import Plan, make_plan, resolver
from xval.running.recorder import Out, Recorder
from xval.running.scheduler import Scheduler
from xval.running.splitting import check_search
from xval.running.study import run_search

_OPTIONS = {"--trials": [Interval(Real, 0, None, closed="neither"), None],
            "--timeout": [Interval(Real, 0, None, closed="neither"), None],
            "--inner-folds": [Interval(Integral, 2, None, closed="left"), None]}
"""The valid values of the run's options (`xval.core.constraints`)."""
_INNER = " (the inner k-fold of an outer fold needs two folds at least), e.g. --inner-folds 3"

EXIT_PENDING_ELSEWHERE = 3
EXIT_DERIVED = 4
"""Every result is recorded, but the workbook could not be written (said on stderr)."""


@dataclasses.dataclass
class RunOutcome:
    """What a run did: `results`, `failed` and `skipped` instance ids, `exit_code`.

    Exit codes: 0 every selected instance is complete; 1 one failed; 2 a usage,
    configuration or data error (nothing trained); 3 some selected instances are held by
    another runner (`skipped`); 4 every result is recorded but the workbook could not be
    written (an `error:` line says why, `-q` or not); 130 interrupted.
    """

    results: ExperimentResults | None = dataclasses.field(repr=False)
    failed: list[int]
    skipped: list[int]
    exit_code: int


@dataclasses.dataclass
class RunRequest:
    """What a run was asked to do (see `xval.Experiment.run` for each field).

    `overwrite`, `gpu` and `debug` left `None` take the declaration's settings
    (`overwrite_results`, `gpu_ID`, `debug_mode`): `settled` is the one place that says so.
    """

    instances: Selection = None
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    overwrite: bool | None = None
    dry_run: bool = False
    gpu: object = None
    executor: str | None = None
    gpus: Sequence[object] | None = None
    debug: bool | None = None
    out: Out = print
    ray_address: str | None = None
    progress: bool = False
    verbose: bool = False
    search: bool = False
    trials: int | None = None
    timeout: float | None = None
    listeners: Sequence[object] = ()
    inner_folds: int | None = None

    def settled(self, experiment: ExperimentDeclaration
                ) -> tuple[ExperimentDeclaration, RunRequest]:
        """The declaration with the experiment settings among the overrides applied
        (`--set num_repeats=2`), and the request with the other overrides and the
        declaration's settings where it leaves them `None`."""
        experiment, overrides = experiment.with_settings(self.overrides)
        declared: dict[str, Any] = {"overwrite": experiment.overwrite_results,
                                    "gpu": experiment.gpu_ID, "debug": experiment.debug_mode}
        return experiment, dataclasses.replace(self, overrides=overrides, **{
            name: value for name, value in declared.items() if getattr(self, name) is None})


def run_experiment(experiment: ExperimentDeclaration, request: RunRequest,
                   config: Config) -> RunOutcome:
    """Validates, then runs the selected instances (or the search's trials).

    Every instance is resolved and every conflict with existing results is found before
    anything is written or trained (`xval.running.planner.make_plan`); the scheduler then
    feeds the jobs to the executor and the recorder writes what comes back.

    Raises:
        XvalError: for anything that cannot run (nothing trained, nothing written), or
            with `debug`, the first failed fold (`TrainingError`).
    """
    experiment, request = request.settled(experiment)
    gpu, backend = prepare_process(config.backend.backend, request.gpu, _stderr)
    selected = check_selection(experiment, request, config)
    executor = executor_for(request.executor, config, gpu, backend, gpus=request.gpus,
                            ray_address=request.ray_address)
    selected, derived = split_selection(experiment, selected)
    plan = make_plan(experiment, config, selected, request.overrides,
                     bool(request.overwrite))
    derived = with_stale(experiment, derived, selected, plan.layout)
    check_ensembles(experiment, derived, selected, plan.layout, bool(request.overwrite))
    search = experiment.search if request.search else None
    embeds = ("embedding_classifier" in search.space or TrainingParams.of(  # the trials' base
        {**config.training, **search.base, **request.overrides}).embeds) if search \
        else any(p.embeds for p in plan.resolved.values())
    metric = check_selection_metric(config, experiment.task_type, embeds)
    check_search(search, request.trials, request.inner_folds, plan.folds)  # its size, inner folds
    if request.dry_run:  # the plan (and the search), nothing written or trained
        plan.describe(request.out, experiment.number, experiment.dataset)
        describe_ensembles(experiment, derived, request.out)
    for line in data_checks(plan):
        request.out(line)
    if request.dry_run:
        if search is not None:  # with the trials --trials asks for
            dataclasses.replace(search, n_trials=request.trials or search.n_trials).describe(
                request.out, experiment.first_trial_instance, metric, metric_direction(metric))
        return RunOutcome(None, [], [], 0)
    if request.progress and executor.name == "inline":
        import_keras(request.out, backend)
    elif request.progress and executor.name == "ray":
        address = request.ray_address or os.environ.get("RAY_ADDRESS")
        request.out("Starting Ray..." if not address else f"Joining Ray at {address}...")
    executor.start()
    try:
        for store in plan.all_stores():
            executor.preflight(store)
        if search is not None and request.inner_folds:
            return nested_instances(experiment, search, request, config, executor, backend)
        if search is not None:
            return search_instances(experiment, search, request, config, executor, backend)
        return execute(experiment, plan, executor, backend, request, derived)
    finally:
        executor.close()


def check_selection(experiment: ExperimentDeclaration, request: RunRequest,
                    config: Config) -> list[int]:
    """The instances to plan: the selected ones (the one place a run selects them), or
    none with `search` (the search is checked instead).

    Raises:
        ConfigurationError: for ids not declared, `trials`/`timeout` that are not > 0,
            `inner_folds` below 2 or without `search`; with `search`: no declared search,
            or selected instances.
    """
    if request.inner_folds is not None and not request.search:
        raise ConfigurationError(
            f"--inner-folds {request.inner_folds} goes with --search (it runs the search "
            "nested in every outer fold); add --search, or leave --inner-folds out.")
    for flag, value in (("--trials", request.trials), ("--timeout", request.timeout),
                        ("--inner-folds", request.inner_folds)):
        check(flag, value, _OPTIONS[flag], label=f"{flag} {value!r}",
              hint=_INNER if flag == "--inner-folds" else "")
    if not request.search:
        return experiment.select(instances=request.instances)
    if experiment.search is None:
        raise ConfigurationError(
            "--search: the experiment declares no search; set `experiment.search = "
            "xval.Search(base=..., space=...)` in the script.")
    if request.instances is not None:
        raise ConfigurationError("--search runs the search's trials; do not select "
                                 "instances with it.")
    experiment.search.check(resolver(experiment, config))
    return []


def executor_for(name: str | None, config: Config, gpu: str | None, backend: str, *,
                 gpus: Sequence[object] | None = None,
                 ray_address: str | None = None) -> Executor:
    """The unstarted executor a run (or a refit) asks for.

    Args:
        name: a registered executor; `None` takes `[backend] executor`.
        config: the run's `Config` (`jobs_per_gpu`).
        gpu: the process's GPU (`prepare_process`), or `None`.
        backend: the Keras backend.
        gpus: `--gpus` (process and Ray executors), or `None`.
        ray_address: the Ray cluster to join, or `None`.

    Raises:
        ConfigurationError: for an unknown executor, bad GPU ids, or options the executor
            cannot honour.
    """
    name = name or config.backend.executor
    if gpus and name == "inline":
        raise ConfigurationError(
            f"--gpus {','.join(map(str, gpus))} is for --executor process or ray; "
            "the inline executor trains in this process: give its GPU as the positional "
            "GPU argument.")
    given = [g for g in (normalize_gpu(g, "--gpus") for g in gpus or ()) if g is not None]
    if gpus:  # the GPUs asked for, or none visible (or -1): CPU slots that hide every GPU
        chosen: tuple[str, ...] | None = tuple(
            check_gpus_visible(given, "--gpus", _stderr, backend)) or ("-1",)
    else:
        chosen = (gpu,) if gpu is not None else None
    return make_executor(name, ExecutorOptions(gpus=chosen, ray_address=ray_address,
                                               jobs_per_gpu=config.backend.jobs_per_gpu,
                                               backend=backend))


_stderr = functools.partial(print, file=sys.stderr)


def run_listeners(request: RunRequest, config: Config, task_type: str) -> list[object]:
    """The recorder's listeners: the derived files first, then the caller's."""
    return [*report_listeners(config, request.out, task_type), *request.listeners]


def execute(experiment: ExperimentDeclaration, plan: Plan, executor: Executor,
            backend: str, request: RunRequest, ensembles: Sequence[int] = ()) -> RunOutcome:
    """Runs the plan's jobs: instances held by another runner are skipped, folds already
    done are kept, the others train; then the selected `ensembles` are computed from their
    members (`xval.running.ensembles`).

    Returns:
        The `RunOutcome`.
    """
    listeners = run_listeners(request, plan.config, plan.task_type)
    recorder = Recorder(plan.layout, plan.config, plan.num_folds, out=request.out,
                        listeners=listeners, task_type=plan.task_type)
    begin_experiment(recorder, experiment, plan, backend)
    started = time.perf_counter()
    with contextlib.ExitStack() as held:  # the instances' locks, released at the end
        jobs, skipped = claim_instances(plan, recorder, bool(request.overwrite), held)
        Scheduler(executor, recorder, debug=bool(request.debug), out=request.out,
                  progress=request.progress, epoch_lines=request.verbose).run(jobs)
    not_computed = record_ensembles(experiment, ensembles, recorder, bool(request.overwrite))
    if not jobs and not ensembles:
        recorder.results_changed()
    results = recorder.results.refresh()
    failed = [k for k in plan.resolved if k in results.instances
              and results[k].status == InstanceStatus.FAILED.value] + not_computed
    request.out(terminal_table(results, config=plan.config,
                               only=[*plan.resolved, *ensembles]))
    request.out(f"Results: {plan.exp_dir} ({time.perf_counter() - started:.1f}s)")
    code = exit_code(failed, skipped, request.out)
    if code == 0 and derived_failure(listeners):
        code = EXIT_DERIVED  # the line went to stderr when it failed
    return RunOutcome(results, failed, skipped, code)


def claim_instances(plan: Plan, recorder: Recorder, overwrite: bool,
                    held: contextlib.ExitStack) -> tuple[dict[int, list[Job]], list[int]]:
    """Takes the lock of every planned instance another runner does not hold (released
    when `held` closes) and lists the folds each has left to run.

    Returns:
        `(jobs by instance, skipped instance ids)`.
    """
    out = recorder.out
    jobs: dict[int, list[Job]] = {}
    skipped: list[int] = []
    for k, params in plan.resolved.items():
        instance_lock = recorder.instance_lock(k)
        try:
            instance_lock.acquire(timeout=0)
        except Timeout:
            out(f"instance {k}: running in another runner; skipped here.")
            skipped.append(k)
            continue
        held.callback(instance_lock.release)
        done = recorder.begin_instance(k, params, plan.hashes[k], overwrite,
                                       instance_dataset_info(plan, k), plan.overrides)
        todo = [i for i in range(plan.num_folds) if i not in done]
        if not todo:
            out(f"instance {k}: all {plan.num_folds} folds already done; skipped.")
            layout = recorder.instance_layout(k)
            # Its derived files, where a run stopped before it wrote them.
            plots_missing = plan.config.report.plots and not layout.plots_dir.exists()
            if not layout.summary_file.exists() or plots_missing:
                recorder.finish_instance(k)
            continue
        if done:
            out(f"instance {k}: folds {done} already done; resuming at fold {todo[0]}.")
        jobs[k] = plan.jobs(k, todo)
    return jobs, skipped


def exit_code(failed: list[int], skipped: list[int], out: Out) -> int:
    """The run's exit code (see `RunOutcome`), said in words when it is not 0."""
    if failed:
        out(f"{len(failed)} instance(s) failed: {failed}; see error.txt in their folders.")
        return 1
    if skipped:
        out(f"instance(s) {skipped} are running in another runner and are not complete "
            "here; rerun this command after that runner ends to see them.")
        return EXIT_PENDING_ELSEWHERE
    return 0


def search_instances(experiment: ExperimentDeclaration, search: Search,
                     request: RunRequest, config: Config, executor: Executor,
                     backend: str) -> RunOutcome:
    """Runs the experiment's `search`: its trials become instances numbered after the
    declared ones (lent to the declaration while they run)."""
    declared = dict(experiment.instances)
    try:
        done = run_search(
            experiment, search, config=config, runner=executor, backend=backend,
            out=request.out,
            plan_for=lambda ids: make_plan(experiment, config, ids, request.overrides, False),
            trials=request.trials, timeout=request.timeout, progress=request.progress,
            verbose=request.verbose,
            listeners=run_listeners(request, config, experiment.task_type))
    finally:
        experiment.instances = declared  # trial instances are not declarations
    results = done.results.refresh() if done.results is not None \
        else ExperimentResults(done.layout.root)
    trial_ids = [k for k in results.instances if k >= done.first_instance]
    request.out(terminal_table(results, config=config, only=sorted(set(declared) | set(trial_ids))))
    request.out(f"search: this runner ran {len(done.ran)} trial(s) ({len(done.pruned)} "
                f"pruned, {len(done.failed)} failed); results in {done.layout.root}")
    return RunOutcome(results, done.failed, [], 1 if done.failed else 0)


def nested_instances(experiment: ExperimentDeclaration, search: Search,
                     request: RunRequest, config: Config, executor: Executor,
                     backend: str) -> RunOutcome:
    """Runs the `search` nested in every outer fold (`xval.running.nested.run_nested`)."""
    done = run_nested(NestedRun(
        experiment, search, config, request.overrides, int(request.inner_folds or 0),
        executor, backend, request.out, trials=request.trials, timeout=request.timeout,
        overwrite=bool(request.overwrite), debug=bool(request.debug),
        progress=request.progress, verbose=request.verbose,
        listeners=run_listeners(request, config, experiment.task_type)))
    request.out(terminal_table(done.results, config=config, only=done.shown))
    return RunOutcome(done.results, [done.instance] if done.failed else [], [], done.code)
