"""The argument parser of every command line: argparse, with `--debug` on every parser and
a usage error that explains a file name starting with `-`.

`python -m xval predict MODEL -take1.wav` reads `-take1.wav` as an option; argparse alone
says "unrecognized arguments". Here the error adds, for every such argument that names an
existing file, how to pass it: after `--`, or as `./-take1.wav`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, Protocol

__all__ = ["ArgumentParser", "Arguments", "Subcommands", "dash_files_hint"]


class Subcommands(Protocol):
    """What `ArgumentParser.add_subparsers()` returns, as a command adds its parser to it
    (argparse names its class only privately)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


class Arguments(Protocol):
    """A parser or an argument group of one: what `add_argument` is called on (argparse
    names their common base only privately)."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action: ...


def dash_files_hint(argv: Sequence[str]) -> str:
    """The advice for arguments that start with `-` and name an existing path, or `""`."""
    named = [a for a in argv if a.startswith("-") and a != "-" and not a.startswith("--")
             and os.path.exists(a)]
    if not named:
        return ""
    first = named[0]
    return (f" ({first!r} is a file whose name starts with '-', so it was read as an option: "
            f"put `--` before the file names, or write ./{first})")


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with `--debug` (unless `debug=False`, for a parser that
    defines its own) and the `dash_files_hint` in usage errors. Sub-command parsers are made
    of this class too (argparse uses the parent's class)."""

    def __init__(self, *args: Any, debug: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if debug and self.add_help:
            self.add_argument("--debug", action="store_true",
                              help="print the traceback of an error (also: XVAL_DEBUG=1)")

    def error(self, message: str) -> NoReturn:
        super().error(message + dash_files_hint(sys.argv[1:]))
