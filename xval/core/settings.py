"""`Settings`: the base of the typed parameter records (`TrainingParams`, the `Config`
sections): a frozen dataclass, read by attribute, that also reads as a mapping; and
`setting`, the one declaration of a field: its default, its valid values and its help.

Code of the project reads a setting by attribute (`params.epochs`), so that a misspelt name
is an error `mypy` finds; a mapping view (`params["epochs"]`, `dict(params)`,
`{**params, ...}`) keeps what users and older code wrote working.

A field declared with `setting` is a key of `config.ini`: its type is the field's
annotation, and everything else about it (default, range or choices, help, notes) is said in
that one call. The configuration schema (`xval.config.schema.SCHEMA`), its validators, the
command-line flags and the parameter reference are derived from the records (`keys_of`), as
scikit-learn derives `get_params` from `__init__` and checks `_parameter_constraints`.

Example:

```python
@dataclasses.dataclass(frozen=True, eq=False)
class MyParams(Settings):  # as `xval.core.parameters.TrainingParams` declares its keys
    epochs: int = setting(60, "maximum epochs", low=1, high=100_000,
                          notes="Maximum epochs; early stopping usually ends training sooner.")
    min_epochs: int = setting(15, "epochs trained before early stopping starts", low=0,
                              absent=0)  # a key added after 0.1.0: a record without it means 0

keys_of(MyParams)["epochs"].expected()   # 'an integer in [1, 100000]'
```
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar, TypeVar

from xval.core.constraints import Interval, StrOptions, describe, satisfies

S = TypeVar("S", bound="Settings")
OS = TypeVar("OS", bound="OpenSettings")

__all__ = ["KINDS", "NOT_AN_OPTION", "Key", "OpenSettings", "Settings", "absent_values", "escape",
           "keys_of", "off_values", "setting", "setting_names"]

KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
"""A key's kind -> the Python type of its values."""
_CLOSED = {(False, False): "both", (True, False): "right", (False, True): "left",
           (True, True): "neither"}
_KEY = "xval.key"
"""The metadata entry of a field declared with `setting`: the key's declaration."""


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

    def replace(self: OS, **changes: Any) -> OS:
        """A copy with some settings changed: a name that is not a field goes into `EXTRA`
        (`EXTRA=` replaces them all)."""
        names = set(setting_names(type(self)))
        extra = {k: v for k, v in changes.items() if k not in names}
        known = {k: v for k, v in changes.items() if k in names}
        if extra:
            known[self.EXTRA] = {**known.get(self.EXTRA, getattr(self, self.EXTRA)), **extra}
        return dataclasses.replace(self, **known)

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


class _NotAnOption:
    """The `off` of a key that is no option to switch off."""

    def __repr__(self) -> str:
        return "NOT_AN_OPTION"


