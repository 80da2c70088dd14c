"""Refit: the final model of a complete instance, trained once on all its items.

The model trains on the train, validation and test items of fold 0 together, for the median
of the folds' best epochs, with no validation and no early stopping, through the configured
executor; the recorder writes it as `final.keras` with its `final.json`.

The instance is resolved as its run resolved it: with the `--set` values recorded in its
`params.json`. Parameters that resolve otherwise now (the script or config.ini changed since)
are refused, naming each one with its recorded and its present value.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xval.config import params as P
from xval.config.loader import Config
from xval.core.errors import ConfigurationError, ResultsConflictError, TrainingError
from xval.core.layout import ExperimentLayout
from xval.core.records import FoldResult, Job, ParamsRecord
from xval.core.storage import ResultsStore
from xval.executors import JobQueue
from xval.executors.base import Executor
from xval.running.declaration import ExperimentDeclaration
from xval.running.environment import checked_cache, prepare_process, script_name
from xval.running.options import RunOptions
from xval.running.packages import check_packages
from xval.running.planner import Plan, backend_for, make_plan
from xval.running.recorder import Recorder, folds_on_disk
from xval.running.runner import executor_for


def refit_instance(experiment: ExperimentDeclaration, instance: int, config: Config,
                   options: RunOptions, *, results_store: ResultsStore) -> Path:
    """Trains the final model of a complete instance on all its items.

    Args:
        experiment: the declaration.
        instance: the instance id.
        config: the run's `Config`.
        options: the run's options: where the job runs (`executor`: its name, `gpu`,
            `backend`; `None` takes config.ini's executor and the declared `gpu_ID`), the
            print function (`output.out`), and `overrides`: `--set` values over those
            recorded with the instance's run; what a refit cannot take is refused
            (`RunOptions.for_refit`).
        results_store: the results store the instance's files are read and written
            through (`Experiment.refit` gives the process's, `RESULTS_STORE`).

    Returns:
        The path of `final.keras`.

    Raises:
        ConfigurationError: when the instance is not declared, not complete, or held by
            another runner, or for options a refit cannot take.
        ResultsConflictError: when its results were made with other parameters (each one
            named, recorded value and present value) or folds.
        TrainingError: when the refit fails.
    """
    options = options.for_refit()  # what a refit cannot take, before anything is read
    selected = experiment.select(instances=[instance])
    if instance in experiment.ensembles:
        raise ConfigurationError(
            f"--refit {instance}: instance {instance} is {experiment.ensembles[instance]!r}, "
            "which trains nothing; refit its members (predict then answers with their final "
            "models).")
    on, out = options.executor, options.output.out
    gpu_id, backend = prepare_process(
        backend_for(experiment, selected, config, options.overrides),
        experiment.gpu_ID if on.gpu is None else on.gpu, _stderr, chosen=on.backend,
        jobs_per_gpu=on.jobs_per_gpu or config.backend.jobs_per_gpu)
    config = checked_cache(config, backend, out)
    record = recorded_params(experiment, config, instance, results_store)
    given = {**(record.overrides if record else {}), **options.overrides}
    plan = make_plan(repeats_on_disk(experiment, config, results_store), config, selected,
                     given, False, results_store=results_store, check_params=False)
    if record is not None:
        check_same_params(record, plan.resolved[instance], plan.hashes[instance],
                          experiment, given)
    recorder = Recorder(plan.layout, config, plan.num_folds, out=out,
                        task_type=plan.task_type, results_store=results_store)
    best_epochs = fold_best_epochs(recorder, plan, instance, experiment.script)
    epochs = max(1, int(round(statistics.median(e for e in best_epochs if e is not None))))
    job = refit_job(plan, instance, epochs)
    runner = executor_for(on, config, gpu_id, backend)
    check_packages(plan.resolved, executor=runner.name)
    out(f"instance {instance}: refitting on all {len(job.items['train'])} items for {epochs} "
        f"epochs (median of the folds' best epochs {best_epochs}).")
    with recorder.holding(instance, f"Instance {instance} is running in another runner; "
                                    "refit it after that runner ends."):
        result = run_one(runner, job)
        for line in (result.cache_notes or {}).values():  # what the compile cache did
            out(line)
        if not result.ok:
            raise TrainingError(f"Refit of instance {instance} failed: {result.message}"
                                ) from result.exception
        path = recorder.record_refit(result, best_epochs)
    out(f"instance {instance}: final model {path} ({result.seconds:.1f}s)")
    return path


def recorded_params(experiment: ExperimentDeclaration, config: Config, instance: int,
                    results_store: ResultsStore) -> ParamsRecord | None:
    """The `params.json` of the instance's run, or `None` when it has not run (the refit
    then says it is not complete).

    Raises:
        ResultsConflictError: when its `params.json` is not a parameter record.
    """
    layout = ExperimentLayout.of(Path(experiment.experiment_folder or config.results_dir),
                                 experiment.dataset, experiment.number).instance(instance)
    if not layout.params_file.exists():
        return None
    return results_store.require(layout.params_file, ParamsRecord.from_dict,
                                 "restore it from a backup; without it the parameters the "
                                 "folds were trained with are unknown.")


def check_same_params(record: ParamsRecord, params: Mapping[str, Any], params_hash: str,
                      experiment: ExperimentDeclaration, overrides: Mapping[str, Any]) -> None:
    """Refuses to refit an instance whose parameters resolve otherwise now than when its
    folds were trained (the refit's epochs come from those folds).

    Raises:
        ResultsConflictError: naming every parameter that differs, with the value recorded
            in `params.json` and the value it resolves to now, and the fix (never
            `--overwrite`, which would replace the results the refit is made from).
    """
    edited = P.edited_params(record.params, record.hash)
    names = P.differing(record.params, params)
    if not edited and (record.hash == params_hash or not names):
        return
    k = record.instance
    if edited:
        raise ResultsConflictError(
            f"Cannot refit instance {k}: its params.json {edited}, so the parameters its "
            "folds were trained with are unknown; restore the file from a backup.")
    detail = "; ".join(f"{n}: recorded {record.params.get(n, '<absent>')!r}, now "
                       f"{params.get(n, '<absent>')!r}" for n in names)
    applied = (f" (with the run's --set values recorded in params.json: "
               f"{_set_text(overrides)})" if overrides else "")
    raise ResultsConflictError(
        f"Cannot refit instance {k}: it resolves now to other parameters than its folds "
        f"were trained with{applied}: {detail}. The script or config.ini changed since the "
        "run: restore those values to refit these results, or declare a new instance with "
        "the new ones and run it.")


def _set_text(overrides: Mapping[str, Any]) -> str:
    """`--set a=1 --set b='x'`."""
    return " ".join(f"--set {n}={v!r}" for n, v in sorted(overrides.items()))


def repeats_on_disk(experiment: ExperimentDeclaration, config: Config,
                    results_store: ResultsStore) -> ExperimentDeclaration:
    """The declaration with the repeats its results were made with (`folds.json`: a run
    given `--set num_repeats=N`), so that the plan's folds are those on disk."""
    layout = ExperimentLayout.of(Path(experiment.experiment_folder or config.results_dir),
                                 experiment.dataset, experiment.number)
    manifest = results_store.manifest(layout)
    if manifest is None or manifest.num_repeats == experiment.num_repeats:
        return experiment
    return experiment.with_settings({"num_repeats": manifest.num_repeats})[0]


def fold_best_epochs(recorder: Recorder, plan: Plan, instance: int,
                     script: str | None) -> list[int | None]:
    """The best epoch of every fold of a complete instance.

    Raises:
        ConfigurationError: when some fold is not done (or its file cannot be believed).
    """
    folds = folds_on_disk(recorder.instance_layout(instance), plan.num_folds,
                          params_hash=plan.hashes[instance], task_type=plan.task_type,
                          results_store=plan.results_store)
    missing = [i for i in range(plan.num_folds) if i not in folds.done]
    best = [r.best_epoch for r in sorted(folds.records, key=lambda r: r.fold) if r.ok]
    if missing or not any(e is not None for e in best):
        why = "".join(f"; fold {i}: {reason}" for i, reason in folds.invalid.items())
        raise ConfigurationError(
            f"Instance {instance} is not complete (folds {missing} of {plan.num_folds} are "
            f"not done in {recorder.instance_layout(instance).root}{why}), so there is no "
            f"epoch count to refit with. Run it first: `python {script_name(script)} "
            f"{instance} {instance}`."
        )
    return best


def refit_job(plan: Plan, instance: int, epochs: int) -> Job:
    """The job that trains `instance` on every item of fold 0 for `epochs` epochs: the
    plan's job of fold 0 (`Plan.job`), with all its items as training items, no logs."""
    fold = plan.folds[0]
    items = sorted({*fold["train"], *fold["val"], *fold["test"]})
    return dataclasses.replace(plan.job(instance, 0),
                               items={"train": items, "val": [], "test": []},
                               log_dir=None, refit_epochs=epochs)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def run_one(runner: Executor, job: Job) -> FoldResult:
    """Runs one job through `runner` (started and closed here) and returns its result."""
    runner.start()
    try:
        results = runner.run(JobQueue([job]))
        try:
            return next(results)
        finally:
            results.close()
    finally:
        runner.close()
