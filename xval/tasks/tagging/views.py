"""What tagging shows beyond its metrics: each label's test average precision per fold, its
support and its threshold, as the workbook's Labels sheet (`LABELS`) and the per-label AP
figure (`PER_LABEL_AP`), given as data the report renders (`xval.tasks.views`).

Everything comes from each believed fold's test predictions (pooled to clips as the task
pools them, `Scoring.fusion`) and the thresholds its fold record says it chose on its
validation clips (`FoldResult.postprocessing`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from xval.tasks.fusion import pooled
from xval.tasks.tagging.metrics import average_precisions
from xval.tasks.views import Bars, ClassScores, Figure, Instance, Sheet

THRESHOLD = "tag_threshold"
"""The instance parameter each fold chooses on its validation clips."""


@dataclasses.dataclass
class LabelScores:
    """One instance's test scores per label.

    Attributes:
        classes: the labels, `[shape=(labels,)]`.
        folds: the fold numbers of the rows of `ap`.
        ap: average precision per fold and label, `np.ndarray [shape=(folds, labels)]`,
            NaN where a fold tests no clip of the label.
        support: test clips holding each label, summed over the folds.
        thresholds: each label's threshold: the median over the folds of what each chose on
            its validation clips (NaN when no fold recorded one).
    """

    classes: list[str]
    folds: list[int]
    ap: np.ndarray
    support: np.ndarray
    thresholds: np.ndarray

    @property
    def mean_ap(self) -> np.ndarray:
        """Each label's AP averaged over the folds that test it (NaN where none does)."""
        out = np.full(self.ap.shape[1], np.nan)
        tested = ~np.isnan(self.ap).all(axis=0)
        out[tested] = np.nanmean(self.ap[:, tested], axis=0)
        return out


def label_scores(instance: Instance) -> LabelScores | None:
    """The per-label scores of an instance (see the module), or `None` without classes or
    test predictions."""
    classes = instance.classes
    if not classes:
        return None
    aps, support, numbers, chosen = [], np.zeros(len(classes), dtype=int), [], []
    for fold in instance.folds:
        if not fold.predictions:
            continue
        clips = pooled(fold.predictions, instance.task, classes)
        aps.append(average_precisions(np.asarray(clips.targets), clips.scores))
        support += np.asarray(clips.targets).sum(axis=0).astype(int)
        numbers.append(fold.fold)
        if fold.postprocessing is not None and THRESHOLD in fold.postprocessing.values:
            chosen.append(np.asarray(fold.postprocessing.values[THRESHOLD], dtype=float))
    if not aps:
        return None
    thresholds = np.median(np.stack(chosen), axis=0) if chosen else \
        np.full(len(classes), np.nan)
    return LabelScores(list(classes), numbers, np.stack(aps), support, thresholds)


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)


def label_rows(instance: Instance) -> list[list[Any]]:
    """One row per label of the instance, the rarest labels first (the Labels sheet)."""
    scores = label_scores(instance)
    if scores is None:
        return []
    tested = (~np.isnan(scores.ap)).sum(axis=0)
    with np.errstate(invalid="ignore"):
        std = np.array([np.nanstd(scores.ap[:, j], ddof=1) if tested[j] > 1 else np.nan
                        for j in range(len(scores.classes))])
    return [[scores.classes[j], _number(scores.mean_ap[j]), _number(std[j]), int(tested[j]),
             _number(scores.thresholds[j]), int(scores.support[j])]
            for j in np.argsort(scores.support, kind="stable")]


def per_label_ap(instance: Instance) -> Bars | None:
    """Each label's test AP over the folds, the labels in order of their mean AP."""
    scores = label_scores(instance)
    if scores is None:
        return None
    order = np.argsort(-np.nan_to_num(scores.mean_ap, nan=-1.0), kind="stable")
    return Bars(scores.ap[:, order], [scores.classes[i] for i in order], "AP",
                f"Per-label test AP (clip level) over {len(scores.folds)} folds; mAP "
                f"{np.nanmean(scores.mean_ap):.3f}")


LABELS = Sheet(
    "Labels", order=33,
    header=("label", "test AP (mean over folds)", "AP std", "folds testing it",
            "threshold (median over folds)", "support (test clips)"),
    rows=label_rows, number_columns=(1, 2, 4),
    note=("Per label, at the clip level: AP is the label's test average precision in each "
          "fold that tests a clip of it, averaged over those folds (std: over them); mAP, "
          "the selection metric, is the mean of the per-label APs of a fold. The threshold "
          "is the one each fold chose on its validation clips (the label's best F1 there; "
          "0.5 without a validation clip of the label), the median over folds: test F1 and "
          "predictions use it. Support: the test clips holding the label, over all folds."))
"""The Labels sheet: per tagging instance and label, its test AP (mean over the folds that
test it, and its spread), its threshold and its support."""

PER_LABEL_AP = Figure("per_label_ap.png", per_label_ap)
"""Each label's test AP over the folds (`plots/per_label_ap.png`): bars at the mean, dots
the folds."""


def _fold_ap(instance: Instance) -> np.ndarray | None:
    scores = label_scores(instance)
    return None if scores is None else scores.ap


LABEL_AP = ClassScores("AP", _fold_ap)
"""Each label's test AP per fold (clip level), for the encoder table."""
