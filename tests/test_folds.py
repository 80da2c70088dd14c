"""Fold invariants, checked the way scikit-learn checks its splitters (`test_split.py`)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score

from xval.core.errors import ConfigurationError, DatasetError
from xval.folds import ItemKFold, PredefinedItemSplit, check_fold_sets, fold_manifest, rows_of


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
    """The train/validation/test view: sets disjoint, every item tested exactly once."""
    tested = []
    n = 0
    for train, val, test in splitter.split_train_val_test(np.zeros(len(groups)), y, groups):
        check_valid_split(train, val, test, groups)
        assert len(train) + len(val) + len(test) == len(groups)
        tested.extend(sorted(set(groups[test])))
        n += 1
    assert n == splitter.get_n_splits()
    assert sorted(tested) == sorted(set(groups))  # every item tested exactly once


def check_sklearn_cv_coverage(cv, X, y, groups, expected_n_splits):
    """scikit-learn's `check_cv_coverage`: (train, test) pairs over all rows, each test row
    once, no item on both sides."""
    collected = []
    for train, test in cv.split(X, y, groups):
        assert set(train).isdisjoint(test)
        assert set(train) | set(test) == set(range(len(X)))
        assert set(groups[train]).isdisjoint(groups[test])
        collected.extend(test.tolist())
    assert cv.get_n_splits(X, y, groups) == expected_n_splits
    assert sorted(collected) == list(range(len(X)))  # every row tested exactly once


@pytest.mark.parametrize("n_splits", [2, 3, 5, 10])
@pytest.mark.parametrize("stratify", [True, False, "rows", "items"])
def test_item_kfold_invariants(n_splits, stratify):
    groups, y = make_groups()
    splitter = ItemKFold(n_splits, stratify=stratify, random_state=1)
    check_cv_coverage(splitter, groups, y)
    check_sklearn_cv_coverage(splitter, np.zeros((len(groups), 2)), y, groups, n_splits)


def test_item_kfold_split_matches_split_items():
    groups, y = make_groups()
    splitter = ItemKFold(4, random_state=3)
    folds = splitter.split_items(groups, y)
    pairs = list(splitter.split(np.zeros(len(groups)), y, groups))
    triples = list(splitter.split_train_val_test(np.zeros(len(groups)), y, groups))
    for fold, (train, test), (tr, val, te) in zip(folds, pairs, triples, strict=True):
        assert test.tolist() == rows_of(groups, fold["test"]).tolist() == te.tolist()
        assert train.tolist() == sorted(tr.tolist() + val.tolist())


def test_item_kfold_cross_val_score_and_grid_search():
    rng = np.random.default_rng(0)
    groups, y = make_groups(n_items=12, rows=10)
    X = rng.normal(size=(len(y), 4)) + y[:, None]
    scores = cross_val_score(LogisticRegression(), X, y, groups=groups, cv=ItemKFold(4))
    assert scores.shape == (4,) and np.all(scores > 0.5)
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0]},
                          cv=ItemKFold(3, random_state=1))
    search.fit(X, y, groups=groups)
    assert search.n_splits_ == 3 and search.best_params_["C"] in (0.01, 1.0)
    repeated = cross_val_score(LogisticRegression(), X, y, groups=groups,
                               cv=ItemKFold(3, n_repeats=2))
    assert repeated.shape == (6,)
    # Under scikit-learn's metadata routing the splitters ask for `groups`, as its own
    # group splitters do.
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_val_score(LogisticRegression(), X, y, cv=ItemKFold(4),
                                 params={"groups": groups})
    np.testing.assert_allclose(routed, scores)
    assert PredefinedItemSplit(["train"]).get_metadata_routing().split.requests == \
        {"groups": True}


def test_item_kfold_get_params_and_clone():
    splitter = ItemKFold(4, val_fraction=0.3, stratify="items", random_state=5)
    params = splitter.get_params()
    assert params == {"n_repeats": 1, "n_splits": 4, "random_state": 5, "stratify": "items",
                      "test_fraction": 0.2, "val_fraction": 0.3}
    copy = clone(splitter)
    assert copy is not splitter and copy.get_params() == params
    groups, y = make_groups()
    assert copy.split_items(groups, y) == splitter.split_items(groups, y)
    assert splitter.set_params(n_splits=3) is splitter and splitter.n_splits == 3
    with pytest.raises(ValueError, match=r"Invalid parameter\(s\) \['folds'\]"):
        splitter.set_params(folds=3)
    with pytest.raises(ConfigurationError, match="val_fraction=2"):
        splitter.set_params(val_fraction=2)
    assert splitter.val_fraction == 0.3  # unchanged after a refused value


def test_item_kfold_repr_deterministic_one_line():
    # The repr enters the folds hash: its format predates the scikit-learn base class, so
    # folds.json files made before still match.
    text = repr(ItemKFold(3, random_state=2))
    assert text == ("ItemKFold(n_splits=3, val_fraction=0.2, test_fraction=0.2, "
                    "stratify=True, n_repeats=1, random_state=2)")
    assert repr(clone(ItemKFold(3, random_state=2))) == text
    assert "stratify='items'" in repr(ItemKFold(3, stratify="items"))


def test_item_kfold_same_label_mix_keeps_plain_folds():
    # Every item holds every label equally (as FSDD speakers and RAVDESS actors do):
    # stratification is moot, and the folds stay those of a plain k-fold over items.
    groups = np.repeat([f"s{i}" for i in range(8)], 6)
    y = np.tile(np.arange(3), 16)
    for n_splits in (1, 4):
        assert ItemKFold(n_splits).split_items(groups, y) == \
            ItemKFold(n_splits, stratify=False).split_items(groups, y)


def _uneven(seed=0, n_items=24, n_classes=6):
    """Items holding uneven label mixes (as real corpora do)."""
    rng = np.random.default_rng(seed)
    groups, y = [], []
    for i in range(n_items):
        for c in range(n_classes):
            n = int(rng.integers(1, 12))
            groups += [f"s{i:02d}"] * n
            y += [c] * n
    return np.array(groups), np.array(y)


def _max_test_deviation(splitter, groups, y):
    overall = np.bincount(y) / len(y)
    worst = 0.0
    for fold in splitter.split_items(groups, y):
        test = y[rows_of(groups, fold["test"])]
        worst = max(worst, np.abs(np.bincount(test, minlength=len(overall)) / len(test)
                                  - overall).max())
    return worst


def test_item_kfold_row_stratification_balances_uneven_items():
    deviations = {method: np.mean([_max_test_deviation(ItemKFold(5, stratify=method,
                                                                 random_state=s), *_uneven(s))
                                   for s in range(5)])
                  for method in (False, "items", "rows")}
    assert deviations["rows"] < deviations["items"]
    assert deviations["rows"] < deviations[False]
    groups, y = _uneven()
    assert ItemKFold(5).split_items(groups, y) == \
        ItemKFold(5, stratify="rows").split_items(groups, y)  # True means "rows"


def test_item_kfold_never_leaves_a_test_fold_empty():
    # StratifiedGroupKFold leaves a fold empty here (one test fold takes 62 rows, another 0);
    # ItemKFold then falls back to a plain k-fold over items.
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    sizes, labels = [27, 24, 5, 27, 22, 18, 27, 17], [1, 2, 2, 2, 0, 0, 1, 2]
    groups = np.repeat([f"s{i}" for i in range(8)], sizes)
    y = np.repeat(labels, sizes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        raw = StratifiedGroupKFold(7, shuffle=True, random_state=0).split(
            groups, y, np.unique(groups, return_inverse=True)[1])
        assert 0 in [len(test) for _, test in raw]
    folds = ItemKFold(7, random_state=0).split_items(groups, y)
    assert all(fold["test"] for fold in folds)
    check_cv_coverage(ItemKFold(7, random_state=0), groups, y)


def test_item_kfold_regression_targets_not_stratified():
    groups, _ = make_groups()
    y = np.linspace(0, 1, len(groups))
    check_cv_coverage(ItemKFold(3), groups, y)
    assert ItemKFold(3).split_items(groups, y) == \
        ItemKFold(3, stratify=False).split_items(groups, y)


@pytest.mark.parametrize("stratify", ["yes", 1.5, None])
def test_item_kfold_bad_stratify(stratify):
    with pytest.raises(ConfigurationError, match=r"stratify=.*expected True, False, or one of"):
        ItemKFold(3, stratify=stratify)


def test_item_kfold_bad_random_state():
    with pytest.raises(ConfigurationError, match="random_state=None: expected an integer"):
        ItemKFold(3, random_state=None)


def test_item_kfold_leave_one_item_out():
    groups, y = make_groups(n_items=5)
    folds = ItemKFold(5).split_items(groups, y)
    assert [len(f["test"]) for f in folds] == [1] * 5


def test_item_kfold_val_from_train_side():
    groups, y = make_groups(n_items=12)
    for fold in ItemKFold(4, val_fraction=0.25).split_items(groups, y):
        assert len(fold["val"]) == 2  # 25% of 9 training-side items, rounded
        check_fold_sets(fold, set(groups))


def test_item_kfold_seeded():
    groups, y = make_groups()
    a = ItemKFold(3, random_state=7).split_items(groups, y)
    b = ItemKFold(3, random_state=7).split_items(groups, y)
    c = ItemKFold(3, random_state=8).split_items(groups, y)
    assert a == b and a != c


@pytest.mark.parametrize("stratify", ["rows", "items"])
def test_item_kfold_stratifies_item_labels(stratify):
    groups, y = make_groups(n_items=12, per_item_label=True)
    for fold in ItemKFold(4, stratify=stratify, random_state=0).split_items(groups, y):
        labels = sorted(int(item[1:]) % 3 for item in fold["test"])
        assert labels == [0, 1, 2]  # one item of each class in every test fold


@pytest.mark.parametrize("stratify", [True, False, "items"])
def test_item_kfold_single_split(stratify):
    groups, y = make_groups(n_items=10)
    folds = ItemKFold(1, test_fraction=0.2, stratify=stratify).split_items(groups, y)
    assert len(folds) == 1 and len(folds[0]["test"]) == 2
    check_fold_sets(folds[0], set(groups))


def test_item_kfold_repeats():
    groups, y = make_groups()
    splitter = ItemKFold(5, n_repeats=2)
    assert splitter.get_n_splits() == 10
    folds = splitter.split_items(groups, y)
    assert len(folds) == 10 and folds[:5] != folds[5:]


def test_item_kfold_more_folds_than_items():
    groups, y = make_groups(n_items=3)
    with pytest.raises(ConfigurationError,
                       match=r"num_folds=5 needs at least 5 items .* there are 3\. Use "
                             r"num_folds 1 or 3 \(leave one item out: 3\)"):
        ItemKFold(5).split_items(groups, y)


def test_item_kfold_too_few_items():
    with pytest.raises(ConfigurationError, match="num_folds=2 needs at least 4 items"):
        ItemKFold(2).split_items(np.array(["a", "a", "b"]))
    with pytest.raises(ConfigurationError, match="there are 3. Use num_folds 1 or 3"):
        ItemKFold(2).split_items(np.array(["a", "b", "c"]))


@pytest.mark.parametrize("num_folds,needed", [(1, 3), (2, 4), (3, 3), (4, 4), (5, 5),
                                              (10, 10)])
def test_min_items_is_what_the_splitter_accepts(num_folds, needed):
    """The minimum stated in the refusal and by the data checks is the splitter's own: it
    splits `needed` items and refuses one fewer."""
    from xval.folds import allowed_folds, min_items

    assert min_items(num_folds) == needed
    assert num_folds in allowed_folds(needed)
    assert len(ItemKFold(num_folds).split_items(np.arange(needed).astype(str))) == num_folds
    with pytest.raises(ConfigurationError, match=f"needs at least {needed} items"):
        ItemKFold(num_folds).split_items(np.arange(needed - 1).astype(str))


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_item_kfold_bad_n_splits(n):
    with pytest.raises(ConfigurationError, match="num_folds"):
        ItemKFold(n)


def test_item_kfold_groups_required():
    with pytest.raises(ConfigurationError, match="'groups' parameter"):
        next(ItemKFold(3).split(np.zeros(3)))
    with pytest.raises(ConfigurationError, match="'groups' parameter"):
        next(ItemKFold(3).split_train_val_test(np.zeros(3)))
    with pytest.raises(ConfigurationError, match="X has 3 rows but groups has 2"):
        next(ItemKFold(2).split_train_val_test(np.zeros(3), None, ["a", "b"]))


def test_predefined_split_honoured():
    groups = np.array(["a", "a", "b", "c", "d"])
    sets = np.array(["train", "train", "validation", "test", "train"])
    fold = PredefinedItemSplit(sets).split_items(groups)[0]
    assert fold == {"train": ["a", "d"], "val": ["b"], "test": ["c"]}


def test_predefined_split_is_a_scikit_learn_splitter():
    groups = np.array(["a", "a", "b", "c", "d", "e"])
    sets = np.array(["train", "train", "validation", "test", "train", "test"])
    splitter = PredefinedItemSplit(sets)
    (train, test), = splitter.split(np.zeros(6), None, groups)
    assert train.tolist() == [0, 1, 2, 4] and test.tolist() == [3, 5]
    assert splitter.get_n_splits() == 1
    X = np.array([[0.0], [0.1], [1.0], [0.05], [1.1], [0.9]])
    y = np.array([0, 0, 1, 0, 1, 1])
    scores = cross_val_score(LogisticRegression(), X, y, groups=groups, cv=splitter)
    assert scores.shape == (1,)
    (tr, val, te), = splitter.split_train_val_test(None, None, groups)
    assert (tr.tolist(), val.tolist(), te.tolist()) == ([0, 1, 4], [2], [3, 5])
    copy = clone(splitter)
    assert np.array_equal(copy.assignment, sets) and repr(copy) == "PredefinedItemSplit()"


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
