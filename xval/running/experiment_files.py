"""The experiment-level files of a run (`folds.json`, the description, `dataset.json`, the
code snapshot, the run's command line): their content, handed to the recorder, which writes
them."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

from preprocessing.duplicates.folds import duplicates_record
from xval.core.records import RunCommand
from xval.running.declaration import ExperimentDeclaration
from xval.running.planner import Plan
from xval.running.recorder import Recorder


def description_text(experiment: ExperimentDeclaration, plan: Plan) -> str:
    """The description file: the experiment's description, settings and instances."""
    lines = [experiment.description, "", f"dataset: {experiment.dataset}",
             f"experiment: {experiment.number}", f"task_type: {experiment.task_type}",
             f"num_folds: {experiment.num_folds}", f"generator: {experiment.generator}",
             f"folds: {plan.manifest.splitter}",
             *([f"preference: {list(experiment.preference)}"] if experiment.preference else []),
             "", "instances:"]
    lines += [f"  {k}: {experiment[k]!r}" for k in sorted([*experiment.instances,
                                                         *experiment.ensembles])]
    return "\n".join(lines) + "\n"


def dataset_info(plan: Plan) -> dict[str, Any]:
    """The store's description (without its list of skipped files) and its path: what
    prediction needs to extract features as the dataset did; its duplicate check with the
    pairs across items and, per fold, the test items sharing audio (`duplicates_record`)."""
    info = plan.store.info.without_skipped(str(plan.store.path)).to_dict()
    check = duplicates_record(plan.store, plan.folds)
    return {**info, "duplicates": check} if check is not None else info


def instance_dataset_info(plan: Plan, instance: int) -> dict[str, Any] | None:
    """The description of an instance's own store (`instance_<k>/dataset.json`, which
    prediction finds before the experiment's), or `None` for the experiment's store."""
    if instance not in plan.stores:
        return None
    store = plan.stores[instance]
    return store.info.without_skipped(str(store.path)).to_dict()


def run_command(experiment: ExperimentDeclaration, plan: Plan,
                argv: list[str] | None = None) -> RunCommand:
    """This run's command line (`code/commands.json`, the Summary sheet): `python
    <script> <arguments>` when the process runs the experiment script (its `sys.argv`),
    else `Experiment.run from <program>` (a Python caller), with the `--set` values, the
    planned instances and the declared `preference` (what the report selects by among the
    rows its ranking scores cannot tell apart).

    Args:
        experiment: the declaration.
        plan: the run's plan (its `overrides` and instances).
        argv: the process's arguments. Defaults to `None`: `sys.argv`.
    """
    argv = list(sys.argv if argv is None else argv)
    program = argv[0] if argv else ""
    script = experiment.script
    if script and program and Path(program).resolve() == Path(script).resolve():
        command = shlex.join(["python", *argv])
    else:
        command = f"Experiment.run from {Path(program).name or 'python'}"
    preference = list(experiment.preference) if experiment.preference else None
    return RunCommand(command=command, overrides=dict(plan.overrides),
                      instances=list(plan.resolved),
                      time_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      preference=preference)


def begin_experiment(recorder: Recorder, experiment: ExperimentDeclaration, plan: Plan,
                     backend: str) -> None:
    """Has `recorder` write the experiment-level files of `plan`, and this run's command
    line (`run_command`).

    Raises:
        ResultsConflictError: when `folds.json` changed under this run.
    """
    recorder.begin_experiment(plan.manifest, description_text(experiment, plan),
                              dataset_info(plan), script=experiment.script,
                              config_path=plan.config.path, backend=backend,
                              command=run_command(experiment, plan))
