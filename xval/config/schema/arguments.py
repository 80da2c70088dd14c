"""Command-line flags made from the schema (`add_arguments`): typed, checked and described
by it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xval.config.schema.checks import parse
from xval.config.schema.table import SCHEMA
from xval.core.arguments import Arguments
from xval.core.errors import ConfigurationError


def _argparse_type(section: str, key: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(section, key, text, style="value")
        except ConfigurationError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = SCHEMA[section][key].kind
    return convert


def augmented_versions(name: str) -> Callable[[str], int]:
    """An argparse type for a number of augmented versions per file (an integer >= 0).

    Args:
        name: how the value is named in errors (`"N"`, `"--augment"`).
    """
    def convert(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = -1
        if n < 0:
            raise argparse.ArgumentTypeError(
                f"{name} {text!r}: expected the number of augmented versions per file, an "
                "integer >= 0")
        return n

    convert.__name__ = "int"
    return convert


def add_arguments(parser: Arguments, section: str,
                  keys: Sequence[str] | None = None, *,
                  defaults: Mapping[str, Any] | None = None) -> None:
    """Adds one flag per key (`--n-mels`), typed, checked and described by the schema.

    Each flag defaults to `None` (not given), so the caller merges the given flags over
    config.ini and checks the result with `check_section(..., style="flag")`. A bool key
    becomes `--key/--no-key`. A bad value stops argparse with the flag, the value and what
    is expected (exit status 2).

    Args:
        parser: an `argparse.ArgumentParser`.
        section: the config.ini section.
        keys: the keys to add. Defaults to every key of the section.
        defaults: dict of key to the default shown in the help (from config.ini), or `None`.
    """
    for key in keys or SCHEMA[section]:
        spec = SCHEMA[section][key]
        flag = "--" + key.replace("_", "-")
        text = f"{spec.help}: {spec.expected()}"
        if defaults and key in defaults:
            text += f" (config.ini: {defaults[key]})"
        text = text.replace("%", "%%")
        if spec.kind == "bool":
            parser.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(flag, dest=key, type=_argparse_type(section, key),
                                default=None, metavar=key.upper(), help=text)
