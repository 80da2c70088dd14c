"""The Folds sheet: one row per instance and fold, with its items, epochs, time, rows and
metrics (each column naming its split and level); a `plots` column names each fold's own plots when some fold has any. A fold whose
file is not believed is a row of status `invalid`, its reason in `message`."""

from __future__ import annotations

from typing import Any

from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from xval.core.records import LATE_EPOCH_SHARE, FoldResult
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.tables import level_names
from xval.report.workbook.cells import FAILED_FONT, LATE_FILL, Styles, safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet

INVALID = "invalid"
"""The status shown for a fold whose file is not believed."""
BEST_EPOCH_COLUMN = 6
"""1-based column of the best epoch."""
LATE_MARK = " (late)"
"""Appended to the status of a fold whose best epoch came late."""
LATE_NOTE = (
    f"Best epoch in orange, status '(late)': the best epoch is in the last "
    f"{LATE_EPOCH_SHARE:.0%} of epochs, so the model was still improving when training "
    "stopped; raise epochs (or the learning rate).")
FIRST_METRIC_COLUMN = 10
"""0-based index of the first metric column (four decimals from there on)."""
INVALID_NOTE = (
    "Folds of status 'invalid': their fold file cannot be believed (the reason is in "
    "'message'), so they are counted nowhere and never selected; a rerun of the experiment "
    "trains them again.")


def fold_plots(instance: InstanceResult, fold: int) -> list[str]:
    """The per-fold plots of a fold (`plots/*_fold_<i>.png`, e.g. the detection activity
    plots), as paths relative to the experiment folder."""
    return [p.relative_to(instance.path.parent).as_posix()
            for p in instance.layout.fold_plots(fold)]


def _metric_names(results: ExperimentResults) -> list[str]:
    """The test metrics of the first finished fold (confusion matrices aside; an ensemble's
    fold has clip metrics only)."""
    for r in results:
        for f in r.folds:
            scored = f.metrics or f.clip_metrics if f.ok else None
            if scored:
                return [n for n in scored.get("test", {}) if n != "confusion_matrix"]
    return []


Column = tuple[str, str, str]
"""`(level, split, metric)`: one metric column of the fold table."""


def _metric_columns(results: ExperimentResults) -> list[Column]:
    """The segment-level metrics of every split, then the clip-level ones when some fold
    scored clips."""
    names = _metric_names(results)
    out = [("segment", s, n) for s in ("train", "val", "test") for n in names]
    if any(f.ok and f.clip_metrics for r in results for f in r.folds):
        out += [("clip", s, n) for s in ("train", "val", "test") for n in names]
    return out


def _fold_row(r: InstanceResult, f: FoldResult, columns: list[Column]) -> list[Any]:
    status = f.status.value + (LATE_MARK if f.late_best_epoch else "")
    row = [r.id, f.fold, status, ", ".join(f.items.get("test", [])),
           ", ".join(f.items.get("val", [])), f.best_epoch, f.epochs_run, f.seconds or None,
           f.train_rows, f.n_rows.get("test")]
    levels = {"segment": f.metrics or {}, "clip": f.clip_metrics or {}} if f.ok else {}
    row += [levels.get(level, {}).get(s, {}).get(n) for level, s, n in columns]
    row.append(f.message)
    row.append(", ".join(fold_plots(r, f.fold)) if f.ok else "")
    return row


def _invalid_row(r: InstanceResult, fold: int, reason: str, columns: list[Column]) -> list[Any]:
    return [r.id, fold, INVALID] + [None] * (7 + len(columns)) + [reason, ""]


def folds_table(results: ExperimentResults) -> tuple[list[str], list[list[Any]]]:
    """One row per (instance, fold); each metric column names its split and level (`test
    segment accuracy`, then `test clip accuracy` where files are cut into segments); a last
    column `plots` names each fold's own plots (relative to the experiment folder) when
    some fold has any. A fold whose file is not believed (`InstanceResult.invalid`) has
    status `invalid` and its reason as message.

    Returns:
        `(header, rows)`.
    """
    columns = _metric_columns(results)
    names = level_names(results)
    header = ["ID", "fold", "status", "test items", "validation items", "best epoch",
              "epochs run", "seconds", "train rows (original)", "test rows"] + \
        [f"{s} {names[level]} {n}" for level, s, n in columns] + ["message"]
    rows = []
    for r in results:
        by_fold = {f.fold: _fold_row(r, f, columns) for f in r.folds}
        by_fold.update({i: _invalid_row(r, i, reason, columns)
                        for i, reason in r.invalid.items()})
        rows += [by_fold[i] for i in sorted(by_fold)]
    if any(row[-1] for row in rows):
        header.append("plots")
    else:
        rows = [row[:-1] for row in rows]
    return header, rows


def _links(sheet: Worksheet, header: list[str], body: list[list[Any]], styles: Styles) -> None:
    """Links a fold's single plot (several: the text names them)."""
    if header[-1] != "plots":
        return
    for i, row in enumerate(body, start=2):
        if row[-1] and "," not in row[-1]:
            cell = sheet.cell(row=i, column=len(header))
            cell.hyperlink = row[-1]
            cell.font = styles.link()


@register_sheet("Folds", order=40)
def write_folds(sheet: Worksheet, context: SheetContext) -> None:
    """The fold table; invalid folds in red, with a note under the table."""
    header, body = folds_table(context.results)
    table_sheet(sheet, header, body, context.styles, context.selected_id,
                number_columns=range(FIRST_METRIC_COLUMN, len(header)))
    _links(sheet, header, body, context.styles)
    invalid = [i for i, row in enumerate(body, start=2) if row[2] == INVALID]
    for i in invalid:
        sheet.cell(row=i, column=3).font = Font(color=FAILED_FONT, italic=True)
    late = [i for i, row in enumerate(body, start=2) if str(row[2]).endswith(LATE_MARK)]
    for i in late:
        sheet.cell(row=i, column=BEST_EPOCH_COLUMN).fill = PatternFill("solid",
                                                                       fgColor=LATE_FILL)
    notes = [note for note, found in ((INVALID_NOTE, invalid), (LATE_NOTE, late)) if found]
    for k, note in enumerate(notes):
        safe(sheet.cell(row=len(body) + 3 + k, column=1), note)
