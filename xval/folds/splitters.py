"""The item splitters, as scikit-learn keeps its splitters in one `_split.py`:
`ItemKFold` (k-fold over items: stratified, repeated, leave one item out, with a validation
set taken from each fold's training side), `PredefinedItemSplit` (the sets a store's `split`
column names), and what they rest on: how many folds a number of items allows, the labels of
items, a balanced pick of items, and the parameters of a splitter (`get_params`,
`set_params`).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
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
from sklearn.utils.multiclass import type_of_target

from xval.core.constraints import Interval, StrOptions, validate_params
from xval.core.errors import ConfigurationError, DatasetError
from xval.folds.manifest import Fold, rows_of

__all__ = ["DEFAULT_STRATIFY", "MAX_FOLDS", "SPLIT_NAMES", "STRATIFY_METHODS", "ItemKFold",
           "PredefinedItemSplit", "allowed_folds", "balanced_pick", "distinct_splits",
           "min_items"]

# -- items: how many folds they allow, their labels, a balanced pick ---------------------

STRATIFY_METHODS = ("rows", "items")
"""`"rows"`: balance the label proportions of the rows (scikit-learn's `StratifiedGroupKFold`
for the test folds, a greedy pick of items for validation and single holdouts); `"items"`:
stratify each item's majority label (`StratifiedKFold` over items)."""


DEFAULT_STRATIFY = "rows"
"""What `stratify=True` means; chosen by the fold-balance study (docs/results.md)."""


Positions = tuple[np.ndarray, np.ndarray]
"""`(train_val, test)` item positions of one fold."""


def min_items(num_folds: int) -> int:
    """The fewest items `num_folds` folds can be made of: every fold keeps at least one test,
    one validation and one training item (`num_folds = 1`: one split of 3 items or more).

    Args:
        num_folds: the requested number of folds (>= 1).

    Returns:
        The minimum number of items: 3 for 1 fold, 4 for 2, `num_folds` from 3 on.
    """
    if num_folds <= 1:
        return 3
    n = max(3, num_folds)
    while n - math.ceil(n / num_folds) < 2:  # the smallest fold's training side
        n += 1
    return n


def allowed_folds(n_items: int) -> list[int]:
    """Every `num_folds` that `n_items` items allow (see `min_items`), smallest first."""
    return [k for k in range(1, n_items + 1) if min_items(k) <= n_items]


class _ParamsMixin:
    """`get_params`/`set_params` from the constructor's signature, so `sklearn.base.clone`
    copies a splitter (scikit-learn's cross-validators have `__repr__` but no `get_params`),
    and `groups` asked for by `split` under scikit-learn's metadata routing (what its own
    group splitters declare: `__metadata_request__split`); `split`'s test rows are those of
    the splitter's `split_train_val_test`."""

    __metadata_request__split: ClassVar[dict[str, bool]] = {"groups": True}

    @classmethod
    def _param_names(cls) -> list[str]:
        return sorted(p.name for p in inspect.signature(cls.__init__).parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Returns the constructor arguments, `{name: value}`."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> _ParamsMixin:
        """Sets constructor arguments (validated as by the constructor); returns `self`.

        Raises:
            ValueError: for a name that is not a constructor argument.
        """
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"Invalid parameter(s) {unknown} for {type(self).__name__}; "
                             f"valid parameters are {names}.")
        merged = {**self.get_params(), **params}
        fresh = type(self)(**merged)  # validates
        self.__dict__.update(fresh.__dict__)
        return self

    def _iter_test_indices(self, X: Any = None, y: Any = None,
                           groups: Any = None) -> Iterator[np.ndarray]:
        for _, _, test in self.split_train_val_test(X, y, groups):  # type: ignore[attr-defined]
            yield test


def _as_groups(groups: Any) -> np.ndarray:
    if groups is None:
        raise ConfigurationError("The 'groups' parameter (item of every row) is required.")
    return np.asarray(groups).astype(str)


def _is_class_label(y: Any) -> bool:
    if y is None:
        return False
    kind = type_of_target(np.asarray(y))
    return kind in ("binary", "multiclass") and len(set(np.asarray(y).tolist())) > 1


def _item_labels(items: np.ndarray, groups: np.ndarray, y: Any) -> np.ndarray:
    """Majority label of every item (ties: the smallest label)."""
    labels = []
    values = np.asarray(y)
    for item in items:
        counts = Counter(values[groups == item].tolist())
        top = max(counts.values())
        labels.append(min(k for k, v in counts.items() if v == top))
    return np.asarray(labels)


def _label_counts(items: np.ndarray, groups: np.ndarray, y: Any) -> np.ndarray:
    """Rows of each label per item, `np.ndarray [shape=(n_items, n_labels)]`."""
    _, y_index = np.unique(np.asarray(y).astype(str), return_inverse=True)
    _, g_index = np.unique(groups, return_inverse=True)  # items are the sorted unique groups
    counts = np.zeros((len(items), y_index.max() + 1))
    np.add.at(counts, (g_index, y_index), 1)
    return counts


def _same_mix(counts: np.ndarray) -> bool:
    """Whether every item (row of `counts`) has the same label proportions."""
    proportions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return bool(np.allclose(proportions, proportions[0]))


