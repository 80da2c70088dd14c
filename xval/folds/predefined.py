"""`PredefinedItemSplit`: the train/validation/test sets a store's `split` column names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import (
    BaseCrossValidator,
)
from sklearn.model_selection._split import GroupsConsumerMixin

from xval.core.errors import DatasetError
from xval.folds.items import Fold, _as_groups, _ParamsMixin
from xval.folds.manifest import rows_of

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test"}
"""Values of a predefined split column (case and surrounding spaces ignored) and their set."""


class PredefinedItemSplit(_ParamsMixin, GroupsConsumerMixin, BaseCrossValidator):
    """One fold whose sets come from a column of the dataset (`train`/`validation`/`test`).

    As a scikit-learn cross-validator, `split(X, y, groups)` yields one `(train, test)`
    pair, `train` holding the training and validation rows.

    Args:
        assignment: set name of every row, `np.ndarray [shape=(n_rows,)]`.
    """

    NAMES = SPLIT_NAMES

    def __init__(self, assignment: Sequence[str] | np.ndarray) -> None:
        self.assignment = assignment

    def __repr__(self) -> str:
        # Short and deterministic: it enters the folds hash, and the sets themselves do too.
        return "PredefinedItemSplit()"

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Returns `1`."""
        return 1

    def split_items(self, groups: Any, y: Any = None) -> list[Fold]:
        """The items of the three sets.

        Args:
            groups: item of every row, `np.ndarray [shape=(n_rows,)]`.
            y: unused.

        Returns:
            `[{"train": [...], "val": [...], "test": [...]}]`.

        Raises:
            DatasetError: for a value that is not a set name, an item in two sets, or an
                empty set.
        """
        groups = _as_groups(groups)
        assignment = np.asarray(self.assignment).astype(str)
        if len(assignment) != len(groups):
            raise DatasetError(
                f"The split column has {len(assignment)} rows but groups has {len(groups)}.")
        sets: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
        for value in sorted(set(assignment.tolist())):
            key = self.NAMES.get(value.strip().lower())
            if key is None:
                raise DatasetError(
                    f"Split column value {value!r} is not one of train, validation, test."
                )
            sets[key].update(groups[assignment == value].tolist())
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = sets[a] & sets[b]
            if shared:
                raise DatasetError(
                    f"The predefined split puts item(s) {sorted(shared)[:5]} in both {a} and "
                    f"{b}; an item must stay in one set. Fix the split column."
                )
        for key, value in sets.items():
            if not value:
                raise DatasetError(f"The predefined split has no {key} rows.")
        return [{k: sorted(v) for k, v in sets.items()}]

    def _iter_test_indices(self, X: Any = None, y: Any = None,
                           groups: Any = None) -> Iterator[np.ndarray]:
        groups = _as_groups(groups)
        for fold in self.split_items(groups, y):
            yield rows_of(groups, fold["test"])

    def split_train_val_test(self, X: Any, y: Any = None, groups: Any = None
                             ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields the one `(train, val, test)` triple of row indices."""
        groups = _as_groups(groups)
        for fold in self.split_items(groups, y):
            yield (rows_of(groups, fold["train"]), rows_of(groups, fold["val"]),
                   rows_of(groups, fold["test"]))
