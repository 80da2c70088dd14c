"""The plots of one instance, written after its last fold: the learning curves, then the
task's own plots (`Task.plots`)."""

from xval import tasks
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, InstanceSummary
from xval.tasks.figures import learning_curves


def instance_plots(instance_dir, folds, summary, task_type=None):
    """Writes every plot of one instance into its `plots/` folder: the learning curves,
    then the task's own plots (`Task.plots`: e.g. the confusion matrix and per-class F1 of
    classification, predicted against true values for regression).

    Args:
        instance_dir: the `instance_<k>` folder.
        folds: its fold result dicts.
        summary: its summary.
        task_type: the task's name; `None` (results written before the task was recorded)
            infers it from the folds' classes (`xval.tasks.infer`).

    Returns:
        list of written paths.
    """
    layout = InstanceLayout.parse(instance_dir)
    if layout is None:
        raise ValueError(f"instance_dir={str(instance_dir)!r}: expected an instance_<k> "
                         "folder.")
    records = [FoldResult.from_dict(f) for f in folds]  # the tasks' plots take records
    if task_type is None:
        classes = next((f.classes for f in records if f.classes), None)
        task_type = tasks.infer(classes=classes or [])
    task = tasks.get(task_type)
    written = []
    if learning_curves(records, layout.plots_dir / "learning_curves.png",
                       task.selection_metric):
        written.append(layout.plots_dir / "learning_curves.png")
    return written + task.plots(layout, records, InstanceSummary.from_dict(summary))