def _can_stratify(labels: np.ndarray, n_splits: int) -> bool:
    counts = Counter(labels.tolist())
    return len(counts) > 1 and min(counts.values()) >= n_splits


def balanced_pick(counts: np.ndarray, n_pick: int, seed: int) -> Positions:
    """Picks `n_pick` of the positions of `counts` whose summed label proportions stay
    closest to those of all of them (greedy, candidates in a seeded random order).

    Args:
        counts: rows per label of each candidate item, `np.ndarray [shape=(n, n_labels)]`.
        n_pick: how many to pick, `1 <= n_pick < n`.
        seed: order of the candidates (ties go to the earlier one).

    Returns:
        `(picked, rest)`: sorted positions into `counts`.
    """
    order = np.random.default_rng(seed).permutation(len(counts))
    target = counts.sum(axis=0) / max(counts.sum(), 1)
    picked: list[int] = []
    total = np.zeros(counts.shape[1])
    remaining = [int(p) for p in order]
    for _ in range(n_pick):
        best, best_cost = remaining[0], np.inf
        for position in remaining:
            trial = total + counts[position]
            cost = np.abs(trial / max(trial.sum(), 1) - target).sum()
            if cost < best_cost - 1e-12:
                best, best_cost = position, cost
        picked.append(best)
        remaining.remove(best)
        total += counts[best]
    return np.sort(np.asarray(picked, dtype=int)), np.sort(np.asarray(remaining, dtype=int))


# -- ItemKFold ------------------------------------------------------------------------

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



class ItemKFold(_ParamsMixin, BaseCrossValidator):
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
        return (f"{type(self).__name__}(n_splits={self.n_splits}, val_fraction={self.val_fraction}, "
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
        labels, counts = self._stratification(items, groups, y)
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

    def _stratification(self, items: np.ndarray, groups: np.ndarray, y: Any
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """`(labels, counts)`: each item's majority label (`"items"`), or its rows per
        label (`"rows"`); `None` for what the method does not use, both `None` when the
        rows are not stratified."""
        method = self._method if _is_class_label(y) else None
        labels = _item_labels(items, groups, y) if method == "items" else None
        counts = _label_counts(items, groups, y) if method == "rows" else None
        return labels, counts

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
                test, train_val = balanced_pick(counts, n_test, seed)
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
            val, train = balanced_pick(counts[train_val], n_val, seed)
            return train_val[val], train_val[train]
        sub = labels[train_val] if labels is not None else None
        if sub is not None and _can_stratify(sub, 2) and n_val >= len(set(sub)) \
                and n - n_val >= len(set(sub)):
            cv = StratifiedShuffleSplit(1, test_size=n_val, random_state=seed)
            train, val = next(cv.split(train_val, sub))
        else:
            train, val = next(ShuffleSplit(1, test_size=n_val, random_state=seed).split(train_val))
        return train_val[val], train_val[train]

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


# -- PredefinedItemSplit --------------------------------------------------------------

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test"}
"""Values of a predefined split column (case and surrounding spaces ignored) and their set."""


class PredefinedItemSplit(_ParamsMixin, BaseCrossValidator):
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

    def split_train_val_test(self, X: Any, y: Any = None, groups: Any = None
                             ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields the one `(train, val, test)` triple of row indices."""
        groups = _as_groups(groups)
        for fold in self.split_items(groups, y):
            yield (rows_of(groups, fold["train"]), rows_of(groups, fold["val"]),
                   rows_of(groups, fold["test"]))


RANK = "rank"
"""The set of a fold's validation items that only rank instances (`rank_split`): they pick
no epoch, so an early-stopped model's score on them is not chosen on them."""


def split_validation(fold: Fold, share: float, fold_index: int) -> Fold:
    """The fold with `share` of its validation items moved to a `"rank"` set.

    The validation items left pick the epoch (early stopping, the best checkpoint); the
    `"rank"` items are only scored, so that instances are ranked on items their epoch was
    not chosen on. The pick depends on the fold's items and number only (never on an
    instance's seed), so every instance of an experiment gets the same two sets.

    Args:
        fold: the fold's items (`{"train", "val", "test"}`).
        share: the share of the validation items that rank, in `[0, 1)`; `0` returns
            `fold` unchanged.
        fold_index: the fold's number (seeds the pick).

    Returns:
        The fold's items, with `"rank"` when `share > 0`.

    Raises:
        ConfigurationError: when the fold has fewer than 2 validation items (one set would
            be empty).
    """
    if not share:
        return fold
    val = sorted(fold["val"])
    if len(val) < 2:
        raise ConfigurationError(
            f"rank_split={share}: fold {fold_index} has {len(val)} validation item(s), and "
            "both the items that pick the epoch and those that rank need one at least; use "
            "fewer folds or a larger [folds] val_fraction, or rank_split=0.")
    n_rank = min(max(int(round(share * len(val))), 1), len(val) - 1)
    order = np.random.default_rng([1729, fold_index]).permutation(len(val))
    ranked = {val[i] for i in order[:n_rank]}
    return {**fold, "val": [i for i in fold["val"] if i not in ranked],
            RANK: [i for i in fold["val"] if i in ranked]}
