"""The folds of a plan: the experiment's splitter (a k-fold over items, repeated or not, or
the store's predefined splits) and, for a nested search, the inner k-fold over one outer
fold's training items."""

from __future__ import annotations

import numpy as np

from preprocessing.store import FeatureStore
from xval import tasks
from xval.config.loader import Config
from xval.config.space import Search
from xval.core.errors import ConfigurationError
from xval.core.records import FoldsManifest
from xval.folds import (
    MAX_FOLDS,
    ItemKFold,
    MultilabelItemKFold,
    PredefinedItemSplit,
    fold_manifest,
    min_items,
)
from xval.folds import check_fold_sets as check_fold_items
from xval.running.declaration import ExperimentDeclaration

Folds = list[dict[str, list[str]]]


def make_splitter(experiment: ExperimentDeclaration, config: Config,
                  store: FeatureStore) -> ItemKFold | PredefinedItemSplit:
    """The item splitter: the store's predefined splits (its `split` column), else a
    k-fold over items with the `[folds]` settings, repeated `num_repeats` times.

    Raises:
        ConfigurationError: for predefined splits with `num_folds` other than 1 or with
            `num_repeats` above 1 (the splits are fixed: a repeat would be the same split).
    """
    if "split" in store.meta.columns:
        if experiment.num_folds != 1:
            raise ConfigurationError(
                f"Dataset {experiment.dataset!r} has predefined train/validation/test splits; "
                f"set num_folds=1 (it is {experiment.num_folds})."
            )
        if experiment.num_repeats != 1:
            raise ConfigurationError(
                f"num_repeats={experiment.num_repeats}: dataset {experiment.dataset!r} has "
                "predefined train/validation/test splits, so every repeat would be the same "
                "split; set num_repeats=1, or build the store without its split column to "
                "repeat a k-fold over items.")
        return PredefinedItemSplit(store.meta["split"].to_numpy(str))
    kfold = _kfold(tasks.get(experiment.task_type).targets.stratify(store))
    return kfold(experiment.num_folds, val_fraction=config.folds.val_fraction,
                 test_fraction=config.folds.test_fraction,
                 stratify=config.folds.stratify, n_repeats=experiment.num_repeats,
                 random_state=config.folds.fold_seed)


def _kfold(y: np.ndarray | None) -> type[ItemKFold]:
    """The k-fold over items of the labels a task stratifies (`Targets.stratify`):
    `MultilabelItemKFold` for a 0/1 matrix (rows of several labels: every label keeps its
    share), else `ItemKFold`."""
    return MultilabelItemKFold if y is not None and np.ndim(y) == 2 else ItemKFold


def make_folds(experiment: ExperimentDeclaration, config: Config,
               store: FeatureStore) -> tuple[Folds, FoldsManifest]:
    """The folds' items, checked (no item in two sets of a fold), and their manifest.

    Raises:
        DatasetError: for a fold with an empty or overlapping set.
    """
    splitter = make_splitter(experiment, config, store)
    y = tasks.get(experiment.task_type).targets.stratify(store)
    folds = splitter.split_items(store.items, y)
    for fold in folds:
        check_fold_items(fold)
    manifest = FoldsManifest.from_dict(fold_manifest(splitter, folds, store.content_hash))
    return folds, manifest


def outer_training_items(fold: dict[str, list[str]]) -> list[str]:
    """The items an outer fold trains on (its training and validation items): all that a
    nested search may see of it."""
    return sorted({*fold["train"], *fold["val"]})


def check_inner_folds(inner_folds: int | None, folds: Folds) -> None:
    """Refuses inner folds that some outer fold's training items cannot make (`None`: no
    nested search, nothing to check).

    Raises:
        ConfigurationError: naming the outer fold, its items and the largest number that
            works.
    """
    if inner_folds is None:
        return
    for i, fold in enumerate(folds):
        n = len(outer_training_items(fold))
        if n < min_items(inner_folds):
            fits = [k for k in range(2, n + 1) if min_items(k) <= n]
            fix = f"use --inner-folds {' or '.join(map(str, fits))}" if fits else \
                "use fewer outer folds (num_folds) or more items"
            raise ConfigurationError(
                f"--inner-folds {inner_folds}: outer fold {i} has {n} training items "
                f"(training and validation), and {inner_folds} inner folds need at least "
                f"{min_items(inner_folds)}; {fix}.")


def check_search(search: Search | bool | None, trials: int | None, inner_folds: int | None,
                 folds: Folds) -> None:
    """Refuses a nested search's inner folds that an outer fold cannot make
    (`check_inner_folds`), and a search whose trials would train more than `MAX_FOLDS`
    folds: each trial trains every fold (nested: every inner fold in every outer fold).

    Args:
        search: the search that runs, or `None` or `False` (no `--search`).
        trials: `--trials`, or `None` (the search's `n_trials`).
        inner_folds: `--inner-folds`, or `None` (not nested).
        folds: the plan's (outer) folds.

    Raises:
        ConfigurationError: naming the count, the folds it trains and the largest that runs.
    """
    check_inner_folds(inner_folds, folds)
    if not isinstance(search, Search):
        return
    n = search.n_trials if trials is None else trials
    per_trial = len(folds) * (inner_folds or 1)
    if n * per_trial > MAX_FOLDS:
        name = f"--trials {n}" if trials is not None else f"n_trials={n}"
        raise ConfigurationError(
            f"{name}: {n} trials x {per_trial} folds each is {n * per_trial} folds to train, "
            f"above the {MAX_FOLDS} allowed (each fold trains a model); use at most "
            f"{max(1, MAX_FOLDS // per_trial)} trials, or --timeout to stop the search.")


def make_inner_folds(experiment: ExperimentDeclaration, config: Config, store: FeatureStore,
                     outer: dict[str, list[str]], inner_folds: int
                     ) -> tuple[Folds, FoldsManifest]:
    """The inner k-fold of a nested search over one outer fold's training items (never its
    test items), grouped by item, with the `[folds]` settings, and its manifest.

    Raises:
        ConfigurationError: when the outer fold has too few training items.
        DatasetError: for a fold with an empty or overlapping set.
    """
    keep = set(outer_training_items(outer))
    rows = store.items.astype(str)
    mask = np.isin(rows, sorted(keep))
    y = tasks.get(experiment.task_type).targets.stratify(store)
    splitter = _kfold(y)(
        inner_folds, val_fraction=config.folds.val_fraction, stratify=config.folds.stratify,
        random_state=config.folds.fold_seed)
    folds = splitter.split_items(rows[mask], None if y is None else y[mask])
    for fold in folds:
        check_fold_items(fold, keep)
    manifest = FoldsManifest.from_dict(fold_manifest(splitter, folds, store.content_hash))
    return folds, manifest
