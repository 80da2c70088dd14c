"""The Labels sheet: per instance whose clips hold several labels (tagging) and per label,
its test average precision (mean over the folds that test it, and its spread), its
threshold (chosen per fold on the validation clips; the median over folds) and its support
(test clips holding it); left out when no instance is a tagging one."""

from __future__ import annotations

from typing import Any

import numpy as np
from openpyxl.worksheet.worksheet import Worksheet

from xval.report.labels import label_scores
from xval.report.results import ExperimentResults
from xval.report.workbook.cells import safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet

NOTE = ("Per label, at the clip level: AP is the label's test average precision in each fold "
        "that tests a clip of it, averaged over those folds (std: over them); mAP, the "
        "selection metric, is the mean of the per-label APs of a fold. The threshold is the "
        "one each fold chose on its validation clips (the label's best F1 there; 0.5 without "
        "a validation clip of the label), the median over folds: test F1 and predictions use "
        "it. Support: the test clips holding the label, over all folds.")


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)


def labels_table(results: ExperimentResults) -> tuple[list[str], list[list[Any]]]:
    """One row per tagging instance and label, the rarest labels first.

    Returns:
        `(header, rows)`; no rows when no instance has per-label scores.
    """
    header = ["ID", "label", "test AP (mean over folds)", "AP std", "folds testing it",
              "threshold (median over folds)", "support (test clips)"]
    rows: list[list[Any]] = []
    for r in results:
        scores = label_scores(r)
        if scores is None:
            continue
        tested = (~np.isnan(scores.ap)).sum(axis=0)
        with np.errstate(invalid="ignore"):
            std = np.array([np.nanstd(scores.ap[:, j], ddof=1) if tested[j] > 1 else np.nan
                            for j in range(len(scores.classes))])
        for j in np.argsort(scores.support, kind="stable"):
            rows.append([r.id, scores.classes[j], _number(scores.mean_ap[j]),
                         _number(std[j]), int(tested[j]), _number(scores.thresholds[j]),
                         int(scores.support[j])])
    return header, rows


@register_sheet("Labels", order=33)
def write_labels(sheet: Worksheet, context: SheetContext) -> bool:
    """The per-label scores of the tagging instances and a note; `False` (no sheet)
    without one."""
    header, body = labels_table(context.results)
    if not body:
        return False
    table_sheet(sheet, header, body, context.styles, context.selected_id,
                number_columns=(2, 3, 5))
    safe(sheet.cell(row=len(body) + 3, column=1), NOTE)
    return True
