"""The task registry: `register`, `get`, `names` and what the registered tasks record."""

import functools

from xval.core.parameters import TrainingParams
from xval.core.registry import Registry
from xval.core.settings import Key, Settings, keys_of, setting_names
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
        ValueError: when the name is missing or already registered, or a parameter of
            its own has the name of another parameter.
    """
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register takes a Task subclass; got {cls!r}.")
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise ValueError(f"Task {cls.__name__} needs a `name` that is an identifier; "
                         f"got {cls.name!r}.")
    TASKS.check_free(cls.name)
    own = keys_of(cls.parameters)
    taken = {**keys_of(TrainingParams), **parameter_keys()}
    clash = [name for name, key in own.items() if name in taken and taken[name] != key]
    if clash:
        raise ValueError(f"Task {cls.__name__} declares {', '.join(clash)} in its parameters, "
                         "which name other parameters already (shared, or another task's); "
                         "give them names of their own.")
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


def parameter_keys() -> dict[str, Key]:
    """The registered tasks' own parameters (`Task.parameters`), name -> `Key`, in
    registration order: the `[training]` keys beside the shared ones
    (`xval.config.schema.SCHEMA`)."""
    return dict(_keys(tuple(type(task).parameters for task in TASKS.values())))


@functools.lru_cache(maxsize=8)
def _keys(records: tuple[type[Settings], ...]) -> dict[str, Key]:
    return {name: key for record in records for name, key in keys_of(record).items()}


def owner(name: str) -> str | None:
    """The first registered task whose own parameters hold `name`, or `None`."""
    return next((task.name for task in TASKS.values()
                 if name in setting_names(task.parameters)), None)


def metric_names() -> list[str]:
    """Every metric some task records, in order, without repeats (the choices of
    `[report] selection_metric`, after `auto`)."""
    return list(dict.fromkeys(m for task in TASKS.values() for m in task.metric_names))


def rules(task_type: str | None) -> TaskRules:
    """What the fold checks and the summary take from a task (`xval.core.storage.RulesOf`).

    Args:
        task_type: the recorded task, or `None` (an instance without a readable record).

    Returns:
        The task's `TaskRules`; a task this version does not know (or none) checks only
        that metrics are finite.
    """
    name = task_type
    if not name or name not in TASKS:
        return TaskRules()
    task = TASKS.get(name)
    return TaskRules(ranges=dict(task.metric_ranges),
                     clip_falls_back=bool(task.clip_is_segment_without_clips))
