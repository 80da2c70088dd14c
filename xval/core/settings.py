"""`Settings`: the base of the typed parameter records (`TrainingParams`, the `Config`
sections): a frozen dataclass, read by attribute, that also reads as a mapping.

Code of the project reads a setting by attribute (`params.epochs`), so that a misspelt name
is an error `mypy` finds; a mapping view (`params["epochs"]`, `dict(params)`,
`{**params, ...}`) keeps what users and older code wrote working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

S = TypeVar("S", bound="Settings")

__all__ = ["Settings", "setting_names"]


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
