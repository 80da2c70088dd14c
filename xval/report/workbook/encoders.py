"""The Encoders sheet: the encoder table (`xval.report.encoders`), one row per instance that
reads a pretrained encoder's embeddings (and per ensemble of them), against the best over
the same folds, then each class's test score; left out with fewer than two such rows."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from xval.report.encoders import encoder_table
from xval.report.tables import level_names
from xval.report.workbook.cells import safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet


@register_sheet("Encoders", order=31)
def write_encoders(sheet: Worksheet, context: SheetContext) -> bool:
    """The table, the best row coloured, and a note on the tests."""
    table = encoder_table(context.results, context.config)
    if table is None:
        return False
    label = f"test {level_names(context.results)[table.level]} {table.metric}"
    header = ["ID", "encoder", "folds", f"{label} mean", f"{label} std",
              f"diff vs {table.best}", "diff CI low (corrected)", "diff CI high (corrected)",
              "p (corrected)", "P(better)", "P(equivalent)", "P(worse)", "verdict",
              *(f"{c} ({table.class_score})" for c in table.classes
                if table.class_score is not None)]
    body: list[list[Any]] = []
    for row in table.rows:
        tests = [None] * 7 + ["best"] if row.versus is None else \
            [*row.versus[:3], row.versus[4], *row.versus[6:10]]
        body.append([row.id, row.encoder, len(row.scores), row.mean, row.std, *tests,
                     *(row.per_class if table.class_score is not None else [])])
    numbers = [3, 4, 5, 6, 7, 8, 9, 10, 11, *range(13, len(header))]
    table_sheet(sheet, header, body, context.styles, table.best, number_columns=numbers)
    for j in range(1, len(header) + 1):
        sheet.cell(row=2, column=j).fill = context.styles.best
    safe(sheet.cell(row=len(body) + 3, column=1), (
        f"Each instance that reads a pretrained encoder's embeddings (and each ensemble of "
        f"such instances) against the best complete one, instance {table.best}, over the "
        "same folds (the folds column: a partial instance's are fewer): the corrected resampled t-test (Nadeau & Bengio, 2003) with the corrected "
        "CI of the difference, and the Bayesian correlated t-test's P(better), "
        "P(equivalent) and P(worse) for the ROPE of [report] rope (Benavoli et al., 2017), "
        "as the Statistics sheet and python -m xval compare compute them"
        + (f"; then each class's test {table.class_score}, the mean over the folds."
           if table.class_score else ".")))
    return True
