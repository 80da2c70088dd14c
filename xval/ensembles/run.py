"""Ensembles of instances in a run (`experiment[3] = Ensemble(1, 2)`) and from the command
line (`python -m xval ensemble`): checked before anything is written, computed from the
members' recorded predictions once they are complete (`xval.ensembles.compute`), and written
by the recorder as any instance's results.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from xval.config.params import params_hash
from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.layout import ExperimentLayout
from xval.core.records import InstanceStatus, ParamsRecord
from xval.core.records.ensemble import DEFAULT_WEIGHTING, VALIDATION
from xval.ensembles.compute import (
    EnsembleError,
    compute_ensemble,
    ensemble_params,
    members_of,
)
from xval.ensembles.predict import install_predict
from xval.ensembles.tables import install_report
from xval.report.results import ExperimentResults
from xval.running.declaration import Ensemble, ExperimentDeclaration
from xval.running.derived import DerivedRun, install_derived
from xval.running.planner import (
    Plan,
    check_results_folders,
    defaults_hint,
    params_conflicts,
    resolve_instances,
)
from xval.running.recorder import Out, Recorder
from xval.running.stores import instance_stores


def split_selection(experiment: ExperimentDeclaration, selected: Sequence[int]
                    ) -> tuple[list[int], list[int]]:
    """The selected ids as `(trained instances, ensembles)`, each in selection order."""
    return ([k for k in selected if k not in experiment.ensembles],
            [k for k in selected if k in experiment.ensembles])


def with_stale(experiment: ExperimentDeclaration, ensembles: Sequence[int],
               trained: Sequence[int], plan: Plan) -> list[int]:
    """`ensembles`, and the declared ensembles already on disk that a member run now would
    leave stale (`exp.py 2 2 --overwrite` retrains a member of 3: 3 is fused again). A
    stale ensemble that could not be fused now (another member incomplete or made with
    other parameters, its declaration changed) is left as it is: it was not selected, so it
    refuses nothing."""
    stale = [k for k, spec in experiment.ensembles.items() if k not in ensembles
             and plan.layout.instance(k).root.is_dir() and set(spec.members) & set(trained)]
    fusable = []
    for k in sorted(stale):
        try:
            check_ensembles(experiment, [k], trained, plan, overwrite=False)
        except (ConfigurationError, ResultsConflictError):
            continue
        fusable.append(k)
    return [*ensembles, *fusable]


def check_ensembles(experiment: ExperimentDeclaration, ensembles: Sequence[int],
                    trained: Sequence[int], plan: Plan, overwrite: bool) -> None:
    """Refuses, before anything is written or trained, a selected ensemble whose members
    are not declared instances, or are neither run now nor complete on disk, or were made
    with other parameters than the script declares (`check_member_params`), or whose folder
    holds other results (unless `overwrite`).

    Args:
        experiment: the declaration.
        ensembles: the ensembles to check.
        trained: the instances run now (checked by the plan itself).
        plan: the run's plan (its results folder, store, config and `--set` values).
        overwrite: `--overwrite`: the ensembles' own folders may be replaced (never the
            members' results: a member is retrained only when it is run).

    Raises:
        ConfigurationError: naming the ensemble, the member and the fix.
        ResultsConflictError: for a member made with other parameters, or a folder of other
            results without `overwrite`.
    """
    layout = plan.layout
    check_results_folders(layout, list(ensembles), overwrite)  # the output rule
    results = ExperimentResults(layout.root, results_store=plan.results_store) \
        if ensembles and layout.root.is_dir() else None
    for k in ensembles:
        spec = experiment.ensembles[k]
        for member in spec.members:
            if member not in experiment.instances:
                raise ConfigurationError(
                    f"instance {k} = {spec!r}, but instance {member} is not a declared "
                    f"trained instance (declared: {sorted(experiment.instances)}); name "
                    "instances the experiment trains.")
            done = results is not None and member in results.instances and \
                results[member].status == InstanceStatus.COMPLETE.value
            if member not in trained and not done:
                raise ConfigurationError(
                    f"instance {k} = {spec!r} needs instance {member}, which is neither run "
                    "now nor complete; run them together (e.g. the range "
                    f"{min(spec.members)} {k}).")
        check_member_params(experiment, k, [m for m in spec.members if m not in trained],
                            plan)
        if overwrite:
            continue
        old, problem = plan.results_store.params(layout.instance(k))
        wanted = _params(experiment, k)
        if problem or (old is not None and old.hash != wanted.hash):
            raise ResultsConflictError(
                f"{layout.instance(k).root} holds other results than {spec!r} "
                f"({problem or 'its params.json names other parameters'}); rerun with "
                "--overwrite to replace them, or give the ensemble another number."
                + _weights_hint(old, spec))


def check_member_params(experiment: ExperimentDeclaration, instance: int,
                        members: Sequence[int], plan: Plan) -> None:
    """Refuses to fuse members on disk whose recorded parameters are not those the script
    declares for them now: the same check a run of the member itself makes before it
    resumes (`xval.running.planner.check_params_files`), so that `exp.py 3 3` never fuses
    results `exp.py 2 2` would refuse.

    Args:
        experiment: the declaration.
        instance: the ensemble.
        members: its members not run now (complete on disk).
        plan: the run's plan.

    Raises:
        ResultsConflictError: naming the ensemble, each member and what differs, and the
            fix (retrain the member; the ensemble is fused again after it).
    """
    if not members:
        return
    config, overrides = plan.config, plan.overrides
    stores = instance_stores(experiment, config, list(members), overrides, plan.store)
    resolved = resolve_instances(experiment, config, list(members), overrides, plan.store,
                                 stores)
    conflicts, changed = params_conflicts(
        plan.layout, resolved, {k: params_hash(p) for k, p in resolved.items()},
        plan.results_store)
    if conflicts:
        spec, ids = experiment.ensembles[instance], list(conflicts)
        retrain = (f"instance {ids[0]} first (the range {ids[0]} {ids[0]} with --overwrite)"
                   if len(ids) == 1 else f"instances {', '.join(map(str, ids))} first (each "
                   "as the range K K with --overwrite)")
        raise ResultsConflictError(
            f"instance {instance} = {spec!r} would fuse existing results made with other "
            "parameters than the script declares: "
            + "; ".join(f"instance {k} ({what})" for k, what in conflicts.items())
            + f". Retrain {retrain}: the ensemble is fused again after it; or declare the "
            "member as a new instance." + defaults_hint(changed))


def _weights_hint(old: ParamsRecord | None, spec: Ensemble) -> str:
    """What to write to keep an ensemble made when `Ensemble(1, 2)` chose its weights on
    the validation clips (before equal weights were the default)."""
    if old is None or old.params.get("weights") != VALIDATION or spec.weights == VALIDATION:
        return ""
    members = ", ".join(map(str, spec.members))
    return (f" Its results were made with validation weights, the default of Ensemble(...) "
            f"before equal weights (docs/results.md, \"The selected row against its best "
            f"member\"); to keep them, declare "
            f"Ensemble({members}, weights=\"validation\").")


def _params(experiment: ExperimentDeclaration, instance: int) -> ParamsRecord:
    spec = experiment.ensembles[instance]
    return ensemble_params(instance, [str(m) for m in spec.members], spec.weights,
                           experiment.task_type)


def describe_ensembles(experiment: ExperimentDeclaration, ensembles: Sequence[int],
                       out: Out) -> None:
    """The dry run's lines of the selected ensembles."""
    for k in ensembles:
        spec = experiment.ensembles[k]
        how = "weights chosen per fold on its validation clips" \
            if spec.weights == VALIDATION else "equal weights"
        out(f"Instance {k}: ensemble of instances {' + '.join(map(str, spec.members))} "
            f"({how}), computed from their predictions once they are complete.")


