"""`MultilabelItemKFold` (iterative stratification over items): never splits an item, tests
every item once, keeps each label's test rows within the stated bound of its even share,
and is a scikit-learn splitter; property checks on seeded generated sets."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.multiclass import OneVsRestClassifier

from tests.test_folds import check_cv_coverage, check_sklearn_cv_coverage
from xval.core.errors import ConfigurationError
from xval.folds import ItemKFold, MultilabelItemKFold, label_counts
from xval.folds.iterative import iterative_folds

BOUND = 2.5
"""Each label's test rows stay within BOUND x (its largest count in one item) of n / k."""


def generated(seed):
    """A set of 6 to 40 items of 1 to 14 rows, 2 to 11 labels of different frequencies,
    every row one label at least; and its number of folds."""
    rng = np.random.default_rng(seed)
    n_items, n_labels, k = int(rng.integers(6, 41)), int(rng.integers(2, 12)), \
        int(rng.integers(2, 6))
    share = rng.uniform(0.02, 0.6, n_labels)
    groups, y = [], []
    for i in range(n_items):
        for _ in range(int(rng.integers(1, 15))):
            row = (rng.random(n_labels) < share).astype(int)
            if not row.any():
                row[rng.integers(n_labels)] = 1
            groups.append(f"s{i:02d}")
            y.append(row)
    return np.array(groups), np.array(y), min(k, n_items - 2)


def test_multilabel_item_kfold_properties_on_generated_sets():
    deviation = {"iterative": [], "plain": []}
    for seed in range(40):
        groups, y, k = generated(seed)
        _, counts, _ = label_counts(groups, y)
        n, m = counts.sum(axis=0), counts.max(axis=0)
        for name, stratify in (("iterative", True), ("plain", False)):
            cv = MultilabelItemKFold(k, stratify=stratify, random_state=seed)
            check_cv_coverage(cv, groups, y)  # sets disjoint, no item split, each tested once
            for fold in cv.split_items(groups, y):
                tested = y[np.isin(groups, fold["test"])].sum(axis=0)
                deviation[name] += list(np.abs(tested - n / k)[n > 0] / n[n > 0])
                if stratify:
                    assert (np.abs(tested - n / k) <= BOUND * m).all(), (seed, tested, n, m)
    assert np.mean(deviation["iterative"]) < 0.7 * np.mean(deviation["plain"])


def test_iterative_folds_spreads_a_rare_label_and_fills_every_fold():
    counts = np.array([[3, 0], [3, 0], [3, 0], [0, 5], [0, 5], [0, 5], [0, 40]])
    fold = iterative_folds(counts, counts.sum(axis=1), 3, seed=0)
    assert sorted(np.bincount(fold, minlength=3)) == [2, 2, 3]
    # The three items of the rare label go to three different folds.
    assert len(set(fold[:3])) == 3
    assert sorted(iterative_folds(np.ones((3, 1)), np.ones(3), 3, seed=1).tolist()) == [0, 1, 2]


def test_multilabel_item_kfold_is_a_scikit_learn_splitter():
    groups, y, _ = generated(3)
    cv = MultilabelItemKFold(3, random_state=2)
    X = np.random.default_rng(0).normal(size=(len(y), 4))
    check_sklearn_cv_coverage(cv, X, y, groups, 3)
    scores = cross_val_score(OneVsRestClassifier(LogisticRegression()), X, y, groups=groups,
                             cv=cv)
    assert len(scores) == 3
    copy = clone(cv)
    assert copy.get_params() == cv.get_params() and repr(copy) == repr(cv)
    assert repr(cv).startswith("MultilabelItemKFold(n_splits=3")
    assert isinstance(cv, ItemKFold)
    assert cv.split_items(groups, y) == copy.split_items(groups, y)  # seeded


def test_multilabel_item_kfold_single_split_and_repeats():
    groups, y, _ = generated(5)
    single = MultilabelItemKFold(1).split_items(groups, y)
    assert len(single) == 1 and all(single[0][s] for s in ("train", "val", "test"))
    repeated = MultilabelItemKFold(4, n_repeats=2).split_items(groups, y)
    assert len(repeated) == 8
    for repeat in (repeated[:4], repeated[4:]):  # every item tested once per repeat
        assert sorted(i for fold in repeat for i in fold["test"]) == sorted(set(groups))
    assert [f["test"] for f in repeated[:4]] != [f["test"] for f in repeated[4:]]


@pytest.mark.parametrize("y", [None, np.zeros(12, dtype=int)])
def test_multilabel_item_kfold_refuses_labels_that_are_not_sets(y):
    groups = np.repeat(["a", "b", "c", "d", "e", "f"], 2)
    with pytest.raises(ConfigurationError, match="MultilabelItemKFold takes y as a 0/1 matrix"):
        MultilabelItemKFold(3).split_items(groups, y)
