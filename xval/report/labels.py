"""Per-label scores of an instance whose clips hold several labels (tagging): each label's
test average precision per fold, its support and its thresholds, for the workbook's Labels
sheet (`xval.report.workbook.labels`) and the per-label AP figure (`per_label_ap.png`).

Everything is read from the instance's files through the results store: each fold's test
predictions (pooled to clips as the task pools them, `Scoring.fusion`) and the thresholds
its fold record says it chose on its validation clips (`FoldResult.postprocessing`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from xval import tasks
from xval.core.records import Status
from xval.core.storage import ResultsStore
from xval.report.results import InstanceResult
from xval.tasks.fusion import pooled
from xval.tasks.tagging import THRESHOLD, label_table

PER_LABEL_AP = "per_label_ap.png"


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


def label_scores(result: InstanceResult, results_store: ResultsStore | None = None
                 ) -> LabelScores | None:
    """The per-label scores of an instance (see the module), or `None` for an instance of a
    task whose clips hold one label, or without test predictions."""
    task = tasks.get(result.task_type or tasks.DEFAULT)
    classes = next((f.classes for f in result.folds if f.classes), None)
    if not task.multi_label or not classes:
        return None
    aps, support, numbers, chosen = [], np.zeros(len(classes), dtype=int), [], []
    read = (results_store or result.results_store).predictions
    for fold in result.folds:
        rows = read(result.layout, fold.fold) if fold.status == Status.OK else None
        if not rows:
            continue
        clips = pooled(rows, task, classes)
        table = label_table(clips.targets, clips.scores)
        aps.append(table["ap"])
        support += table["support"]
        numbers.append(fold.fold)
        if fold.postprocessing is not None and THRESHOLD in fold.postprocessing.values:
            chosen.append(np.asarray(fold.postprocessing.values[THRESHOLD], dtype=float))
    if not aps:
        return None
    thresholds = np.median(np.stack(chosen), axis=0) if chosen else \
        np.full(len(classes), np.nan)
    return LabelScores(list(classes), numbers, np.stack(aps), support, thresholds)


def per_label_ap(result: InstanceResult, results_store: ResultsStore) -> list[Path]:
    """Each label's test AP over the folds (`per_label_ap.png`): bars at the mean, dots the
    folds, the labels in order of their mean AP."""
    from xval.report import figures  # noqa: PLC0415  (matplotlib: when a figure is drawn)

    scores = label_scores(result, results_store)
    if scores is None:
        return []
    order = np.argsort(-np.nan_to_num(scores.mean_ap, nan=-1.0), kind="stable")
    path = result.layout.plots_dir / PER_LABEL_AP
    return [figures.per_class_scores(
        scores.ap[:, order], [scores.classes[i] for i in order], path, ylabel="AP",
        title=f"Per-label test AP (clip level) over {len(scores.folds)} folds; mAP "
              f"{np.nanmean(scores.mean_ap):.3f}")]
