"""`ItemKFold`: k-fold over items (stratified, repeated, leave one item out), with a
validation set taken from each fold's training side."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.model_selection import (
    BaseCrossValidator,
    KFold,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)
from sklearn.model_selection._split import GroupsConsumerMixin

from xval.core.constraints import Interval, StrOptions, validate_params
from xval.core.errors import ConfigurationError
from xval.folds.items import (
    DEFAULT_STRATIFY,
    STRATIFY_METHODS,
    Fold,
    Positions,
    _as_groups,
    _balanced_pick,
    _can_stratify,
    _is_class_label,
    _item_labels,
    _label_counts,
    _ParamsMixin,
    _same_mix,
    allowed_folds,
    min_items,
)
from xval.folds.manifest import rows_of

MAX_FOLDS = 10_000
"""The most folds (`num_folds` x `num_repeats`) an experiment trains per instance: each is a
model trained, so more is a typo (`num_repeats=1000000000`), not a plan; refused before any
fold is made."""

_HINTS = {"n_splits": " (num_folds of an experiment; 1: one train/validation/test split)",
          **dict.fromkeys(("val_fraction", "test_fraction"), " (a fraction of the items)"),
          "random_state": " (folds must be reproducible)"}
"""What the messages of `ItemKFold`'s arguments add to what is expected."""

_COUNTED = 2_000_000
"""The largest `n_items x num_folds` whose number of distinct splits is counted exactly."""


def distinct_splits(n_items: int, n_splits: int, cap: int) -> int | None:
    """How many ways `n_items` items fall into `n_splits` non-empty test sets (the Stirling
    number of the second kind S(n, k)): the most repeats that can each split differently.

    Args:
        n_items: the items.
        n_splits: the folds per repeat (>= 2).
        cap: the count that matters (the repeats asked for).

    Returns:
        The count when it is below `cap`, else `None` (at least `cap`, or too large a
        problem to count: `_COUNTED`).
    """
    n, k = n_items, n_splits
    if k >= n:
        return 1
    # Items 1..k each alone, every other item in any of those k sets: k^(n-k) splits.
    if (n - k) * np.log(k) >= np.log(cap) or n * k > _COUNTED:
        return None
    row = [1] + [0] * k  # S(i, j) for j = 0..k, built up over i
    for _ in range(n):
        row = [0] + [min(j * row[j] + row[j - 1], cap) for j in range(1, k + 1)]
    return row[k] if row[k] < cap else None



