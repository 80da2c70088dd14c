"""Fold invariants, checked the way scikit-learn checks its splitters."""

import numpy as np
import pytest

from xval.errors import ConfigurationError, DatasetError
from xval.folds import ItemKFold, PredefinedItemSplit, check_fold, fold_manifest


def make_groups(n_items=10, rows=7, n_classes=3, seed=0, per_item_label=False):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{i}" for i in range(n_items)], rows)
    if per_item_label:
        y = np.repeat(np.arange(n_items) % n_classes, rows)
    else:
        y = rng.integers(0, n_classes, len(groups))
    return groups, y


def check_valid_split(train, val, test, groups):
    """No row and no item in two sets."""
    for a, b in ((train, val), (train, test), (val, test)):
        assert not set(a) & set(b)
        assert not set(groups[a]) & set(groups[b])
    assert len(train) and len(val) and len(test)


def check_cv_coverage(splitter, groups, y):
    tested = []
    for train, val, test in splitter.split(np.zeros(len(groups)), y, groups):
        check_valid_split(train, val, test, groups)
        tested.extend(sorted(set(groups[test])))
    assert sorted(tested) == sorted(set(groups))  # every item tested exactly once


@pytest.mark.parametrize("n_splits", [2, 3, 5, 10])
@pytest.mark.parametrize("stratify", [True, False])
def test_item_kfold_invariants(n_splits, stratify):
    groups, y = make_groups()
    check_cv_coverage(ItemKFold(n_splits, stratify=stratify, random_state=1), groups, y)


def test_item_kfold_leave_one_item_out():
    groups, y = make_groups(n_items=5)
    folds = ItemKFold(5).split_items(groups, y)
    assert [len(f["test"]) for f in folds] == [1] * 5


def test_item_kfold_val_from_train_side():
    groups, y = make_groups(n_items=12)
    for fold in ItemKFold(4, val_fraction=0.25).split_items(groups, y):
        assert len(fold["val"]) == 2  # 25% of 9 training-side items, rounded
        check_fold(fold, set(groups))


def test_item_kfold_seeded():
    groups, y = make_groups()
    a = ItemKFold(3, random_state=7).split_items(groups, y)
    b = ItemKFold(3, random_state=7).split_items(groups, y)
    c = ItemKFold(3, random_state=8).split_items(groups, y)
    assert a == b and a != c


def test_item_kfold_stratifies_item_labels():
    groups, y = make_groups(n_items=12, per_item_label=True)
    for fold in ItemKFold(4, random_state=0).split_items(groups, y):
        labels = sorted(int(item[1:]) % 3 for item in fold["test"])
        assert labels == [0, 1, 2]  # one item of each class in every test fold


def test_item_kfold_single_split():
    groups, y = make_groups(n_items=10)
    folds = ItemKFold(1, test_fraction=0.2).split_items(groups, y)
    assert len(folds) == 1 and len(folds[0]["test"]) == 2
    check_fold(folds[0], set(groups))


def test_item_kfold_repeats():
    groups, y = make_groups()
    splitter = ItemKFold(5, n_repeats=2)
    assert splitter.get_n_splits() == 10
    folds = splitter.split_items(groups, y)
    assert len(folds) == 10 and folds[:5] != folds[5:]


def test_item_kfold_more_folds_than_items():
    groups, y = make_groups(n_items=3)
    with pytest.raises(ConfigurationError,
                       match="num_folds=5 greater than the number of items: 3"):
        ItemKFold(5).split_items(groups, y)


def test_item_kfold_too_few_items():
    with pytest.raises(ConfigurationError, match="at least 3 are needed"):
        ItemKFold(2).split_items(np.array(["a", "a", "b"]))


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_item_kfold_bad_n_splits(n):
    with pytest.raises(ConfigurationError, match="num_folds"):
        ItemKFold(n)


def test_item_kfold_repr_and_groups_required():
    assert repr(ItemKFold(3, random_state=2)).startswith("ItemKFold(n_splits=3")
    with pytest.raises(ConfigurationError, match="groups"):
        next(ItemKFold(3).split(np.zeros(3)))


def test_predefined_split_honoured():
    groups = np.array(["a", "a", "b", "c", "d"])
    sets = np.array(["train", "train", "validation", "test", "train"])
    fold = PredefinedItemSplit(sets).split_items(groups)[0]
    assert fold == {"train": ["a", "d"], "val": ["b"], "test": ["c"]}


def test_predefined_split_item_in_two_sets():
    groups = np.array(["a", "a", "b", "c"])
    sets = np.array(["train", "test", "validation", "test"])
    with pytest.raises(DatasetError, match=r"item\(s\) \['a'\] in both train and test"):
        PredefinedItemSplit(sets).split_items(groups)


def test_predefined_split_bad_value():
    with pytest.raises(DatasetError, match="'dev' is not one of"):
        PredefinedItemSplit(np.array(["dev", "train", "test"])).split_items(
            np.array(["a", "b", "c"]))


def test_fold_manifest_hash_changes_with_folds():
    groups, y = make_groups()
    s = ItemKFold(3)
    a = fold_manifest(s, s.split_items(groups, y), "h")
    b = fold_manifest(s, ItemKFold(3, random_state=9).split_items(groups, y), "h")
    assert a["hash"] != b["hash"] and a["num_folds"] == 3
