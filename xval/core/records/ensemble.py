"""`EnsembleRecord` (`ensemble.json`): what an ensemble of instances is made of."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from xval.core.records.base import FORMAT_VERSION, Record, expect

EQUAL = "equal"
"""Equal weights in every fold: chosen on nothing (the default)."""
VALIDATION = "validation"
"""Weights chosen per fold on that fold's validation clips: the clips whose loss chose each
member's epoch, so the weights lean towards the member whose validation score is the most
optimistic there (docs/results.md, "The selected row against its best member")."""
WEIGHTINGS = (EQUAL, VALIDATION)
DEFAULT_WEIGHTING = EQUAL
"""How `Ensemble(1, 2)` and `python -m xval ensemble` weigh their members unless told."""


@dataclasses.dataclass
class EnsembleRecord(Record):
    """`ensemble.json`: the members of an ensemble of instances and its weights per fold.

    An ensemble is an instance derived from its members' recorded predictions: per fold,
    the members' clip scores (classification: probabilities, each member's segments pooled
    as its own clip level is; regression: values) are averaged with equal weights (or
    weights chosen on the fold's validation clips only), then scored on its test clips.

    Attributes:
        members: one dict per member, in order: `instance` (its id), `experiment` (its
            experiment folder relative to the ensemble's: `"."` for the same one),
            `params_hash` (the member's parameters when the ensemble was made) and `models`
            (fold number, as text -> the SHA-256 of the member's `fold_<i>.keras` then: a
            member trained again, even with the same parameters, has other models;
            `changed_folds`). Ensembles made before `models` was kept have none.
        weighting: `"equal"` or `"validation"` (chosen per fold). Records written
            before the weighting was kept were `"validation"`.
        objective: what the weights minimise on the validation clips (`"log loss"`,
            `"squared error"`).
        step: the step of the grid of weights (they sum to 1).
        folds: one dict per fold: `fold`, `weights` (one per member), `chosen_on`
            (`"val"`, `"equal"`, or why equal weights stand in), `val_clips`,
            `test_clips` and `member_val_loss` (each member's loss on the validation clips,
            the objective's, alone).
        notes: what the fallbacks were, in words.
    """

    KIND: ClassVar[str] = "ensemble record"

    members: list[dict[str, Any]]
    weighting: str = VALIDATION
    objective: str = ""
    step: float = 0.1
    folds: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    format: int = FORMAT_VERSION

    @classmethod
    def _check(cls, data: Mapping[str, Any], read: dict[str, Any]) -> None:
        """Two members at least, each naming its instance; a known weighting; every fold's
        weights one per member."""
        members = data.get("members") or []
        expect(len(members) >= 2 and all(isinstance(m, dict) and isinstance(
            m.get("instance"), int) for m in members),
            "its members are not two or more {'instance': id} entries")
        expect(all(isinstance(m.get("models") or {}, dict) for m in members),
                "a member's models are not a {fold: SHA-256} mapping")
        expect(data.get("weighting", VALIDATION) in WEIGHTINGS,
                f"its weighting {data.get('weighting')!r} is not one of {WEIGHTINGS}")
        for fold in data.get("folds") or []:
            weights = fold.get("weights") if isinstance(fold, dict) else None
            expect(isinstance(weights, list) and len(weights) == len(members),
                    "a fold's weights are not one per member")

    @property
    def instances(self) -> list[int]:
        """The members' instance ids, in order."""
        return [int(m["instance"]) for m in self.members]

    def weights(self, fold: int | None = None) -> list[float]:
        """The weights of fold `fold`, or (`None`) their mean over the folds: what
        `predict` uses with every fold's models."""
        found = [f["weights"] for f in self.folds if fold is None or f.get("fold") == fold]
        if not found:
            n = len(self.members)
            return [1.0 / n] * n
        mean = [sum(w[k] for w in found) / len(found) for k in range(len(self.members))]
        return [round(w, 6) for w in mean]

    @staticmethod
    def changed_folds(member: Mapping[str, Any], now: Mapping[int, str | None]) -> list[int]:
        """The folds whose model is not the one the ensemble fused for `member`.

        Args:
            member: one entry of `members`.
            now: fold number -> the SHA-256 its fold record names now (`None`: none).

        Returns:
            The folds whose recorded model differs from or lacks the one now, sorted
            (empty for an ensemble made before `models` was kept).
        """
        made = member.get("models") or {}
        return sorted(int(i) for i, digest in made.items() if now.get(int(i)) != digest)

    def describe(self) -> str:
        """The members and weights in words: `instance 1 (0.45) + instance 2 (0.55)`."""
        return " + ".join(f"instance {k} ({w:.2f})"
                          for k, w in zip(self.instances, self.weights()))
