"""The Statistics sheet: per instance the plain 95% CIs of the selection metric, and
against the selected instance's test scores the corrected resampled t-test, its
Holm-adjusted p-value and the Bayesian correlated t-test's probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from openpyxl.worksheet.worksheet import Worksheet

from xval.config.loader import Config
from xval.report.results import ExperimentResults
from xval.report.stats import (
    fold_scores,
    holm,
    mean_ci,
    repeated_mean_ci,
    versus,
)
from xval.report.tables import Selection, alpha_of, level_names, rope_of, selection_level
from xval.report.workbook.cells import safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet

NUMBER_COLUMNS = range(3, 16)
"""The columns of scores (0-based): four decimals."""
HOLM_COLUMN = 12
"""The Holm-adjusted p-value (0-based), filled once every row's test is known."""


def _ci(scores: dict[int, float], repeats: tuple[int, int]
        ) -> tuple[float | None, float | None]:
    """The mean and plain CI half-width of fold scores (over the means per fold order when
    the k-fold is repeated: `repeated_mean_ci`)."""
    num_repeats, num_folds = repeats
    if num_repeats > 1 and num_folds:
        return repeated_mean_ci(scores, num_folds // num_repeats)
    return mean_ci(list(scores.values()))


def statistics_table(results: ExperimentResults, config: Config | None = None
                     ) -> tuple[list[str], list[list[Any]], int | None, str]:
    """Per instance: plain 95% CIs of the selection metric, and against the selected
    instance over the same folds (test scores): the corrected resampled t-test with the
    corrected 95% CI of the difference, its p-value adjusted with Holm's method over the
    instances compared, and the Bayesian correlated t-test's P(better), P(practically
    equivalent), P(worse) for the ROPE `[report] rope`.

    Returns:
        `(header, rows, selected_id, metric)`.
    """
    selection = Selection.of(results, config)
    metric, selected = selection.metric, selection.selected
    alpha = alpha_of(config)
    rope = rope_of(config)
    split = selection.split
    level = selection_level(results, metric, split)
    label = f"{level_names(results)[level]} {metric}"
    confidence = f"{100 * (1 - alpha):g}%"
    header = ["ID", "status", "folds", f"{split} {label} mean", f"{split} 95% CI ± (plain t)",
              f"test {label} mean", "test 95% CI ± (plain t)",
              f"test diff vs {selected.id if selected else 'selected'}",
              f"diff {confidence} CI low (corrected)", f"diff {confidence} CI high (corrected)",
              "t (corrected)", "p (corrected)", "p (Holm)", f"P(better) rope {rope:g}",
              "P(equivalent)", "P(worse)", "verdict"]
    repeats = (results.num_repeats, results.num_folds or 0)
    rows = []
    for r in results:
        test = fold_scores(r, metric, "test", level)
        row: list[Any] = [r.id, r.status, len(test),
                          *_ci(fold_scores(r, metric, split, level), repeats),
                          *_ci(test, repeats)]
        if selected is not None and r.id == selected.id:
            row += [None] * 9 + ["selected"]
        elif selected is not None and test:
            row += versus(r, selected, test, metric, level, alpha, rope, repeats)
        else:
            row += [None] * 9 + [""]
        rows.append(row)
    p = [row[HOLM_COLUMN - 1] if row[HOLM_COLUMN - 1] is not None else np.nan for row in rows]
    for row, adjusted in zip(rows, holm(p)):
        row[HOLM_COLUMN] = float(adjusted) if np.isfinite(adjusted) else None
    return header, rows, selection.id, metric


@register_sheet("Statistics", order=30)
def write_statistics(sheet: Worksheet, context: SheetContext) -> None:
    """The table, the selected row and the ties coloured, and a note on the test."""
    header, body, selected_id, metric = statistics_table(context.results, context.config)
    styles = context.styles
    table_sheet(sheet, header, body, styles, selected_id, number_columns=NUMBER_COLUMNS)
    for i, row in enumerate(body, start=2):
        if row[0] == selected_id:
            for j in range(1, len(header) + 1):
                sheet.cell(row=i, column=j).fill = styles.selected
        elif row[-1].startswith("not significantly"):
            sheet.cell(row=i, column=len(header)).fill = styles.tied
    repeats = context.results.num_repeats
    safe(sheet.cell(row=len(body) + 3, column=1), (
        f"Test {metric} of each instance against the selected one, over the same folds: "
        "corrected resampled t-test (Nadeau & Bengio, 2003), whose variance "
        "(1/k + n_test/n_train) · var(differences) counts original training rows only "
        + (f"(repeated cross-validation, {repeats} repeats: Bouckaert & Frank's corrected "
           "repeated k-fold t-test, 2004, with k the folds of every complete repeat "
           "both instances share; the plain CIs are over the means per fold order) "
           if repeats > 1 else "") +
        "(augmented copies add no independent data); the difference's confidence "
        "interval uses the same corrected variance, so it excludes 0 exactly when "
        f"p < {context.alpha}. 'p (Holm)' adjusts those p-values for the number of "
        "instances compared (Holm, 1979): with several instances, call a difference "
        f"significant when it is below {context.alpha}. P(better), P(equivalent) and "
        "P(worse) are the Bayesian correlated t-test's (Benavoli et al., 2017): the "
        "probabilities that the instance's test score beats the selected one's by more "
        "than the ROPE ([report] rope, in the metric's units; beating means lower for a "
        "loss or an error), lies within it, or falls behind by more. The per-instance "
        "'95% CI ± (plain t)' treats folds as independent and is too narrow; compare "
        "instances with the corrected columns."))
