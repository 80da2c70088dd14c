"""The Parameters sheet: every instance's resolved parameters, one column each."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from xval.report.results import ExperimentResults
from xval.report.tables import cell_value
from xval.report.workbook.cells import table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet


def parameters_table(results: ExperimentResults) -> tuple[list[str], list[list[Any]]]:
    """One row per instance: its id, then every parameter any instance has (sorted).

    Returns:
        `(header, rows)`.
    """
    names = sorted({k for r in results for k in r.params})
    rows = [[r.id, *(cell_value(r.params.get(n)) for n in names)] for r in results]
    return ["ID", *names], rows


@register_sheet("Parameters", order=50)
def write_parameters(sheet: Worksheet, context: SheetContext) -> None:
    """The parameter table."""
    header, body = parameters_table(context.results)
    table_sheet(sheet, header, body, context.styles, context.selected_id)
