"""The sheets and figures the tasks give as data (`Task.sheets`, `Task.figures`:
`xval.tasks.views`), fed: an instance's believed folds read through the results store it
was read through (`instance_view`); the workbook writes the sheets
(`xval.report.workbook.registry`) and the plots draw the figures (`xval.report.plots`).
"""

from __future__ import annotations

from collections.abc import Iterable

from xval import tasks
from xval.core.errors import ResultsConflictError
from xval.core.records import Status
from xval.core.storage import ResultsStore
from xval.report.results import InstanceResult
from xval.tasks.views import FoldView, Instance


def classes_of(result: InstanceResult) -> list[str] | None:
    """The instance's classes, as its first fold that names them recorded them."""
    return next((f.classes for f in result.folds if f.classes), None)


def task_of(result: InstanceResult) -> tasks.Task:
    """The instance's task, as recorded (`tasks.DEFAULT` where none could be read)."""
    return tasks.get(result.task_type or tasks.DEFAULT)


def instance_view(result: InstanceResult, results_store: ResultsStore | None = None, *,
                  predictions: bool = True) -> Instance:
    """What the task's views read of an instance: each finished fold's test predictions
    (none where the file is not the one the fold recorded: a view leaves such a fold out,
    as it leaves out a fold that is not believed), its post-processing and test metrics.

    Args:
        result: the instance as read.
        results_store: the results store to read through. Defaults to the instance's.
        predictions: read the test predictions (`False`: none, for views that read the
            fold records alone). Defaults to `True`.
    """
    store = results_store or result.results_store
    folds = []
    for fold in result.folds:
        if fold.status != Status.OK:
            continue
        try:
            rows = (store.predictions(result.layout, fold.fold) or []) if predictions else []
        except ResultsConflictError:
            rows = []
        folds.append(FoldView(fold.fold, rows, fold.postprocessing,
                              dict((fold.metrics or {}).get("test") or {}),
                              dict((fold.clip_metrics or {}).get("test") or {})))
    return Instance(result.id, task_of(result), list(classes_of(result) or []), folds)


def task_notes(results: Iterable[InstanceResult]) -> list[str]:
    """The lines the instances' tasks write under the results tables (`Task.notes`, from
    the fold records: no predictions are read), in instance order; none for an instance of
    a task without notes."""
    lines = []
    for result in results:
        task = task_of(result)
        if task.notes:
            view = instance_view(result, predictions=False)
            lines += [line for note in task.notes for line in note(view)]
    return lines
