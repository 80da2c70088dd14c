"""The report layer: the results read side, the workbook, the terminal table, figures and
experiment tracking (listeners of the recorder).

- `results`: `ExperimentResults`, `InstanceResult` (every file through the results store,
  `xval.core.storage`, every fold file checked as it is read).
- `tables`: the selection, headline metrics and levels, the note saying what to report.
- `terminal`: `terminal_table`.
- `workbook`: `build_workbook`, one module per sheet, `register_sheet`.
- `plots`: `instance_plots` and the figure kinds tasks name (`figures`, `activity`: matplotlib);
  `stats`: confidence intervals and the corrected t-test.
- `listeners`: `PlotWriter`, `WorkbookWriter`; `tracking`: `MLflowListener`.

The public names below are loaded on first use (PEP 562), as `xval`'s are: the read-only
commands (`python -m xval report`) import the table and the workbook, never matplotlib.
"""

import importlib
from typing import Any

_EXPORTS = {
    "ExperimentResults": "xval.report.results",
    "InstanceResult": "xval.report.results",
    "check_experiment_folder": "xval.core.layout",
    "PlotWriter": "xval.report.listeners",
    "WorkbookWriter": "xval.report.listeners",
    "instance_plots": "xval.report.plots",
    "report_note": "xval.report.tables",
    "terminal_table": "xval.report.terminal",
    "build_workbook": "xval.report.workbook",
    "register_sheet": "xval.report.workbook",
}

__all__ = sorted(_EXPORTS)

def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
