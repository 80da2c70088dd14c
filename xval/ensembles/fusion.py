"""The arithmetic of an ensemble of instances: the grid of weights (`weight_grid`), the
weights whose fused validation clip scores have the lowest loss (`choose_weights`) and the
fused scores (`fused`). A member's clips come pooled as its task fuses them
(`xval.tasks.fusion.pooled`, the task's `Fusion`), so nothing here spells a task.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from xval.tasks.fusion import Clips, FusingTask, fusion_of

GRID_STEP = 0.1
"""The step of the grid of weights searched on each fold's validation clips."""


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

