"""The intake check: a store that cannot train is refused at the door.

One rule, applied to the rows a source found (before any feature is extracted) and again
to the rows left after extraction (files skipped as silent, too short, unreadable):

- at least two items: cross-validation tests on items it never trained on;
- for a task with classes, at least two classes, and no class that lost every file: each
  is named with why its files were skipped (or why its folder gave none), so a class
  never disappears without a word;
- the classes are those the labels name (`Targets.classes_in`: each label of a tagging
  row's set), and the task's own check of its labels follows (`Targets.check_labels`:
  tagging's, every row a label at least, and not one label per row everywhere).

`preprocessing.build.build_store` applies it at both stages, so `python -m preprocessing`
and `python -m xval init` refuse the same datasets, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from xval import tasks
from xval.core.errors import DatasetError

__all__ = ["check_trainable"]

_REASONS = 2
"""Skipped files named per lost class."""


def _lost_classes(labels: set[str], expected: Iterable[str],
                  skipped: Sequence[Mapping[str, Any]]) -> list[str]:
    """One phrase per class of `expected` with no row left: the class and why."""
    lost = []
    for label in sorted(set(map(str, expected)) - labels):
        own = [s for s in skipped if str(s.get("label")) == label]
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in own[:_REASONS])
        more = f"; and {len(own) - _REASONS} more" if len(own) > _REASONS else ""
        lost.append(f"class {label!r} lost every file ({len(own)} skipped: {reasons}{more})"
                    if own else f"class {label!r} has no usable file")
    return lost


def check_trainable(rows: pd.DataFrame, skipped: Sequence[Mapping[str, Any]] = (), *,
                    task_type: str = tasks.DEFAULT, stage: str = "found",
                    expected: Iterable[str] = ()) -> None:
    """Refuses rows that cannot make a store to cross-validate.

    Args:
        rows: the rows (`label`, `item` columns), as a source gives them or as extraction
            left them.
        skipped: the files skipped so far (`{"path", "reason"[, "label"]}`).
        task_type: the store's task; the class rules apply to tasks with classes
            (`Task.has_classes`).
        stage: what the rows are, for the message (`"found"`, `"left after extraction"`).
        expected: classes that must each keep a row (the classes the source found); the
            labels of `skipped` are added to them.

    Raises:
        DatasetError: naming the classes lost (with why), or the counts and the fix.
    """
    labels = set(map(str, rows["label"])) if "label" in rows and len(rows) else set()
    task = tasks.get(task_type)
    # The classes are those the labels name (`Targets.classes_in`: each of a set's labels).
    classes_in = task.targets.classes_in
    labels = {name for text in labels for name in classes_in(text)}
    expected = [name for text in expected for name in classes_in(text)]
    skipped = [{**s, "label": name} for s in skipped for name in
               (classes_in(s["label"]) if s.get("label") not in (None, "") else [""])]
    if task.has_classes:
        named = [s["label"] for s in skipped if s.get("label") not in (None, "")]
        lost = _lost_classes(labels, [*expected, *named], skipped)
        if lost:
            raise DatasetError(
                "; ".join(lost) + ". Every class needs usable audio: fix or remove those "
                "files (or the class folder), or lower silence_threshold_db if they are "
                "quiet recordings.")
        if len(labels) < 2:
            shown = ", ".join(repr(x) for x in sorted(labels)) or "none"
            raise DatasetError(
                f"{len(labels)} class(es) {stage} ({shown}); a {task_type} store needs two "
                "or more. Check the folder layout or the pattern's (?P<label>..) group.")
        task.targets.check_labels(list(rows["label"]), f"the rows {stage}")
    items = rows["item"].nunique() if "item" in rows else 0
    if items < 2:
        raise DatasetError(
            f"{items} item(s) {stage}; cross-validation needs two or more items (speakers, "
            "sessions, recordings) to test on items it never trained on. Give items with a "
            "pattern's (?P<item>..) group, --item-pattern or an item column.")
