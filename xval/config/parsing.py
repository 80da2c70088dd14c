"""Instance parameters as written: `'name=value'` strings read with `ast.literal_eval`
(never `exec` or `eval`), a dict or a list of them per instance, and `--set` values."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from xval.core.errors import ParameterError

Spec = Mapping[str, Any] | Sequence[str]
"""An instance as declared: a dict, or a list of `'name=value'` strings."""


def parse_assignment(text: Any, where: str = "--set") -> tuple[str, Any]:
    """Parses `'name=value'`, the value with `ast.literal_eval`.

    Args:
        text: the assignment, e.g. `'learning_rate=0.001'` or `'architecture="vgg_mini"'`.
        where: what to name in errors (e.g. `"instance 3"`).

    Returns:
        `(name, value)`.

    Raises:
        ParameterError: when there is no `=`, the name is not an identifier, or the value
            is not a Python literal.
    """
    if not isinstance(text, str):
        raise ParameterError(
            f"{where}: expected strings like 'name=value', got {type(text).__name__} {text!r}."
        )
    if "=" not in text:
        raise ParameterError(f"{where}: {text!r} is not of the form name=value.")
    name, raw = (part.strip() for part in text.split("=", 1))
    if not name.isidentifier():
        raise ParameterError(f"{where}: {name!r} in {text!r} is not a valid parameter name.")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        _check_depth(raw, f"{where}: {name}", e)
        raise ParameterError(
            f"{where}: the value of {name} in {text!r} is not a Python literal ({raw!r}). "
            f'Quote strings: {name}="{raw}"; numbers, True/False, None, lists and dicts are '
            "accepted as written."
        ) from e
    return name, value


def parse_instance(spec: Any, where: str) -> dict[str, Any]:
    """Turns an instance (dict, or list of `'name=value'` strings) into a dict.

    Args:
        spec: the instance as declared in the experiment script.
        where: what to name in errors.

    Returns:
        dict of parameter name to value.

    Raises:
        ParameterError: for a bad form, a repeated name or a value that is not a literal.
    """
    if isinstance(spec, dict):
        for name in spec:
            if not isinstance(name, str) or not name.isidentifier():
                raise ParameterError(f"{where}: parameter name {name!r} is not an identifier.")
        return dict(spec)
    if isinstance(spec, (list, tuple)):
        out = {}
        for text in spec:
            name, value = parse_assignment(text, where)
            if name in out:
                raise ParameterError(f"{where}: parameter {name!r} is given twice.")
            out[name] = value
        return out
    raise ParameterError(
        f"{where}: expected a dict or a list of 'name=value' strings, got "
        f"{type(spec).__name__}."
    )


_KINDS = {"[": "list", "(": "tuple", "{": "dict (or set)"}
_CLOSE = {"[": "]", "(": ")", "{": "}"}


def _check_depth(raw: str, where: str, error: BaseException) -> None:
    """Refuses a list, tuple or dict that failed to read because it is nested too deeply
    (Python's parser stops at 200 levels, `ast.literal_eval` at the recursion limit):
    called a list, never taken for text.

    Raises:
        ParameterError: naming the value's kind, its depth and the limit.
    """
    text = raw.strip()
    if text[:1] not in _KINDS or text[-1:] != _CLOSE[text[0]]:
        return
    deep = isinstance(error, (RecursionError, MemoryError)) or "too many nested" in str(error)
    if not deep:
        return
    depth = level = 0
    for char in text:
        level += (char in "[({") - (char in "])}")
        depth = max(depth, level)
    raise ParameterError(
        f"{where}: the value is a {_KINDS[text[0]]} nested {depth} levels deep, deeper than "
        "a value can be read (fewer than 200 levels); give a flatter value.")


def parse_override(text: str) -> tuple[str, Any]:
    """Parses a `--set name=value`: the value as a literal, or else as the text itself
    (so `--set optimizer=sgd` needs no quotes; the type check still applies).

    Returns:
        `(name, value)`.

    Raises:
        ParameterError: when there is no `=`, the name is not an identifier, or the value is
            a list, tuple or dict nested too deeply to be read.
    """
    if "=" not in text:
        raise ParameterError(f"--set: {text!r} is not of the form name=value.")
    name, raw = (part.strip() for part in text.split("=", 1))
    if not name.isidentifier():
        raise ParameterError(f"--set: {name!r} in {text!r} is not a valid parameter name.")
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        _check_depth(raw, f"--set {name}", e)
        return name, raw


def parse_overrides(texts: Sequence[str]) -> dict[str, Any]:
    """Parses every `--set name=value` (see `parse_override`); a name given twice is an
    error, as in an instance.

    Returns:
        dict of name to value.

    Raises:
        ParameterError: for a malformed one, or a name given twice.
    """
    out: dict[str, Any] = {}
    for text in texts:
        name, value = parse_override(text)
        if name in out:
            raise ParameterError(f"--set {name} is given twice ({name}={out[name]!r} and "
                                 f"{text!r}); give it once.")
        out[name] = value
    return out
