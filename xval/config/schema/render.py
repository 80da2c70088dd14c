"""The package defaults and a `config.ini` text written from the schema (every key with its
help as a comment)."""

from __future__ import annotations

import textwrap
from typing import Any

from xval.config.inifile import parse_ini
from xval.config.schema.table import SCHEMA, SECTION_NOTES
from xval.core.errors import ConfigurationError


def defaults() -> dict[str, dict[str, Any]]:
    """The package's defaults: section -> key -> value (`Key.default`)."""
    return {section: {key: spec.default for key, spec in keys.items()}
            for section, keys in SCHEMA.items()}


def render(values: dict[str, dict[str, Any]] | None = None, *, header: str = "") -> str:
    """A config.ini text: every key of `values` (default: every key, at its default) under
    its section, each with its help from the schema as a comment.

    Args:
        values: section -> key -> value to write; `None` writes the package defaults.
        header: comment lines for the top of the file (without `#`).

    Returns:
        The text (`python -m xval config --defaults` prints it), which reads back as
        `values` (`;` and `#` that would start a comment escaped; `%` is literal: config.ini
        is read without interpolation).

    Raises:
        ConfigurationError: for a value config.ini cannot hold (a line break, white space
            at its ends, `\\#` after white space), naming the key.
    """
    values = defaults() if values is None else values
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for section, keys in SCHEMA.items():
        given = values.get(section) or {}
        if not given:
            continue
        lines += ([""] if lines else []) + [f"[{section}]"]
        if section in SECTION_NOTES and len(given) == len(keys):
            lines += _comment(SECTION_NOTES[section])
        for key, spec in keys.items():
            if key in given:
                lines += _comment(spec.note() or spec.help[:1].upper() + spec.help[1:] + ".")
                lines.append(f"{key} = {spec.text(given[key])}")
    text = "\n".join(lines) + "\n"
    _check_read_back(text, values)
    return text


def _check_read_back(text: str, values: dict[str, dict[str, Any]]) -> None:
    """Refuses a text whose values do not read back as given (`parse_ini`)."""
    try:
        read = parse_ini(text, "config.ini")
    except ConfigurationError:
        read = {}
    for section, keys in values.items():
        for key, value in (keys or {}).items():
            if read.get(section, {}).get(key, ("",))[0] != SCHEMA[section][key].spelt(value):
                raise ConfigurationError(
                    f"[{section}] {key} = {value!r}: config.ini cannot hold this value (a "
                    "line break, white space at its start or end, or a backslash before "
                    "`;` or `#` after white space); give one without.")


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, width=92, break_long_words=False,
                                                  break_on_hyphens=False)]
