"""The experiment-level files of a run (`folds.json`, the description, `dataset.json`, the
code snapshot): their content, handed to the recorder, which writes them."""

from __future__ import annotations

from typing import Any

from xval.running.declaration import ExperimentDeclaration
from xval.running.planner import Plan
from xval.running.recorder import Recorder


def description_text(experiment: ExperimentDeclaration, plan: Plan) -> str:
    """The description file: the experiment's description, settings and instances."""
    lines = [experiment.description, "", f"dataset: {experiment.dataset}",
             f"experiment: {experiment.number}", f"task_type: {experiment.task_type}",
             f"num_folds: {experiment.num_folds}", f"generator: {experiment.generator}",
             f"folds: {plan.manifest.splitter}", "", "instances:"]
    lines += [f"  {k}: {experiment.instances[k]!r}" for k in sorted(experiment.instances)]
    return "\n".join(lines) + "\n"


def dataset_info(plan: Plan) -> dict[str, Any]:
    """The store's description (without its list of skipped files) and its path: what
    prediction needs to extract features as the dataset did."""
    return plan.store.info.without_skipped(str(plan.store.path)).to_dict()


def instance_dataset_info(plan: Plan, instance: int) -> dict[str, Any] | None:
    """The description of an instance's own store (`instance_<k>/dataset.json`, which
    prediction finds before the experiment's), or `None` for the experiment's store."""
    if instance not in plan.stores:
        return None
    store = plan.stores[instance]
    return store.info.without_skipped(str(store.path)).to_dict()


def begin_experiment(recorder: Recorder, experiment: ExperimentDeclaration, plan: Plan,
                     backend: str) -> None:
    """Has `recorder` write the experiment-level files of `plan`.

    Raises:
        ResultsConflictError: when `folds.json` changed under this run.
    """
    recorder.begin_experiment(plan.manifest, description_text(experiment, plan),
                              dataset_info(plan), script=experiment.script,
                              config_path=plan.config.path, backend=backend)
