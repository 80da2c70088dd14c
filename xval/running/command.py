"""Command line of experiment scripts: `python experiments/expN.py [FIRST [LAST [GPU]]]`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from xval.core.arguments import ArgumentParser
from xval.core.entry import EXIT_INTERRUPTED, debug_requested, run_entry  # noqa: F401
from xval.core.errors import ConfigurationError
from xval.core.logs import quiet_framework_logs
from xval.core.version import add_version
from xval.running.declaration import ExperimentDeclaration, InstanceRange, Selection
from xval.running.options import REFIT_ALONE, add_flags, from_args
from xval.running.runner import RunOutcome


def _instance_list(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    try:
        ids = [int(part) for part in parts]
    except ValueError:
        ids = []
    if not ids or any(part == "" for part in parts):
        raise argparse.ArgumentTypeError(
            f"--instances {text!r}: expected comma-separated integers like 1,3,5"
        )
    twice = sorted({k for k in ids if ids.count(k) > 1})
    if twice:
        raise argparse.ArgumentTypeError(
            f"--instances {text!r}: instance {', '.join(map(str, twice))} is given twice; "
            "list each instance once")
    return ids


def experiment_parser(experiment: ExperimentDeclaration) -> argparse.ArgumentParser:
    """The experiment script's argument parser."""
    parser = ArgumentParser(
        debug=False,  # its own --debug, below
        description=f"{experiment.description} (dataset {experiment.dataset!r}, experiment "
                    f"{experiment.number}, instances {sorted(experiment.instances)})",
        epilog="Examples: `exp1.py` runs every instance; `exp1.py 3 7 1` runs instances 3..7 "
               "on GPU 1; `exp1.py --instances 2,5 --set epochs=3 --dry-run`.",
    )
    add_version(parser)
    # What is not a run option: `run()`'s selection (`instances`) and `config`, and the
    # verb `--refit K`, each with one spelling in Python; the rest are `RunOptions` fields.
    parser.add_argument("first", nargs="?", type=int, help="first instance to run")
    parser.add_argument("last", nargs="?", type=int, help="last instance to run (inclusive)")
    add_flags(parser, positional=True)  # GPU
    parser.add_argument("--instances", type=_instance_list, help="explicit list, e.g. 1,4,7")
    parser.add_argument("--config", help="path of config.ini")
    parser.add_argument("--refit", type=int, metavar="K",
                        help="train complete instance K once on all items for the median of "
                             "its folds' best epochs, with the parameters its run recorded "
                             "(its --set values included); saves instance_K/final.keras")
    add_flags(parser, positional=False)  # the run options (xval.running.options)
    return parser


RunCall = Callable[..., RunOutcome]
"""`Experiment.run`."""
RefitCall = Callable[..., Path]
"""`Experiment.refit`."""


def run_experiment_cli(experiment: ExperimentDeclaration, argv: Sequence[str] | None = None,
                       *, run: RunCall, refit: RefitCall) -> int:
    """Parses the command line and runs the experiment through `run` (or `refit`): the
    experiment's own `Experiment.run` and `Experiment.refit`, so that the command line and a
    Python caller take one path.

    Errors are one line on stderr. Ctrl-C (or SIGTERM) stops the running jobs and prints
    how to resume (`xval.core.entry.run_entry`).

    Returns:
        The exit code: 0 when every selected instance is complete, 1 when one failed,
        2 for a usage, configuration or data error (nothing trained, nothing written),
        3 when selected instances are held by another runner, 130 when interrupted (143
        on SIGTERM).
    """
    def body() -> int:
        return _main(experiment_parser(experiment).parse_args(argv), run, refit)

    return run_entry(body, debug=bool(experiment.debug_mode) or debug_requested(argv),
                     interrupted="interrupted; rerun the same command to resume (finished "
                                 "folds are kept).")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuses a contradictory selection (the rules between run options are the objects'
    own: `xval.running.options`).

    Raises:
        ConfigurationError: naming the arguments that do not go together.
    """
    if args.instances is not None and args.first is not None:
        raise ConfigurationError("Give either FIRST LAST or --instances, not both.")
    if args.refit is not None and (args.first is not None or args.instances is not None):
        raise ConfigurationError(REFIT_ALONE)


def selection(args: argparse.Namespace) -> Selection:
    """What the command line selects: `FIRST [LAST]` as an `InstanceRange`, `--instances`
    as ids, or `None` (every instance; with `--search`, the search's trials)."""
    if args.first is not None:
        return InstanceRange(args.first, args.last)
    return args.instances


def _main(args: argparse.Namespace, run: RunCall, refit: RefitCall) -> int:
    check_arguments(args)
    options = from_args(args, out=print, progress=not args.dry_run)  # refuses what clashes
    if options.output.verbose:
        quiet_framework_logs(verbose=True)  # every framework line, here and in workers
    if args.refit is not None:
        refit(args.refit, options, config=args.config)
        return 0
    return run(selection(args), options, config=args.config).exit_code
