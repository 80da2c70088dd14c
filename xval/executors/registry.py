"""The executor registry: one module per executor, registered by name with `@register`.

Example (an executor of your own, in any module imported before the run):

```python
from xval.executors.base import Executor
from xval.executors.registry import register


@register
class ThreadExecutor(Executor):
    name = "threads"

    @classmethod
    def create(cls, options):  # an `Execution`: gpus, backend, jobs_per_gpu, ray_address
        return cls()

    def run(self, queue):
        ...
```

`[backend] executor` and `--executor` then accept `threads`.
"""

from __future__ import annotations

from typing import TypeVar

from xval.config import schema
from xval.executors.base import EXECUTORS, Execution, Executor

__all__ = ["EXECUTORS", "get", "make_executor", "names", "register", "unregister"]

_E = TypeVar("_E", bound=type[Executor])


def register(cls: _E) -> _E:
    """Class decorator registering an `Executor` subclass under its `name`.

    Raises:
        TypeError: when `cls` is not an `Executor` subclass.
        ValueError: when the name is missing or taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise TypeError(f"register takes an Executor subclass; got {cls!r}.")
    if not isinstance(cls.name, str) or not cls.name.isidentifier() or cls.name == "base":
        raise ValueError(f"Executor {cls.__name__} needs a `name` that is an identifier.")
    EXECUTORS.register(cls.name, cls)
    return cls


def unregister(name: str) -> None:
    """Removes the executor registered as `name` (a test's own executor, after the test);
    an unknown name is ignored."""
    EXECUTORS.unregister(name, missing_ok=True)


def names() -> list[str]:
    """The registered executor names, in registration order."""
    return EXECUTORS.names()


def get(name: str) -> type[Executor]:
    """The executor class registered as `name`.

    Raises:
        UnknownNameError: (a `ConfigurationError`) for an unknown name, listing the
            registered ones.
    """
    return EXECUTORS.get(name)


def make_executor(name: str, options: Execution | None = None) -> Executor:
    """The executor called `name`, made for `options`.

    Args:
        name: a registered executor name (`inline`, `process`, `ray`, ...).
        options: what the run asks of it. Defaults to `Execution()`.

    Returns:
        An unstarted `Executor`.

    Raises:
        ConfigurationError: for an unknown name, or options the executor cannot honour.
    """
    return get(name).create(options or Execution())


# config.ini's [backend] executor accepts the registered names, described by their summaries.
schema.bind_choices("backend", "executor", names,
                    describe=lambda name: EXECUTORS.get(name).summary)
