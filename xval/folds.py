"""Splitters over foldable items: no item is ever split between training, validation and test.

The splitters follow scikit-learn's protocol, with a third index array:
`split(X, y=None, groups=None)` yields `(train, val, test)` row indices.
"""

import hashlib
import json
from collections import Counter

import numpy as np
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

from xval.errors import ConfigurationError, DatasetError


def _item_labels(items, groups, y):
    """Majority label of every item (ties: the smallest label)."""
    labels = []
    for item in items:
        counts = Counter(np.asarray(y)[groups == item].tolist())
        top = max(counts.values())
        labels.append(min(k for k, v in counts.items() if v == top))
    return np.asarray(labels)


def _can_stratify(labels, n_splits):
    counts = Counter(labels.tolist())
    return len(counts) > 1 and min(counts.values()) >= n_splits


class ItemKFold:
    """K-fold over items, with validation items drawn from each fold's training items.

    Every item is in the test set of exactly one fold (per repeat); the validation items
    of a fold are a `val_fraction` of its training items; the three sets never share an
    item. With `n_splits=1` there is a single split holding out `test_fraction` of the items.
    Folds are stratified by each item's majority label when every label has at least
    `n_splits` items (stratification is meaningless otherwise, e.g. when every speaker
    says every digit).

    Args:
        n_splits: number of folds. Defaults to `5`.
        val_fraction: fraction of training items used for validation. Defaults to `0.2`.
        test_fraction: with `n_splits=1`, fraction of items used for test. Defaults to `0.2`.
        stratify: balance item labels across folds where possible. Defaults to `True`.
        n_repeats: repetitions with different shuffles. Defaults to `1`.
        random_state: seed of the shuffles. Defaults to `0`.

    Example:
    >>> splitter = ItemKFold(3, random_state=0)
    >>> for train, val, test in splitter.split(X, y, groups=speakers):
    ...     pass
    """

    def __init__(self, n_splits=5, *, val_fraction=0.2, test_fraction=0.2, stratify=True,
                 n_repeats=1, random_state=0):
        if not isinstance(n_splits, int) or isinstance(n_splits, bool) or n_splits < 1:
            raise ConfigurationError(
                f"num_folds={n_splits!r}: expected an integer >= 1 (1: a single "
                "train/validation/test split)."
            )
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 < value < 1:
                raise ConfigurationError(f"{name}={value}: expected a fraction between 0 and 1.")
        if n_repeats < 1:
            raise ConfigurationError(f"n_repeats={n_repeats}: expected an integer >= 1.")
        self.n_splits = n_splits
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.stratify = stratify
        self.n_repeats = n_repeats
        self.random_state = random_state

    def __repr__(self):
        return (
            f"ItemKFold(n_splits={self.n_splits}, val_fraction={self.val_fraction}, "
            f"test_fraction={self.test_fraction}, stratify={self.stratify}, "
            f"n_repeats={self.n_repeats}, random_state={self.random_state})"
        )

    def get_n_splits(self, X=None, y=None, groups=None):
        """Returns the number of folds (times the repeats)."""
        return self.n_splits * self.n_repeats

    def split_items(self, groups, y=None):
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
        groups = np.asarray(groups).astype(str)
        items = np.array(sorted(set(groups.tolist())))
        n_items = len(items)
        needed = 3 if self.n_splits == 1 else max(self.n_splits, 3)
        if self.n_splits > n_items:
            raise ConfigurationError(
                f"Cannot have number of folds num_folds={self.n_splits} greater than the "
                f"number of items: {n_items}. Use num_folds <= {n_items}."
            )
        if n_items < needed:
            raise ConfigurationError(
                f"{n_items} item(s) cannot be split into training, validation and test items; "
                "at least 3 are needed."
            )
        labels = _item_labels(items, groups, y) if (self.stratify and y is not None) else None
        folds = []
        for repeat in range(self.n_repeats):
            seed = self.random_state + 1000 * repeat
            for train_val, test in self._outer(items, labels, seed):
                val, train = self._inner(train_val, labels, seed + len(folds) + 1)
                folds.append({
                    "train": sorted(items[train].tolist()),
                    "val": sorted(items[val].tolist()),
                    "test": sorted(items[test].tolist()),
                })
        return folds

    def _outer(self, items, labels, seed):
        index = np.arange(len(items))
        if self.n_splits == 1:
            n_test = max(1, int(round(self.test_fraction * len(items))))
            n_test = min(n_test, len(items) - 2)
            if labels is not None and _can_stratify(labels, 2) and n_test >= len(set(labels)):
                cv = StratifiedShuffleSplit(1, test_size=n_test, random_state=seed)
                return list(cv.split(index, labels))
            return list(ShuffleSplit(1, test_size=n_test, random_state=seed).split(index))
        if labels is not None and _can_stratify(labels, self.n_splits):
            cv = StratifiedKFold(self.n_splits, shuffle=True, random_state=seed)
            return list(cv.split(index, labels))
        return list(KFold(self.n_splits, shuffle=True, random_state=seed).split(index))

    def _inner(self, train_val, labels, seed):
        """Splits training-side item positions into (val, train) positions."""
        n = len(train_val)
        if n < 2:
            raise ConfigurationError(
                f"A fold has {n} training item(s): none left for validation. Use fewer folds "
                "or more items."
            )
        n_val = min(max(1, int(round(self.val_fraction * n))), n - 1)
        sub = labels[train_val] if labels is not None else None
        if sub is not None and _can_stratify(sub, 2) and n_val >= len(set(sub)) \
                and n - n_val >= len(set(sub)):
            cv = StratifiedShuffleSplit(1, test_size=n_val, random_state=seed)
            train, val = next(cv.split(train_val, sub))
        else:
            train, val = next(ShuffleSplit(1, test_size=n_val, random_state=seed).split(train_val))
        return train_val[val], train_val[train]

    def split(self, X, y=None, groups=None):
        """Yields `(train, val, test)` row indices, one triple per fold.

        Args:
            X: features (only its length is used), `np.ndarray [shape=(n_rows, ...)]`.
            y: labels of the rows, or `None`.
            groups: item of every row. Required.

        Yields:
            `(train, val, test)`, sorted `np.ndarray` of row indices.
        """
        if groups is None:
            raise ConfigurationError("The 'groups' parameter (item of every row) is required.")
        groups = np.asarray(groups).astype(str)
        if X is not None and len(X) != len(groups):
            raise ConfigurationError(
                f"X has {len(X)} rows but groups has {len(groups)}; they must match."
            )
        for fold in self.split_items(groups, y):
            yield tuple(rows_of(groups, fold[key]) for key in ("train", "val", "test"))


