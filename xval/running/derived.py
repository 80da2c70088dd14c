"""What a run derives from the records: the files the recorder's listeners write after it
(the instance plots and the workbook, `report_listeners`; the listener classes are the
report's, `xval.report.listeners`), and the instances an experiment derives from others,
its ensembles (`derived_run`: the handler the entry points install, `xval.ensembles`, which
sits above the running layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from xval.config.loader import Config
from xval.core.errors import ConfigurationError
from xval.report.listeners import PlotWriter, WorkbookWriter
from xval.running.declaration import ExperimentDeclaration
from xval.running.planner import Plan
from xval.running.recorder import Out, Recorder


class DerivedRun(Protocol):
    """How a run plans, checks, describes and records the instances an experiment derives
    from others (`experiment[3] = Ensemble(1, 2)`): `xval.ensembles.run`."""

    def split_selection(self, experiment: ExperimentDeclaration, selected: Sequence[int]
                        ) -> tuple[list[int], list[int]]: ...

    def with_stale(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                   trained: Sequence[int], plan: Plan) -> list[int]: ...

    def check_ensembles(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                        trained: Sequence[int], plan: Plan, overwrite: bool) -> None: ...

    def describe_ensembles(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                           out: Out) -> None: ...

    def record_ensembles(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                         recorder: Recorder, overwrite: bool, skipped: Sequence[int] = ()
                         ) -> tuple[dict[int, str], list[int]]: ...


class _NoDerived:
    """The run of an experiment that derives no instance."""

    def split_selection(self, experiment: ExperimentDeclaration, selected: Sequence[int]
                        ) -> tuple[list[int], list[int]]:
        return list(selected), []

    def with_stale(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                   trained: Sequence[int], plan: Plan) -> list[int]:
        return list(ensembles)

    def check_ensembles(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                        trained: Sequence[int], plan: Plan, overwrite: bool) -> None:
        return None

    def describe_ensembles(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                           out: Out) -> None:
        return None

    def record_ensembles(self, experiment: ExperimentDeclaration, ensembles: Sequence[int],
                         recorder: Recorder, overwrite: bool, skipped: Sequence[int] = ()
                         ) -> tuple[dict[int, str], list[int]]:
        return {}, []


_INSTALLED: list[DerivedRun] = []


def install_derived(run: DerivedRun) -> None:
    """Installs how runs treat derived instances (`xval.ensembles.run.install` does, from the
    entry points: `python -m xval`, the names of `xval`)."""
    _INSTALLED[:] = [run]


def derived_run(experiment: ExperimentDeclaration) -> DerivedRun:
    """The installed handler of derived instances (one that derives nothing for an
    experiment that declares none).

    Raises:
        ConfigurationError: for an experiment that declares ensembles in a process where no
            handler is installed.
    """
    if _INSTALLED:
        return _INSTALLED[0]
    if experiment.ensembles:
        raise ConfigurationError(
            f"The experiment declares ensembles (instances {sorted(experiment.ensembles)}), "
            "which xval.ensembles computes, and this process has not installed it: take "
            "the experiment's names from xval (`from xval import Experiment, Ensemble`), or "
            "call xval.ensembles.run.install() first.")
    return _NoDerived()


def report_listeners(config: Config | None, out: Out = print,
                     task_type: str | None = None) -> list[object]:
    """The listeners that keep a run's derived files up to date: plots (with `[report]
    plots` off, only those an earlier run drew are redrawn), then the workbook.

    Args:
        config: the run's `Config`.
        out: print function.
        task_type: the experiment's task (the plots read it from the instance's files).

    Returns:
        The listeners, to come before any other (an experiment tracker may log the plots).
    """
    del task_type  # the plots read the task from params.json
    plots = config is None or config.report.plots
    return [PlotWriter(existing_only=not plots), WorkbookWriter(config, out)]


def derived_failure(listeners: Sequence[object]) -> str | None:
    """Why the last rebuild of a derived file (the workbook) failed, or `None`."""
    return next((listener.failure for listener in listeners
                 if isinstance(listener, WorkbookWriter) and listener.failure), None)
