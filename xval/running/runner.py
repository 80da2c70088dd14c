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
from collections.abc import Mapping, Sequence

from xval.config.loader import Config
from xval.config.selection import check_selection_metric, metric_direction
from xval.config.space import Search
from xval.core.backend import normalize_gpu
from xval.core.errors import ConfigurationError
from xval.core.parameters import TrainingParams
from xval.core.records import InstanceStatus, Job
from xval.core.storage import ResultsStore
from xval.executors import Execution, make_executor
from xval.executors.base import Executor
from xval.report.results import ExperimentResults
from xval.report.terminal import terminal_table
from xval.running.checks import data_checks
from xval.running.declaration import ExperimentDeclaration, Selection
from xval.running.derived import DerivedRun, derived_failure, derived_run, report_listeners
from xval.running.environment import (
    Out,
    check_gpus_visible,
    checked_cache,
    eager_note,
    gpu_present,
    import_keras,
    prepare_process,
)
from xval.running.experiment_files import begin_experiment, instance_dataset_info
from xval.running.nested import NestedRun, run_nested
from xval.running.options import Output, RunOptions, SearchOptions
from xval.running.own_code import check_own_code
from xval.running.packages import check_packages
from xval.running.planner import Plan, backend_for, make_plan, resolver
from xval.running.recorder import Recorder
from xval.running.scheduler import Scheduler
from xval.running.splitting import check_search
from xval.running.study import run_search

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


def run_experiment(experiment: ExperimentDeclaration, instances: Selection,
                   options: RunOptions, config: Config, *,
                   results_store: ResultsStore) -> RunOutcome:
    """Validates, then runs the selected instances (or the search's trials).

    Every instance is resolved and every conflict with existing results is found before
    anything is written or trained (`xval.running.planner.make_plan`); the scheduler then
    feeds the jobs to the executor and the recorder writes what comes back.

    Args:
        experiment: the declaration.
        instances: the selection (`ExperimentDeclaration.select`), or `None`: all.
        options: what the run is asked to do.
        config: the run's `Config`.
        results_store: the results store every result file is read and written through
            (`Experiment.run` gives the process's, `RESULTS_STORE`; a test or a second
            store its own).

    Raises:
        XvalError: for anything that cannot run (nothing trained, nothing written), or
            with `debug`, the first failed fold (`TrainingError`).
    """
    experiment, options = options.settled(experiment)
    on, say = options.executor, options.output
    note = _stderr if say.verbose else None  # why a GPU discovery source was passed over
    selected = check_selection(experiment, instances, options, config)
    asked = backend_for(experiment, selected, config, options.overrides)
    gpu, backend = prepare_process(asked, on.gpu, _stderr, note, chosen=on.backend,
                                   jobs_per_gpu=on.jobs_per_gpu or config.backend.jobs_per_gpu)
    eager = eager_note(backend, config.backend.backend, asked, on.backend)
    config = checked_cache(config, backend, say.out)  # before anything trains
    executor = executor_for(on, config, gpu, backend, note=note)
    ensembles = derived_run(experiment)  # the instances derived from others
    selected, derived = ensembles.split_selection(experiment, selected)
    plan = make_plan(experiment, config, selected, options.overrides, bool(options.overwrite),
                     results_store=results_store)
    derived = ensembles.with_stale(experiment, derived, selected, plan)
    ensembles.check_ensembles(experiment, derived, selected, plan, bool(options.overwrite))
    search = experiment.search if options.search else None
    embeds = ("embedding_classifier" in search.space or TrainingParams.of(  # the trials' base
        {**config.training, **search.base, **options.overrides}).embeds) if search \
        else any(p.embeds for p in plan.resolved.values())
    metric = check_selection_metric(config, experiment.task_type, embeds)
    trials = options.search or SearchOptions()
    check_search(search, trials.trials, trials.inner_folds, plan.folds)  # its size, inner folds
    check_packages(plan.resolved, search=search is not None, executor=executor.name,
                   listeners=say.listeners)  # every optional package, named at once
    check_own_code(experiment, plan.resolved, executor.name)  # a worker can import it
    if options.dry_run:  # the plan (and the search), nothing written or trained
        plan.describe(say.out, experiment)
        ensembles.describe_ensembles(experiment, derived, say.out)
    for line in data_checks(plan):
        say.out(line)
    if options.dry_run:
        if search is not None:  # with the trials --trials asks for
            dataclasses.replace(search, n_trials=trials.trials or search.n_trials).describe(
                say.out, experiment.first_trial_instance, metric,
                metric_direction(metric, task=experiment.task_type))
        return RunOutcome(None, [], [], 0)
    for listener in say.listeners:  # MLflow connects: a bad tracker fails before training
        begin = getattr(listener, "on_run_begin", None)
        if begin is not None:
            begin(plan.results_store)
    _say_eager(say, eager)  # once, before the slow start of a run
    if say.progress and executor.name == "inline":
        import_keras(say.out, backend)
    elif say.progress and executor.name == "ray":
        address = on.ray_address or os.environ.get("RAY_ADDRESS")
        say.out("Starting Ray..." if not address else f"Joining Ray at {address}...")
    executor.start()
    try:
        for store in plan.all_stores():
            executor.preflight(store)
        if search is not None and trials.inner_folds:
            return nested_instances(experiment, search, options, config, executor, backend,
                                    results_store)
        if search is not None:
            return search_instances(experiment, search, options, config, executor, backend,
                                    results_store)
        return execute(experiment, plan, executor, backend, options, derived, ensembles)
    finally:
        executor.close()


