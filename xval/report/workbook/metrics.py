"""The Metrics sheet: every metric's mean and std over folds, train, validation and test,
segment and clip level; the train columns say why they differ from the training curves."""

from __future__ import annotations

from openpyxl.comments import Comment
from openpyxl.worksheet.worksheet import Worksheet

from xval.config.loader import Config
from xval.report.results import ExperimentResults
from xval.report.tables import (
    SPLIT_NAMES,
    Selection,
    differing_params,
    level_names,
    levels,
    recorded_metric_names,
)
from xval.report.workbook.cells import across_pages
from xval.report.workbook.instances import (
    Table,
    instance_columns,
    instance_links,
    instance_rows,
    run_columns,
    write_instance_sheet,
)
from xval.report.workbook.registry import SheetContext, register_sheet

TRAIN_METRICS_NOTE = (
    "Train metrics are computed after training, in inference mode, with the best epoch's "
    "weights, over all training rows. The training curves (history) average each batch's "
    "metric over an epoch while the weights change, with dropout active and BatchNorm "
    "using batch statistics (training mode); so the two differ, the train metrics here "
    "usually being better.")


def metrics_table(results: ExperimentResults, config: Config | None = None) -> Table:
    """The Metrics sheet: every metric's mean and std over folds, train/validation/test,
    segment and clip level.

    Returns:
        `(columns, rows, selected_id, metric)`, as `summary_table`.
    """
    selection = Selection.of(results, config)
    columns = instance_columns(differing_params(results))
    names = level_names(results)
    for level in levels(results):
        for split in ("train", "val", *(["rank"] if selection.split == "rank" else []),
                      "test"):
            for name in recorded_metric_names(results, level):
                for stat in ("mean", "std"):
                    columns.append({"name": f"{name} {stat}", "level": level, "split": split,
                                    "metric": name, "stat": stat,
                                    "group": f"{SPLIT_NAMES[split]} ({names[level]})"})
    columns += run_columns()
    return columns, instance_rows(results, columns, selection.id), selection.id, \
        selection.metric


@register_sheet("Metrics", order=20)
def write_metrics(sheet: Worksheet, context: SheetContext) -> None:
    """Every metric; the train groups carry `TRAIN_METRICS_NOTE` as a comment."""
    columns, rows, selected_id, _ = metrics_table(context.results, context.config)
    groups = write_instance_sheet(sheet, columns, rows, selected_id, context.styles,
                                  instance_links(context.results))
    for name, cell in groups.items():
        if name.startswith("train"):
            cell.comment = Comment(TRAIN_METRICS_NOTE, "xval", width=360, height=160)
    across_pages(sheet, len(columns))
