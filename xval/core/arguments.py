"""The argument parser of every command line: argparse, with `--debug` on every parser and
a usage error that explains a file name starting with `-`; and `option`, a field of an
options record that is also a flag (the run options, `xval.running.options`, and where the
jobs run, `xval.executors.base.Execution`).

`python -m xval predict MODEL -take1.wav` reads `-take1.wav` as an option; argparse alone
says "unrecognized arguments". Here the error adds, for every such argument that names an
existing file, how to pass it: after `--`, or as `./-take1.wav`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol

from xval.core.errors import ConfigurationError

__all__ = ["ArgumentParser", "Arguments", "DefaultsHelpFormatter",
           "RawDescriptionHelpFormatter", "Subcommands",
           "dash_files_hint", "option", "option_of", "renamed"]

_OPTION = "xval.option"
"""The metadata entry of a field declared with `option`."""


def option(default: Any = None, help: str = "", *, factory: Callable[[], Any] | None = None,
           flags: Sequence[str] = (), constraints: Sequence[Any] | None = None,
           hint: str = "", parse: Callable[[Any], Any] | None = None,
           **argparse_kwargs: Any) -> Any:
    """Declares one option as a field of an options record: its default, its valid values
    and, when it is a flag of a command line, the flag and its help.

    Args:
        default: the default (immutable: a scalar, `None`, or empty). Defaults to `None`.
        help: the flag's help. Defaults to `""`.
        factory: makes the default instead (`dict`). Defaults to `None`.
        flags: the command-line flags (`("--trials",)`, `("-v", "--verbose")`), or a
            positional's name (`("gpu",)`); none for an option the command line does not
            take as it is. Defaults to `()`.
        constraints: the valid values (`xval.core.constraints`), checked when the record
            is made (`xval.core.constraints.check_options`); `None` checks nothing.
            Defaults to `None`.
        hint: put after what was expected in the error (a fix, an example).
        parse: turns what argparse read into the field's value (`--set`'s `NAME=VALUE`
            list into a dict). Defaults to `None` (as read).
        **argparse_kwargs: the rest of the flag's `add_argument` (`type`, `metavar`,
            `action`, `nargs`, `const`, `choices`: a function returning them is called when
            the parser is built).

    Returns:
        A `dataclasses.field`.

    Raises:
        TypeError: for a mutable default that is not empty.
    """
    declared = {"help": help, "flags": tuple(flags), "constraints": constraints,
                "hint": hint, "parse": parse, "argparse": argparse_kwargs}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={_OPTION: declared})
    if isinstance(default, (list, dict, tuple)) and default:
        raise TypeError("an option's default is immutable and empty or a scalar")
    return dataclasses.field(default=default, metadata={_OPTION: declared})


def option_of(field: dataclasses.Field[Any]) -> dict[str, Any]:
    """What `option` declared of a field (`{}` for a plain field)."""
    return dict(field.metadata.get(_OPTION, {}))


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


def shown_default(action: argparse.Action) -> bool:
    """Whether `--help` states the action's default: a value of its own (not `None`, a
    switch's `False`, an empty list, or hidden)."""
    default = action.default
    return not (default is None or isinstance(default, bool) or default == []
                or default is argparse.SUPPRESS or action.help is argparse.SUPPRESS)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """argparse's help, each option with a default of its own ending in `(default: X)`,
    taken from the parser (`%(default)s`), so that the help cannot say another value. An
    option whose help already says its default in words keeps its words; the test of the
    help strings (`tests/test_cli_help.py`) compares those with the parser's defaults."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and shown_default(action):  # argparse shows no line for no help
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if shown_default(action) and "default" not in text:
            text = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text


class RawDescriptionHelpFormatter(DefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """`DefaultsHelpFormatter` keeping the description's lines as written."""


class _Renamed(argparse.Action):
    """A flag's other spelling, refused in one line that names the flag to give."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, instead: str,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kwargs)
        self.instead = instead

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = f"{option_string} {values}" if values is not None else str(option_string)
        raise ConfigurationError(f"{given}: {parser.prog} takes {self.instead}.")


def renamed(parser: Arguments, flag: str, instead: str) -> None:
    """Refuses `flag`, hidden from `--help`, in one line naming the option to give instead
    (`renamed(p, "--source", "--corpus NAME")`: `--source kaldi: python -m xval init takes
    --corpus NAME.`): one spelling and one meaning per flag across the commands.

    Args:
        parser: a parser or an argument group.
        flag: the spelling refused.
        instead: what to give instead, as the error says it.
    """
    parser.add_argument(flag, action=_Renamed, instead=instead)


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with `--debug` (unless `debug=False`, for a parser that
    defines its own), the `dash_files_hint` in usage errors, and each option's default in
    its help (`DefaultsHelpFormatter`, unless another formatter is given). Sub-command
    parsers are made of this class too (argparse uses the parent's class)."""

    def __init__(self, *args: Any, debug: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        if debug and self.add_help:
            self.add_argument("--debug", action="store_true",
                              help="print the traceback of an error (also: XVAL_DEBUG=1)")

    def error(self, message: str) -> NoReturn:
        super().error(message + dash_files_hint(sys.argv[1:]))