def record_ensembles(experiment: ExperimentDeclaration, ensembles: Sequence[int],
                     recorder: Recorder, overwrite: bool, skipped: Sequence[int] = ()
                     ) -> tuple[dict[int, str], list[int]]:
    """Computes and records the selected ensembles whose members are complete.

    Args:
        experiment: the declaration.
        ensembles: the ensembles to compute.
        recorder: the run's recorder.
        overwrite: `--overwrite`.
        skipped: the members held by another runner in this run (their ensembles wait).

    Returns:
        `(failed, pending)`: the ensembles not computed with why (a member failed or is not
        complete, or their predictions do not fit together), and those left to another
        runner (it holds them or one of their members).
    """
    failed: dict[int, str] = {}
    pending: list[int] = []
    results = recorder.results.refresh()
    for k in ensembles:
        spec: Ensemble = experiment.ensembles[k]
        missing = [m for m in spec.members if m not in results.instances
                   or results[m].status != InstanceStatus.COMPLETE.value]
        if set(missing) & set(skipped):
            recorder.out(f"instance {k} ({spec!r}) waits for instance(s) "
                         f"{', '.join(str(m) for m in missing if m in skipped)}, running in "
                         "another runner.")
            pending.append(k)
            continue
        if missing:
            failed[k] = (f"ensemble {spec!r} not computed: instance(s) "
                         f"{', '.join(map(str, missing))} are not complete")
            recorder.out(f"instance {k}: {failed[k]}.")
            continue
        lock = recorder.claim(k)
        if lock is None:
            recorder.out(f"instance {k}: running in another runner; skipped here.")
            pending.append(k)
            continue
        try:
            ensemble = compute_ensemble(
                k, members_of(recorder.layout.root, spec.members, recorder.results_store),
                results.manifest, spec.weights)
            recorder.record_ensemble(k, ensemble.params, ensemble.record, ensemble.folds,
                                     overwrite=overwrite)
        except EnsembleError as e:
            failed[k] = f"ensemble {spec!r} not computed: {e}"
            recorder.out(f"instance {k}: {failed[k]}")
            continue
        finally:
            lock.release()
        recorder.out(f"instance {k}: ensemble of {ensemble.record.describe()} (mean weights "
                     "over folds), from their predictions.")
    if ensembles:
        recorder.results_changed()
    return failed, pending


