"""The Statistics sheet: per instance the plain 95% CIs of the selection metric, and the
corrected resampled t-test of its test scores against the selected instance's."""

from __future__ import annotations

from typing import Any

import numpy as np
from openpyxl.worksheet.worksheet import Worksheet

from xval.config.loader import Config
from xval.core.records import FoldResult
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.stats import corrected_resampled_ttest, fold_test_train_ratio, mean_ci
from xval.report.tables import Selection, alpha_of, selection_level
from xval.report.validation import finite
from xval.report.workbook.cells import safe, table_sheet
from xval.report.workbook.registry import SheetContext, register_sheet

NUMBER_COLUMNS = range(3, 12)
"""The columns of scores (0-based): four decimals."""


def _finished(r: InstanceResult) -> dict[int, FoldResult]:
    return {f.fold: f for f in r.folds if f.ok}


def fold_scores(r: InstanceResult, metric: str, split: str, level: str) -> dict[int, float]:
    """`metric` on `split` at `level` of each finished fold of `r` that has a value."""
    out = {}
    for i, fold in _finished(r).items():
        found = fold.level_metrics(level, r.rules.clip_falls_back) or {}
        value = found.get(split, {}).get(metric)
        if finite(value):
            out[i] = float(value)
    return out


def _versus(r: InstanceResult, selected: InstanceResult, test: dict[int, float],
            metric: str, level: str, alpha: float) -> list[Any]:
    """`[diff, low, high, t, p, verdict]` of `r` against the selected instance."""
    ref = fold_scores(selected, metric, "test", level)
    common = sorted(set(ref) & set(test))
    if len(common) < 2:
        return [None] * 5 + ["too few common folds"]
    folds = [_finished(r)[i] for i in common] + [_finished(selected)[i] for i in common]
    result = corrected_resampled_ttest(np.array([test[i] for i in common]),
                                       np.array([ref[i] for i in common]),
                                       fold_test_train_ratio(folds), confidence=1 - alpha)
    verdict = ("not significantly different" if result.p >= alpha
               else "significantly different") + f" (alpha {alpha})"
    return [result.mean_difference, result.ci_low, result.ci_high, result.t, result.p,
            verdict]


def statistics_table(results: ExperimentResults, config: Config | None = None
                     ) -> tuple[list[str], list[list[Any]], int | None, str]:
    """Per instance: plain 95% CIs of the selection metric, and the corrected resampled
    t-test against the selected instance over the same folds (test scores), with the
    corrected 95% CI of the difference.

    Returns:
        `(header, rows, selected_id, metric)`.
    """
    selection = Selection.of(results, config)
    metric, selected = selection.metric, selection.selected
    alpha = alpha_of(config)
    level = selection_level(results, metric)
    label = f"clip {metric}" if level == "clip" else metric
    confidence = f"{100 * (1 - alpha):g}%"
    header = ["ID", "status", "folds", f"val {label} mean", "val 95% CI ± (plain t)",
              f"test {label} mean", "test 95% CI ± (plain t)",
              f"test diff vs {selected.id if selected else 'selected'}",
              f"diff {confidence} CI low (corrected)", f"diff {confidence} CI high (corrected)",
              "t (corrected)", "p (corrected)", "verdict"]
    rows = []
    for r in results:
        test = fold_scores(r, metric, "test", level)
        row: list[Any] = [r.id, r.status, len(test),
                          *mean_ci(list(fold_scores(r, metric, "val", level).values())),
                          *mean_ci(list(test.values()))]
        if selected is not None and r.id == selected.id:
            row += [None] * 5 + ["selected"]
        elif selected is not None and test:
            row += _versus(r, selected, test, metric, level, alpha)
        else:
            row += [None] * 5 + [""]
        rows.append(row)
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
    safe(sheet.cell(row=len(body) + 3, column=1), (
        f"Test {metric} of each instance against the selected one, over the same folds: "
        "corrected resampled t-test (Nadeau & Bengio, 2003), whose variance "
        "(1/k + n_test/n_train) · var(differences) counts original training rows only "
        "(augmented copies add no independent data); the difference's confidence "
        "interval uses the same corrected variance, so it excludes 0 exactly when "
        f"p < {context.alpha}. The per-instance '95% CI ± (plain t)' treats folds as "
        "independent and is too narrow; compare instances with the corrected columns."))
