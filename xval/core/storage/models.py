"""Fold models checked against the fold records that name them: an ensemble, one fold, or a
`fold_<i>.keras` given alone (`predict`, `evaluate`, `export`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from xval.core.errors import ConfigurationError
from xval.core.hashing import FOLD_FIX
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult
from xval.core.storage.checks import FoldCheck, orphaned
from xval.core.storage.store import ResultsStore

__all__ = ["check_fold_file", "check_fold_models"]


def check_fold_file(layout: InstanceLayout, path: Path, results_store: ResultsStore) -> None:
    """Refuses a `fold_<i>.keras` given alone whose fold record cannot be believed, or whose
    content is not the model that record names (a fold model swapped or changed), read
    through `results_store`.

    Raises:
        ConfigurationError: naming the file and the fix.
    """
    fold = layout.fold_of_model(path)
    if fold is None or not layout.fold_file(fold).is_file():
        return
    check_fold_models(layout, {fold: path}, results_store, complete=False)


def check_fold_models(layout: InstanceLayout, folds: Mapping[int, Path],
                      results_store: ResultsStore, *, complete: bool = True) -> None:
    """Refuses fold models that are not the ones the folds recorded, before anything is
    loaded or any audio read, as the report would not believe them: a model whose content
    is not the recorded one (its SHA-256, computed from the file), a model without its fold
    record, a record that cannot be believed (not readable, edited, its seal removed), a
    fold trained with other parameters than the instance's `params.json` (a fold of another
    experiment or instance) or of another number (`FoldCheck`); and with `complete` (an
    ensemble) a fold whose record names a model that is missing.

    Raises:
        ConfigurationError: naming the fold, its file and the fix.
    """
    records = layout.fold_files()
    for i, model in folds.items():
        if i not in records:
            raise ConfigurationError(f"{model} cannot be used: {orphaned(layout, i)}; "
                                     f"{FOLD_FIX}.")
    params, params_problem = results_store.params(layout)
    check = FoldCheck(layout.id, params.hash if params is not None else None, params_problem)
    for i, path in records.items():
        record, why = results_store.read_record(path, FoldResult.from_dict)
        if record is None and i in folds:
            raise ConfigurationError(
                f"{folds[i]} cannot be used: its fold record {path.name} cannot be believed "
                f"({why}), so neither can the model it names; {FOLD_FIX}.")
        if record is None or not record.ok:
            continue
        digest = record.model_sha256
        if complete and (digest is not None or record.model_size is not None) \
                and i not in folds:
            raise ConfigurationError(
                f"{layout.root}: {layout.fold_model(i).name} is missing, though "
                f"{path.name} records it; the ensemble would answer without fold {i}. "
                "Restore the model, or choose one fold with --fold.")
        if i not in folds:
            continue
        if digest is not None and results_store.digest(folds[i]) != digest:
            raise ConfigurationError(
                f"{folds[i]} is not the model fold {i} trained (its content differs from the "
                f"SHA-256 recorded in {path.name}); restore it, or rerun the fold.")
        reason = check.reason(layout, i, record, results_store.digest)
        if reason:
            raise ConfigurationError(f"{folds[i]} cannot be used: its fold record {path.name} "
                                     f"is not believed ({reason}); {FOLD_FIX}.")