def _say_eager(say: Output, line: str) -> None:
    """Prints `eager_note`'s line, once per run, where there is one."""
    if line:
        say.out(line)


def check_selection(experiment: ExperimentDeclaration, instances: Selection,
                    options: RunOptions, config: Config) -> list[int]:
    """The instances to plan: the selected ones (the one place a run selects them), or
    none with a search (the search is checked instead).

    Raises:
        ConfigurationError: for ids not declared; with a search: no declared search, or
            selected instances.
    """
    if options.search is None:
        return experiment.select(instances=instances)
    if experiment.search is None:
        raise ConfigurationError(
            "--search: the experiment declares no search; set `experiment.search = "
            "xval.Search(base=..., space=...)` in the script.")
    if instances is not None:
        raise ConfigurationError("--search runs the search's trials; do not select "
                                 "instances with it.")
    experiment.search.check(resolver(experiment, config))
    return []


def executor_for(execution: Execution, config: Config, gpu: str | None, backend: str, *,
                 note: Out | None = None) -> Executor:
    """The unstarted executor a run (or a refit) asks for, given the `Execution` as the run
    settles it: its name (`None`: `[backend] executor`), the GPU ids chosen, the backend in
    use, `jobs_per_gpu` (`None`: `[backend] jobs_per_gpu`) and the inherited GPU.

    Args:
        execution: where the jobs run, as asked (`RunOptions.executor`).
        config: the run's `Config` (`executor`, `jobs_per_gpu`).
        gpu: the process's GPU (`prepare_process`), or `None`.
        backend: the Keras backend.
        note: prints why a GPU discovery source was passed over (`-v`), or `None`.

    Raises:
        ConfigurationError: for an unknown executor, bad GPU ids, or options the executor
            cannot honour.
    """
    name = execution.name or config.backend.executor
    gpus = execution.gpus
    if gpus and name == "inline":
        raise ConfigurationError(
            f"--gpus {','.join(map(str, gpus))} is for --executor process or ray; "
            "the inline executor trains in this process: give its GPU as the positional "
            "GPU argument.")
    given = [g for g in (normalize_gpu(g, "--gpus") for g in gpus or ()) if g is not None]
    if gpus:  # the GPUs asked for, or none visible (or -1): CPU slots that hide every GPU
        chosen: tuple[str, ...] | None = tuple(
            check_gpus_visible(given, "--gpus", _stderr, backend, note,
                               build=name != "ray")) or ("-1",)
    else:
        chosen = (gpu,) if gpu is not None else None
    inherited = chosen is None and name == "process" and gpu_present(note)
    return make_executor(name, dataclasses.replace(
        execution, name=name, gpus=chosen, backend=backend, inherited_gpu=inherited,
        jobs_per_gpu=execution.jobs_per_gpu or config.backend.jobs_per_gpu))


_stderr = functools.partial(print, file=sys.stderr)


def run_output(options: RunOptions, config: Config, task_type: str) -> Output:
    """The run's `Output` with the recorder's listeners: the derived files first, then the
    caller's."""
    say = options.output
    return dataclasses.replace(say, listeners=[*report_listeners(config, say.out, task_type),
                                               *say.listeners])


