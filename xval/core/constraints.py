"""Valid values, declared once in scikit-learn's shape and checked by one validator.

A declaration maps each name to a list of constraints; a value is valid when it satisfies
one of them, as scikit-learn's `_parameter_constraints` (`sklearn.utils._param_validation`):

```python
_parameter_constraints = {
    "n_splits": [Interval(Integral, 1, None, closed="left")],
    "stratify": ["boolean", StrOptions({"rows", "items"})],
    "timeout": [Interval(Real, 0, None, closed="neither"), None],
}
validate_params(_parameter_constraints, {"n_splits": 0})
# ConfigurationError: n_splits=0: expected an integer >= 1.
```

A constraint is an `Interval`, `StrOptions`, `"boolean"`, `None`, a type or `InstancesOf`
(types, with words for them). The schema, the builders' keywords, the search space, the
splitters and the experiment declaration declare their values this way, and `check` is the
one place a value is refused. scikit-learn's own classes are not reused: here a bool is
never a number (its `Interval(Integral, ...)` takes `True`), a real interval refuses nan and
the infinities, and the messages read as the project's (`an integer in [1, 2048]`).

Messages come in two styles: Python's (`ini=False`: `one of 'gru', 'lstm'`, `True or
False`, `None`), for values given in Python, and config.ini's (`ini=True`: `one of gru,
lstm`, `a boolean`, `none`), for values written as text.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from xval.core.arguments import option_of
from xval.core.errors import ConfigurationError

__all__ = ["FINITE", "Constraint", "InstancesOf", "Interval", "StrOptions", "check",
           "check_options", "describe", "number_text", "satisfies", "validate_params"]

_CLOSED = ("left", "right", "both", "neither")


def number_text(x: float) -> str:
    """A bound as written: `1` for 1.0, `0.5`."""
    return str(int(x)) if float(x).is_integer() else str(x)


class Constraint:
    """A set of valid values (subclasses say which)."""

    type_name: str = "object"
    """The Python type a valid value has (`int`), for messages."""

    def is_satisfied_by(self, value: Any) -> bool:
        """Whether `value` is valid."""
        raise NotImplementedError

    def has_type(self, value: Any) -> bool:
        """Whether `value` has the type the constraint asks for (not checking its range)."""
        return self.is_satisfied_by(value)

    def describe(self, ini: bool = False) -> str:
        """What a valid value is, in words (`ini`: as config.ini writes values)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.describe()


@dataclasses.dataclass(frozen=True)
class Interval(Constraint):
    """Numbers of a type between two bounds (scikit-learn's `Interval`).

    Args:
        type: `Integral` (an int, never a bool) or `Real` (an int or a float, finite).
        left: the lower bound, or `None` (unbounded).
        right: the upper bound, or `None`.
        closed: which bounds are valid values: `"left"`, `"right"`, `"both"` or
            `"neither"`. Defaults to `"both"`.
    """

    type: type
    left: float | None
    right: float | None
    closed: str = "both"

    def __post_init__(self) -> None:
        if self.type not in (Integral, Real) or self.closed not in _CLOSED:
            raise TypeError(f"Interval({self.type!r}, closed={self.closed!r}): expected "
                            f"Integral or Real, closed one of {', '.join(_CLOSED)}.")

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return "int" if self.type is Integral else "float"

    def has_type(self, value: Any) -> bool:
        return isinstance(value, self.type) and not isinstance(value, (bool, np.bool_))

    def is_satisfied_by(self, value: Any) -> bool:
        if not self.has_type(value):
            return False
        try:
            if self.type is Real and not math.isfinite(value):
                return False
        except OverflowError:  # an int beyond any float
            return False
        if self.left is not None and (value < self.left or (
                value == self.left and self.closed in ("right", "neither"))):
            return False
        return self.right is None or not (value > self.right or (
            value == self.right and self.closed in ("left", "neither")))

    def bounds(self) -> str:
        """The bounds in words: `"in [0, 1)"`, `">= 1"`, `""` when unbounded."""
        low_in, high_in = self.closed in ("left", "both"), self.closed in ("right", "both")
        if self.left is not None and self.right is not None:
            return (f"in {'[' if low_in else '('}{number_text(self.left)}, "
                    f"{number_text(self.right)}{']' if high_in else ')'}")
        if self.left is not None:
            return f"{'>=' if low_in else '>'} {number_text(self.left)}"
        if self.right is not None:
            return f"{'<=' if high_in else '<'} {number_text(self.right)}"
        return ""

    def describe(self, ini: bool = False) -> str:
        bounds = f" {self.bounds()}" if self.bounds() else ""
        if self.type is Integral:
            return f"an integer{bounds}"
        return f"a number{bounds} (finite)" if ini else f"a finite number{bounds}"


FINITE = Interval(Real, None, None)
"""Any finite number (not a bool): `FINITE.is_satisfied_by(value)`."""


class StrOptions(Constraint):
    """Strings among a set (scikit-learn's `StrOptions`).

    Args:
        options: the valid strings, or a function returning them (read at every check, so
            that a registry's later additions count). A `*` in an option stands for any
            characters (`hf:*`: a model's name after `hf:`; `*/*`: a path).
    """

    type_name = "str"

    def __init__(self, options: Iterable[str] | Callable[[], Iterable[str]]) -> None:
        self.options = options

    def values(self) -> tuple[str, ...]:
        """The valid strings, in their declared order."""
        return tuple(self.options() if callable(self.options) else self.options)

    def has_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and any(
            value == option or ("*" in option and re.fullmatch(
                ".*".join(map(re.escape, option.split("*"))), value, re.DOTALL) is not None)
            for option in self.values())

    def describe(self, ini: bool = False) -> str:
        return "one of " + ", ".join(v if ini else repr(v) for v in self.values())


