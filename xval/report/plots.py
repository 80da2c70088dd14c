"""The plots of one instance, written after its last fold: the learning curves, then the
task's own plots (`Task.plots`)."""

from __future__ import annotations

from pathlib import Path

from xval import tasks
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, InstanceSummary
from xval.tasks.figures import learning_curves

LEARNING_CURVES = "learning_curves.png"


def instance_plots(instance_dir: str | Path, folds: list[FoldResult],
                   summary: InstanceSummary, task_type: str | None = None) -> list[Path]:
    """Writes every plot of one instance into its `plots/` folder: the learning curves,
    then the task's own plots (`Task.plots`: e.g. the confusion matrix and per-class F1 of
    classification, predicted against true values for regression).

    Args:
        instance_dir: the `instance_<k>` folder.
        folds: its fold records (those believed: see `xval.report.results`).
        summary: its summary.
        task_type: the task's name; `None` (results written before the task was recorded)
            infers it from the folds' classes (`xval.tasks.infer`).

    Returns:
        list of written paths.

    Raises:
        ValueError: when `instance_dir` is not named `instance_<k>`.
    """
    instance_dir = Path(instance_dir)
    layout = InstanceLayout.parse(instance_dir)
    if layout is None:
        raise ValueError(f"instance_dir={str(instance_dir)!r}: expected an instance_<k> "
                         "folder.")
    if task_type is None:
        classes = next((f.classes for f in folds if f.classes), None)
        task_type = tasks.infer(classes=classes or [])
    task = tasks.get(task_type)
    written = []
    curves = layout.plots_dir / LEARNING_CURVES
    if learning_curves(list(folds), curves, task.selection_metric):
        written.append(curves)
    return written + list(task.plots(layout, list(folds), summary))
