"""The workbook's colours and cell helpers, shared by every sheet.

One meaning per colour, on every sheet (the legend on the Summary sheet says the same).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

HEADER_FILL = "DDEBF7"
"""Column headers."""
BEST_FILL = "C6EFCE"
"""Best mean of a metric column among complete instances (Summary and Metrics)."""
SELECTED_FILL = "FFEB9C"
"""The selected instance's row (best validation selection metric), on every sheet."""
TIED_FILL = "E4DFEC"
"""Statistics: not significantly different from the selected instance."""
LATE_FILL = "F8CBAD"
"""Folds: a best epoch in the last 10 % of `epochs` (the model was still improving)."""
FAILED_FONT = "9C0006"
"""Text of a failed instance (and of an invalid fold on the Folds sheet)."""
PENDING_FONT = "7F7F7F"
"""Text (italic) of a partial or pending instance."""
LINK_FONT = "0563C1"
"""Hyperlinks."""
SELECTED_MARK = "★ selected"

_FORMULA_PREFIXES = ("=", "+", "-", "@")
LINE_POINTS = 15.0
"""The height of one line of text (11 pt Calibri, bold included) in a row, in points."""


class Styles:
    """openpyxl styles of the workbook, one per colour meaning."""

    def __init__(self) -> None:
        self.bold = Font(bold=True)
        self.header = PatternFill("solid", fgColor=HEADER_FILL)
        self.best = PatternFill("solid", fgColor=BEST_FILL)
        self.selected = PatternFill("solid", fgColor=SELECTED_FILL)
        self.tied = PatternFill("solid", fgColor=TIED_FILL)
        self.center = Alignment(horizontal="center", wrap_text=True)
        self.wrap = Alignment(wrap_text=True, vertical="top")
        self.bottom = Border(bottom=Side(style="thin", color="999999"))

    @staticmethod
    def link(bold: bool = False) -> Font:
        """The font of a hyperlink."""
        return Font(color=LINK_FONT, underline="single", bold=bold)

    @staticmethod
    def status_font(status: str, bold: bool = False) -> Font:
        """The font of an instance's row: red italic when failed, grey italic when not
        complete (`status` may carry a note: `partial (1 invalid)`)."""
        status = status.split(" (")[0]
        if status == "failed":
            return Font(color=FAILED_FONT, italic=True, bold=bold)
        if status != "complete":
            return Font(color=PENDING_FONT, italic=True, bold=bold)
        return Font(bold=bold)


def safe(cell: Cell, value: Any) -> Cell:
    """Writes `value`; a string that looks like a formula stays text, NaN/inf become empty,
    and control characters a workbook cannot hold (a NUL in a comment) are shown as `?`."""
    if isinstance(value, float) and not np.isfinite(value):
        value = None
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("?", value)
    cell.value = value
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        cell.data_type = "s"
    return cell


def table_sheet(sheet: Worksheet, header: Sequence[str], body: Sequence[Sequence[Any]],
                styles: Styles, selected_id: int | None,
                number_columns: Collection[int] = ()) -> Worksheet:
    """Fills a one-header-row table: bold headers, the selected instance's ID marked, four
    decimals in `number_columns` (0-based), frozen header, a filter, fitted widths.

    Args:
        sheet: the worksheet.
        header: the column names.
        body: the rows; the first value of each is an instance ID.
        styles: the workbook's `Styles`.
        selected_id: the selected instance, or `None`.
        number_columns: 0-based indices of the columns of scores.

    Returns:
        The sheet.
    """
    for j, name in enumerate(header, start=1):
        cell = safe(sheet.cell(row=1, column=j), name)
        cell.font = styles.bold
        cell.fill = styles.header
    for i, row in enumerate(body, start=2):
        for j, value in enumerate(row, start=1):
            cell = safe(sheet.cell(row=i, column=j), value)
            if isinstance(cell.value, float) and (j - 1) in number_columns:
                cell.number_format = "0.0000"
        if row[0] == selected_id:
            sheet.cell(row=i, column=1).fill = styles.selected
    sheet.freeze_panes = "B2"
    if body:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(body) + 1}"
    for j, name in enumerate(header, start=1):
        width = max([len(str(name))] + [len(str(r[j - 1] if r[j - 1] is not None else ""))
                                        for r in body]) + 2
        sheet.column_dimensions[get_column_letter(j)].width = min(max(width, 6), 50)
    return sheet


def one_page_wide(sheet: Worksheet, title_rows: str | None = None) -> None:
    """Prints the sheet landscape, one page wide (and as many pages high as it needs),
    repeating `title_rows` (e.g. `"1:2"`) on each page."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    if title_rows is not None:
        sheet.print_title_rows = title_rows


def across_pages(sheet: Worksheet, n_columns: int) -> None:
    """Prints a wide instance sheet (Summary, Metrics) landscape across pages of about 20
    columns, repeating the instance columns and the two header rows on each."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = max(1, -(-n_columns // 20))
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_cols = "A:E"
    sheet.print_title_rows = "1:2"


def wrapped_lines(text: str, width: float) -> int:
    """How many lines `text` wraps to in a column `width` characters wide (a column's
    width is in characters of the default font; bold and cell padding take about one)."""
    return max(1, len(textwrap.wrap(str(text), max(1, int(width) - 1),
                                    break_long_words=False)))


def paragraph(ws: Worksheet, row: int, text: str, *, first: int = 1, last: int,
              font: Font | None = None) -> Cell:
    """Writes a long line of text wrapped across the columns `first`..`last` (merged), the
    row as high as its lines, so that it prints inside the table's width.

    Args:
        ws: the worksheet (its column widths set).
        row: the row.
        text: the text.
        first: the first column (1-based). Defaults to `1`.
        last: the last column (1-based).
        font: its font, or `None` for the default.

    Returns:
        The cell holding the text.
    """
    cell = safe(ws.cell(row=row, column=first), text)
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    if font is not None:
        cell.font = font
    last = max(first, last)
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    width = sum(ws.column_dimensions[get_column_letter(j)].width or 8.43
                for j in range(first, last + 1))
    # Bold text is about a tenth wider than the widths are counted in.
    chars = width * (0.9 if font is not None and font.b else 1.0)
    ws.row_dimensions[row].height = LINE_POINTS * math.ceil(len(str(text)) / max(chars, 1)
                                                            + 0.15)
    return cell
