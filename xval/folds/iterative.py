"""Iterative stratification over items (Sechidis, Tsoumakas and Vlahavas 2011), for labels
that are sets: each item (a speaker, a site) is assigned whole to one fold, so that every
label keeps close to its share of the rows in each fold.

The algorithm of the paper, with items in place of examples: the label with the fewest
rows still unassigned is taken first (the rarest is the hardest to spread); each
unassigned item that holds it goes to the fold that still wants the most rows of that
label, ties to the fold that still wants the most rows overall, then to a seeded random
one; the wants of that fold drop by every label's rows of the item. Items without any
label go last, to the fold that wants the most rows. A fold left empty (a few items
holding most rows) takes the smallest item of the fold with the most items.
"""

from __future__ import annotations

import numpy as np


def iterative_folds(counts: np.ndarray, rows: np.ndarray, n_splits: int,
                    seed: int) -> np.ndarray:
    """The fold of every item.

    Args:
        counts: rows of each label per item, `np.ndarray [shape=(n_items, n_labels)]`
            (a row of several labels counts once for each).
        rows: rows of each item, `np.ndarray [shape=(n_items,)]`.
        n_splits: the folds (`2 <= n_splits <= n_items`).
        seed: seeds the order of the items and the ties.

    Returns:
        `np.ndarray [shape=(n_items,)]` of fold numbers in `[0, n_splits)`, every fold
        holding one item at least.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_items = len(counts)
    rng = np.random.default_rng(seed)
    rows = np.asarray(rows, dtype=np.float64)
    wanted = np.tile(counts.sum(axis=0) / n_splits, (n_splits, 1))  # (folds, labels)
    wanted_rows = np.full(n_splits, rows.sum() / n_splits)
    fold = np.full(n_items, -1)
    order = rng.permutation(n_items)  # the items' order among equals
    tie = rng.random(n_splits)  # a fixed random order of the folds for the last tie

    def place(item: int, label: int | None) -> None:
        want = wanted[:, label] if label is not None else wanted_rows
        keys = np.lexsort((tie, wanted_rows, want))  # the last key sorts first
        best = keys[-1]
        fold[item] = best
        wanted[best] -= counts[item]
        wanted_rows[best] -= rows[item]

    while True:
        left = order[fold[order] < 0]
        if not len(left):
            break
        remaining = counts[left].sum(axis=0)
        if not (remaining > 0).any():
            for item in left:  # items without labels
                place(int(item), None)
            break
        label = int(np.argmin(np.where(remaining > 0, remaining, np.inf)))
        holding = left[counts[left, label] > 0]
        for item in holding[np.argsort(-counts[holding, label], kind="stable")]:
            place(int(item), label)
    _fill_empty(fold, rows, n_splits)
    return fold


def _fill_empty(fold: np.ndarray, rows: np.ndarray, n_splits: int) -> None:
    """Gives every empty fold the smallest item of the fold with the most items."""
    for empty in range(n_splits):
        if (fold == empty).any():
            continue
        sizes = np.bincount(fold, minlength=n_splits)
        donor = int(np.argmax(sizes))
        members = np.flatnonzero(fold == donor)
        fold[members[np.argmin(rows[members])]] = empty
