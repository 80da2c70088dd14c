"""The task registry: `register`, `get`, `names` and what the registered tasks record."""

from collections.abc import Iterable

from xval.core.errors import ConfigurationError
from xval.core.reader import TaskRules
from xval.core.records import FoldResult
from xval.tasks.base import Task

_TASKS: dict[str, Task] = {}

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
    if cls.name in _TASKS:
        raise ValueError(f"A task named {cls.name!r} is already registered.")
    _TASKS[cls.name] = cls()
    return cls


def names() -> list[str]:
    """The registered task names, in registration order."""
    return list(_TASKS)


def get(name: str | Task) -> Task:
    """The task registered as `name`.

    Args:
        name: a `task_type`.

    Returns:
        The `Task` instance.

    Raises:
        ConfigurationError: (a `ValueError`) for an unknown name, listing the known ones.
    """
    if isinstance(name, Task):
        return name
    if name not in _TASKS:
        raise ConfigurationError(
            f"task_type={name!r}: expected one of {', '.join(names())} (the tasks registered "
            "in xval.tasks; a new task is one module there, registered with "
            "@xval.tasks.register)."
        )
    return _TASKS[name]


def metric_names() -> list[str]:
    """Every metric some task records, in order, without repeats (the choices of
    `[report] selection_metric`, after `auto`)."""
    return list(dict.fromkeys(m for task in _TASKS.values() for m in task.metric_names))


def maximized_metrics() -> tuple[str, ...]:
    """The metric names some task maximises (see `Task.maximize`)."""
    return tuple(dict.fromkeys(m for task in _TASKS.values() for m in task.maximize))


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
        for name, task in _TASKS.items():
            if task.selection_metric in recorded:
                return name
    if classes is not None:
        for name, task in _TASKS.items():
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
    """What the fold checks and the summary take from a task (`xval.core.reader.RulesOf`).

    Args:
        task_type: the recorded task, or `None` (results written before it was recorded:
            the task is inferred from `folds`, `infer_from_folds`).
        folds: the instance's fold records.

    Returns:
        The task's `TaskRules`; a task this version does not know (or none) checks only
        that metrics are finite.
    """
    name = task_type or infer_from_folds(folds)
    if not name or name not in _TASKS:
        return TaskRules()
    task = _TASKS[name]
    return TaskRules(ranges=dict(task.metric_ranges),
                     clip_falls_back=bool(task.clip_is_segment_without_clips))
