"""Whether a fold file can be believed, as the report reads it.

A fold file is a claim: that fold `i` of this instance, trained with the instance's
parameters, scored these metrics with the model beside it. `FoldCheck` asks
`xval.core.records.check_fold` each of those questions with what the results folder holds:
the fold number its file name gives, the instance its folder gives, the hash of the
instance's `params.json`, the `fold_<i>.keras` beside it (its SHA-256 computed once per
process and file version) and the valid range of every metric of the task
(`Task.metric_ranges`). A file that is not valid JSON or not a fold record is refused
earlier, by `read_record`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

from xval import tasks
from xval.core.errors import ConfigurationError
from xval.core.files import read_json
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, RecordError, check_fold

T = TypeVar("T")

_DIGESTS = 4096
"""Model digests kept per process: one per fold model of a large experiment."""


def read_record(path: Path, parse: Callable[[Any], T]) -> tuple[T | None, str]:
    """Reads a JSON result file through its record's `from_dict`.

    Args:
        path: the file.
        parse: the record's `from_dict`.

    Returns:
        `(record, "")`; `(None, "")` when the file does not exist; `(None, why)` when it
        is not valid JSON or not a record of its kind (`why` reads after the file's name:
        "is not valid JSON (...)").
    """
    if not path.exists():
        return None, ""
    try:
        return parse(read_json(path)), ""
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"is not valid JSON ({type(e).__name__}: {e})"
    except RecordError as e:
        return None, f"is not a record of its kind: {e}"
    except OSError as e:
        return None, f"cannot be read ({e.strerror or type(e).__name__})"


@functools.lru_cache(maxsize=_DIGESTS)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # with the path, the cache key: the same file, unchanged
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_digest(path: Path) -> str:
    """The SHA-256 of a model file, computed once per process for each version of the file
    (cached on its path, size and modification time)."""
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


@dataclasses.dataclass(frozen=True)
class TaskRules:
    """What the fold checks and the summary take from the task.

    Attributes:
        ranges: metric name -> `(low, high)` valid values (`Task.metric_ranges`).
        clip_falls_back: `Task.clip_is_segment_without_clips`.
    """

    ranges: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    clip_falls_back: bool = True


def task_rules(task_type: str | None) -> TaskRules:
    """The rules of `task_type`; a task this version does not know (or none) checks only
    that metrics are finite."""
    if not task_type:
        return TaskRules()
    try:
        task = tasks.get(task_type)
    except ConfigurationError:
        return TaskRules()
    return TaskRules(ranges=dict(task.metric_ranges),
                     clip_falls_back=bool(task.clip_is_segment_without_clips))


@dataclasses.dataclass(frozen=True)
class FoldCheck:
    """Checks the fold records of one instance folder (`check(i, record)`).

    Args:
        layout: the instance folder.
        params_hash: the hash of its `params.json`, or `None` (no file: not checked).
        params_problem: why its `params.json` cannot be used to check the folds (not
            valid JSON, not a parameter record, another instance's), or `""`.
        rules: the task's `TaskRules`.
    """

    layout: InstanceLayout
    params_hash: str | None = None
    params_problem: str = ""
    rules: TaskRules = dataclasses.field(default_factory=TaskRules)

    def __call__(self, fold: int, record: FoldResult) -> str:
        """Why the record of `fold_<fold>.json` is not believed, or `""`.

        A failed fold is believed (it counts as a failure, never as a result); an `ok` one
        is checked by `check_fold`.
        """
        if not record.ok:
            return ""
        if self.params_problem:
            return (f"{self.params_problem}, so the parameters it was trained with cannot be "
                    "checked")
        recorded_model = record.model_sha256 is not None or record.model_size is not None
        return check_fold(record, fold=fold, instance=self.layout.id,
                          params_hash=self.params_hash,
                          model=self.layout.fold_model(fold) if recorded_model else None,
                          model_digest=model_digest, ranges=self.rules.ranges)


def invalid_note(invalid: Mapping[int, str]) -> str:
    """The invalid folds of an instance in one line: `fold 1: <reason>; fold 2: ...`."""
    return "; ".join(f"fold {i}: {reason}" for i, reason in sorted(invalid.items()))


def finite(value: Any) -> TypeGuard[float]:
    """Whether `value` is a finite number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)
