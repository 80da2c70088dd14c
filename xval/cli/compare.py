"""`python -m xval compare EXP_DIR[:INSTANCE] ...`: instances of experiments side by side.

    python -m xval compare results/demo/experiment_1 results/demo/experiment_2
    python -m xval compare results/demo/experiment_1:1 results/demo/experiment_1:3 --rope 0.02
    python -m xval compare results/a/experiment_1 results/b/experiment_1 --allow-different-folds

Prints the instances, every pair's corrected t-test with Holm's correction and the Bayesian
correlated t-test, and (over experiments on different datasets) a Friedman + Nemenyi
ranking; writes `compare.xlsx` (see `xval.report.comparison`, docs/comparing.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xval.cli.commands import COMMANDS
from xval.cli.scripts import add_script_argument, read_scripts
from xval.config.loader import Config, find_config, load_config
from xval.config.schema import SCHEMA
from xval.core.arguments import Subcommands
from xval.core.errors import ConfigurationError
from xval.core.outputs import check_output_folder
from xval.report.compare_output import (
    FORMATS,
    format_comparison,
    is_compare_workbook,
    write_compare_workbook,
)
from xval.report.comparison import Target, check_rope, compare
from xval.report.tables import alpha_of, rope_of

ROPE, ALPHA = (SCHEMA["report"][key].default for key in ("rope", "alpha"))
"""The package defaults of `[report] rope` and `alpha`, which `--help` states."""


def add_parser(sub: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `compare` subcommand to `python -m xval`."""
    p = sub.add_parser(
        "compare", parents=parents,
        help=COMMANDS["compare"].help,
        description="Every instance of the experiments named (EXP_DIR), or one of them "
                    "(EXP_DIR:K), compared pair by pair on the same folds: corrected "
                    "resampled t-test with Holm's correction, Bayesian correlated t-test; "
                    "over experiments on different datasets, a Friedman + Nemenyi ranking.")
    p.add_argument("targets", nargs="+", metavar="EXP_DIR[:INSTANCE]",
                   help="results/<dataset>/experiment_<N>, or ...:K for instance K alone")
    p.add_argument("--metric", help="test metric to compare (default: the selection metric, "
                                    "[report] selection_metric or the task's)")
    p.add_argument("--rope", type=float, metavar="R",
                   help="half-width of the region of practical equivalence, in the metric's "
                        f"units (default: [report] rope, {ROPE})")
    p.add_argument("--alpha", type=float,
                   help=f"significance level (default: [report] alpha, {ALPHA})")
    p.add_argument("--allow-different-folds", action="store_true",
                   help="compare experiments whose fold manifests differ, unpaired")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--workbook", default="compare.xlsx", metavar="PATH",
                   help="where to write the workbook")
    p.add_argument("--no-workbook", action="store_true", help="print only")
    p.add_argument("--config", help="config.ini (selection metric, alpha, rope; default: "
                                    "found as for experiments, else the package defaults)")
    add_script_argument(p)


def _config(path: str | None) -> Config | None:
    if path:
        return load_config(path)
    try:
        return load_config(find_config())
    except ConfigurationError:
        return None


def _check_workbook(workbook: Path) -> None:
    """The output rule for `--workbook`: a writable folder, and an existing file replaced
    only when it is a comparison workbook `compare` wrote (never the user's own file)."""
    if not workbook.parent.resolve().is_dir():
        raise ConfigurationError(f"--workbook {workbook}: its folder does not exist; create "
                                 "it or name another path.")
    check_output_folder(workbook.parent, what="--workbook's folder")
    if workbook.is_symlink() or (workbook.exists() and not workbook.is_file()):
        raise ConfigurationError(f"--workbook {workbook} exists and is not a plain file; it is "
                                 "never replaced. Name another path.")
    if workbook.exists() and not is_compare_workbook(workbook):
        raise ConfigurationError(f"--workbook {workbook} exists and was not written by `xval "
                                 "compare`; it is never replaced. Name another path.")


def main_compare(args: argparse.Namespace) -> int:
    """Runs `compare`: every argument checked before anything is read or computed.

    Returns:
        0; errors are raised (`ConfigurationError`: one line, exit 2 in `xval.cli.main`).
    """
    if args.rope is not None:
        check_rope(args.rope)
    if args.alpha is not None and not 0 < args.alpha < 1:
        raise ConfigurationError(f"--alpha {args.alpha}: expected 0 < alpha < 1, e.g. 0.05.")
    read_scripts(args.script)
    targets = [Target.parse(text) for text in args.targets]
    workbook = Path(args.workbook)
    if not args.no_workbook:
        _check_workbook(workbook)
    config = _config(args.config)
    comparison = compare(targets, metric=args.metric,
                         rope=args.rope if args.rope is not None else rope_of(config),
                         alpha=args.alpha if args.alpha is not None else alpha_of(config),
                         allow_different_folds=args.allow_different_folds, config=config)
    print(format_comparison(comparison, args.format))
    if not args.no_workbook:
        path = write_compare_workbook(comparison, workbook)
        if args.format == "text" and not args.quiet:
            print(f"\nWrote {path}")
    return 0
