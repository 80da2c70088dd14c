"""The Summary sheet: per instance the identifying columns and the headline metrics of the
task (validation, then test), the selected instance marked, a note saying what to report,
how sure the ranking scores are of the selected row and the rule that chose it, a
warning when validation sets hold one item, the command line and `--set` values of the
latest runs, and the colour legend."""

from __future__ import annotations

from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from xval.config.loader import Config
from xval.core.records import RunCommand
from xval.report.additions import added_notes
from xval.report.results import ExperimentResults
from xval.report.tables import (
    SPLIT_NAMES,
    Selection,
    differing_params,
    headline_metrics,
    report_note,
    selection_lines,
    single_item_validation_warning,
)
from xval.report.views import task_notes
from xval.report.workbook.cells import (
    FAILED_FONT,
    PENDING_FONT,
    SELECTED_MARK,
    Styles,
    one_page_wide,
    paragraph,
    safe,
)
from xval.report.workbook.instances import (
    Table,
    instance_columns,
    instance_links,
    instance_rows,
    run_columns,
    write_instance_sheet,
)
from xval.report.workbook.registry import SheetContext, register_sheet


def summary_table(results: ExperimentResults, config: Config | None = None) -> Table:
    """The Summary sheet as rows of plain values: identifying columns, then the mean and
    std over folds of the headline metrics (`headline_metrics`), validation then test.

    Returns:
        `(columns, rows, selected_id, metric)`: `columns` is a list of dicts with `name`,
        `group`, and for metric columns `level`, `split`, `metric`, `stat`; the `selected`
        cell reads `★ selected`, or `tied` for a row the ranking scores cannot tell from it.
    """
    selection = Selection.of(results, config)
    columns = instance_columns(differing_params(results))
    for split in ("val", *([selection.split] if selection.split != "val" else []), "test"):
        for level, name, label in headline_metrics(results, config):
            for stat in ("mean", "std"):
                columns.append({"name": f"{label} {stat}", "level": level, "split": split,
                                "metric": name, "stat": stat, "group": SPLIT_NAMES[split]})
    columns += run_columns()
    rows = instance_rows(results, columns, selection.id)
    tied = {r.id for r in selection.tied}
    mark = [c["name"] for c in columns].index("selected")
    for r, row in zip(results, rows):
        if r.id in tied:  # the rows the ranking scores cannot tell from the selected one
            row[mark] = TIED_MARK
    return columns, rows, selection.id, selection.metric


TIED_MARK = "tied"
"""The Summary's `selected` cell of a row its ranking scores cannot tell from the selected
one (the preference chose between them)."""


def legend(ws: Worksheet, first_row: int, metric: str, alpha: float, styles: Styles,
           last: int | None = None, split: str = "val") -> None:
    """The colour legend, below the Summary table (its texts wrapped across the columns up
    to `last`, the table's last column; `None`: not wrapped)."""
    safe(ws.cell(row=first_row, column=1), "Legend").font = styles.bold
    entries = [
        (styles.header, None, "Column headers."),
        (styles.best, None, "Best mean of the column among complete instances (max for "
                            "accuracy, F1, precision, recall, R²; min for loss, RMSE, MAE). "
                            "Summary and Metrics sheets. Standard deviations are not "
                            "highlighted."),
        (styles.selected, None, f"{SELECTED_MARK}: the selected instance, on every sheet: "
                                f"the best {SPLIT_NAMES[split]} {metric}, or where that "
                                "score cannot tell rows apart, the first of them in the "
                                "preference declared before any score (the Selection "
                                "lines)."),
        (styles.tied, None, "Statistics sheet: not significantly different from the "
                            f"selected instance (corrected resampled t-test, alpha {alpha})."),
        (None, Font(color=FAILED_FONT, italic=True), "Failed instance (reason in 'message')."),
        (None, Font(color=PENDING_FONT, italic=True), "Partial or pending instance."),
    ]
    for k, (fill, font, text) in enumerate(entries, start=first_row + 1):
        swatch = ws.cell(row=k, column=1, value="text" if font is not None else None)
        if fill is not None:
            swatch.fill = fill
        if font is not None:
            swatch.font = font
        _line(ws, k, text, first=2, last=last)
    _line(ws, first_row + len(entries) + 1,
          "Values are mean and std over folds. Instance IDs link to their folders; the "
          "Metrics sheet has every metric (train, validation, test; segment and clip level).",
          last=last)


def _line(ws: Worksheet, row: int, text: str, *, first: int = 1, last: int | None,
          font: Font | None = None) -> None:
    """A line of text below the table: wrapped across its columns (`paragraph`) so that it
    prints on the table's page width, or in one cell when `last` is `None`."""
    if last is None:
        cell = safe(ws.cell(row=row, column=first), text)
        if font is not None:
            cell.font = font
    else:
        paragraph(ws, row, text, first=first, last=last, font=font)


@register_sheet("Summary", order=10)
def write_summary(sheet: Worksheet, context: SheetContext) -> None:
    """The headline metrics, the note saying what to report, the legend."""
    results, styles = context.results, context.styles
    columns, rows, selected_id, metric = summary_table(results, context.config)
    write_instance_sheet(sheet, columns, rows, selected_id, styles, instance_links(results))
    next_row, last = len(rows) + 4, len(columns)
    note = report_note(results, context.config)
    if note:
        _line(sheet, next_row, note, last=last, font=Font(bold=True))
        next_row += 1
    for line in [*selection_lines(results, context.selection), *added_notes(results),
                 *task_notes(results)]:
        _line(sheet, next_row, line, last=last)
        next_row += 1
    warning = single_item_validation_warning(results)
    if warning:
        _line(sheet, next_row, warning, last=last, font=Font(bold=True, color=FAILED_FONT))
        next_row += 1
    next_row = run_lines(sheet, next_row + 1, results, styles, last=last)
    legend(sheet, next_row + 1, metric, context.alpha, styles, last=last,
           split=context.selection.split)
    one_page_wide(sheet, title_rows="1:2")  # the metrics beside the instances, printed


MAX_RUNS_SHOWN = 10
"""Runs listed on the Summary sheet at most, latest first (`code/commands.json` has all)."""


def run_text(run: RunCommand) -> str:
    """One run, as the Summary sheet lists it: `2026-05-01T10:00:00Z: python exp1.py 1 2
    --set epochs=3 (instances 1, 2; --set values: epochs=3)`, and the preference it
    declared (`; preference: 3, 1, 2`)."""
    instances = ", ".join(map(str, run.instances)) or "none"
    preference = f"; preference: {', '.join(map(str, run.preference))}" \
        if run.preference else ""
    return (f"{run.time_utc}: {run.command} (instances {instances}; --set values: "
            f"{run.overrides_text()}{preference})")


def run_lines(ws: Worksheet, first_row: int, results: ExperimentResults,
              styles: Styles, last: int | None = None) -> int:
    """The command line and `--set` values of the latest runs, under a heading (wrapped
    across the columns up to `last`; `None`: one cell each).

    Returns:
        The row after the last one written (`first_row` when no run is recorded).
    """
    runs = results.runs()[::-1][:MAX_RUNS_SHOWN]
    if not runs:
        return first_row
    safe(ws.cell(row=first_row, column=1),
         "Runs, latest first (command line; every run in code/commands.json)").font = \
        styles.bold
    for k, run in enumerate(runs, start=first_row + 1):
        _line(ws, k, run_text(run), last=last)
    return first_row + len(runs) + 1
