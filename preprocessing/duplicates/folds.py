"""Files that hold the same audio under two items, as a run sees them: the dry
run's data-check line (per fold, the test items that share audio with a training or
validation item), the refusal of `[data] duplicates = error`, and what the experiment's
`dataset.json` (and the workbook's Data sheet) records of the store's duplicate check.

The pairs come from the store's record (`preprocessing.duplicates.store_check`): no audio is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from preprocessing.duplicates.check import duplicates_per_fold
from preprocessing.duplicates.store_check import StoreCheck, store_check
from preprocessing.store import FeatureStore
from xval.core.errors import DatasetError

__all__ = ["ERROR", "duplicate_lines", "duplicates_record", "refuse_duplicates"]

ERROR = "error"
"""`[data] duplicates` that refuses a run on a store with crossing pairs."""

Folds = Sequence[Mapping[str, Sequence[str]]]


def _fix(store: FeatureStore, others: Sequence[FeatureStore] = ()) -> str:
    """The merge command, for every store the experiment reads: its stores of the same
    files must keep the same items."""
    paths = [str(store.path), *(str(o.path) for o in others if str(o.path) != str(store.path))]
    return " && ".join(f"python -m preprocessing check {p} --merge-duplicates" for p in paths)


def duplicate_lines(store: FeatureStore, folds: Folds,
                       others: Sequence[FeatureStore] = ()) -> list[str]:
    """The data-check line of the store's duplicate check: a fact when it found no pair
    across items, a `Warning:` with the count per fold when it did, whose fix merges the
    items in `store` and in the experiment's `others` stores alike (an instance's store
    must hold the experiment's items)."""
    found = store_check(store)
    if found.check is None:
        return [f"Duplicates: not checked (the store records no duplicate check: built before "
                f"it, or a detection store; `python -m preprocessing check {store.path}` checks "
                "it from the audio)."]
    check = found.check
    what = f"duplicate check of {check.files} files: {check.described}"
    if not found.cross_item:
        return [f"Duplicates: no file holds the audio of a file of another item ({what})."]
    leaks = duplicates_per_fold(found.cross_item, folds)
    per_fold = ", ".join(f"{i}: {n}" for i, n in enumerate(leaks))
    return [f"Warning: {len(found.cross_item)} pair(s) of files hold the same audio under two "
            f"items ({what}). Test items sharing audio with a training or validation item, "
            f"per fold: {per_fold}; their test scores are inflated. Merge them: "
            f"{_fix(store, others)} "
            "(`[data] duplicates = error` refuses such runs)."]


def refuse_duplicates(store: FeatureStore, policy: str) -> None:
    """Refuses a store whose duplicate check found files of two items holding the same audio,
    when the policy is `error`.

    Args:
        store: the store a run reads.
        policy: `[data] duplicates` (`error` refuses; `warn` lets the dry run's line say it).

    Raises:
        DatasetError: naming the pairs' count, an example and the fix.
    """
    if policy != ERROR:
        return
    found = store_check(store)
    if not found.cross_item:
        return
    first = found.cross_item[0]
    raise DatasetError(
        f"{store.path}: {len(found.cross_item)} pair(s) of files hold the same audio under two "
        f"items (e.g. {found.sources.get(first.first, first.first)} of {first.items[0]} and "
        f"{found.sources.get(first.second, first.second)} of {first.items[1]}, similarity "
        f"{first.similarity:.3f}), and [data] duplicates = error. Merge them: {_fix(store)}; "
        "or set [data] duplicates = warn.")


def duplicates_record(store: FeatureStore, folds: Folds) -> dict[str, Any] | None:
    """What the experiment's `dataset.json` keeps of the duplicate check: the store's record,
    with the pairs across items (`crossing`: first, second, similarity, their items) and
    the test items sharing audio per fold (`test_items_sharing_audio`); `None` when the
    store has no record."""
    found: StoreCheck = store_check(store)
    if found.check is None:
        return None
    return {**found.check.to_dict(),
            "crossing": [[c.first, c.second, c.similarity, *c.items] for c in found.cross_item],
            "test_items_sharing_audio": duplicates_per_fold(found.cross_item, folds)}
