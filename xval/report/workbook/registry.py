"""The workbook's sheets, registered by name with an order.

A sheet is a function `write(sheet, context)` that fills one openpyxl worksheet (made for it
by the builder, named as registered) from `context.results`; it returns `False` to leave the
sheet out (e.g. Search when no search ran). `@register_sheet(name, order=...)` adds it; the
builder (`xval.report.workbook.builder.build_workbook`) writes the registered sheets by
increasing order, with the sheets given as data: the registered tasks' (`Task.sheets`: an
`ID` column, then each instance's rows, a note under the table; left out when no instance of
the task has a row) and the table sheets a package above the report adds
(`xval.report.additions.TableSheet`: the Ensembles sheet).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from xval import tasks
from xval.config.loader import Config
from xval.core.registry import Registry
from xval.report.additions import TABLE_SHEETS, TableSheet
from xval.report.results import ExperimentResults
from xval.report.tables import Selection, alpha_of
from xval.report.views import instance_view, task_of
from xval.report.workbook.cells import Styles, safe, table_sheet
from xval.tasks.views import Sheet

MAX_SHEET_NAME = 31
"""Excel's limit on a sheet name's length."""
_BAD_NAME = re.compile(r"[\[\]:*?/\\]")


@dataclasses.dataclass(frozen=True)
class SheetContext:
    """What every sheet writer gets besides its worksheet.

    Attributes:
        results: the experiment's results.
        config: the run's `Config`, or `None` for the defaults.
        selection: the selection metric and the selected instance.
        styles: the workbook's `Styles` (one per colour meaning).
    """

    results: ExperimentResults
    config: Config | None
    selection: Selection
    styles: Styles

    @classmethod
    def of(cls, results: ExperimentResults, config: Config | None = None) -> SheetContext:
        return cls(results, config, Selection.of(results, config), Styles())

    @property
    def exp_dir(self) -> Path:
        """The `experiment_<N>` folder."""
        return self.results.path

    @property
    def metric(self) -> str:
        """The selection metric."""
        return self.selection.metric

    @property
    def selected_id(self) -> int | None:
        """The selected instance's id, or `None` when no instance is complete."""
        return self.selection.id

    @property
    def alpha(self) -> float:
        """The significance level (`[report] alpha`)."""
        return alpha_of(self.config)


SheetWriter = Callable[[Worksheet, SheetContext], "bool | None"]
"""`write(sheet, context)`: fills `sheet`; returns `False` to leave it out."""


@dataclasses.dataclass(frozen=True)
class SheetSpec:
    """One registered sheet: its name (the tab), its order and its writer."""

    name: str
    order: float
    write: SheetWriter


SHEETS: Registry[SheetSpec] = Registry("workbook sheet", setting="sheet", sort=True,
                                       where="xval.report.workbook")
"""The registered sheets, by name."""


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > MAX_SHEET_NAME \
            or _BAD_NAME.search(name):
        raise ValueError(f"Sheet name {name!r}: expected 1 to {MAX_SHEET_NAME} characters "
                         "without [ ] : * ? / \\ (Excel's rule for sheet names).")


def register_sheet(name: str, *, order: float) -> Callable[[SheetWriter], SheetWriter]:
    """Registers a workbook sheet (a decorator).

    Args:
        name: the sheet's tab name.
        order: where it goes: sheets are written by increasing order (the built-in ones
            use 10 (Summary) to 70 (Plots), ten apart).

    Returns:
        A decorator that registers `write(sheet, context)` and returns it unchanged.

    Raises:
        ValueError: for a name Excel refuses, or one another writer already has.

    Example:

    ```python
    from xval.report.workbook import register_sheet

    @register_sheet("Seconds", order=45)
    def seconds(sheet, context):
        sheet.append(["ID", "seconds"])
        for r in context.results:
            sheet.append([r.id, r.summary.seconds])
    ```
    """
    _check_name(name)

    def add(write: SheetWriter) -> SheetWriter:
        SHEETS.register(name, SheetSpec(name, float(order), write))
        return write

    return add


def unregister_sheet(name: str) -> None:
    """Removes a registered sheet.

    Raises:
        UnknownNameError: (a `ValueError`) when no sheet has that name, listing those that
            do.
    """
    SHEETS.unregister(name)


def registered_sheets() -> list[SheetSpec]:
    """The registered sheets and those given as data (the registered tasks', `Task.sheets`,
    `xval.tasks.views.Sheet`; the added tables, `xval.report.additions.TableSheet`), in the
    order they are written."""
    return sorted([*SHEETS.values(), *_task_sheets(), *_added_sheets()],
                  key=lambda spec: (spec.order, spec.name))


def _table(sheet: Worksheet, context: SheetContext, header: list[str],
           body: list[list[Any]], note: str, number_columns: tuple[int, ...]) -> bool:
    """A sheet of one table (`table_sheet`) and its note; `False` (no sheet) without a
    row."""
    if not body:
        return False
    table_sheet(sheet, header, body, context.styles, context.selected_id,
                number_columns=number_columns)
    if note:
        safe(sheet.cell(row=len(body) + 3, column=1), note)
    return True


def _writer(task: tasks.Task, view: Sheet) -> Any:
    """The writer of one task's sheet."""

    def write(sheet: Worksheet, context: SheetContext) -> bool:
        body = [[r.id, *row] for r in context.results if task_of(r) is task
                for row in view.rows(instance_view(r))]
        return _table(sheet, context, ["ID", *view.header], body, view.note,
                      tuple(j + 1 for j in view.number_columns))

    return write


def _added_writer(added: TableSheet) -> Any:
    """The writer of an added table sheet."""

    def write(sheet: Worksheet, context: SheetContext) -> bool:
        header, body = added.table(context.results, context.metric)
        return _table(sheet, context, header, body, added.note, added.number_columns)

    return write


def _added_sheets() -> list[SheetSpec]:
    """A sheet per added table sheet (`xval.report.additions.TABLE_SHEETS`).

    Raises:
        ValueError: for a name Excel refuses, or one a registered sheet already has.
    """
    out = []
    for added in TABLE_SHEETS.values():
        _check_name(added.name)
        if added.name in SHEETS:
            raise ValueError(f"The added sheet {added.name!r} has the name of a registered "
                             "sheet; rename one of them.")
        out.append(SheetSpec(added.name, float(added.order), _added_writer(added)))
    return out


def _task_sheets() -> list[SheetSpec]:
    """A sheet per sheet of every registered task (`Task.sheets`).

    Raises:
        ValueError: for a name Excel refuses, or one a registered sheet already has.
    """
    out = []
    for task in tasks.TASKS.values():
        for view in task.sheets:
            _check_name(view.name)
            if view.name in SHEETS:
                raise ValueError(f"The {task.name} task's sheet {view.name!r} has the name of "
                                 "a registered sheet; rename one of them.")
            out.append(SheetSpec(view.name, float(view.order), _writer(task, view)))
    return out

