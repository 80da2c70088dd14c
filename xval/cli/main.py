"""`python -m xval COMMAND`: report, compare, predict, detect, evaluate, embed, config, init,
export.

Only the command asked for is imported (`xval.cli.commands`): `--version`, `--help` and the
commands that neither train nor predict start without the deep-learning stack, and the
backend is chosen (`xval.cli.backend.choose_backend`) only before a model is built or loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xval.cli.commands import CHOOSE_BACKEND, COMMANDS, load_reference
from xval.core.arguments import ArgumentParser, Subcommands
from xval.core.entry import exit_process, run_entry
from xval.core.errors import XvalError
from xval.core.logs import quiet_framework_logs
from xval.core.version import add_version


def build_parser(command: str | None = None, *, lazy: bool = False) -> argparse.ArgumentParser:
    """The parser of `python -m xval` and its commands.

    Args:
        command: with `lazy`, the one command whose parser is built in full.
        lazy: build the other commands as names and help lines only, importing none of
            their modules (what `python -m xval` does). Defaults to `False` (every
            command's parser: tests and the reference pages).

    Returns:
        The parser.
    """
    parser = ArgumentParser(
        prog="python -m xval",
        description="Commands around cross-validation experiments (an experiment itself runs "
                    "as `python experiments/<script>.py`). Also installed as `xval`.")
    add_version(parser)
    flags = argparse.ArgumentParser(add_help=False)  # -q/-v/--version on every command
    add_version(flags)
    flags.add_argument("-q", "--quiet", action="store_true",
                       help="print only results and errors")
    flags.add_argument("-v", "--verbose", action="store_true",
                       help="the frameworks' log lines too")
    sub: Subcommands = parser.add_subparsers(dest="command", required=True)
    for name, entry in COMMANDS.items():
        if lazy and name != command:
            sub.add_parser(name, parents=[flags], help=entry.help)
        else:
            load_reference(entry.parser)(sub, [flags])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `python -m xval COMMAND ...`; returns the exit code (2: a one-line error; no
    traceback reaches the user, `xval.core.entry`)."""
    return run_entry(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    asked = next((word for word in words if not word.startswith("-")), None)
    args = build_parser(asked, lazy=True).parse_args(words)
    quiet_framework_logs(verbose=args.verbose)
    if args.quiet and args.verbose:
        raise XvalError("Give -q/--quiet or -v/--verbose, not both.")
    command = COMMANDS[args.command]
    if command.model or (args.command == "config" and args.experiment):
        load_reference(CHOOSE_BACKEND)(args.config)  # a config's experiment script imports Keras
    elif args.command == "init":
        load_reference(CHOOSE_BACKEND)(None)
    return int(load_reference(command.run)(args))


def run() -> None:
    """The `xval` console script: `main()`, its return value the exit code."""
    exit_process(main())


if __name__ == "__main__":
    run()
