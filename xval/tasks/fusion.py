"""How an ensemble of instances fuses a task's clip scores (`Scoring.fusion`): what it reads
of a member's predictions file, how segments pool to a clip, the loss its weights minimise,
and what the task's scoring takes of the fused scores.

And the arithmetic of an ensemble of instances, the one place it lives: a member's
predictions pooled to its clips (`pooled`), the grid of weights (`weight_grid`), the weights
whose fused validation clip scores have the lowest loss (`choose_weights`) and the fused
scores (`fused`). The ensembles' computation (`xval.running.ensembles`) and `predict` on an
ensemble (`xval.inference.ensembles`) use them and ask the task's `Fusion`, spelling no task;
a task whose `Scoring.fusion` is `None` is not fused (detection, representation).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from xval.tasks.metrics import softmax

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


class ClassFusion(Fusion):
    """Class probabilities: a clip's are the softmax of the mean of its segments'
    log-probabilities (the softmax of their mean logits, as the member's own clip level)."""

    objective = "log loss"

    def read(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.log(np.maximum(np.array([[float(r[f"p_{c}"]) for c in classes]
                                           for r in rows]), FLOOR))

    def pool(self, means: np.ndarray) -> np.ndarray:
        return softmax(means)

    def targets(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.array([r["target"] for r in rows]).astype(int)

    def loss(self, targets: np.ndarray, scores: np.ndarray) -> float:
        picked = scores[np.arange(len(targets)), targets]
        return float(-np.log(np.maximum(picked, FLOOR)).mean())

    def outputs(self, scores: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(scores, FLOOR))  # log-probabilities as logits

    def decide(self, scores: Mapping[str, float], params: Mapping[str, Any] | None = None
               ) -> Any:
        return max(scores, key=scores.__getitem__)


class ValueFusion(Fusion):
    """Numbers (regression): a clip's value is the mean of its segments'."""

    objective = "squared error"

    def read(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.array([[float(r["predicted"])] for r in rows])

    def targets(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.array([r["target"] for r in rows]).astype(float)

    def loss(self, targets: np.ndarray, scores: np.ndarray) -> float:
        return float(np.mean((scores[:, 0] - targets) ** 2))

    def decide(self, scores: Mapping[str, float], params: Mapping[str, Any] | None = None
               ) -> Any:
        return scores.get("value")


class FusingTask(Protocol):
    """What the arithmetic reads of a task (`xval.tasks.Task`, which imports this module):
    its name and its scoring, whose `fusion` is the task's `Fusion` or `None`."""

    @property
    def name(self) -> str:
        """The task's name."""

    @property
    def scoring(self) -> Any:
        """The task's `Scoring`."""


GRID_STEP = 0.1
"""The step of the grid of weights searched on each fold's validation clips."""


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


GRID_POINTS = 100_000
"""The most weight vectors `choose_weights` tries: with many members the grid's step grows
(0.1 keeps up to 10 members; 20 members take steps of 1/7)."""


def weight_grid(n: int, step: float = GRID_STEP) -> np.ndarray:
    """Every weight vector of `n` members on a grid of `step` that sums to 1,
    `np.ndarray [shape=(points, n)]`, the equal weights' nearest first. The grid is coarser
    where `step` would give more than `GRID_POINTS` vectors.

    The vectors are the compositions of `1 / step` units into `n` parts (stars and bars:
    each choice of `n - 1` bar positions among `units + n - 1` slots is one vector).
    """
    units = int(round(1 / step))
    while units > 1 and math.comb(units + n - 1, n - 1) > GRID_POINTS:
        units -= 1
    bars = np.array(list(itertools.combinations(range(units + n - 1), n - 1)), dtype=int)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars,
                            np.full((len(bars), 1), units + n - 1)], axis=1)
    grid = (np.diff(edges, axis=1) - 1).astype(float) / units
    return grid[np.argsort(np.abs(grid - 1.0 / n).sum(axis=1), kind="stable")]


def loss(task: FusingTask, targets: np.ndarray, scores: np.ndarray) -> float:
    """The loss the weights minimise (`Fusion.loss`): the mean log loss of the
    probabilities (classification), the mean binary log loss (tagging) or the mean squared
    error (regression)."""
    return fusion_of(task).loss(targets, scores)


def choose_weights(task: FusingTask, val: Sequence[Clips], step: float = GRID_STEP) -> np.ndarray:
    """The weights, summing to 1, whose average of the members' validation clip scores has
    the lowest `loss` (ties: the nearest to equal weights)."""
    targets = val[0].targets
    stack = np.stack([c.scores for c in val])  # (members, clips, k)
    grid = weight_grid(len(val), step)
    losses = [loss(task, targets, np.tensordot(w, stack, axes=1)) for w in grid]
    return grid[int(np.argmin(losses))]


def fused(weights: np.ndarray, clips: Sequence[Clips]) -> np.ndarray:
    """The members' clip scores averaged with `weights` (every member's clips aligned:
    sorted by id)."""
    return np.tensordot(np.asarray(weights, float), np.stack([c.scores for c in clips]),
                        axes=1)