class PredefinedItemSplit:
    """One fold whose sets come from a column of the dataset (`train`/`validation`/`test`).

    Args:
        assignment: set name of every row, `np.ndarray [shape=(n_rows,)]`.
    """

    NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
             "validation": "val", "test": "test", "testing": "test"}

    def __init__(self, assignment):
        self.assignment = np.asarray(assignment).astype(str)

    def __repr__(self):
        return "PredefinedItemSplit()"

    def get_n_splits(self, X=None, y=None, groups=None):
        return 1

    def split_items(self, groups, y=None):
        groups = np.asarray(groups).astype(str)
        sets = {"train": set(), "val": set(), "test": set()}
        for value in sorted(set(self.assignment.tolist())):
            key = self.NAMES.get(value.strip().lower())
            if key is None:
                raise DatasetError(
                    f"Split column value {value!r} is not one of train, validation, test."
                )
            sets[key].update(groups[self.assignment == value].tolist())
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

    def split(self, X, y=None, groups=None):
        groups = np.asarray(groups).astype(str)
        for fold in self.split_items(groups, y):
            yield tuple(rows_of(groups, fold[key]) for key in ("train", "val", "test"))


def rows_of(groups, items):
    """Returns the sorted row indices whose item is in `items`."""
    return np.flatnonzero(np.isin(np.asarray(groups).astype(str), list(items)))


def check_fold(fold, all_items=None):
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
    if all_items is not None and set().union(*sets.values()) != set(all_items):
        raise DatasetError("The fold's sets do not cover every item.")


def fold_manifest(splitter, folds, dataset_hash):
    """Returns the `folds.json` content: the splitter, every fold's items, and a hash."""
    body = {"splitter": repr(splitter), "dataset_hash": dataset_hash, "folds": folds}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**body, "num_folds": len(folds), "hash": digest}
