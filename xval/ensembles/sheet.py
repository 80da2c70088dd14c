"""The workbook's Ensembles sheet (`xval.ensembles.tables`: its rows and note), registered
with the workbook's sheets; left out when the experiment has no ensemble."""

from __future__ import annotations

from openpyxl.worksheet.worksheet import Worksheet

from xval.ensembles.tables import NOTE, ensembles_table
from xval.report.workbook.cells import safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet


@register_sheet("Ensembles", order=35)
def write_ensembles(sheet: Worksheet, context: SheetContext) -> bool:
    """The ensembles' weights per fold and a note; `False` (no sheet) without an ensemble."""
    header, body = ensembles_table(context.results, context.metric)
    if not body:
        return False
    table_sheet(sheet, header, body, context.styles, context.selected_id,
                number_columns=(8,))
    safe(sheet.cell(row=len(body) + 3, column=1), NOTE)
    return True