NOT_AN_OPTION: Any = _NotAnOption()
"""`Key.off` of a key that is no option to switch off (`off_values` leaves it out)."""


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of `config.ini`: its type, valid values, default and help. Declared as a
    field of a settings record with `setting` (read them with `keys_of`).

    Args:
        kind: `"str"`, `"int"`, `"float"` or `"bool"` (the field's annotation).
        help: one line saying what the key does (command-line flags show it).
        none: whether `none` (Python `None`) is allowed (`None` in the annotation).
            Defaults to `False`.
        choices: the allowed values, a function returning them (read at every check, so
            a registry's later additions count), or `None`.
        low: the lowest allowed value, or `None`.
        high: the highest allowed value, or `None`.
        open_low: `low` itself is excluded. Defaults to `False`.
        open_high: `high` itself is excluded. Defaults to `False`.
        default: the package's default value (a user's config.ini holds only what
            differs).
        notes: the longer explanation written above the key in a config file and in the
            parameter reference; `""` when `help` says it all. `{choices}` in it stands
            for the allowed values, each with its description (`describe`), as a
            registry gives them (see `note`).
        describe: `describe(value) -> str`, a few words about one allowed value (a
            registry's own description of its entry), or `None`.
        off: the value that switches the key's option off (`NOT_AN_OPTION` for a key that
            is no option to switch off): `off_values` gathers them.
        regulariser: the option regularises training (tuned for long runs: a short run
            is warned that it may end near chance). Defaults to `False`.
    """

    kind: str
    help: str
    none: bool = False
    choices: tuple[str, ...] | Callable[[], Sequence[str] | None] | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    default: Any = None
    notes: str = ""
    describe: Callable[[str], str] | None = None
    off: Any = NOT_AN_OPTION
    regulariser: bool = False

    @property
    def type(self) -> type:
        """The Python type of a value (`int` for `"int"`)."""
        return KINDS[self.kind]

    def options(self) -> tuple[str, ...] | None:
        """The allowed values as a tuple, or `None` when any value of the kind goes."""
        values = self.choices() if callable(self.choices) else self.choices
        return None if values is None else tuple(values)

    def constraints(self) -> list[Any]:
        """The valid values as constraints (`xval.core.constraints`), checked by its one
        validator: an `Interval` for a number, `StrOptions` for choices, `"boolean"`, and
        `None` where `none` is allowed."""
        options = self.options()
        closed = _CLOSED[(self.open_low, self.open_high)]
        kinds: dict[str, list[Any]] = {
            "bool": ["boolean"], "str": [StrOptions(options) if options else str],
            "int": [Interval(Integral, self.low, self.high, closed=closed)],
            "float": [Interval(Real, self.low, self.high, closed=closed)],
        }
        valid = kinds[self.kind]
        return valid + [None] if self.none else valid

    def expected(self) -> str:
        """What a valid value is, in words: `"an integer >= 1"`, `"one of db, log"`."""
        return describe(self.constraints(), ini=True)

    def note(self) -> str:
        """The notes, with `{choices}` replaced by the allowed values as `a (what a does) |
        b | ...` (so a list of registered names is never written by hand)."""
        if "{choices}" not in self.notes:
            return self.notes
        values = self.options() or ()
        described = [(v, self.describe(v) if self.describe else "") for v in values]
        listed = " | ".join(f"{v} ({d})" if d else v for v, d in described)
        return self.notes.replace("{choices}", listed or "one of the registered names")

    def spelt(self, value: Any) -> str:
        """`value` as config.ini spells it (`none`, `true`, `0.001`), before `text`
        escapes it."""
        if value is None:
            return "none"
        if satisfies(value, ["boolean"]):
            return "true" if value else "false"
        return str(value)

    def text(self, value: Any) -> str:
        """`value` as config.ini writes it (`spelt`; ` #` in text escaped as ` \\#`, which
        would start a comment: `escape`)."""
        return escape(self.spelt(value))


def escape(text: str) -> str:
    """A value as config.ini must hold it to be read back whole: `;` and `#` first or after
    white space escaped (`runs #2` -> `runs \\#2`), which would otherwise start a comment
    (`xval.config.inifile` reads it so: the value follows `key = `)."""
    return re.sub(r"(^|(?<=\s))([;#])", r"\1\\\2", text)


def setting(default: Any, help: str, *, low: float | None = None,
            high: float | None = None, open_low: bool = False, open_high: bool = False,
            choices: Sequence[str] | Callable[[], Sequence[str] | None] | None = None,
            notes: str = "", describe: Callable[[str], str] | None = None,
            absent: Any = dataclasses.MISSING, off: Any = NOT_AN_OPTION,
            regulariser: bool = False) -> Any:
    """Declares a field of a settings record as a key of `config.ini`: the one place that
    says its default, valid values and help (its type is the field's annotation: `int`,
    `float`, `str` or `bool`, with `| None` when `none` is allowed).

    Args:
        default: the package default.
        help: one line saying what it does (the command-line flag's help).
        low: the lowest allowed number, or `None`. Defaults to `None`.
        high: the highest allowed number, or `None`. Defaults to `None`.
        open_low: `low` itself is excluded. Defaults to `False`.
        open_high: `high` itself is excluded. Defaults to `False`.
        choices: the allowed strings, or a function returning them. Defaults to `None`.
        notes: the longer explanation (config files, the parameter reference); `{choices}`
            stands for the allowed values. Defaults to `""`.
        describe: `describe(value) -> str` for the values `{choices}` lists. Defaults to
            `None`.
        absent: for a key added after release 0.1.0, the value that leaves things as
            they were before it (a config.ini or a result recorded without the key means
            it): the field's default, while the package default is `default`. Defaults to
            `default`.
        off: the value that switches the option off (`off_values`: the plain training
            set), for a key that is an option. Defaults to none.
        regulariser: the option regularises training (`Key.regulariser`). Defaults to
            `False`.

    Returns:
        A `dataclasses.field` (its default: `absent` where given, else `default`).
    """
    declared = {"help": help, "low": low, "high": high, "open_low": open_low,
                "open_high": open_high, "default": default, "notes": notes,
                "describe": describe, "added": absent is not dataclasses.MISSING,
                "off": off, "regulariser": regulariser,
                "choices": choices if choices is None or callable(choices) else tuple(choices)}
    value = default if absent is dataclasses.MISSING else absent
    return dataclasses.field(default=value, metadata={_KEY: declared})


def _kind(annotation: Any) -> tuple[str, bool]:
    """`(kind, none)` of a field's annotation: `"float | None"` -> `("float", True)`,
    `"str | list[str] | None"` -> `("str", True)` (the first plain kind names it)."""
    text = annotation if isinstance(annotation, str) else \
        getattr(annotation, "__name__", str(annotation))
    parts = [part.strip() for part in text.split("|")]
    kind = next((part for part in parts if part in KINDS), None)
    if kind is None:
        raise TypeError(f"a setting's annotation is one of {', '.join(KINDS)} (with "
                        f"`| None` where none is allowed), not {text!r}")
    return kind, "None" in parts


def keys_of(cls: type) -> dict[str, Key]:
    """The keys a settings record declares (its fields made with `setting`), in field
    order: name -> `Key`.

    Raises:
        TypeError: for a field made with `setting` whose annotation names no kind.
    """
    out = {}
    for field in dataclasses.fields(cls):
        declared = field.metadata.get(_KEY)
        if declared is None:
            continue
        kind, none = _kind(field.type)
        out[field.name] = Key(kind, none=none, **{k: v for k, v in declared.items()
                                                  if k != "added"})
    return out


def off_values(cls: type) -> dict[str, Any]:
    """The keys of a record that are options to switch off -> the value that does it
    (their `off`), in field order."""
    return {name: key.off for name, key in keys_of(cls).items()
            if key.off is not NOT_AN_OPTION}


def absent_values(cls: type) -> dict[str, Any]:
    """The keys of a record added after release 0.1.0 -> the value a record without
    them means (their `absent`, the field's default)."""
    return {field.name: field.default for field in dataclasses.fields(cls)
            if field.metadata.get(_KEY, {}).get("added")}
