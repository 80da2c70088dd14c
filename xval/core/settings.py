"""`Settings`: the base of the typed parameter records (`TrainingParams`, the `Config`
sections): a frozen dataclass, read by attribute, that also reads as a mapping.

Code of the project reads a setting by attribute (`params.epochs`), so that a misspelt name
is an error `mypy` finds; a mapping view (`params["epochs"]`, `dict(params)`,
`{**params, ...}`) keeps what users and older code wrote working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, TypeVar

S = TypeVar("S", bound="Settings")
OS = TypeVar("OS", bound="OpenSettings")

__all__ = ["OpenSettings", "Settings", "setting_names"]


def setting_names(cls: type) -> tuple[str, ...]:
    """The names of a settings record's fields, in order."""
    return tuple(f.name for f in dataclasses.fields(cls))


@dataclasses.dataclass(frozen=True, eq=False)
class Settings(Mapping[str, Any]):
    """A typed, immutable record of named settings (subclass it as a frozen dataclass).

    `of(values)` builds one from a mapping (names it does not have are left out, missing
    ones take the field's default); `replace(**changes)` returns a changed copy;
    `to_dict()` gives plain values. As a mapping it holds `to_dict()`'s items, and it equals
    any mapping with the same items.
    """

    @classmethod
    def of(cls: type[S], values: Mapping[str, Any]) -> S:
        """The record of `values` (a mapping, or a record of this class).

        Raises:
            TypeError: when a field without a default is missing.
        """
        if isinstance(values, cls):
            return values
        names = setting_names(cls)
        return cls(**{k: v for k, v in values.items() if k in names})

    def replace(self: S, **changes: Any) -> S:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict, in field order."""
        return {name: getattr(self, name) for name in setting_names(type(self))}

    def __getitem__(self, name: str) -> Any:
        if name not in setting_names(type(self)):
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(setting_names(type(self)))

    def __len__(self) -> int:
        return len(setting_names(type(self)))

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({items})"


@dataclasses.dataclass(frozen=True, eq=False)
class OpenSettings(Settings):
    """Settings that also take names beyond their fields, kept in one mapping field named by
    `EXTRA` (an instance's architecture keywords, a feature type's options).

    `of(values)` puts every name that is not a field there; as a mapping the record is
    `to_dict()`: the fields but `EXTRA`, then those names, flat (what `params.json` and
    `dataset.json` record).
    """

    EXTRA: ClassVar[str]

    @classmethod
    def of(cls: type[OS], values: Mapping[str, Any]) -> OS:
        """The record of a flat mapping: its fields, and every other name in `EXTRA`."""
        if isinstance(values, cls):
            return values
        names = set(setting_names(cls)) - {cls.EXTRA}
        known = {k: v for k, v in values.items() if k in names}
        return cls(**known, **{cls.EXTRA: {k: v for k, v in values.items() if k not in names}})

    def to_dict(self) -> dict[str, Any]:
        """The flat dict: the fields but `EXTRA`, then its names."""
        out = {name: getattr(self, name) for name in setting_names(type(self))
               if name != self.EXTRA}
        out.update(getattr(self, self.EXTRA))
        return out

    def __getitem__(self, name: str) -> Any:
        extra = getattr(self, self.EXTRA)
        if name in extra:
            return extra[name]
        if name == self.EXTRA or name not in setting_names(type(self)):
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
