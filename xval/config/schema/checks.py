"""Checking values against the schema: `parse` (text), `check` (a typed value),
`check_section` (the rules between keys), `validate` (a whole configuration); and the
registries' hooks (`bind_choices`, `bind_rules`)."""

from __future__ import annotations

import configparser
import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from xval.config.schema.table import SCHEMA
from xval.core import constraints
from xval.core.constraints import number_text
from xval.core.errors import ConfigurationError
from xval.core.settings import Key

# (low, high) pairs that must be ordered.
_RANGES = {
    "augmentation": (("min_snr_db", "max_snr_db"), ("min_eq_gain_db", "max_eq_gain_db"),
                     ("min_rate", "max_rate"), ("min_room_size", "max_room_size")),
}


def bind_choices(section: str, key: str, provider: Callable[[], Sequence[str]],
                 describe: Callable[[str], str] | None = None) -> None:
    """Makes a key's choices those of a registry in a higher layer.

    The schema sits below the packages whose registries name some values (executors are
    registered in `xval.executors`, above the configuration): each registry binds its names
    here when it is imported, and checks from then on accept exactly the registered names.
    Before that, any string is accepted here and the registry's own `get` refuses an unknown
    name where the value is used.

    Args:
        section: the config.ini section.
        key: the key.
        provider: a function returning the registered names (read at every check).
        describe: `describe(name) -> str`, the registry's few words about an entry, for
            the key's notes (`Key.note`). Defaults to `None`.
    """
    SCHEMA[section][key] = dataclasses.replace(SCHEMA[section][key], choices=provider,
                                               describe=describe)


Rule = Callable[[Mapping[str, Any], Callable[[str], str]], str]
"""`rule(values, name) -> problem`: a check between keys of a section, bound by a registry
(`bind_rules`); `name(key)` names a setting as the message should (`--n-mfcc 40`); the
problem is `""` when the values pass (or the rule's keys are not all given)."""

_BOUND_RULES: dict[str, list[Rule]] = {}


def bind_rules(section: str, rule: Rule) -> None:
    """Adds a rule between the keys of a section, defined where the values' meaning is
    known (the feature registry binds the rules of each feature type: n_mfcc at most
    n_mels for `mfcc`). `check_section` applies it from then on; binding the same rule
    twice applies it once.

    Args:
        section: the config.ini section.
        rule: `rule(values, name) -> problem` (see `Rule`).
    """
    rules = _BOUND_RULES.setdefault(section, [])
    if rule not in rules:
        rules.append(rule)


def label(section: str, key: str, value: Any, style: str = "ini") -> str:
    """How a setting is named in messages.

    Args:
        section: the config.ini section.
        key: the key.
        value: its value.
        style: `"ini"` (`[features] n_mels = 0`), `"flag"` (`--n-mels 0`), `"param"`
            (`n_mels=0`) or `"value"` (`0`, where the caller names the setting). Defaults
            to `"ini"`.

    Returns:
        The text.
    """
    if style == "flag":
        return f"--{key.replace('_', '-')} {value!r}"
    if style == "param":
        return f"{key}={value!r}"
    if style == "value":
        return repr(value)
    return f"[{section}] {key} = {value!r}"


def _spec(section: str, key: str, error: type[Exception]) -> Key:
    if section not in SCHEMA:
        raise error(unknown_name("section", section, SCHEMA, "config.ini"))
    if key not in SCHEMA[section]:
        raise error(unknown_name("key", key, SCHEMA[section], f"[{section}]"))
    return SCHEMA[section][key]