def make_ensemble(exp_dir: Path, members: Sequence[int | str], *, instance: int | None = None,
                  weighting: str = DEFAULT_WEIGHTING, overwrite: bool = False,
                  recorder: Recorder) -> int:
    """`python -m xval ensemble`: the ensemble of `members` written as instance `instance`
    of the experiment `exp_dir` (`None`: the one after its last instance).

    Returns:
        The ensemble's instance id.

    Raises:
        EnsembleError: for members that cannot be fused (one line naming the difference).
        ResultsConflictError: for an instance folder of other results without `overwrite`.
    """
    layout = ExperimentLayout(exp_dir)
    found = members_of(exp_dir, members, recorder.results_store)
    if instance is not None and instance < 1:  # before anything is read or written
        raise ConfigurationError(f"--as {instance}: an instance id is a whole number, 1 or "
                                 "more; give another, or leave --as out (the one after the "
                                 "last instance).")
    if instance is None:
        instance = max([i.id for i in layout.instances()], default=0) + 1
    check_results_folders(layout, [instance], overwrite)  # the output rule
    if instance in [m.id for m in found if m.experiment == "."]:
        raise ConfigurationError(f"--as {instance} is one of the members; give the ensemble "
                                 "a number of its own.")
    ensemble = compute_ensemble(instance, found, recorder.results_store.manifest(layout), weighting)
    with recorder.holding(instance, f"instance {instance} is being written by another "
                                    "runner; rerun when it ends."):
        recorder.record_ensemble(instance, ensemble.params, ensemble.record, ensemble.folds,
                                overwrite=overwrite)
    recorder.out(f"instance {instance}: ensemble of {ensemble.record.describe()} (mean "
                 "weights over folds), from their predictions.")
    recorder.results_changed()
    return instance


def install() -> None:
    """Makes runs plan, check, describe and record an experiment's ensembles (this module,
    as `xval.running.derived.DerivedRun`), the report show them (`install_report`) and
    `predict` answer an ensemble's folder (`install_predict`). The layers below never import
    the ensembles: the entry points call this (the command lines, `from xval import
    Experiment`); a second call changes nothing."""
    install_derived(cast(DerivedRun, sys.modules[__name__]))
    install_report()
    install_predict()
