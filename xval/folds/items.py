"""Counting items: how many folds a number of items allows, the labels of items, and a
balanced pick of items; the parameters of a splitter (`get_params`, `set_params`)."""

from __future__ import annotations

import inspect
import math
from collections import Counter
from typing import Any

import numpy as np
from sklearn.utils.multiclass import type_of_target

from xval.core.errors import ConfigurationError

STRATIFY_METHODS = ("rows", "items")
"""`"rows"`: balance the label proportions of the rows (scikit-learn's `StratifiedGroupKFold`
for the test folds, a greedy pick of items for validation and single holdouts); `"items"`:
stratify each item's majority label (`StratifiedKFold` over items)."""


DEFAULT_STRATIFY = "rows"
"""What `stratify=True` means; chosen by `benchmarks/fold_balance.py`."""


Fold = dict[str, list[str]]
"""The items of one fold's sets: `{"train": [...], "val": [...], "test": [...]}`."""


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
    copies a splitter (scikit-learn's cross-validators have `__repr__` but no `get_params`)."""

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


def _balanced_pick(counts: np.ndarray, n_pick: int, seed: int) -> Positions:
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
