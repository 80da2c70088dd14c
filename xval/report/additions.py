"""What a package above the report adds to it, given as data the report renders: notes under
the results tables (the terminal's and the Summary sheet's) and workbook sheets of one table
(`TableSheet`). The report never imports such a package (the ensembles of instances sit above
it); the package adds its parts when an entry point installs it
(`xval.ensembles.tables.install_report`). Nothing here imports openpyxl: the text report does
without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from xval.report.results import ExperimentResults, InstanceResult

Note = Callable[[ExperimentResults, "Iterable[InstanceResult] | None"], list[str]]
"""`note(results, shown) -> lines` about the instances `shown` (`None`: all)."""


@dataclasses.dataclass(frozen=True)
class TableSheet:
    """A workbook sheet of one table, left out when the table has no row.

    Attributes:
        name: the tab (at most 31 characters, none of `[]:*?/\\`).
        order: where it goes among the sheets (the built-in ones: 10 to 70).
        table: `(results, selection metric) -> (header, rows)`, each row's first value an
            instance ID.
        note: a note under the table.
        number_columns: 0-based indices into the header of the columns of scores.
    """

    name: str
    order: float
    table: Callable[[ExperimentResults, str], tuple[list[str], list[list[Any]]]]
    note: str = ""
    number_columns: tuple[int, ...] = ()


NOTES: list[Note] = []
"""The notes added, in the order they were."""

TABLE_SHEETS: dict[str, TableSheet] = {}
"""The table sheets added, by name."""


def add_note(note: Note) -> None:
    """Adds a note under the results tables (once, however often it is added)."""
    if note not in NOTES:
        NOTES.append(note)


def add_table_sheet(sheet: TableSheet) -> None:
    """Adds a workbook sheet of one table (the last one added under a name holds)."""
    TABLE_SHEETS[sheet.name] = sheet


def added_notes(results: ExperimentResults,
                shown: Iterable[InstanceResult] | None = None) -> list[str]:
    """The added notes' lines about the instances `shown` (`None`: all)."""
    chosen = None if shown is None else list(shown)
    return [line for note in NOTES for line in note(results, chosen)]
