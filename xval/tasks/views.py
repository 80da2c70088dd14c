"""What a task shows beyond its metrics, given as data the report renders: a workbook sheet
(`Sheet`) and a figure (`Figure`, drawn as `Bars`), computed from an instance's believed
folds (`Instance`). A task lists them in `Task.sheets` and `Task.figures`; the report reads
the folds through the results store, writes the sheets and draws the figures
(`xval.report.views`), spelling no task. docs/architecture.md, "Adding a task", shows one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xval.tasks.fusion import FusingTask

if TYPE_CHECKING:
    from xval.core.records import Postprocessing


@dataclasses.dataclass(frozen=True)
class FoldView:
    """One believed fold of an instance: its number, its test predictions (rows of
    `predictions_fold_<i>.csv`, column -> text; empty when it wrote none), what it chose on
    its validation rows (or `None`), its test metrics and its test clip metrics (empty
    without a clip level)."""

    fold: int
    predictions: Sequence[Mapping[str, str]]
    postprocessing: Postprocessing | None = None
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    clip_metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Instance:
    """One instance as a task's views see it: its id, its task (an `xval.tasks.Task`), its
    classes and its believed folds, in order."""

    id: int
    task: FusingTask
    classes: list[str]
    folds: list[FoldView]


@dataclasses.dataclass(frozen=True)
class Sheet:
    """A workbook sheet: an `ID` column, then `header`'s; for each instance of the task the
    rows `rows(instance)` gives; left out when no instance has one.

    Attributes:
        name: the tab (at most 31 characters, none of `[]:*?/\\`).
        order: where it goes among the sheets (the built-in ones: 10 to 70).
        header: the column names after `ID`.
        rows: `instance -> rows`, each of `len(header)` values.
        note: a note under the table.
        number_columns: 0-based indices into `header` of the columns of scores.
    """

    name: str
    order: float
    header: tuple[str, ...]
    rows: Callable[[Instance], list[list[Any]]]
    note: str = ""
    number_columns: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class ClassScores:
    """Each class's test score in each fold, as a task scores a class (the encoder table's
    per-class columns, `xval.report.encoders`): its `name` (`F1`, `AP`) and `per_fold(
    instance) -> np.ndarray [shape=(folds, classes)]` (NaN where a fold has none), or
    `None` without test predictions."""

    name: str
    per_fold: Callable[[Instance], np.ndarray | None]


@dataclasses.dataclass(frozen=True)
class Bars:
    """Each class's score in [0, 1] in each fold, drawn as a bar at its mean over the folds
    and a dot per fold: `values` `np.ndarray [shape=(folds, classes)]` (NaN where a fold has
    none), the class names in the bars' order, the y label and the title."""

    values: np.ndarray
    classes: list[str]
    ylabel: str
    title: str


Notes = Callable[[Instance], list[str]]
"""`notes(instance) -> lines` a task writes under the results tables (the terminal's and
the Summary sheet's) about one of its instances, from its folds' records (the views it is
given hold no predictions)."""


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure of one instance: `plots/<file>`, drawn from `data(instance)` (`None`: no
    figure for this instance)."""

    file: str
    data: Callable[[Instance], Bars | None]
