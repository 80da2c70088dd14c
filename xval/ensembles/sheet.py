"""The Ensembles sheet: per ensemble of instances and fold, its members, their weights (and
what they were chosen on), its test score and its members'; left out when the experiment has
no ensemble."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from xval.report.results import ExperimentResults, InstanceResult
from xval.report.stats import fold_scores
from xval.report.tables import report_level, weights_text
from xval.report.workbook.cells import safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet

NOTE = ("An ensemble is derived from its members' recorded predictions: in every fold, the "
        "members' clip scores are averaged with the weights shown (equal, chosen on nothing, "
        "unless its weighting is 'validation': then chosen on that fold's validation clips "
        "only, the lowest validation log loss, or squared error, on a grid of weights summing "
        "to 1; those clips chose the members' epochs, so such weights lean towards the member "
        "most optimistic there), and scored on its test clips. It trains nothing: it has no "
        "epoch and no segment-level score. Members' test scores are their own, at their clip "
        "level, on the same folds.")


def _member(results: ExperimentResults, ensemble: InstanceResult, k: int
            ) -> InstanceResult | None:
    """A member of the same experiment, as read with the results (`None`: another
    experiment's)."""
    record = ensemble.ensemble
    entry = record.members[record.instances.index(k)] if record is not None else {}
    if entry.get("experiment", ".") != ".":
        return None
    return results.instances.get(k)


def ensembles_table(results: ExperimentResults, metric: str
                    ) -> tuple[list[str], list[list[Any]]]:
    """One row per ensemble and fold.

    Returns:
        `(header, rows)`; no rows when the experiment has no ensemble.
    """
    header = ["ID", "fold", "members", "weighting", "weights", "chosen on", "validation clips",
              "test clips", f"test clip {metric}", f"members' test clip {metric}"]
    rows = []
    for r in results:
        if r.ensemble is None:
            continue
        mine = fold_scores(r, metric, "test", "clip")
        members = [_member(results, r, k) for k in r.ensemble.instances]
        theirs = [fold_scores(m, metric, "test", report_level(m, metric)) if m else {}
                  for m in members]
        for fold in r.ensemble.folds:
            i = int(fold["fold"])
            scores = " / ".join("n/a" if i not in s else f"{s[i]:.4f}" for s in theirs)
            rows.append([r.id, i, " + ".join(map(str, r.ensemble.instances)),
                         r.ensemble.weighting, weights_text(fold["weights"]),
                         fold.get("chosen_on", ""), fold.get("val_clips"),
                         fold.get("test_clips"), mine.get(i), scores])
    return header, rows


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
