"""The members of an ensemble of instances, as its record names them (`ensemble.json`): where
each one's folder is (`member_layout`, through the results-folder layout), and whether it was
trained again since the ensemble fused it (`retrained`). Both are written here only: the
report and `predict` and `export` ask them, each with what it has read of the member."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xval.core.layout import ExperimentLayout, InstanceLayout
from xval.core.records import EnsembleRecord


def member_layout(experiment: str | Path, entry: Mapping[str, Any]) -> InstanceLayout:
    """The instance folder of a member: `entry` is one of `EnsembleRecord.members`, its
    `experiment` relative to the ensemble's experiment folder `experiment` (`"."`: the
    same one)."""
    folder = Path(experiment) / str(entry.get("experiment", "."))
    return ExperimentLayout(folder).instance(int(entry["instance"]))


def member_name(experiment: str, instance: int) -> str:
    """How `python -m xval ensemble` names a member: `2`, or `EXP_DIR:2` for instance 2 of
    another experiment (`experiment`: its folder relative to the ensemble's, `"."`: the
    same)."""
    return str(instance) if experiment == "." else f"{experiment}:{instance}"


@dataclasses.dataclass(frozen=True)
class Retrained:
    """How a member changed since the ensemble fused it; false when it did not.

    Attributes:
        params: `(made, now)`, the hashes of its parameters then and now, when they differ;
            else `None`.
        folds: the folds whose model is not the one fused (another SHA-256), sorted.
    """

    params: tuple[str, str] | None = None
    folds: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.params or self.folds)


def retrained(entry: Mapping[str, Any], params_hash: str | None,
              models: Mapping[int, str | None]) -> Retrained:
    """Whether the member `entry` (one of `EnsembleRecord.members`) was trained again since
    the ensemble was made from it.

    Args:
        entry: the member as the ensemble recorded it (`params_hash`, `models`).
        params_hash: the hash of the member's parameters now, or `None` (unknown).
        models: fold number -> the SHA-256 of the model its fold record names now (`None`:
            none).

    Returns:
        A `Retrained`: other parameters (an ensemble made before their hash was kept has
        none to compare), or other fold models (made before `models` was kept: none).
    """
    made = entry.get("params_hash")
    changed = EnsembleRecord.changed_folds(entry, models)
    if made and params_hash and params_hash != made:
        return Retrained((str(made), params_hash), tuple(changed))
    return Retrained(None, tuple(changed))
