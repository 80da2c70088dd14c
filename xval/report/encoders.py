"""The encoder table: which pretrained encoder for these data, and is the
difference real?

Its rows are the instances that read a pretrained encoder's embeddings (their own store's
`dataset.json` names its encoder, or several encoders' embeddings side by side: a stacked
store), and the ensembles of instances whose members all do. Each row gives the selection
metric's test scores over the folds (at the selection's level), and against the best row
over the same folds the corrected resampled t-test and the Bayesian correlated t-test: the
numbers of the Statistics sheet and of `python -m xval compare`, with the best encoder as
the reference instead of the selected instance. Per class, each fold's test score of its
task's `class_scores` (classification: F1, tagging: AP), the mean over the folds.

The terminal shows it under the results table (`encoder_lines`); the workbook as the
Encoders sheet (`xval.report.workbook.encoders`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from xval.config.loader import Config
from xval.config.selection import metric_direction
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import DatasetError
from xval.core.records import InstanceStatus
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.stats import fold_scores, versus
from xval.report.tables import Selection, alpha_of, level_names, rope_of, selection_level
from xval.report.views import instance_view, task_of

MAX_TERMINAL_CLASSES = 12
"""The terminal shows the per-class scores of at most this many classes (the workbook all)."""


@dataclasses.dataclass
class EncoderRow:
    """One row of the table.

    Attributes:
        id: the instance.
        encoder: what it reads (`aisfx`, `aisfx+birdnet`, `fusion of 1, 2`).
        scores: fold -> its test score.
        versus: against the best row (`versus` of the Statistics sheet: difference, its
            corrected CI, t, p, Holm's p (`None`), P(better), P(equivalent), P(worse), the
            verdict), or `None` for the best row.
        per_class: each class's mean test score over the folds (`None` where no fold has
            one, or the task scores no class).
        status: the instance's status (`InstanceStatus`; a partial one's scores are of its
            finished folds). Defaults to `"complete"`.
    """

    id: int
    encoder: str
    scores: dict[int, float]
    versus: list[Any] | None
    per_class: list[float | None]
    status: str = InstanceStatus.COMPLETE.value

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.scores.values()))) if self.scores else None

    @property
    def std(self) -> float | None:
        """The standard deviation over the folds (`ddof=1`, as the results table's)."""
        values = list(self.scores.values())
        return float(np.std(values, ddof=1)) if len(values) > 1 else None


@dataclasses.dataclass
class EncoderTable:
    """The table: its metric and level, the best row's id, the per-class score's name and
    the classes, and the rows, best first."""

    metric: str
    level: str
    best: int
    class_score: str | None
    classes: list[str]
    rows: list[EncoderRow]


def encoder_of(results: ExperimentResults, r: InstanceResult,
               found: dict[int, str]) -> str | None:
    """What instance `r` reads (see the module), or `None`; `found`: the instances read
    before it (an ensemble's members come first)."""
    if r.ensemble is not None:
        members = [m for m in r.ensemble.members if m.get("experiment", ".") == "."]
        if len(members) < len(r.ensemble.members) or not all(
                int(m["instance"]) in found for m in members):
            return None
        return "fusion of " + ", ".join(str(m["instance"]) for m in members)
    path = r.layout.dataset_file  # the instance's own store, else the experiment's
    if not path.is_file():
        path = results.layout.dataset_file
    if not path.is_file():
        return None
    try:
        info, _ = results.results_store.read_record(path, DatasetInfo.from_dict, sealed=False)
    except DatasetError:
        return None
    if info is None:
        return None
    return info.encoded_by


def encoder_table(results: ExperimentResults, config: Config | None = None
                  ) -> EncoderTable | None:
    """The encoder table of an experiment, or `None` with fewer than two rows. The best
    row, the reference of the others, is the complete instance with the best mean (any row
    when none is complete): a partial instance's mean is of fewer folds, and a reference
    that lacks folds leaves the others too few common folds to compare."""
    selection = Selection.of(results, config)
    metric, split = selection.metric, selection.split
    level = selection_level(results, metric, split)
    found: dict[int, str] = {}
    for r in sorted(results, key=lambda r: (r.ensemble is not None, r.id)):
        encoder = encoder_of(results, r, found)
        if encoder is not None and fold_scores(r, metric, "test", level):
            found[r.id] = encoder
    if len(found) < 2:
        return None
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    scores = {k: fold_scores(results[k], metric, "test", level) for k in found}
    complete = [k for k in found if results[k].status == InstanceStatus.COMPLETE.value]
    best = max(complete or found,
               key=lambda k: (sign * float(np.mean(list(scores[k].values()))), -k))
    repeats = (results.num_repeats, results.num_folds or 0)
    class_score, classes = _class_header(results)
    rows = [EncoderRow(k, found[k], scores[k],
                       None if k == best else versus(
                           results[k], results[best], scores[k], metric, level,
                           alpha_of(config), rope_of(config), repeats),
                       _per_class(results[k], len(classes)), results[k].status)
            for k in sorted(found, key=lambda k: (k != best, -sign * np.mean(
                list(scores[k].values())), k))]
    return EncoderTable(metric, level, best, class_score, classes, rows)


def _class_header(results: ExperimentResults) -> tuple[str | None, list[str]]:
    """The name of the task's per-class score (`None`: it has none) and the classes."""
    first = next(iter(results), None)
    if first is None:
        return None, []
    task = task_of(first)
    view = instance_view(first, results.results_store)
    return (task.class_scores.name if task.class_scores else None), view.classes


def _per_class(r: InstanceResult, n_classes: int) -> list[float | None]:
    """Each class's mean test score over the folds (see `EncoderRow`)."""
    task = task_of(r)
    if task.class_scores is None or not n_classes:
        return [None] * n_classes
    values = task.class_scores.per_fold(instance_view(r))
    if values is None or not len(values):
        return [None] * n_classes
    with np.errstate(all="ignore"):
        means = np.nanmean(np.asarray(values, dtype=float), axis=0)
    return [None if not np.isfinite(v) else float(v) for v in means]


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def encoder_lines(results: ExperimentResults, config: Config | None = None) -> list[str]:
    """The encoder table as lines for the terminal (none with fewer than two rows)."""
    table = encoder_table(results, config)
    if table is None:
        return []
    label = f"test {level_names(results)[table.level]} {table.metric}"
    lines = [f"Encoders ({label}, mean ± std over the folds; against the best, instance "
             f"{table.best}, over the same folds: the difference, the corrected resampled "
             "t-test's p, and P(better / equivalent / worse) of the Bayesian correlated "
             "t-test):"]
    width = max(len(row.encoder) for row in table.rows)
    for row in table.rows:
        head = f"  {row.id:>3}  {row.encoder:<{width}}  {_number(row.mean)} ± {_number(row.std)}"
        if row.status != InstanceStatus.COMPLETE.value:
            head += f" ({row.status}: {len(row.scores)} fold{'s' * (len(row.scores) > 1)})"
        if row.versus is None:
            lines.append(head + "  best")
            continue
        diff, p, better, same, worse = (row.versus[0], row.versus[4], *row.versus[6:9])
        lines.append(head + f"  {diff:+.3f}  p {_number(p, 2)}  P {_number(better, 2)} / "
                     f"{_number(same, 2)} / {_number(worse, 2)}" if diff is not None
                     else head + f"  {row.versus[-1]}")
    shown = table.classes[:MAX_TERMINAL_CLASSES]
    if table.class_score and shown:
        lines.append(f"  per class (test {table.class_score}, mean over the folds"
                     + ("" if len(shown) == len(table.classes) else
                        f"; {len(table.classes) - len(shown)} more classes in the "
                        "workbook's Encoders sheet") + "):")
        lines.append(" " * (9 + width) + "  ".join(f"{c[:8]:>8}" for c in shown))
        for row in table.rows:
            lines.append(f"  {row.id:>3}  {row.encoder:<{width}}  " + "  ".join(
                f"{_number(v):>8}" for v in row.per_class[:len(shown)]))
    return lines
