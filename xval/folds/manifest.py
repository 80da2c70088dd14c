"""A fold's rows, its check (no item in two sets), and the fold manifest (`folds.json`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sklearn.model_selection import (
    BaseCrossValidator,
)

from xval.core.errors import DatasetError
from xval.core.hashing import json_digest
from xval.core.records.base import FORMAT_VERSION
from xval.core.records.manifest import hashed_body

Fold = dict[str, list[str]]
"""The items of one fold's sets: `{"train": [...], "val": [...], "test": [...]}`."""


def rows_of(groups: Any, items: Iterable[str]) -> np.ndarray:
    """Returns the sorted row indices whose item is in `items`."""
    return np.flatnonzero(np.isin(np.asarray(groups).astype(str), list(items)))


def check_fold_sets(fold: Mapping[str, Iterable[str]],
                    all_items: Iterable[str] | None = None) -> None:
    """Checks the sets of one fold share no item (and cover `all_items` when given).

    Raises:
        DatasetError: when an item is in two sets, or a set is empty.
    """
    sets = {k: set(fold[k]) for k in ("train", "val", "test")}
    for key, value in sets.items():
        if not value:
            raise DatasetError(f"Fold has an empty {key} set.")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if sets[a] & sets[b]:
            raise DatasetError(f"Items {sorted(sets[a] & sets[b])} are in both {a} and {b}.")
    if all_items is not None and set[str]().union(*sets.values()) != set(all_items):
        raise DatasetError("The fold's sets do not cover every item.")


def fold_manifest(splitter: BaseCrossValidator, folds: list[Fold],
                  dataset_hash: str) -> dict[str, Any]:
    """Returns the `folds.json` content: the splitter, every fold's items (repeat by repeat
    when the splitter repeats), the number of repeats, and a hash.

    The hash covers `num_repeats` only when it is above 1 (`hashed_body`).
    """
    repeats = int(getattr(splitter, "n_repeats", 1))
    body = hashed_body(repr(splitter), dataset_hash, folds, repeats)
    digest = json_digest(body)
    return {**body, "num_folds": len(folds), "num_repeats": repeats, "hash": digest,
            "format": FORMAT_VERSION}