class ItemKFold(_ParamsMixin, GroupsConsumerMixin, BaseCrossValidator):
    """K-fold over items, with validation items drawn from each fold's training items.

    Every item is in the test set of exactly one fold (per repeat); the validation items
    of a fold are a `val_fraction` of its training items; the three sets never share an
    item. With `n_splits=1` there is a single split holding out `test_fraction` of the items.

    As a scikit-learn cross-validator, `split(X, y, groups)` yields `(train, test)` row
    indices where `train` holds the training *and* validation rows (scikit-learn has no
    validation set); `split_train_val_test` and `split_items` give the three sets.

    Stratification (classification labels only; regression targets and a single label are
    never stratified):

    - `"rows"` (what `True` means): the label proportions of the rows in each test fold
      stay close to the overall ones (scikit-learn's `StratifiedGroupKFold`, which also
      evens out the rows per fold); validation items and a single holdout are picked to
      match the proportions of the side they come from. When every item holds the same
      label mix, any split is balanced and the plain k-fold is kept.
    - `"items"`: each item's majority label is stratified (`StratifiedKFold` over items),
      where every label has at least `n_splits` items.
    - `False`: plain shuffled `KFold` over items.

    Args:
        n_splits: number of folds. Defaults to `5`.
        val_fraction: fraction of training items used for validation. Defaults to `0.2`.
        test_fraction: with `n_splits=1`, fraction of items used for test. Defaults to `0.2`.
        stratify: `True`, `"rows"`, `"items"` or `False`. Defaults to `True`.
        n_repeats: repetitions with different shuffles. Defaults to `1`.
        random_state: seed of the shuffles (an integer). Defaults to `0`.

    Raises:
        ConfigurationError: for a bad argument.

    Example:
    >>> from sklearn.model_selection import cross_val_score
    >>> cross_val_score(estimator, X, y, groups=speakers, cv=ItemKFold(5))
    >>> for train, val, test in ItemKFold(5).split_train_val_test(X, y, groups=speakers):
    ...     pass
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_splits": [Interval(Integral, 1, None, closed="left")],
        "val_fraction": [Interval(Real, 0, 1, closed="neither")],
        "test_fraction": [Interval(Real, 0, 1, closed="neither")],
        "stratify": ["boolean", StrOptions(STRATIFY_METHODS)],
        "n_repeats": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, None, None)],
    }

    def __init__(self, n_splits: int = 5, *, val_fraction: float = 0.2,
                 test_fraction: float = 0.2, stratify: bool | str = True, n_repeats: int = 1,
                 random_state: int = 0) -> None:
        self.n_splits = n_splits
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.stratify = stratify
        self.n_repeats = n_repeats
        self.random_state = random_state
        validate_params(self._parameter_constraints, self.get_params(), hints=_HINTS)
        if n_splits * n_repeats > MAX_FOLDS:
            raise ConfigurationError(
                f"num_repeats={n_repeats}: {n_splits} folds x {n_repeats} repeats is "
                f"{n_splits * n_repeats} folds to train for every instance, above the "
                f"{MAX_FOLDS} allowed (each fold trains a model); use num_repeats <= "
                f"{max(1, MAX_FOLDS // n_splits)}.")

    def __repr__(self) -> str:
        # It enters the folds hash (folds.json): kept in the format it had before this class
        # became a scikit-learn splitter, so that experiments made then still resume.
        return (f"ItemKFold(n_splits={self.n_splits}, val_fraction={self.val_fraction}, "
                f"test_fraction={self.test_fraction}, stratify={self.stratify!r}, "
                f"n_repeats={self.n_repeats}, random_state={self.random_state})")

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Returns the number of folds (times the repeats)."""
        return self.n_splits * self.n_repeats

    @property
    def _method(self) -> str | None:
        if self.stratify is True:
            return DEFAULT_STRATIFY
        return self.stratify or None

    def split_items(self, groups: Any, y: Any = None) -> list[Fold]:
        """Assigns items to sets.

        Args:
            groups: item of every row, `np.ndarray [shape=(n_rows,)]`.
            y: label of every row (for stratification), or `None`.

        Returns:
            list of `{"train": [...], "val": [...], "test": [...]}` item lists, one per fold.

        Raises:
            ConfigurationError: when there are more folds than items, or too few items to
                keep training, validation and test items apart.
        """
        groups = _as_groups(groups)
        items = np.array(sorted(set(groups.tolist())))
        n_items = len(items)
        needed = min_items(self.n_splits)
        if n_items < needed:
            allowed = allowed_folds(n_items)
            use = (f"Use num_folds {' or '.join(map(str, allowed))} (leave one item out: "
                   f"{n_items}), or add items" if allowed else "Add items")
            raise ConfigurationError(
                f"num_folds={self.n_splits} needs at least {needed} items (every fold keeps "
                f"test, validation and training items apart, at least one of each); there "
                f"are {n_items}. {use}."
            )
        self._check_repeats(n_items)
        if y is not None and len(y) != len(groups):
            raise ConfigurationError(
                f"y has {len(y)} rows but groups has {len(groups)}; they must match.")
        method = self._method if _is_class_label(y) else None
        labels = _item_labels(items, groups, y) if method == "items" else None
        counts = _label_counts(items, groups, y) if method == "rows" else None
        if counts is not None and _same_mix(counts):
            # Every item holds the same label mix (FSDD, RAVDESS): any split over items is
            # balanced, so keep the plain k-fold, and the folds made before "rows" existed.
            counts = None
        folds: list[Fold] = []
        for repeat in range(self.n_repeats):
            seed = self.random_state + 1000 * repeat
            for train_val, test in self._outer(items, groups, y, labels, counts, seed):
                val, train = self._inner(train_val, labels, counts, seed + len(folds) + 1)
                folds.append({
                    "train": sorted(items[train].tolist()),
                    "val": sorted(items[val].tolist()),
                    "test": sorted(items[test].tolist()),
                })
        return folds

    def _check_repeats(self, n_items: int) -> None:
        """Refuses more repeats than the items can split differently (`distinct_splits`).

        Raises:
            ConfigurationError: naming `num_repeats`, the items, the folds and the most
                repeats that work.
        """
        if self.n_repeats < 2 or self.n_splits < 2:
            return
        ways = distinct_splits(n_items, self.n_splits, self.n_repeats)
        if ways is not None:
            raise ConfigurationError(
                f"num_repeats={self.n_repeats}: {n_items} items fall into {self.n_splits} "
                f"folds in only {ways} different way{'s' if ways > 1 else ''}, so a repeat "
                f"past {ways} repeats a split already made; use num_repeats <= {ways}, or "
                "more items.")

    def _outer(self, items: np.ndarray, groups: np.ndarray, y: Any, labels: np.ndarray | None,
               counts: np.ndarray | None, seed: int) -> list[Positions]:
        """`[(train_val, test)]` item positions per fold."""
        index = np.arange(len(items))
        if self.n_splits == 1:
            n_test = max(1, int(round(self.test_fraction * len(items))))
            n_test = min(n_test, len(items) - 2)
            if counts is not None:
                test, train_val = _balanced_pick(counts, n_test, seed)
                return [(train_val, test)]
            if labels is not None and _can_stratify(labels, 2) and n_test >= len(set(labels)):
                cv = StratifiedShuffleSplit(1, test_size=n_test, random_state=seed)
                return list(cv.split(index, labels))
            return list(ShuffleSplit(1, test_size=n_test, random_state=seed).split(index))
        if counts is not None and counts.sum(axis=0).max() >= self.n_splits:
            # StratifiedGroupKFold over rows; item positions are the sorted unique groups.
            _, g_index = np.unique(groups, return_inverse=True)
            cv = StratifiedGroupKFold(self.n_splits, shuffle=True, random_state=seed)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The least populated class",
                                        category=UserWarning)
                folds: list[Positions] = []
                for _, test_rows in cv.split(np.zeros(len(groups)), y, g_index):
                    test = np.unique(g_index[test_rows])
                    folds.append((np.setdiff1d(index, test), test))
            if all(len(test) for _, test in folds):
                return folds
            # A few items dominating the rows can leave a fold empty: plain k-fold then.
            return list(KFold(self.n_splits, shuffle=True, random_state=seed).split(index))
        if labels is not None and _can_stratify(labels, self.n_splits):
            cv = StratifiedKFold(self.n_splits, shuffle=True, random_state=seed)
            return list(cv.split(index, labels))
        return list(KFold(self.n_splits, shuffle=True, random_state=seed).split(index))

    def _inner(self, train_val: np.ndarray, labels: np.ndarray | None,
               counts: np.ndarray | None, seed: int) -> Positions:
        """Splits training-side item positions into (val, train) positions."""
        n = len(train_val)
        if n < 2:
            raise ConfigurationError(
                f"A fold has {n} training item(s): none left for validation. Use fewer folds "
                "or more items."
            )
        n_val = min(max(1, int(round(self.val_fraction * n))), n - 1)
        if counts is not None:
            val, train = _balanced_pick(counts[train_val], n_val, seed)
            return train_val[val], train_val[train]
        sub = labels[train_val] if labels is not None else None
        if sub is not None and _can_stratify(sub, 2) and n_val >= len(set(sub)) \
                and n - n_val >= len(set(sub)):
            cv = StratifiedShuffleSplit(1, test_size=n_val, random_state=seed)
            train, val = next(cv.split(train_val, sub))
        else:
            train, val = next(ShuffleSplit(1, test_size=n_val, random_state=seed).split(train_val))
        return train_val[val], train_val[train]

    def _iter_test_indices(self, X: Any = None, y: Any = None,
                           groups: Any = None) -> Iterator[np.ndarray]:
        groups = _as_groups(groups)
        if X is not None and len(X) != len(groups):
            raise ConfigurationError(
                f"X has {len(X)} rows but groups has {len(groups)}; they must match."
            )
        for fold in self.split_items(groups, y):
            yield rows_of(groups, fold["test"])

    def split_train_val_test(self, X: Any, y: Any = None, groups: Any = None
                             ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields `(train, val, test)` row indices, one triple per fold.

        Args:
            X: features (only its length is used), `np.ndarray [shape=(n_rows, ...)]`.
            y: labels of the rows, or `None`.
            groups: item of every row. Required.

        Yields:
            `(train, val, test)`, sorted `np.ndarray` of row indices.

        Raises:
            ConfigurationError: without `groups`, or when `X` and `groups` differ in length.
        """
        groups = _as_groups(groups)
        if X is not None and len(X) != len(groups):
            raise ConfigurationError(
                f"X has {len(X)} rows but groups has {len(groups)}; they must match."
            )
        for fold in self.split_items(groups, y):
            yield (rows_of(groups, fold["train"]), rows_of(groups, fold["val"]),
                   rows_of(groups, fold["test"]))
