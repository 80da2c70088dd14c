"""The report layer: the results read side, the workbook, the terminal table, plots and
experiment tracking (listeners of the recorder)."""
