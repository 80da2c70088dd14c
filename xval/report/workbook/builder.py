"""Builds `experiment_<N>.xlsx`: every registered sheet, in order, written atomically under
a lock."""

from __future__ import annotations

import io
from pathlib import Path

from openpyxl import Workbook

from xval.config.loader import Config
from xval.core.entry import describe_error
from xval.core.errors import ConfigurationError, XvalError
from xval.core.files import atomic_write_bytes, lock
from xval.core.layout import ExperimentLayout, check_experiment_folder
from xval.report.results import ExperimentResults
from xval.report.workbook.cells import one_page_wide, safe
from xval.report.workbook.registry import SheetContext, registered_sheets


class SheetError(ConfigurationError):
    """Sheets whose writers raised (a task's own sheet, a registered one): the workbook was
    written without them, each holding its error instead."""


def fill_workbook(book: Workbook, context: SheetContext,
                  failed: list[str] | None = None) -> Workbook:
    """Writes every registered sheet into `book` (whose first, empty sheet becomes the
    first registered one), in order; a writer returning `False` leaves its sheet out.

    Every sheet is set to print landscape, one page wide, before its writer runs (a writer
    may print otherwise). A writer that raises (a task's sheet whose rows function fails,
    say) costs its sheet only: the sheet holds the error instead, and the others are
    written.

    Args:
        book: the workbook.
        context: what the writers get.
        failed: where `"'<sheet>' (<error>)"` of each sheet whose writer raised is added.

    Returns:
        The workbook.
    """
    first = book.active
    for k, spec in enumerate(registered_sheets()):
        sheet = first if k == 0 else book.create_sheet(spec.name)
        sheet.title = spec.name
        one_page_wide(sheet)
        try:
            written = spec.write(sheet, context)
        except Exception as e:  # noqa: BLE001  (a sheet's writer may be a user's code)
            error = describe_error(e) if isinstance(e, (XvalError, OSError)) \
                else f"{type(e).__name__}: {e}"  # the writer's own failure, as it said it
            for row in list(sheet.iter_rows()):
                for cell in row:
                    cell.value = None
            safe(sheet.cell(row=1, column=1), f"This sheet could not be written: {error}")
            if failed is not None:
                failed.append(f"{spec.name!r} ({error})")
            continue
        if written is False:
            book.remove(sheet)
    if not book.worksheets:
        book.create_sheet("Summary")
    book.active = 0
    return book


def save_workbook(book: Workbook, path: Path) -> None:
    """Saves atomically: the workbook is made in memory, then written as every result file
    is (`atomic_write_bytes`: a temporary file beside `path`, then a rename), so a disk that
    refuses the write is one error naming the workbook, the space needed and free, and
    leaves no partial file (openpyxl writing to the disk itself left a zip file open, whose
    close failed again at exit).

    Raises:
        StorageError: for a full or read-only disk, a forbidden folder, a size limit.
    """
    buffer = io.BytesIO()
    book.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def build_workbook(exp_dir: ExperimentResults | str | Path, config: Config | None = None,
                   path: str | Path | None = None) -> Path:
    """Rebuilds `experiment_<N>.xlsx` from the result files, under a lock, atomically.

    Args:
        exp_dir: the `experiment_<N>` folder, or its `ExperimentResults` (a run's, kept up
            to date by the recorder: nothing is read again).
        config: a `Config` (selection metric, alpha), or `None` for the defaults.
        path: where to write; defaults to `exp_dir/experiment_<N>.xlsx`.

    Returns:
        The path of the workbook.

    Raises:
        ConfigurationError: when `exp_dir` is not an experiment folder (nothing is written).
        ResultsConflictError: when its `folds.json` is not a fold manifest.
        SheetError: after it is written, naming the sheets whose writers raised (each
            holds its error).
    """
    given = exp_dir if isinstance(exp_dir, ExperimentResults) else None
    layout = given.layout if given is not None else ExperimentLayout(Path(str(exp_dir)))
    check_experiment_folder(layout.root)
    target = Path(path) if path else layout.workbook
    with lock(target):
        results = given.refresh() if given is not None else ExperimentResults(layout.root)
        failed: list[str] = []
        book = fill_workbook(Workbook(), SheetContext.of(results, config), failed)
        save_workbook(book, target)
    if failed:
        raise SheetError(
            f"{target} was written, but not its sheet(s) {', '.join(failed)}: its writer "
            "raised, and it holds the error instead. Fix what raised (a task's sheet: its "
            f"rows function) and rebuild it: `python -m xval report {layout.root}` (with "
            "--script SCRIPT for a task an experiment script defines).")
    return target
