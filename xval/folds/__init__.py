"""Splitters over foldable items: no item is ever split between training, validation and test.

The splitters are scikit-learn cross-validators (`BaseCrossValidator`): `split(X, y, groups)`
yields `(train, test)` row indices, so `cross_val_score(..., groups=items, cv=ItemKFold(5))`
and `GridSearchCV` take them, and `get_params`/`clone` work; `MultilabelItemKFold` is
`ItemKFold` for rows of several labels (`y` a 0/1 matrix), keeping each label's share. The
engine's view with a validation set is separate: `split_items(groups, y)` lists the items of
every fold's three sets, and `split_train_val_test(X, y, groups)` yields `(train, val, test)`
row indices.
"""

from xval.folds.manifest import Fold, check_fold_sets, fold_manifest, rows_of
from xval.folds.multilabel import MultilabelItemKFold, label_counts
from xval.folds.splitters import (
    DEFAULT_STRATIFY,
    MAX_FOLDS,
    RANK,
    SPLIT_NAMES,
    STRATIFY_METHODS,
    ItemKFold,
    PredefinedItemSplit,
    allowed_folds,
    min_items,
    split_validation,
)

__all__ = ["DEFAULT_STRATIFY", "MAX_FOLDS", "RANK", "SPLIT_NAMES", "STRATIFY_METHODS", "Fold",
           "ItemKFold", "MultilabelItemKFold", "PredefinedItemSplit", "allowed_folds",
           "check_fold_sets", "fold_manifest", "label_counts", "min_items", "rows_of",
           "split_validation"]
