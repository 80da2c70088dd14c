"""The data checks of a tagging store (`Tagging`'s `Targets.fold_checks`), printed by the dry
run and the run (`xval.running.checks`): the rows of each label, each label's rows on every
fold's test side, and a warning for every fold whose test, validation or training side
holds no row of a label. pandas is imported by the functions that count, so that naming the
tasks (`python -m xval config`) does without it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SHOWN_LABELS = 30
"""The labels the table of test rows per fold shows (the rarest first), the others counted."""


def label_indicators(meta: pd.DataFrame, classes: Sequence[str],
                     classes_in: Callable[[Any], list[str]]) -> pd.DataFrame:
    """0/1 columns, one per class, of the rows of `meta` (its `label` texts, each read by
    `classes_in`, `Targets.classes_in`), indexed like `meta`."""
    import pandas as pd  # noqa: PLC0415  (pandas: when checking)

    sets = meta["label"].map(classes_in)
    return pd.DataFrame({c: sets.map(lambda tags, c=c: c in tags).astype(int)
                         for c in classes}, index=meta.index)


def set_summary(meta: pd.DataFrame, sets: pd.DataFrame, n_items: int) -> str:
    """The data line: rows, items, labels and the rows of each label."""
    counts = sets.sum(axis=0).sort_values(ascending=False)
    shown = ", ".join(f"{name} {n}" for name, n in counts.items())
    per_row = sets.sum(axis=1).mean()
    return (f"Data: {len(meta)} rows, {n_items} items, {len(counts)} labels, "
            f"{per_row:.2f} per row on average (rows per label: {shown}).")


def _rows_of(meta: pd.DataFrame, items: Sequence[str]) -> pd.Series:
    return meta["item"].astype(str).isin(set(items))


def fold_label_lines(meta: pd.DataFrame, sets: pd.DataFrame,
                     folds: Sequence[Mapping[str, Sequence[str]]]) -> list[str]:
    """Each label's rows on every fold's test side, as a table (labels as rows, the rarest
    first; at most `SHOWN_LABELS`), beside the share of its rows a fold would get with
    every label spread evenly."""
    import pandas as pd  # noqa: PLC0415  (pandas: when checking)

    table = pd.DataFrame({f"fold {i}": sets[_rows_of(meta, fold["test"])].sum(axis=0)
                          for i, fold in enumerate(folds)})
    order = sets.sum(axis=0).sort_values(kind="stable").index
    table = table.loc[order]
    table["all"] = sets.sum(axis=0).loc[order]
    more = len(table) - SHOWN_LABELS
    shown = table.head(SHOWN_LABELS).to_string()
    return ["Test rows of each label per fold (iterative stratification over items keeps "
            f"each label's share, about 1/{max(len(folds), 1)} of its rows per fold"
            + (f"; the {SHOWN_LABELS} rarest labels, {more} more" if more > 0 else "")
            + "):", *("  " + line for line in shown.splitlines())]


def missing_label_warnings(meta: pd.DataFrame, sets: pd.DataFrame,
                           folds: Sequence[Mapping[str, Sequence[str]]]) -> list[str]:
    """A warning per fold and side (test, validation, training) that holds no row of some
    label, with what that does to the fold's scores."""
    effects = {
        "test": "its test mAP, AUC and macro F1 leave these labels out",
        "val": "their thresholds stay at 0.5 (none can be chosen on the validation clips)",
        "train": "it cannot learn them",
    }
    out = []
    for i, fold in enumerate(folds):
        for side, effect in effects.items():
            held = sets[_rows_of(meta, [*fold[side], *fold.get("rank", [])]
                                 if side == "val" else fold[side])].sum(axis=0)
            absent = [str(name) for name, n in held.items() if n == 0]
            if absent:
                shown = ", ".join(map(repr, absent[:8])) + (
                    f" and {len(absent) - 8} more" if len(absent) > 8 else "")
                name = {"test": "test", "val": "validation", "train": "training"}[side]
                out.append(f"Warning: fold {i}'s {name} items hold no row of label(s) "
                           f"{shown}: {effect}. Use fewer folds, or more items with these "
                           "labels.")
    return out
