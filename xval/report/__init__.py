"""The report layer: the results read side, the workbook, the terminal table, plots and
experiment tracking (listeners of the recorder).

- `results`: `ExperimentResults`, `InstanceResult` (every file through the typed records,
  every fold file checked as it is read: `validation`).
- `tables`: the selection, headline metrics and levels, the note saying what to report.
- `terminal`: `terminal_table`.
- `workbook`: `build_workbook`, one module per sheet, `register_sheet`.
- `plots`: `instance_plots`; `stats`: confidence intervals and the corrected t-test.
- `listeners`: `PlotWriter`, `WorkbookWriter`; `tracking`: `MLflowListener`.
"""

from xval.report.listeners import PlotWriter, WorkbookWriter
from xval.report.plots import instance_plots
from xval.report.results import ExperimentResults, InstanceResult, check_experiment_folder
from xval.report.tables import report_note
from xval.report.terminal import terminal_table
from xval.report.workbook import build_workbook, register_sheet

__all__ = ["ExperimentResults", "InstanceResult", "PlotWriter", "WorkbookWriter",
           "build_workbook", "check_experiment_folder", "instance_plots", "register_sheet",
           "report_note", "terminal_table"]

from xval.compat import deprecated_names  # noqa: E402

__getattr__ = deprecated_names(__name__)  # the names of the module this package replaced
