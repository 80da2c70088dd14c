"""The sources on the command lines: one `python -m preprocessing NAME PATH ...`
sub-command per registered source (`preprocessing.sources`), and the corpora as `python -m
xval init PATH --corpus NAME`; the options come from each source's declaration, and one
call turns parsed arguments into its rows.
"""

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from preprocessing import sources
from preprocessing.sources import Option, Rows, Source
from xval.core.errors import ConfigurationError

__all__ = ["add_options", "add_parsers", "given", "options_given", "rows"]


def _parse(option: Option) -> Callable[[str], Any]:
    """The option's `parse` (else the text itself), its `ValueError` an argparse error (one
    line, its text)."""
    parse = option.parse or str

    def argument(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return argument


def add_options(p: argparse.ArgumentParser | Any, options: Sequence[Option], *,
                defaults: bool = True) -> None:
    """Adds options of sources to a parser.

    Args:
        p: a parser or an argument group.
        options: the options (`Source.options`).
        defaults: give the options their defaults and make the required ones required;
            `False`: every option defaults to `None` (`xval init`, serving several sources,
            sees what was given, and the source refuses a required one missing). Defaults
            to `True`.
    """
    for option in options:
        if option.switch:
            p.add_argument(option.flag, action="store_true",
                           default=False if defaults else None, help=option.help)
        else:
            p.add_argument(option.flag, default=option.default if defaults else None,
                           required=defaults and option.required, type=_parse(option),
                           help=option.help)


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None],
                run: Callable[..., int]) -> None:
    """Adds a sub-command per registered source to `python -m preprocessing`.

    Args:
        sub: the subparsers.
        common: `common(parser)` adds the options every source shares (`--out`, features).
        run: what the sub-command runs (`args.run`).
    """
    for source in sources.SOURCES.values():
        p = sub.add_parser(source.name, help=source.help)
        p.add_argument("paths", nargs="+" if source.reads.most > 1 else 1,
                       metavar=source.reads.metavar, help=source.reads.help)
        add_options(p, source.options)
        common(p)
        p.set_defaults(run=run)


def given(args: argparse.Namespace, source: Source) -> dict[str, Any]:
    """The values of the source's options in `args` (`None`: not given)."""
    return {option.key: getattr(args, option.key, None) for option in source.options}


def rows(source: Source, paths: Sequence[str], args: argparse.Namespace) -> Rows:
    """The rows of `source` at `paths`, with the options given in `args` (`Source.rows`)."""
    return source.rows(paths, given(args, source))


def _either(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def options_given(args: argparse.Namespace, chosen: Source | None,
                  among: Sequence[Source], also: Sequence[str] = ()) -> None:
    """Refuses an option of the sources `among` that the `chosen` one does not take (`xval
    init`: `chosen` is `None` for a folder of audio).

    Args:
        args: the command line.
        chosen: the source it reads, or `None`.
        among: the sources whose options the command has.
        also: flags taken besides the chosen source's (`init --manifest`'s
            `--allow-outside-root`).

    Raises:
        ConfigurationError: naming the option and the sources that take it.
    """
    own = {option.flag for option in chosen.options} if chosen else set(also)
    for source in among:
        for option in source.options:
            if option.flag in own or getattr(args, option.key, None) is None:
                continue
            owners = [s.name for s in among if option in s.options]
            raise ConfigurationError(
                f"{option.flag} is an option of --corpus {_either(owners)}, not of "
                f"{'--corpus ' + chosen.name if chosen else 'a folder of audio'}.")
