"""The task registry: `register`, `get`, `names` and what the registered tasks record."""

from collections.abc import Callable, Iterable

from xval.core.records import FoldResult
from xval.core.registry import Registry
from xval.core.storage import TaskRules
from xval.tasks.base import Task

TASKS: Registry[Task] = Registry("task", setting="task_type", where="xval.tasks")
"""The registered tasks, by name (one instance each)."""

DEFAULT = "classification"
"""The `task_type` of experiments and stores that do not name one."""


def register(cls: type[Task]) -> type[Task]:
    """Class decorator registering a `Task` subclass under its `name`.

    Args:
        cls: a `Task` subclass with a `name`.

    Returns:
        The class, unchanged.

    Raises:
        TypeError: when `cls` is not a `Task` subclass.
        ValueError: when the name is missing or already registered.
    """
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register takes a Task subclass; got {cls!r}.")
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise ValueError(f"Task {cls.__name__} needs a `name` that is an identifier; "
                         f"got {cls.name!r}.")
    TASKS.register(cls.name, cls())
    return cls


def names() -> list[str]:
    """The registered task names, in registration order."""
    return TASKS.names()


def get(name: str | Task) -> Task:
    """The task registered as `name`.

    Args:
        name: a `task_type`.

    Returns:
        The `Task` instance.

    Raises:
        UnknownNameError: (a `ConfigurationError`, so a `ValueError`) for an unknown name,
            listing the known ones.
    """
    if isinstance(name, Task):
        return name
    return TASKS.get(name)


def _first(accept: Callable[[Task], bool], described: str) -> Task:
    """The first registered task `accept` takes (`described` names it in the error).

    Raises:
        UnknownNameError: when no registered task is one.
    """
    found = TASKS.find(accept)
    if not found:
        raise TASKS.unknown(f"<{described}>")
    return found[0]


def of_class_labels() -> Task:
    """The first registered task with classes whose model makes one vector per row
    (classification): whose metrics, clip pooling and predictions an embedding
    classifier's outputs take."""
    return _first(lambda task: task.has_classes and task.output == "vector",
                  "a task with classes and one vector per row")


def of_label_sets() -> Task:
    """The first registered task whose rows hold sets of the store's classes
    (`Task.multi_label`: tagging): what a source of several labels per clip builds."""
    return _first(lambda task: task.multi_label, "a task whose rows hold several labels")


def of_events() -> Task:
    """The first registered task whose models' frames become events (`Task.scores_events`:
    detection): what a store of annotated recordings builds, and `detect` answers."""
    return _first(lambda task: task.scores_events, "a task whose frames are events")


def for_output(output: str) -> Task:
    """The first registered task whose models make `output` (`Task.output`: `"vector"`,
    `"frames"`, `"input"`): what a builder that makes only that output serves when no
    task is named. These four raise `UnknownNameError` when no registered task is one."""
    return _first(lambda task: task.output == output, f"a task with {output} outputs")


def metric_names() -> list[str]:
    """Every metric some task records, in order, without repeats (the choices of
    `[report] selection_metric`, after `auto`)."""
    return list(dict.fromkeys(m for task in TASKS.values() for m in task.metric_names))


def maximized_metrics() -> tuple[str, ...]:
    """The metric names some task maximises (see `Task.maximize`)."""
    return tuple(dict.fromkeys(m for task in TASKS.values() for m in task.maximize))


def infer(metrics: Iterable[str] | None = None, classes: list[str] | None = None) -> str:
    """The task of a result folder or dataset description written before `task_type` was
    recorded with it.

    Args:
        metrics: metric names recorded for a split, or `None`.
        classes: the dataset's class names, or `None`.

    Returns:
        The task name: the first task whose selection metric was recorded; else, given
        `classes`, the first one-vector-per-row task (`output == "vector"`: the only kind
        written before `task_type` was recorded) with classes when there are some and the
        first without when there are none (regression); else `DEFAULT`.
    """
    recorded = set(metrics or ())
    if recorded:
        for name, task in TASKS.items():
            if task.selection_metric in recorded:
                return name
    if classes is not None:
        for name, task in TASKS.items():
            if task.output == "vector" and task.has_classes == bool(classes):
                return name
    return DEFAULT


def infer_from_folds(folds: Iterable[FoldResult]) -> str | None:
    """The task of fold records written before the task was recorded: the first task whose
    selection metric an `ok` fold's test metrics hold; `None` without such a fold."""
    for record in folds:
        if record.ok and record.metrics and isinstance(record.metrics.get("test"), dict):
            return infer(metrics=record.metrics["test"])
    return None


def rules(task_type: str | None, folds: Iterable[FoldResult] = ()) -> TaskRules:
    """What the fold checks and the summary take from a task (`xval.core.storage.RulesOf`).

    Args:
        task_type: the recorded task, or `None` (results written before it was recorded:
            the task is inferred from `folds`, `infer_from_folds`).
        folds: the instance's fold records.

    Returns:
        The task's `TaskRules`; a task this version does not know (or none) checks only
        that metrics are finite.
    """
    name = task_type or infer_from_folds(folds)
    if not name or name not in TASKS:
        return TaskRules()
    task = TASKS.get(name)
    return TaskRules(ranges=dict(task.metric_ranges),
                     clip_falls_back=bool(task.clip_is_segment_without_clips))
