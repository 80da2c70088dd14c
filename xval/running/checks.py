"""Data checks printed before training, by `--dry-run` and by the run itself.

`data_checks(plan)` returns the lines: the items and classes of the store, how many folds
its items allow, the store's duplicate check (files holding the same audio under two items,
`preprocessing.duplicates.folds`), the share of validation items that rank when rounding to whole
items changed the `rank_split` asked, then warnings for what makes a result untrustworthy
without failing it (test items sharing audio with training items, single-item validation
sets, classes a fold cannot learn, class imbalance, a run shorter than the regularisation
defaults assume). A task with checks of its own (`Targets.fold_checks`: tagging's rows of
each label per fold) gives its lines and warnings instead of the class checks.
Nothing here refuses: refusals (too few items for the requested folds) are `xval.folds`' and
come earlier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from preprocessing.duplicates.folds import duplicate_lines
from xval import tasks
from xval.core.parameters import InstanceParams, TrainingParams
from xval.core.settings import keys_of
from xval.folds import RANK, Fold, allowed_folds, split_validation
from xval.running.planner import Plan

# Classes whose row counts differ by this factor or more are called imbalanced.
IMBALANCE_RATIO = 3.0
# Below this many epochs the stock regularisation (tuned for the default 60) is called out.
SHORT_RUN_EPOCHS = 20
REGULARISERS = tuple(name for name, key in keys_of(TrainingParams).items()
                     if key.regulariser)  # declared with each key: setting(regulariser=True)
# A rank split whose rounding to whole validation items moves the share by this much or
# more is said (0.5 of 3 items ranks 2: 0.67).
RANK_ROUNDING = 0.05


def data_checks(plan: Plan) -> list[str]:
    """The data-check lines of a plan: facts first, then `Warning:` lines.

    Args:
        plan: the run's `Plan` (store, folds, resolved instances).

    Returns:
        Lines to print, in order.
    """
    meta = plan.store.meta[~plan.store.augmented]  # what the folds are scored on
    items = sorted(set(meta["item"].astype(str)))
    task = tasks.get(plan.store.task_type)
    labels = _labels(meta, task)
    manifest = plan.manifest
    own = task.targets.fold_checks(meta, plan.store.classes, plan.folds, len(items))
    lines = [_summary(meta, labels, len(items)) if own is None else own[0][0],
             _folds_line(len(items), manifest.folds_per_repeat, manifest.num_repeats)]
    shared = duplicate_lines(plan.store, plan.folds, plan.all_stores())
    warnings = [line for line in shared if line.startswith("Warning")]
    lines += [line for line in shared if line not in warnings]
    lines += _rank_rounding(plan.folds, plan.resolved)
    warnings += _single_validation(plan.folds)
    if own is not None:
        lines += own[0][1:]
        warnings += own[1]
    elif labels is not None:
        warnings += _missing_classes(meta, labels, plan.folds)
        warnings += _imbalance(labels, plan.resolved)
    warnings += _short_run(plan.resolved)
    return lines + warnings


def _labels(meta: pd.DataFrame, task: tasks.Task) -> pd.Series | None:
    """The class label of every original row, for stores of a task with classes only."""
    if not task.has_classes or "label" not in meta.columns:
        return None
    return meta["label"].astype(str)


def _summary(meta: pd.DataFrame, labels: pd.Series | None, n_items: int) -> str:
    line = f"Data: {len(meta)} rows, {n_items} items"
    if labels is None:
        return line + "."
    per_class = meta.groupby(labels)["item"].nunique()
    counts = ", ".join(f"{name} {n}" for name, n in per_class.items())
    return line + f", {len(per_class)} classes (items per class: {counts})."


def _folds_line(n_items: int, num_folds: int, num_repeats: int = 1) -> str:
    allowed = allowed_folds(n_items)
    text = ", ".join(map(str, allowed[:3])) + (f", ... {allowed[-1]}" if len(allowed) > 3
                                                else "")
    repeated = f" x {num_repeats} repeats ({num_folds * num_repeats} folds)" \
        if num_repeats > 1 else ""
    return (f"Folds: {num_folds} requested{repeated}; {n_items} items allow num_folds "
            f"{text} (leave one item out: {n_items}).")


def _rank_rounding(folds: Sequence[Fold], resolved: Mapping[int, InstanceParams]) -> list[str]:
    """One line per `rank_split` value whose rounding to whole validation items
    (`split_validation`) moves the share by `RANK_ROUNDING` or more in some fold: the value
    asked, the instances asking it, and per count of items the share that results."""
    asked: dict[float, list[int]] = {}
    for k, p in resolved.items():
        if p.rank_split:
            asked.setdefault(float(p.rank_split), []).append(k)
    out = []
    for share, instances in asked.items():
        counts: dict[tuple[int, int], list[int]] = {}
        for i, fold in enumerate(folds):
            rank = len(split_validation(fold, share, i)[RANK])
            counts.setdefault((rank, len(fold["val"])), []).append(i)
        if all(abs(rank / n - share) < RANK_ROUNDING for rank, n in counts):
            continue
        parts = [f"{rank} of {n} rank ({rank / n:.2f}) in "
                 + (f"fold(s) {', '.join(map(str, where))}" if len(where) <= 6
                    else f"{len(where)} folds") for (rank, n), where in sorted(counts.items())]
        out.append(f"Rank split: rank_split={share:g} (instance(s) "
                   f"{', '.join(map(str, instances))}) is rounded to whole validation items "
                   f"(the others pick the epoch): {'; '.join(parts)}.")
    return out


def _single_validation(folds: Sequence[Mapping[str, list[str]]]) -> list[str]:
    single = [i for i, fold in enumerate(folds) if len(fold["val"]) == 1]
    if not single:
        return []
    return [f"Warning: {len(single)} of {len(folds)} folds have a single validation item "
            f"(folds {', '.join(map(str, single))}): the best epoch and the selected instance "
            "rest on one item per fold. Use fewer folds or a larger [folds] val_fraction if "
            "there are enough items."]


def _missing_classes(meta: pd.DataFrame, labels: pd.Series,
                     folds: Sequence[Mapping[str, list[str]]]) -> list[str]:
    classes = set(labels)
    out = []
    for i, fold in enumerate(folds):
        trained = set(labels[meta["item"].astype(str).isin(fold["train"])])
        missing = sorted(classes - trained)
        if missing:
            out.append(f"Warning: fold {i} has no training rows of class(es) "
                       f"{', '.join(map(repr, missing))}: it cannot learn them. Use fewer "
                       "folds, or more items of these classes.")
    return out


def _imbalance(labels: pd.Series, resolved: Mapping[int, InstanceParams]) -> list[str]:
    counts = labels.value_counts()
    if len(counts) < 2 or counts.iloc[-1] * IMBALANCE_RATIO > counts.iloc[0]:
        return []
    ratio = counts.iloc[0] / max(counts.iloc[-1], 1)
    fix = "" if all(p.class_weights for p in resolved.values()) else \
        "consider class_weights = true, and "
    return [f"Warning: the classes are imbalanced: {counts.index[0]!r} has {counts.iloc[0]} "
            f"rows, {counts.index[-1]!r} {counts.iloc[-1]} ({ratio:.1f}x): {fix}read "
            "balanced metrics (UAR, macro F1) beside accuracy."]


def _short_run(resolved: Mapping[int, InstanceParams]) -> list[str]:
    """A warning per instance that trains few epochs with regularisers still on; the fix
    names only the regularisers still on (never one the user has already turned off)."""
    out = []
    for k, p in resolved.items():
        epochs = int(p.epochs)
        active = [name for name in REGULARISERS if p[name]]
        if epochs < SHORT_RUN_EPOCHS and active:
            fix = " ".join(f"--set {name}=0" for name in active)
            out.append(
                f"Warning: instance {k} trains at most {epochs} epochs with the regularisation "
                f"tuned for longer runs ({', '.join(active)}; the default epochs is 60): a "
                f"short run may end near chance. For a quick check use epochs >= "
                f"{SHORT_RUN_EPOCHS}, or turn {'it' if len(active) == 1 else 'them'} off "
                f"({fix}).")
    return out


__all__ = ["IMBALANCE_RATIO", "SHORT_RUN_EPOCHS", "data_checks"]
