"""The plots of one instance, written after its last fold: the learning curves, then the
figures of its task (`Task.figures`): a kind registered here by name, or a figure the task
gives as data (`xval.tasks.views.Figure`), drawn here.

Every figure draws what the recorder's listener is handed (`InstanceResult`: the believed
fold records and the summary) and what else it needs of the instance folder through the
results store the instance was read through (the test predictions, a detector's plot data),
never by opening a result file itself.

Example (a figure kind of one's own, for a task that names it in `figures`):

```python
from xval.report.plots import FIGURES

def histogram(result, results_store):
    ...                                   # writes into result.layout.plots_dir
    return [path]

FIGURES.register("histogram", histogram)
```
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xval.core.errors import ResultsConflictError
from xval.core.layout import InstanceLayout
from xval.core.records import Status
from xval.core.registry import Registry
from xval.core.storage import ResultsStore
from xval.report import figures
from xval.report.activity import activity_windows
from xval.report.results import InstanceResult
from xval.report.views import classes_of, instance_view, task_of
from xval.tasks import views

LEARNING_CURVES = "learning_curves.png"

Figure = Callable[[InstanceResult, ResultsStore], list[Path]]
"""`(instance, results_store) -> written paths`: one kind of figure of an instance."""

FIGURES: Registry[Figure] = Registry("figure", setting="figures", where="xval.report.plots")
"""The figure kinds a task may name in `Task.figures`."""


def instance_plots(result: InstanceResult,
                   results_store: ResultsStore | None = None) -> list[Path]:
    """Writes every plot of one instance into its `plots/` folder: the learning curves,
    then the figures of its task (`Task.figures`: e.g. the confusion matrix and per-class F1
    of classification, predicted against true values for regression).

    Args:
        result: the instance as read (its believed folds and summary).
        results_store: the results store the figures read through. Defaults to the one
            the instance was read through (`InstanceResult.results_store`).

    Returns:
        list of written paths.
    """
    task = task_of(result)
    written = []
    curves = result.layout.plots_dir / LEARNING_CURVES
    if figures.learning_curves(result.folds, curves, task.selection_metric):
        written.append(curves)
    for figure in task.figures:
        written += (FIGURES.get(figure)(result, results_store or result.results_store)
                    if isinstance(figure, str) else _drawn(figure, result, results_store))
    return written


def _drawn(figure: views.Figure, result: InstanceResult,
           results_store: ResultsStore | None) -> list[Path]:
    """A figure the task gives as data, drawn: each class's scores over the folds."""
    bars = figure.data(instance_view(result, results_store))
    if bars is None:
        return []
    return [figures.per_class_scores(bars.values, bars.classes,
                                     result.layout.plots_dir / figure.file,
                                     ylabel=bars.ylabel, title=bars.title)]


def _levels(result: InstanceResult) -> list[tuple[str, str]]:
    """`(level, file suffix)` of the class figures: the headline level first (clip level
    where files are cut into segments, no suffix), then the segment level (`_segment`); an
    ensemble of instances has the clip level alone."""
    found = result.summary.confusion_matrix
    if not classes_of(result):
        return []
    levels = [level for level in ("clip", "segment") if found.get(level) is not None]
    return [(level, "" if k == 0 else f"_{level}") for k, level in enumerate(levels)]


def confusion_matrices(result: InstanceResult, results_store: ResultsStore) -> list[Path]:
    """The test confusion matrix pooled over folds, per level (`confusion_matrix*.png`)."""
    classes = classes_of(result) or []
    names = task_of(result).level_names
    return [figures.confusion_matrix(
        result.summary.confusion_matrix[level], classes,
        result.layout.plots_dir / f"confusion_matrix{suffix}.png",
        title=figures.level_title("Test confusion matrix", names[level], "pooled over folds"))
        for level, suffix in _levels(result)]


def per_class_f1_plots(result: InstanceResult, results_store: ResultsStore) -> list[Path]:
    """Per-class test F1 over folds, per level (`per_class_f1*.png`)."""
    names = task_of(result).level_names
    written = []
    for level, suffix in _levels(result):
        f1 = figures.per_fold_f1(result.folds, level)
        if f1 is not None:
            written.append(figures.per_class_f1(
                f1, classes_of(result) or [], result.layout.plots_dir / f"per_class_f1{suffix}.png",
                title=figures.level_title("Per-class test F1", names[level],
                                          f"over {len(f1)} folds")))
    return written


def predicted_vs_true_plot(result: InstanceResult, results_store: ResultsStore) -> list[Path]:
    """The test predictions of every fold against their targets (`predicted_vs_true.png`)."""
    rows = [row for f in result.folds
            for row in _sealed(results_store.predictions, result, f.fold) or []]
    if not rows:
        return []
    true, predicted = (np.array([float(r[k]) for r in rows]) for k in ("target", "predicted"))
    return [figures.predicted_vs_true(true, predicted,
                                      result.layout.plots_dir / "predicted_vs_true.png")]


def _sealed(read: Callable[[InstanceLayout, int], Any], result: InstanceResult,
            fold: int) -> Any:
    """What `read` (`ResultsStore.predictions`, `plot_data`) gives of a fold, or `None`
    when the fold has no such file or its file is not the one the fold recorded: a figure
    leaves such a fold out, as it leaves out a fold that is not believed."""
    try:
        return read(result.layout, fold)
    except ResultsConflictError:
        return None


def activity_plots(result: InstanceResult, results_store: ResultsStore) -> list[Path]:
    """A detector's activity on a few test windows of every fold, against the annotation
    (`activity_fold_<i>.png`, from the fold's plot data)."""
    written = []
    for fold in result.folds:
        data = _sealed(results_store.plot_data, result, fold.fold) if fold.status == Status.OK \
            else None
        if data is None:
            continue
        written.append(activity_windows(
            data, result.layout.fold_plot("activity", fold.fold),
            title=f"Fold {fold.fold}: predicted activity against the annotation, "
                  f"{len(data['windows'])} test window(s)"
                  + ("" if data.get("with_events", True) else " (none annotated)")))
    return written


FIGURES.register("confusion_matrix", confusion_matrices)
FIGURES.register("per_class_f1", per_class_f1_plots)
FIGURES.register("predicted_vs_true", predicted_vs_true_plot)
FIGURES.register("activity", activity_plots)
