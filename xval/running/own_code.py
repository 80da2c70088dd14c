"""An experiment's own code: an architecture or a task defined in the experiment's folder
(in its script, or in a module beside the script) instead of an installed package.

The process that runs the script registers them when it imports the script; a job that
runs elsewhere (a worker process, a Ray task) imports the script first when it does not know
them (`xval.executors.base.run_job`), so the job carries the script's path
(`xval.core.records.Job.script`). Code defined in an interactive session has no file a
worker could import: such a run is refused before anything trains, unless its jobs run in
the session's own process (the inline executor).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import architectures
from xval import tasks
from xval.core.errors import ConfigurationError
from xval.core.parameters import InstanceParams
from xval.running.declaration import ExperimentDeclaration

__all__ = ["check_own_code", "own_script"]


def _module_of(obj: Any) -> tuple[str, Path | None]:
    """The module that defines `obj` (a builder, a task's class) and its file (`None`: none,
    as in an interactive session's `__main__`)."""
    name = getattr(getattr(obj, "func", obj), "__module__", "") or ""
    file = getattr(sys.modules.get(name), "__file__", None)
    return name, Path(file).resolve() if file else None


def _own(experiment: ExperimentDeclaration, name: str, file: Path | None) -> bool:
    """Whether a module is the experiment's own: its script (or `__main__`), or a file in
    the script's folder."""
    if name == "__main__":
        return True
    folder = Path(experiment.script).resolve().parent if experiment.script else None
    return file is not None and folder is not None and file.is_relative_to(folder)


def _defined(experiment: ExperimentDeclaration,
             resolved: Mapping[int, InstanceParams]) -> Iterable[tuple[str, str, Path | None]]:
    """`(what, module, file)` of the experiment's own architectures and task."""
    for architecture in sorted({params.architecture for params in resolved.values()}):
        name, file = _module_of(architectures.get(architecture))
        if _own(experiment, name, file):
            yield f"architecture {architecture!r}", name, file
    name, file = _module_of(type(tasks.get(experiment.task_type)))
    if _own(experiment, name, file):
        yield f"task_type {experiment.task_type!r}", name, file


def own_script(experiment: ExperimentDeclaration,
               resolved: Mapping[int, InstanceParams]) -> str | None:
    """The script a job process imports to know the experiment's own architectures and
    task, or `None` when every one comes from an installed package (or the experiment has
    no script)."""
    if experiment.script is None or not any(True for _ in _defined(experiment, resolved)):
        return None
    return str(Path(experiment.script).resolve())


def check_own_code(experiment: ExperimentDeclaration, resolved: Mapping[int, InstanceParams],
                   executor: str) -> None:
    """Refuses jobs that would run in another process without a file to import their
    architecture or task from.

    Raises:
        ConfigurationError: naming what is defined where, and the fixes.
    """
    if executor == "inline":
        return
    for what, _, file in _defined(experiment, resolved):
        if file is None or experiment.script is None:
            raise ConfigurationError(
                f"{what} is defined in this session (no file), which the {executor} "
                "executor's worker processes cannot import: define it in an experiment "
                "script (or a module beside it) and run the script, or run with the inline "
                "executor. Nothing was trained or written.")
