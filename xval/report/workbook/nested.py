"""The Nested sheet (`--search --inner-folds K`): per outer fold, the trial its inner search
chose, its mean inner validation score, its parameters and its outer test score; left out
when the experiment ran no nested search."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from xval.report.results import ExperimentResults
from xval.report.stats import fold_scores
from xval.report.workbook.cells import safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet

NOTE = ("Nested search: in every outer fold an Optuna study ran on that fold's training "
        "items only, over K inner folds (nested/outer_<fold>/, whose folds.json lists the "
        "inner splits); the trial with the best mean inner validation score was trained on "
        "the outer training items and scored on the outer test items. The instance's mean "
        "outer test score is the estimate of model + search to report; the chosen "
        "parameters may differ from fold to fold.")


def nested_table(results: ExperimentResults) -> tuple[list[str], list[list[Any]]]:
    """One row per outer fold of every instance holding a nested search's outer scores.

    Returns:
        `(header, rows)`; no rows when the experiment ran no nested search.
    """
    nested = [r for r in results if r.nested is not None]
    names = sorted({n for r in nested for c in r.nested.choices  # type: ignore[union-attr]
                    for n in c.get("params", {})})
    metric = next((r.nested.metric for r in nested if r.nested and r.nested.metric),
                  "objective")
    header = ["ID", "outer fold", "inner folds", "trials", "chosen trial",
              f"mean inner validation {metric}", f"outer test {metric}"] + names
    rows = []
    for r in nested:
        record = r.nested
        assert record is not None  # selected above
        level = "clip" if r.summary.metric(metric, "test", "clip") is not None else "segment"
        test = fold_scores(r, metric, "test", level)
        for choice in record.choices:
            params = choice.get("params", {})
            rows.append([r.id, choice.get("fold"), record.inner_folds, record.n_trials,
                         choice.get("trial"), choice.get("objective"),
                         test.get(int(choice.get("fold", -1))),
                         *(params.get(n) for n in names)])
    return header, rows


@register_sheet("Nested", order=65)
def write_nested(sheet: Worksheet, context: SheetContext) -> bool:
    """The outer folds' choices and a note; `False` (no sheet) without a nested search."""
    header, body = nested_table(context.results)
    if not body:
        return False
    table_sheet(sheet, header, body, context.styles, context.selected_id,
                number_columns=(5, 6))
    safe(sheet.cell(row=len(body) + 3, column=1), NOTE)
    return True
