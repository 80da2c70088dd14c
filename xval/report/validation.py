"""Small helpers of the report about what can be shown: whether a value is a finite number,
and the invalid folds of an instance in one line.

Whether a fold file can be believed is the results store's question (`xval.core.storage.FoldCheck`,
which asks `xval.core.records.check_fold`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from xval.core.constraints import FINITE


def invalid_note(invalid: Mapping[int, str]) -> str:
    """The invalid folds of an instance in one line: `fold 1: <reason>; fold 2: ...`."""
    return "; ".join(f"fold {i}: {reason}" for i, reason in sorted(invalid.items()))


def finite(value: Any) -> TypeGuard[float]:
    """Whether `value` is a finite number (not a bool)."""
    return FINITE.is_satisfied_by(value)
