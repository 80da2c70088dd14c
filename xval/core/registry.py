"""`Registry`: things looked up by name, one class for every registry of the project.

Architectures (`architectures`), feature types (`preprocessing.features`), transformers
families (`architectures.hf`), tasks (`xval.tasks`), executors (`xval.executors`) and
workbook sheets (`xval.report.workbook`) are each one `Registry`: added with `register`, found with `get`, listed with `names`. An
unknown name is always the same error, `UnknownNameError` (a `ConfigurationError`, so a
`ValueError`), in the same words:

    task_type='clasification': expected one of classification, regression, detection,
    representation (the tasks registered in xval.tasks). Did you mean 'classification'?

Example:

```python
from xval.core.registry import Registry

COLOURS = Registry("colour", setting="colour", where="my_module")
COLOURS.register("red", (255, 0, 0))
COLOURS.get("red")        # (255, 0, 0)
COLOURS.get("rad")        # UnknownNameError: colour='rad': expected one of red (...)
```
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from xval.core.errors import ConfigurationError

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(ConfigurationError):
    """A name that no entry of a registry has (the message lists the registered ones and
    the closest to the name given)."""


class Registry(Generic[T]):
    """Entries of one kind, registered by name.

    Args:
        kind: what an entry is, in messages (`"task"`, `"feature type"`).
        setting: how a user gives the name, in messages (`"task_type"`, `"feature"`).
        where: where entries are registered, in messages (`"xval.tasks"`).
        sort: `names()` sorted; else in registration order. Defaults to `False`.
        error: the exception class of an unknown name (`UnknownNameError` or a subclass
            of it). Defaults to `UnknownNameError`.
    """

    def __init__(self, kind: str, *, setting: str, where: str, sort: bool = False,
                 error: type[UnknownNameError] = UnknownNameError) -> None:
        self.kind = kind
        self.setting = setting
        self.where = where
        self.sort = sort
        self.error = error
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Adds `entry` under `name`; registering an equal entry again does nothing.

        Returns:
            The entry.

        Raises:
            ValueError: when the name is not a non-empty string, or another entry has it.
        """
        known = self._entries.get(name)
        if known is None or known != entry:
            self.check_free(name)
        self._entries[name] = entry
        return entry

    def check_free(self, name: str) -> None:
        """Refuses a name that cannot be registered (before an entry is built for it).

        Raises:
            ValueError: when the name is not a non-empty string, or an entry has it.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"A {self.kind} needs a name that is a non-empty string; got "
                             f"{name!r}.")
        if name in self._entries:
            raise ValueError(f"A {self.kind} named {name!r} is already registered "
                             f"({self.where}); choose another name, or unregister it first.")

    def unregister(self, name: str, *, missing_ok: bool = False) -> None:
        """Removes the entry `name` (a test's own, after the test).

        Raises:
            UnknownNameError: for a name not registered, unless `missing_ok`.
        """
        if name not in self._entries:
            if missing_ok:
                return
            raise self.unknown(name)
        del self._entries[name]

    def get(self, name: str) -> T:
        """The entry registered as `name`.

        Raises:
            UnknownNameError: for an unknown name, listing the registered ones and the
                closest.
        """
        if name not in self._entries:
            raise self.unknown(name)
        return self._entries[name]

    def unknown(self, name: object) -> UnknownNameError:
        """The error for a name no entry has: `setting=name: expected one of ... (the
        kinds registered in where). Did you mean ...?`"""
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(names) or "(none)"
        kinds = self.kind[:-1] + "ies" if self.kind.endswith("y") else self.kind + "s"
        return self.error(f"{self.setting}={name!r}: expected one of {known} (the "
                          f"{kinds} registered in {self.where}).{hint}")

    def names(self) -> list[str]:
        """The registered names (sorted, or in registration order: see `sort`)."""
        return sorted(self._entries) if self.sort else list(self._entries)

    def values(self) -> list[T]:
        """The entries, in the order of `names()`."""
        return [self._entries[name] for name in self.names()]

    def items(self) -> list[tuple[str, T]]:
        """`(name, entry)` pairs, in the order of `names()`."""
        return [(name, self._entries[name]) for name in self.names()]

    def find(self, accept: Callable[[T], bool]) -> list[T]:
        """The entries `accept` is true of, in the order of `names()`."""
        return [entry for entry in self.values() if accept(entry)]

    def copy(self) -> Registry[T]:
        """A registry with the same settings and entries (a test's own, to add to)."""
        other: Registry[T] = Registry(self.kind, setting=self.setting, where=self.where,
                                      sort=self.sort, error=self.error)
        other._entries = dict(self._entries)
        return other

    def __getitem__(self, name: str) -> T:
        """`get(name)`."""
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
