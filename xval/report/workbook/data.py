"""The Data sheet: the store the experiment read and its duplicate check: the
method and threshold, the pairs of files that hold the same audio under two items, and per
fold the test items that share audio with a training or validation item; from the
experiment's `dataset.json` (`preprocessing.duplicates.folds.duplicates_record`)."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from xval.core.dataset_info import DatasetInfo
from xval.core.errors import DatasetError
from xval.report.workbook.cells import safe
from xval.report.workbook.registry import SheetContext, register_sheet

NOT_CHECKED = ("not checked: the store records no duplicate check (built before it, or a "
               "detection store); `python -m preprocessing check STORE` checks it")
MAX_PAIRS = 1000
"""Pairs listed on the sheet (the store's dataset.json keeps them all)."""


def data_rows(info: DatasetInfo) -> list[list[Any]]:
    """The sheet's rows: `[name, value]` facts, then the folds and the pairs across items."""
    check = info.duplicates
    rows: list[list[Any]] = [["store", info.store], ["items", info.n_items],
                             ["files", info.n_files or info.n_clips]]
    if not check:
        return rows + [["duplicate check", NOT_CHECKED]]
    crossing = check.get("crossing", [])
    rows += [["duplicate check", check.get("method")], ["threshold", check.get("threshold")],
             ["sample rate (Hz)", check.get("sample_rate")],
             ["files checked", check.get("files")],
             ["pairs holding the same audio", len(check.get("pairs", []))],
             ["pairs across items", len(crossing)],
             ["items merged", "; ".join(" + ".join(g) for g in check.get("merged", []))
              or "none"], []]
    rows.append(["fold", "test items sharing audio with training or validation items"])
    rows += [[i, n] for i, n in enumerate(check.get("test_items_sharing_audio", []))]
    if crossing:
        rows += [[], ["first", "second", "similarity", "first item", "second item"]]
        rows += [list(pair) for pair in crossing[:MAX_PAIRS]]
    return rows


@register_sheet("Data", order=55)
def write_data(sheet: Worksheet, context: SheetContext) -> bool:
    """The store and its duplicate check; left out when the experiment has no
    `dataset.json` yet."""
    results = context.results
    try:  # as the run wrote it (`ResultsStore.remember`): read from disk only when changed
        info, _ = results.results_store.read_record(results.layout.dataset_file,
                                                    DatasetInfo.from_dict, sealed=False)
    except DatasetError:
        info = None
    if info is None:
        return False
    for i, row in enumerate(data_rows(info), start=1):
        for j, value in enumerate(row, start=1):
            cell = safe(sheet.cell(row=i, column=j), value)
            if j == 1 and isinstance(value, str):
                cell.font = context.styles.bold
    sheet.column_dimensions["A"].width = 30
    sheet.column_dimensions["B"].width = 60
    return True
