"""The plots of one instance, written after its last fold: the learning curves, then the
task's own plots (`Task.plots`)."""

from pathlib import Path

from xval import tasks
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
    instance_dir = Path(instance_dir)
    plots = instance_dir / "plots"
    if task_type is None:
        classes = next((f.get("classes") for f in folds if f.get("classes")), None)
        task_type = tasks.infer(classes=classes or [])
    task = tasks.get(task_type)
    written = []
    if learning_curves(folds, plots / "learning_curves.png", task.selection_metric):
        written.append(plots / "learning_curves.png")
    return written + task.plots(instance_dir, folds, summary)
