"""The instance tables of the Summary and Metrics sheets: one row per instance, the
identifying columns, then metric columns under two header rows (group, then name)."""

from __future__ import annotations

from typing import Any, TypedDict

from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from xval.config.selection import metric_direction
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.tables import cell_value, instance_message, status_label
from xval.report.workbook.cells import LINE_POINTS, SELECTED_MARK, Styles, safe, wrapped_lines

METRIC_WIDTH = 11
"""The width of a metric column (characters): a name such as `segment macro F1 mean` wraps."""


class Column(TypedDict, total=False):
    """One column of an instance table.

    Keys: `name` (row 2), `group` (the merged row-1 header), and for a metric column
    `level`, `split`, `metric`, `stat`; for a parameter column `param`.
    """

    name: str
    group: str
    level: str
    split: str
    metric: str
    stat: str
    param: str


Table = tuple[list[Column], list[list[Any]], int | None, str]
"""`(columns, rows, selected_id, metric)`."""


def instance_columns(params: list[str]) -> list[Column]:
    """The identifying columns, then one per parameter that differs between instances."""
    columns: list[Column] = [{"name": name, "group": "instance"} for name in
                             ("ID", "status", "selected", "comment_1", "comment_2")]
    return columns + [{"name": p, "group": "parameters that differ", "param": p}
                      for p in params]


def run_columns() -> list[Column]:
    """The last columns: folds done, and what went wrong."""
    return [{"name": "folds", "group": "run"}, {"name": "message", "group": "run"}]


def _value(r: InstanceResult, c: Column, selected_id: int | None) -> Any:
    name = c["name"]
    if "metric" in c:
        return r.metric(c["metric"], c["split"], c["level"], c["stat"])
    if "param" in c:
        return cell_value(r.params.get(c["param"]))
    values = {
        "ID": lambda: r.id,
        "status": lambda: status_label(r),
        "selected": lambda: SELECTED_MARK if r.id == selected_id else "",
        "comment_1": lambda: r.parameters.comment_1,
        "comment_2": lambda: r.parameters.comment_2,
        "folds": lambda: f"{r.summary.folds_done}/{r.summary.num_folds}",
    }
    return values.get(name, lambda: instance_message(r))()


def instance_rows(results: ExperimentResults, columns: list[Column],
                  selected_id: int | None) -> list[list[Any]]:
    """One row of plain values per instance, for `columns`."""
    return [[_value(r, c, selected_id) for c in columns] for r in results]


def instance_links(results: ExperimentResults) -> list[str]:
    """Each instance's folder, relative to the workbook (its ID links there)."""
    return [f"{r.path.name}/" for r in results]


def _headers(ws: Worksheet, columns: list[Column], styles: Styles) -> dict[str, Cell]:
    groups: list[list[Any]] = []
    for j, c in enumerate(columns, start=1):
        if groups and groups[-1][0] == c["group"]:
            groups[-1][2] = j
        else:
            groups.append([c["group"], j, j])
    group_cells = {}
    for name, start, end in groups:
        cell = safe(ws.cell(row=1, column=start), name)
        cell.font = styles.bold
        cell.alignment = styles.center
        cell.fill = styles.header
        group_cells[name] = cell
        if end > start:
            ws.merge_cells(start_row=1, start_column=start, end_row=1, end_column=end)
    for j, c in enumerate(columns, start=1):
        cell = safe(ws.cell(row=2, column=j), c["name"])
        cell.font = styles.bold
        cell.fill = styles.header
        cell.border = styles.bottom
        cell.alignment = styles.center
    return group_cells


def _best_means(ws: Worksheet, columns: list[Column], rows: list[list[Any]],
                styles: Styles) -> None:
    """Marks the best mean of each metric column among complete instances (the smallest
    std is not "best": a uniformly bad model has it)."""
    complete = [i for i, row in enumerate(rows) if row[1] == "complete"]
    for j, c in enumerate(columns, start=1):
        if c.get("stat") != "mean":
            continue
        values = [(rows[i][j - 1], i) for i in complete if rows[i][j - 1] is not None]
        if not values:
            continue
        pick = min if metric_direction(c["metric"]) == "min" else max
        target = pick(v for v, _ in values)
        for v, i in values:
            if v == target:
                cell = ws.cell(row=i + 3, column=j)
                cell.fill = styles.best
                cell.font = Font(bold=True)


def write_instance_sheet(ws: Worksheet, columns: list[Column], rows: list[list[Any]],
                         selected_id: int | None, styles: Styles,
                         links: list[str]) -> dict[str, Cell]:
    """Writes a two-header-row instance sheet (Summary, Metrics).

    Args:
        ws: the worksheet.
        columns: its columns (`instance_columns`, metric columns, `run_columns`).
        rows: one row of values per instance (`instance_rows`).
        selected_id: the selected instance, or `None`.
        styles: the workbook's `Styles`.
        links: the folder of each row's instance, relative to the workbook.

    Returns:
        The header cell of every group, as `{group: cell}`.
    """
    group_cells = _headers(ws, columns, styles)
    for i, (row, target) in enumerate(zip(rows, links, strict=True), start=3):
        is_selected = row[0] == selected_id
        for j, value in enumerate(row, start=1):
            cell = safe(ws.cell(row=i, column=j), value)
            if "metric" in columns[j - 1] and cell.value is not None:
                cell.number_format = "0.0000"
            cell.font = styles.status_font(str(row[1]), bold=is_selected)
            if is_selected:
                cell.fill = styles.selected
        link = ws.cell(row=i, column=1)
        link.hyperlink = target
        link.font = styles.link(bold=is_selected)
    _best_means(ws, columns, rows, styles)
    ws.freeze_panes = ws.cell(row=3, column=6)
    if rows:
        ws.auto_filter.ref = f"A2:{get_column_letter(len(columns))}{len(rows) + 2}"
    lines = 1
    for j, c in enumerate(columns, start=1):
        width = METRIC_WIDTH if "metric" in c else max(
            [len(str(c["name"]))] + [len(str(r[j - 1] or "")) for r in rows]) + 2
        ws.column_dimensions[get_column_letter(j)].width = min(max(width, 6), 45)
        if "metric" in c:  # `clip accuracy mean`: three lines in a metric column
            lines = max(lines, wrapped_lines(c["name"], METRIC_WIDTH))
    ws.row_dimensions[2].height = LINE_POINTS * lines
    return group_cells
