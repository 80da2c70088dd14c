"""`Record`: the base of the typed records, whose `from_dict` checks what it reads from
the field annotations.

A record is a dataclass. `to_dict()` gives its JSON-ready values; `from_dict(data)` reads
them back and refuses, with a `RecordError` naming the problem, data that is not a record
of its kind: not a mapping, a field of another type than its annotation says (a bool is no
number; an int is a float), a required field missing, a newer format than this release
reads. Checks and conversions that annotations do not express are the subclass's hooks
(`_check`, `_finish`); fields never read from a file are `TRANSIENT`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, Union

from xval.core.constraints import InstancesOf, satisfies
from xval.core.errors import ResultsConflictError
from xval.core.settings import Settings

FORMAT_VERSION = 2
"""The format of the records written by this release."""

SPLITS = ("train", "val", "test")
SCORED_SPLITS = (*SPLITS, "rank")
"""The splits a fold may be scored on: its three sets, and the validation items that only
rank instances (`rank_split`: kept out of the epoch choice)."""
LEVELS = ("segment", "clip")

Metrics = dict[str, dict[str, Any]]
"""Split (`train`, `val`, `test`) -> metric name -> value (a confusion matrix is a list)."""

R = TypeVar("R", bound="Record")


class RecordError(ResultsConflictError):
    """A result file that is not a record of its kind (wrong types, a missing field)."""


class Status(str, enum.Enum):
    """State of one fold. The value is what `fold_<i>.json` stores."""

    OK = "ok"  # The fold trained and every split's outputs and loss are finite.
    FAILED = "failed"  # The fold raised, or training diverged; `message` says why.


class InstanceStatus(str, enum.Enum):
    """State of one instance, derived from its fold files."""

    COMPLETE = "complete"  # Every fold is done.
    PARTIAL = "partial"  # Some folds are done, none failed: a rerun resumes it.
    FAILED = "failed"  # A fold failed; the instance's other folds were not started.
    PENDING = "pending"  # No fold is done yet.
    PRUNED = "pruned"  # A search stopped the trial early; its finished folds are kept.


def expect(cond: bool, what: str) -> None:
    """Raises `RecordError(what)` unless `cond`."""
    if not cond:
        raise RecordError(what)


def read_version(data: Mapping[str, Any], kind: str) -> int:
    """The `"format"` of a record's data.

    Raises:
        RecordError: for a format that is missing, not a number, or newer than this
            release's.
    """
    expect("format" in data, f"it has no format: a {kind} this release did not write "
                             "(the instance's results are rerun with --overwrite)")
    version = data["format"]
    expect(satisfies(version, [int]),
            f"its format {version!r} is not a number")
    if version > FORMAT_VERSION:
        raise RecordError(f"it is a {kind} of format {version}, written by a newer release "
                          f"than this one (format {FORMAT_VERSION}); upgrade to read it")
    return version


def as_mapping(data: Any, kind: str) -> Mapping[str, Any]:
    """`data` when it is a mapping.

    Raises:
        RecordError: `it holds list, not a fold record`.
    """
    expect(isinstance(data, Mapping), f"it holds {type(data).__name__}, not a {kind}")
    return data


def _plain(value: Any) -> Any:
    """JSON-ready copy: records (and parameter records) as their `to_dict()`, enums as
    their values."""
    if isinstance(value, (Record, Settings)):
        return _plain(value.to_dict())
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _parts(hint: Any) -> tuple[list[Any], bool]:
    """The types of an annotation and whether it allows `None` (`int | None`)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = list(typing.get_args(hint))
        return [a for a in args if a is not type(None)], type(None) in args
    return [hint], hint is type(None) or hint is Any


def _accepts(hint: Any, value: Any) -> bool:
    """Whether `value` (from JSON) has the top-level type of `hint` (a bool is no number;
    an int is a float; a record or an enum is read from a mapping or a string)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type) and issubclass(origin, Record):
        return isinstance(value, Mapping)
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return value in {m.value for m in origin}
    if origin is float:
        return satisfies(value, [InstancesOf((int, float))])
    if origin is int:
        return satisfies(value, [int])
    if origin in (dict, list, str, bool):
        return isinstance(value, origin)
    return True


def _convert(hint: Any, value: Any) -> Any:
    """A checked JSON value as the annotation's type: records and enums built."""
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type) and issubclass(origin, Record):
        return origin.from_dict(value)
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return origin(value)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@dataclasses.dataclass
class Record:
    """The base of the typed records (see the module's docstring)."""

    KIND: ClassVar[str] = "record"
    """What a record is, in messages (`"fold record"`)."""
    TRANSIENT: ClassVar[tuple[str, ...]] = ()
    """Fields that travel with the record but are never written or read."""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (without its `TRANSIENT` fields)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in self.TRANSIENT}

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        """Reads `to_dict()`'s output.

        Raises:
            RecordError: when `data` is not a record of this kind.
        """
        data = as_mapping(data, cls.KIND)
        hints = _hints(cls)  # type: ignore[arg-type]  # a class is hashable
        kwargs: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = field.name
            if name in cls.TRANSIENT:
                continue
            if name == "format":
                kwargs[name] = read_version(data, cls.KIND)
                continue
            kinds, nullable = _parts(hints[name])
            value = data.get(name)
            if value is None:
                if nullable:
                    kwargs[name] = None
                elif field.default is dataclasses.MISSING \
                        and field.default_factory is dataclasses.MISSING:
                    raise RecordError(f"its {name!r} is NoneType None")
                continue
            hint = next((k for k in kinds if _accepts(k, value)), None)
            if hint is None:
                if any(isinstance(k, type) and issubclass(k, enum.Enum) for k in kinds):
                    allowed = ", ".join(m.value for k in kinds for m in k)
                    raise RecordError(f"its {name} {value!r} is not one of {allowed}")
                raise RecordError(f"its {name!r} is {type(value).__name__} {value!r:.60}")
            kwargs[name] = _convert(hint, value)
        cls._check(data, kwargs)
        return cls(**cls._finish(kwargs))

    @classmethod
    def _check(cls, data: Mapping[str, Any], read: dict[str, Any]) -> None:
        """Checks what the annotations do not express (a subclass's hook).

        Raises:
            RecordError: naming the problem.
        """

    @classmethod
    def _finish(cls, read: dict[str, Any]) -> dict[str, Any]:
        """The constructor's arguments from what was read (a subclass's hook)."""
        return read