def unknown_name(kind: str, name: str, valid: Any, where: str) -> str:
    """The error text for an unknown section or key, with the closest valid names."""
    close = difflib.get_close_matches(str(name), list(valid), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown {kind} {name!r} in {where}.{hint} Valid: {', '.join(valid)}."


def _check_unquoted(section: str, key: str, raw: str, where: str,
                    error: type[Exception]) -> None:
    """Refuses a config.ini text value written in quotes (`data_dir = "data"`): config.ini
    keeps quotes as part of the value, so the folder would be named `"data"`, quotes
    included."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" and raw[0] not in raw[1:-1]:
        raise error(f"{label(section, key, raw)}{where}: the value is in quotes, which "
                    f"config.ini keeps as part of it; write {key} = {raw[1:-1]} (no quotes).")


def parse(section: str, key: str, text: str, *, style: str = "ini", where: str = "",
          error: type[Exception] = ConfigurationError) -> Any:
    """Parses the text of a value (a config.ini line, a command-line flag) and checks it.

    Args:
        section: the config.ini section.
        key: the key.
        text: the value as written (`"none"` for `None` where allowed).
        style: how to name the setting in errors (see `label`). Defaults to `"ini"`.
        where: appended to the name in errors, e.g. `" in config.ini"`.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        The typed, checked value.

    Raises:
        ConfigurationError: when the text is not of the key's type or out of range.
    """
    spec = _spec(section, key, error)
    raw = text.strip()
    if spec.none and raw.lower() == "none":
        return None
    value: Any
    try:
        if spec.kind == "bool":
            states = configparser.ConfigParser.BOOLEAN_STATES
            if raw.lower() not in states:
                raise ValueError(raw)
            value = states[raw.lower()]
        elif spec.kind == "str":
            value = raw
        else:
            value = spec.type(raw)
    except ValueError:
        raise error(
            f"{label(section, key, raw, style)}{where}: expected {spec.kind} "
            f"({spec.expected()})."
        ) from None
    if spec.kind == "str" and style == "ini":
        _check_unquoted(section, key, raw, where, error)
    return check(section, key, value, style=style, where=where, error=error)


def check(section: str, key: str, value: Any, *, style: str = "ini", where: str = "",
          prefix: str = "", error: type[Exception] = ConfigurationError) -> Any:
    """Checks a typed value against the schema (an int is accepted for a float key).

    Args:
        section: the config.ini section.
        key: the key.
        value: the value.
        style: how to name the setting in errors (see `label`). Defaults to `"ini"`.
        where: appended to the name in errors.
        prefix: put before the name in errors, e.g. `"instance 3: "`.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        The value (an int converted to float for a float key).

    Raises:
        ConfigurationError: naming the setting, the value and what was expected.
    """
    spec = _spec(section, key, error)
    if spec.kind == "float" and constraints.satisfies(value, [_ANY_INT]):
        value = _as_float(value)
    return constraints.check(key, value, spec.constraints(), ini=True, error=error,
                             label=f"{prefix}{label(section, key, value, style)}{where}")


_ANY_INT = constraints.Interval(Integral, None, None)


def _as_float(value: int) -> float | int:
    """An int given for a float key, as a float (unchanged beyond any float)."""
    try:
        return float(value)
    except OverflowError:
        return value


def check_section(section: str, values: Mapping[str, Any], *, style: str = "ini",
                  where: str = "", error: type[Exception] = ConfigurationError) -> dict[str, Any]:
    """Checks the keys given of one section, then the rules between them.

    Rules between keys: `[features]` fmin < fmax (none: sample_rate / 2), fmax at most
    sample_rate / 2, and the rules of the chosen feature type (bound by the feature
    registry, `bind_rules`: n_mfcc at most n_mels, the top CQT bin below sample_rate / 2);
    `[augmentation]` every min_x at most its max_x. A rule is checked when all of its keys
    are given.

    Args:
        section: the config.ini section.
        values: dict of key to typed value (some or all keys of the section).
        style: how to name settings in errors (see `label`). Defaults to `"ini"`.
        where: appended to names in errors.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        A new dict of checked values.

    Raises:
        ConfigurationError: naming the first bad setting, its value and what was expected.
    """
    out = {key: check(section, key, value, style=style, where=where, error=error)
           for key, value in values.items()}
    rules = _Rules(section, out, style, where, error)
    rules.ordered_ranges()
    if section == "features":
        rules.mel_band_limits()
    rules.bound_rules()
    return out


@dataclass
class _Rules:
    """The rules between the keys of one section (see `check_section`)."""

    section: str
    out: dict[str, Any]
    style: str
    where: str
    error: type[Exception]

    def name(self, key: str) -> str:
        return label(self.section, key, self.out[key], self.style)

    def has(self, *keys: str) -> bool:
        return all(k in self.out for k in keys)

    def ordered_ranges(self) -> None:
        for low, high in _RANGES.get(self.section, ()):
            if self.has(low, high) and self.out[low] > self.out[high]:
                other = f"{high} = {self.out[high]!r}" if self.style == "ini" \
                    else self.name(high)
                raise self.error(f"{self.name(low)} is greater than {other}{self.where}; "
                                 "swap them.")

    def mel_band_limits(self) -> None:
        out = self.out
        if not self.has("sample_rate", "fmin", "fmax"):
            return
        nyquist = out["sample_rate"] / 2
        if out["fmax"] is not None and out["fmax"] > nyquist:
            raise self.error(f"{self.name('fmax')}{self.where}: expected at most sample_rate / 2 "
                             f"= {number_text(nyquist)} (sample_rate={out['sample_rate']}); "
                             "lower it or set it to none.")
        top = nyquist if out["fmax"] is None else out["fmax"]
        if out["fmin"] >= top:
            said = " (sample_rate / 2)" if out["fmax"] is None else ""
            raise self.error(f"{self.name('fmin')}{self.where}: expected less than fmax = "
                             f"{number_text(top)}{said}.")

    def bound_rules(self) -> None:
        """The rules a registry bound to this section (`bind_rules`)."""
        for rule in _BOUND_RULES.get(self.section, ()):
            problem = rule(self.out, lambda key: self.name(key) + self.where)
            if problem:
                raise self.error(problem)


def validate(sections: Mapping[str, Mapping[str, Any]], *, where: str = "",
             error: type[Exception] = ConfigurationError) -> dict[str, dict[str, Any]]:
    """Checks a whole configuration: every section and key present and valid.

    Args:
        sections: dict of section name to dict of typed values.
        where: appended to names in errors, e.g. `" in /path/config.ini"`.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        A new dict of checked sections.

    Raises:
        ConfigurationError: for an unknown or missing section or key, or a bad value.
    """
    for section in sections:
        if section not in SCHEMA:
            raise error(unknown_name("section", section, SCHEMA, "config.ini"))
    out = {}
    for section, keys in SCHEMA.items():
        if section not in sections:
            raise error(f"Section [{section}] is missing{where}.")
        values = sections[section]
        for key in values:
            if key not in keys:
                raise error(unknown_name("key", key, keys, f"[{section}]{where}"))
        missing = [k for k in keys if k not in values]
        if missing:
            raise error(f"Key {missing[0]!r} is missing from [{section}]{where}; add it (see "
                        "the project's config.ini for its default).")
        out[section] = check_section(section, values, where=where, error=error)
    return out
