"""The choices of the keys whose values are fixed names (backends, compressions) or come
from the task registry (`selection_metric`, `task_type`)."""

from __future__ import annotations

import xval.config.embedding as embedding
from xval import tasks
from xval.core.backend import BACKENDS as BACKENDS
from xval.core.parameters import COMPRESSIONS as COMPRESSIONS


def task_types() -> tuple[str, ...]:
    """The registered task names (`xval.tasks.names()`): the choices of `task_type`."""
    return tuple(tasks.names())


def selection_metrics() -> tuple[str, ...]:
    """`auto`, then every metric some registered task records for every split, then those
    of the embedding classifiers (`embedding_accuracy`, ...)."""
    return ("auto", *tasks.metric_names(), *embedding.embedding_metric_names())


def describe_metric(name: str) -> str:
    """`auto`'s meaning, from the registered tasks' own selection metrics."""
    if name != "auto":
        return ""
    return ", ".join(f"{task.selection_metric} for {task.name}"
                     for task in tasks.TASKS.values())
