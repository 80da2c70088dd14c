"""Tasks, looked up by name: what a model learns and how it is scored.

Every `task_type` is one module of this package holding a `Task` subclass (its facts, and
its three parts: `Targets`; `Head`, the loss and metrics; `Scoring`) registered with
`@register`; the engine asks `get(task_type)` and spells no task name itself. To add a
task, write `xval/tasks/<name>.py` (see `regression.py`, the smallest) and import it at
the end of this file. Importing the tasks costs numpy alone (`xval.tasks.base`).

Example:

```python
from xval import tasks

task = tasks.get("classification")
task.selection_metric          # 'accuracy'
task.scoring.evaluate(y, logits, 3)   # {'loss': ..., 'accuracy': ..., ...}
tasks.names()                  # ['classification', 'detection', 'regression', ...]
```
"""

from xval.tasks.base import NO_CONTEXT, Context, Head, Scoring, Targets, Task
from xval.tasks.registry import (
    DEFAULT,
    TASKS,
    for_output,
    get,
    infer,
    infer_from_folds,
    maximized_metrics,
    metric_names,
    names,
    of_class_labels,
    of_events,
    of_label_sets,
    register,
    rules,
)

__all__ = ["DEFAULT", "NO_CONTEXT", "TASKS", "Context", "Head", "Scoring", "Targets", "Task",
           "for_output", "get", "infer", "infer_from_folds", "maximized_metrics",
           "metric_names", "names", "of_class_labels", "of_events", "of_label_sets", "register",
           "rules"]

# The built-in tasks register themselves on import.
from xval.tasks import (  # noqa: E402, F401
    classification,
    detection,
    regression,
    representation,
    tagging,
)
