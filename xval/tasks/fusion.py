"""How an ensemble of instances fuses a task's clip scores (`Scoring.fusion`): what it reads
of a member's predictions file, how segments pool to a clip, the loss its weights minimise,
and what the task's scoring takes of the fused scores.

The report's ensembles (`xval.report.clip_scores`, `xval.report.ensembles`) and `predict`
on an ensemble (`xval.inference.fusion`) ask the task's `Fusion` and spell no task; a task
whose `Scoring.fusion` is `None` is not fused (detection, representation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

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
