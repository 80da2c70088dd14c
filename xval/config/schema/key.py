"""`Key`: one key of `config.ini`, its type, valid values, default and help."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from xval.config.inifile import escape
from xval.core.constraints import Interval, StrOptions, describe, satisfies

_KINDS = {"str": str, "int": int, "float": float, "bool": bool}
_CLOSED = {(False, False): "both", (True, False): "right", (False, True): "left",
           (True, True): "neither"}


@dataclass(frozen=True)
class Key:
    """One key of `config.ini`: its type, valid values, default and help.

    Args:
        kind: `"str"`, `"int"`, `"float"` or `"bool"`.
        help: one line saying what the key does (command-line flags show it).
        none: whether `none` (Python `None`) is allowed. Defaults to `False`.
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

    def text(self, value: Any) -> str:
        """`value` as config.ini writes it (`none`, `true`, `0.001`; ` #` in text escaped as
        ` \\#`, which would start a comment: `xval.config.inifile`)."""
        if value is None:
            return "none"
        if satisfies(value, ["boolean"]):
            return "true" if value else "false"
        return escape(str(value))


def int_key(help: str, low: float | None = None, high: float | None = None, **kw: Any) -> Key:
    return Key("int", help, low=low, high=high, **kw)


def float_key(help: str, low: float | None = None, high: float | None = None,
           **kw: Any) -> Key:
    return Key("float", help, low=low, high=high, **kw)


def choice_key(help: str, choices: Any, **kw: Any) -> Key:
    return Key("str", help, choices=choices if callable(choices) else tuple(choices), **kw)
