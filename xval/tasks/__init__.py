"""Tasks, looked up by name: what a model learns and how it is scored.

Every `task_type` is a `Task` subclass (its facts, its own parameters, and its three parts:
`Targets`; `Head`, the loss and metrics; `Scoring`) registered with `@register`: a package
of this folder for the built-in ones, imported at the end of this file, or a class in an
experiment's own module. The engine asks `get(task_type)` and the task's hooks, and spells
no task name itself. Importing the tasks costs numpy alone (`xval.tasks.base`).

Example:

```python
from xval import tasks

task = tasks.get("classification")
task.selection_metric          # 'accuracy'
task.scoring.evaluate(y, logits, 3)   # {'loss': ..., 'accuracy': ..., ...}
tasks.names()                  # ['classification', 'detection', 'regression', ...]
```
"""

from xval.tasks.base import NO_CONTEXT, Context, Head, Scoring, Targets, Task, switched_off
from xval.tasks.registry import (
    DEFAULT,
    TASKS,
    get,
    metric_names,
    names,
    owner,
    parameter_keys,
    register,
    rules,
)

__all__ = ["DEFAULT", "NO_CONTEXT", "TASKS", "Context", "Head", "Scoring", "Targets", "Task",
           "get", "metric_names", "names", "owner",
           "parameter_keys", "register", "rules", "switched_off"]

# The built-in tasks register themselves on import.
from xval.tasks import (  # noqa: E402, F401
    classification,
    detection,
    regression,
    representation,
    tagging,
)
