"""How an ensemble of instances fuses a task's clip scores (`Scoring.fusion`, a `Fusion`
each task writes in its package): what it reads of a member's predictions file, how
segments pool to a clip, the loss its weights minimise, and what the task's scoring takes
of the fused scores; and a member's predictions pooled to its clips (`pooled`) by that
rule. The ensembles' weights and fused scores are theirs (`xval.ensembles.fusion`); a task
whose `Scoring.fusion` is `None` is not fused (detection, representation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

FLOOR = 1e-7
"""The smallest probability read from a predictions file (they hold six decimals), so that
its logarithm is finite when segments are pooled and a clip is scored."""

Rows = Sequence[Mapping[str, str]]
"""Rows of a predictions file, as `csv.DictReader` gives them."""


class Fusion:
    """The fusion of one task's scores (subclass it per kind of output).

    Attributes:
        objective: what `loss` is, in words (recorded with an ensemble).
    """

    objective: ClassVar[str] = ""

    def read(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        """The values of each row that are averaged over a clip's segments,
        `np.ndarray [shape=(rows, k)]`."""
        raise NotImplementedError

    def pool(self, means: np.ndarray) -> np.ndarray:
        """A clip's scores from the mean of its segments' `read` values. Defaults to the
        mean itself."""
        return means

    def targets(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        """The target of each row, as the task's scoring takes it."""
        raise NotImplementedError

    def loss(self, targets: np.ndarray, scores: np.ndarray) -> float:
        """The loss the ensemble's weights minimise on the validation clips."""
        raise NotImplementedError

    def outputs(self, scores: np.ndarray) -> np.ndarray:
        """What `Scoring.evaluate` and `prediction_columns` take for fused scores. Defaults
        to the scores."""
        return scores

    def decide(self, scores: Mapping[str, float], params: Mapping[str, Any] | None = None
               ) -> Any:
        """What `predict` says of a clip from its fused scores (name -> score) and the
        post-processing chosen for the ensemble (`params`, or `None`)."""
        raise NotImplementedError


class FusingTask(Protocol):
    """What the arithmetic reads of a task (`xval.tasks.Task`, which imports this module):
    its name and its scoring, whose `fusion` is the task's `Fusion` or `None`."""

    @property
    def name(self) -> str:
        """The task's name."""

    @property
    def scoring(self) -> Any:
        """The task's `Scoring`."""


@dataclasses.dataclass
class Clips:
    """One member's scores on one split of one fold, pooled to clips, sorted by clip id.

    Attributes:
        ids: the clip ids, `np.ndarray [shape=(c,)]`.
        scores: the clips' scores as the task fuses them (`Scoring.fusion`):
            classification and tagging: probabilities `[shape=(c, classes)]`; regression:
            values `[shape=(c, 1)]`.
        targets: the clips' targets (`[shape=(c,)]`; tagging: 0/1 `[shape=(c, classes)]`).
        items: the clips' items; labels: their labels; written: their targets as the
            predictions file writes them.
    """

    ids: np.ndarray
    scores: np.ndarray
    targets: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    written: np.ndarray


def fusion_of(task: FusingTask) -> Fusion:
    """The task's fusion (`Scoring.fusion`).

    Raises:
        ValueError: for a task whose scores are not fused (detection, representation).
    """
    if task.scoring.fusion is None:
        raise ValueError(f"{task.name} scores are not fused by an ensemble of instances.")
    return task.scoring.fusion


def pooled(rows: Sequence[Mapping[str, str]], task: FusingTask, classes: Sequence[str]) -> Clips:
    """A member's predictions (rows of a predictions file) pooled to clips, sorted by id,
    as the task fuses them (`xval.tasks.fusion`): classification: each clip's probabilities
    are the softmax of the mean of its segments' log-probabilities (floored at `FLOOR`),
    the member's own clip level from the six decimals the file keeps; tagging: the mean of
    its segments' probabilities; regression: the mean of its segments' values.
    """
    fusion = fusion_of(task)
    clip = np.array([r["clip"] for r in rows])
    ids, first, inverse = np.unique(clip, return_index=True, return_inverse=True)
    values = fusion.read(rows, classes)
    sums = np.zeros((len(ids), values.shape[1]))
    np.add.at(sums, inverse, values)
    scores = fusion.pool(sums / np.bincount(inverse, minlength=len(ids))[:, None])
    targets = fusion.targets(rows, classes)[first]
    column = np.array([r[name] for r in rows for name in ("item", "label", "target")])
    return Clips(ids, scores, targets, *(column[k::3][first] for k in range(3)))