def execute(experiment: ExperimentDeclaration, plan: Plan, executor: Executor,
            backend: str, options: RunOptions, ensembles: Sequence[int],
            derived: DerivedRun) -> RunOutcome:
    """Runs the plan's jobs: instances held by another runner are skipped, folds already
    done are kept, the others train; then `derived` computes the selected `ensembles` from
    their members (`derived_run`).

    Returns:
        The `RunOutcome`.
    """
    say = run_output(options, plan.config, plan.task_type)
    recorder = Recorder(plan.layout, plan.config, plan.num_folds, out=say.out,
                        listeners=say.listeners, task_type=plan.task_type,
                        results_store=plan.results_store)
    begin_experiment(recorder, experiment, plan, backend)
    started = time.perf_counter()
    with contextlib.ExitStack() as held:  # the instances' locks, released at the end
        jobs, skipped = claim_instances(plan, recorder, bool(options.overwrite), held)
        try:
            Scheduler(executor, recorder, debug=bool(options.debug), out=say.out,
                      progress=say.progress, epoch_lines=say.verbose).run(jobs)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the results left as the run found
            recorder.interrupted(jobs)  # them, plus whole folds; the workbook made again
            raise
    not_computed, pending = derived.record_ensembles(experiment, ensembles, recorder,
                                                     bool(options.overwrite), skipped)
    skipped = [*skipped, *pending]
    if not jobs and not ensembles:
        recorder.results_changed()
    results = recorder.results.refresh()
    failed = [k for k in plan.resolved if k in results.instances
              and results[k].status == InstanceStatus.FAILED.value] + list(not_computed)
    say.out(terminal_table(results, config=plan.config, only=[*plan.resolved, *ensembles]))
    say.out(f"Results: {plan.exp_dir} ({time.perf_counter() - started:.1f}s)")
    code = exit_code(failed, skipped, results, not_computed)
    if code == 0 and derived_failure(say.listeners):
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
        instance_lock = recorder.claim(k)
        if instance_lock is None:
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


def exit_code(failed: list[int], skipped: list[int],
              results: ExperimentResults | None = None,
              reasons: Mapping[int, str] | None = None) -> int:
    """The run's exit code (see `RunOutcome`), said in words on stderr when it is not 0:
    `-q` (which prints only results and errors) never hides why a run failed. A failed
    instance's line holds the reason of its first failed fold (`results`), not only "see
    error.txt"; an ensemble not computed, its own (`reasons`)."""
    reasons = reasons or {}
    if failed:
        why = "; ".join(f"instance {k}: {reasons.get(k) or _first_line(results, k)}"
                        for k in failed[:3])
        trained = [k for k in failed if k not in reasons]
        print(f"error: {len(failed)} instance(s) failed: {failed} ({why})"
              + ("; see error.txt in their folders." if trained == failed else
                 f"; see error.txt in the folders of {trained}." if trained else "."),
              file=sys.stderr, flush=True)
        return 1
    if skipped:
        print(f"instance(s) {skipped} are running in another runner and are not complete "
              "here; rerun this command after that runner ends to see them.",
              file=sys.stderr, flush=True)
        return EXIT_PENDING_ELSEWHERE
    return 0


def _first_line(results: ExperimentResults | None, instance: int) -> str:
    """The first line of why an instance failed (its first failed fold's message)."""
    message = results[instance].summary.message if results is not None \
        and instance in results.instances else ""
    first = message.strip().splitlines()[0] if message.strip() else "no reason recorded"
    return first if len(first) <= 300 else first[:297] + "..."


def search_instances(experiment: ExperimentDeclaration, search: Search,
                     options: RunOptions, config: Config, executor: Executor,
                     backend: str, results_store: ResultsStore) -> RunOutcome:
    """Runs the experiment's `search`: its trials become instances numbered after the
    declared ones (lent to the declaration while they run)."""
    declared = dict(experiment.instances)
    say = run_output(options, config, experiment.task_type)
    try:
        done = run_search(
            experiment, search, config=config, runner=executor, backend=backend,
            plan_for=lambda ids: make_plan(experiment, config, ids, options.overrides, False,
                                           results_store=results_store),
            options=options.search or SearchOptions(), output=say)
    finally:
        experiment.instances = declared  # trial instances are not declarations
    results = done.results.refresh() if done.results is not None \
        else ExperimentResults(done.layout.root, results_store=results_store)
    trial_ids = [k for k in results.instances if k >= done.first_instance]
    say.out(terminal_table(results, config=config, only=sorted(set(declared) | set(trial_ids))))
    say.out(f"search: this runner ran {len(done.ran)} trial(s) ({len(done.pruned)} "
            f"pruned, {len(done.failed)} failed); results in {done.layout.root}")
    return RunOutcome(results, done.failed, [], exit_code(done.failed, [], results))


def nested_instances(experiment: ExperimentDeclaration, search: Search,
                     options: RunOptions, config: Config, executor: Executor,
                     backend: str, results_store: ResultsStore) -> RunOutcome:
    """Runs the `search` nested in every outer fold (`xval.running.nested.run_nested`)."""
    done = run_nested(NestedRun(experiment, search, config, executor, backend, options,
                                run_output(options, config, experiment.task_type),
                                results_store))
    options.output.out(terminal_table(done.results, config=config, only=done.shown))
    failed = [done.instance] if done.failed else []
    return RunOutcome(done.results, failed, [], exit_code(failed, [], done.results) or done.code)