class _Boolean(Constraint):
    type_name = "bool"

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self, ini: bool = False) -> str:
        return "a boolean" if ini else "True or False"


class _NoneConstraint(Constraint):
    type_name = "None"

    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def describe(self, ini: bool = False) -> str:
        return "none" if ini else "None"


_NOUNS: dict[type, str] = {str: "a string", dict: "a dict", list: "a list"}


class InstancesOf(Constraint):
    """Values of some types (scikit-learn's `_InstancesOf`; a bool is of no other type).

    Args:
        types: a type or a tuple of types.
        what: what such a value is, in words (`"the path of a config.ini"`). Defaults to
            the type's noun (`"a string"`).
    """

    def __init__(self, types: type | tuple[type, ...], what: str | None = None) -> None:
        self.types = types if isinstance(types, tuple) else (types,)
        self.what = what or _NOUNS.get(self.types[0], f"a {self.types[0].__name__}")

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return " or ".join(t.__name__ for t in self.types)

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.types) and (
            bool in self.types or not isinstance(value, bool))

    def describe(self, ini: bool = False) -> str:
        return self.what


def _make(constraint: Any) -> Constraint:
    """The `Constraint` a declaration names: itself, `"boolean"`, `None` or a type.

    Raises:
        TypeError: for anything else.
    """
    if isinstance(constraint, Constraint):
        return constraint
    if constraint == "boolean":
        return _Boolean()
    if constraint is None:
        return _NoneConstraint()
    if isinstance(constraint, type):
        return InstancesOf(constraint)
    raise TypeError(f"Unknown constraint {constraint!r}: expected an Interval, StrOptions, "
                    "InstancesOf, 'boolean', None or a type.")


def satisfies(value: Any, constraints: Sequence[Any]) -> bool:
    """Whether `value` satisfies one of `constraints`."""
    return any(_make(c).is_satisfied_by(value) for c in constraints)


def describe(constraints: Sequence[Any], ini: bool = False) -> str:
    """What a valid value is: `"an integer >= 1"`, `"True, False, or one of 'rows'"`."""
    made = [_make(c) for c in constraints]
    parts = [("True, False" if isinstance(c, _Boolean) and len(made) > 1 and not ini
              else c.describe(ini)) for c in made]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", or " + parts[-1]


def check(name: str, value: Any, constraints: Sequence[Any], *, label: str | None = None,
          prefix: str = "", hint: str = "", ini: bool = False,
          error: type[Exception] = ConfigurationError) -> Any:
    """Returns `value` when it satisfies one of `constraints`, else raises one line.

    The line names the setting and its value, what was expected and, for a value of the
    wrong type, its type; a `name=value` setting given a string where one other type is
    expected (a number quoted by mistake) names that type first: `number='1': expected int
    (an integer >= 0); got str`. A NumPy scalar counts as the Python value it holds.

    Args:
        name: the setting's name.
        value: its value.
        constraints: the declared constraints (see the module's docstring).
        label: how the setting is named instead of `name=value`, e.g. `--n-mels 0`.
        prefix: put before the name, e.g. `"instance 3: "`.
        hint: put after what was expected, e.g. `"; use a value within it"`.
        ini: describe valid values as config.ini writes them. Defaults to `False`.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        The value (a NumPy scalar as its Python value).

    Raises:
        ConfigurationError (or `error`): when the value satisfies none of them.
    """
    if isinstance(value, np.generic):
        value = value.item()
    made = [_make(c) for c in constraints]
    if any(c.is_satisfied_by(value) for c in made):
        return value
    expected = describe(made, ini)
    got = ""
    if not any(c.has_type(value) for c in made):
        got = f"; got {type(value).__name__}"
        types = {c.type_name for c in made}
        if label is None and not ini and isinstance(value, str) and len(types) == 1:
            expected = f"{types.pop()} ({expected})"
    shown = label if label is not None else f"{name}={value!r}"
    raise error(f"{prefix}{shown}: expected {expected}{got}{hint}.")


def validate_params(parameter_constraints: Mapping[str, Sequence[Any]],
                    values: Mapping[str, Any], *, prefix: str = "",
                    hints: Mapping[str, str] | None = None,
                    error: type[Exception] = ConfigurationError) -> None:
    """Checks every declared name that `values` holds (`check`), in declaration order.

    Args:
        parameter_constraints: name -> its constraints.
        values: name -> value.
        prefix: put before every message.
        hints: name -> text put after what was expected (the fix).
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Raises:
        ConfigurationError (or `error`): for the first value that satisfies none of its
            constraints.
    """
    for name, constraints in parameter_constraints.items():
        if name in values:
            check(name, values[name], constraints, prefix=prefix,
                  hint=(hints or {}).get(name, ""), error=error)


def check_options(record: object) -> None:
    """Checks every field of an options record that `xval.core.arguments.option` declared
    with constraints (`check`, the field named by its flag).

    Raises:
        ConfigurationError: naming the flag (or the field), the value and what was expected.
    """
    for field in dataclasses.fields(record):  # type: ignore[arg-type]
        declared = option_of(field)
        if declared.get("constraints") is None:
            continue
        value = getattr(record, field.name)
        name = declared["flags"][-1] if declared["flags"] else field.name
        check(name, value, declared["constraints"], label=f"{name} {value!r}",
              hint=declared["hint"])
