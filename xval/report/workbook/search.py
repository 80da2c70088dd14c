"""The Search sheet (`--search`): one row per trial, in trial order; left out when the
experiment ran no search."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from xval.report.results import ExperimentResults
from xval.report.workbook.cells import table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet

NOTE = ("Trials proposed by Optuna (search.journal). The objective is the mean over folds of "
        "the validation metric, never test; pruned trials stopped early and keep their "
        "finished folds. Plots: search/optimization_history.png, "
        "search/param_importances.png.")


def search_table(results: ExperimentResults) -> tuple[list[str], list[list[Any]]]:
    """The Search sheet: one row per trial (instances made by `--search`), in trial order.

    Returns:
        `(header, rows)`; no rows when the experiment ran no search.
    """
    trials = sorted(((r.trial, r) for r in results if r.trial is not None),
                    key=lambda pair: pair[0].trial)
    names = sorted({n for t, _ in trials for n in t.params})
    metric = next((t.metric for t, _ in trials if t.metric), "objective")
    header = ["trial", "ID", "state", f"objective: mean validation {metric}",
              "pruned at fold", "folds done", f"test {metric} mean"] + names
    rows = [[t.trial, r.id, t.state, t.objective, t.pruned_at_fold, r.summary.folds_done,
             r.metric(metric, "test"), *(t.params.get(n) for n in names)]
            for t, r in trials]
    return header, rows


@register_sheet("Search", order=60)
def write_search(sheet: Worksheet, context: SheetContext) -> bool:
    """The trials and a note on the objective; `False` (no sheet) without a search."""
    header, body = search_table(context.results)
    if not body:
        return False
    table_sheet(sheet, header, body, context.styles, context.selected_id,
                number_columns=(3, 6))
    sheet.cell(row=len(body) + 3, column=1, value=NOTE)
    return True
