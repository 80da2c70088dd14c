"""`MultilabelItemKFold`: k-fold over items for rows that hold several labels (tagging),
keeping each label's share of the rows in every fold by iterative stratification over
items (`xval.folds.iterative`), never splitting an item."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import KFold
from sklearn.utils.multiclass import type_of_target

from xval.core.errors import ConfigurationError
from xval.folds.iterative import iterative_folds
from xval.folds.splitters import ItemKFold, Positions, balanced_pick

__all__ = ["MultilabelItemKFold", "label_counts"]


def label_counts(groups: np.ndarray, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of each label per item, and rows per item.

    Args:
        groups: item of every row, `np.ndarray [shape=(n_rows,)]`.
        y: 0/1 labels of every row, `np.ndarray [shape=(n_rows, n_labels)]`.

    Returns:
        `(items, counts [shape=(n_items, n_labels)], rows [shape=(n_items,)])`, the items
        sorted.
    """
    items, index = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    y = np.asarray(y, dtype=np.float64)
    counts = np.zeros((len(items), y.shape[1]))
    np.add.at(counts, index, y > 0.5)
    return items, counts, np.bincount(index, minlength=len(items)).astype(np.float64)


class MultilabelItemKFold(ItemKFold):
    """K-fold over items whose rows hold several labels, keeping every label's share.

    `y` is a 0/1 matrix (`[shape=(n_rows, n_labels)]`, scikit-learn's multilabel
    indicator). With stratification (`True`, `"rows"` or `"items"`: for sets of labels
    both mean the same), the test items of the folds are assigned by iterative
    stratification over items (`xval.folds.iterative`: the rarest label first, each of its
    items to the fold that still wants the most of it), so that every label's rows spread
    over the folds in proportion; the validation items of a fold (and a single holdout,
    `n_splits=1`) are picked greedily to keep the label proportions of the side they come
    from. An item is never split; `stratify=False` is the plain shuffled k-fold over items.
    Everything else (validation fraction, repeats, the checks, `split`,
    `split_train_val_test`, `get_params`) is `ItemKFold`'s.

    The bound (measured, not proven; `tests/test_multilabel.py` checks it on generated
    sets): each label's rows on a fold's test side stay within `2.5 m` of their even share
    `n / k`, for a label of `n` rows whose largest item holds `m` of them, over `k` folds
    (on 300 generated sets of 6 to 40 items the worst was `2.07 m`, plain k-fold over items
    `3.1 m`; the mean deviation `0.042 n` against `0.074 n`).

    Args:
        n_splits: number of folds. Defaults to `5`.
        val_fraction: fraction of training items used for validation. Defaults to `0.2`.
        test_fraction: with `n_splits=1`, fraction of items used for test. Defaults to `0.2`.
        stratify: `True`, `"rows"`, `"items"` or `False`. Defaults to `True`.
        n_repeats: repetitions with different shuffles. Defaults to `1`.
        random_state: seed of the shuffles (an integer). Defaults to `0`.

    Raises:
        ConfigurationError: for a bad argument, or `y` that is not a 0/1 matrix.

    Example:
    >>> cv = MultilabelItemKFold(5)
    >>> for train, val, test in cv.split_train_val_test(X, Y, groups=speakers):
    ...     pass
    """

    def _stratification(self, items: np.ndarray, groups: np.ndarray, y: Any
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """`(None, counts)`: each item's rows per label (`None` without stratification).

        Raises:
            ConfigurationError: for `y` missing or not a 0/1 matrix.
        """
        if y is None or type_of_target(np.asarray(y)) != "multilabel-indicator":
            kind = "none" if y is None else type_of_target(np.asarray(y))
            raise ConfigurationError(
                f"MultilabelItemKFold takes y as a 0/1 matrix (rows x labels, a multilabel "
                f"indicator); got {kind}. Use ItemKFold for one label per row.")
        if not self._method:
            return None, None
        return None, label_counts(groups, y)[1]

    def _outer(self, items: np.ndarray, groups: np.ndarray, y: Any, labels: np.ndarray | None,
               counts: np.ndarray | None, seed: int) -> list[Positions]:
        """`[(train_val, test)]` item positions per fold: iterative stratification."""
        index = np.arange(len(items))
        if counts is None:
            return list(KFold(self.n_splits, shuffle=True, random_state=seed).split(index)) \
                if self.n_splits > 1 else super()._outer(items, groups, y, None, None, seed)
        if self.n_splits == 1:
            n_test = min(max(1, int(round(self.test_fraction * len(items)))), len(items) - 2)
            test, train_val = balanced_pick(counts, n_test, seed)
            return [(train_val, test)]
        fold = iterative_folds(counts, label_counts(groups, y)[2], self.n_splits, seed)
        return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k))
                for k in range(self.n_splits)]
