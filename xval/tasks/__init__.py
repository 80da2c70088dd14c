"""Tasks, looked up by name: what a model learns and how it is scored.

Every `task_type` is one module of this package holding a `Task` subclass registered with
`@register`; the engine asks `get(task_type)` and spells no task name itself. To add a
task, write `xval/tasks/<name>.py` (see `regression.py`, the smallest) and import it at
the end of this file.

Example:

```python
from xval import tasks

task = tasks.get("classification")
task.selection_metric          # 'accuracy'
tasks.names()                  # ['classification', 'regression']
```
"""

from xval.tasks.base import Task
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
    register,
    rules,
)

__all__ = ["DEFAULT", "TASKS", "Task", "for_output", "get", "infer", "infer_from_folds",
           "maximized_metrics", "metric_names", "names", "of_class_labels", "register", "rules"]

# The built-in tasks register themselves on import.
from xval.tasks import (  # noqa: E402, F401
    classification,
    detection,
    regression,
    representation,
)
