"""The selection policy: which validation metric selects the best instance, and which way
each metric is better. The report shows the selected instance; a search optimises the same
metric in the same direction."""

from __future__ import annotations

import xval.config.embedding as embedding
from xval import tasks
from xval.config.loader import Config
from xval.core.errors import ConfigurationError


def metric_direction(metric: str, mode: str = "auto",
                     task: str | tasks.Task | None = None) -> str:
    """Returns `"max"` or `"min"` for a metric name (`mode` wins unless it is `"auto"`): the
    direction `task` gives it when that task records the metric (`Task.direction`, each
    task's own), else that of the first registered task that records it (a task of an
    experiment's own, registered later, changes no built-in task's), `"min"` for a metric
    no task records."""
    if mode in ("min", "max"):
        return mode
    base = metric.removeprefix("val_").removeprefix("test_").removeprefix(embedding.PREFIX)
    known = task is not None and (not isinstance(task, str) or task in tasks.names())
    asked = [tasks.get(task)] if known and task is not None else []  # unknown here: the others
    every = [tasks.get(name) for name in tasks.names()]
    return next((d for t in [*asked, *every] if (d := t.direction(base))), "min")


def selection_metric(config: Config | None, task_type: str) -> str:
    """The validation metric that selects the best instance (`[report] selection_metric`;
    `auto`: the task's own, `Task.selection_metric`)."""
    name = config.report.selection_metric if config is not None else "auto"
    if name == "auto":
        return tasks.get(task_type).selection_metric
    return name


def check_selection_metric(config: Config | None, task_type: str,
                           embeds: bool | None = None) -> str:
    """Checks, before anything trains, that the experiment records the selection metric
    (`[report] selection_metric`), so that the workbook can select an instance.

    Args:
        config: the loaded `Config`.
        task_type: the experiment's task.
        embeds: whether an instance trains an embedding classifier (whose metrics can
            select), or `None` when not known yet. Defaults to `None`.

    Returns:
        The selection metric.

    Raises:
        ConfigurationError: a metric the task does not record (e.g. `rmse` for
            classification), naming the ones it does; an embedding classifier's metric
            when no instance trains one (`embeds=False`).
    """
    metric = selection_metric(config, task_type)
    task = tasks.get(task_type)
    recorded = list(task.metric_names)
    if task.labelled_rows:  # an embedding classifier can be fit on its rows
        recorded += embedding.embedding_metric_names()
    if metric not in recorded:
        raise ConfigurationError(
            f"[report] selection_metric = {metric!r} is not recorded by a {task_type!r} "
            f"experiment, so no instance could be selected; use auto or one of "
            f"{', '.join(recorded)} (a task's Task.metric_names lists what it records).")
    if embeds is False and metric.startswith(embedding.PREFIX):
        raise ConfigurationError(
            f"[report] selection_metric = {metric!r} is an embedding classifier's metric, "
            "but no instance sets embedding_classifier (svm or logreg), so no instance "
            "could be selected; set it in an instance (with --search: in the base or the "
            "space), or choose another selection_metric.")
    return metric
