"""The files derived from the records after the recorder writes them: the instance plots
and the workbook, as listeners of the recorder (`xval.running.recorder.RecorderListener`).

`report_listeners` is the one place a run gets them from; the listener classes themselves
are the report's (`xval.report.listeners`).
"""

from __future__ import annotations

from collections.abc import Sequence

from xval.config.loader import Config
from xval.report.listeners import PlotWriter, WorkbookWriter
from xval.running.recorder import Out


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
