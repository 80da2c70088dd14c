"""`python -m xval report EXP_DIR`: rebuild an experiment's workbook and print its table."""

from __future__ import annotations

import argparse
from pathlib import Path

import xval.report
from xval.cli.commands import COMMANDS
from xval.cli.scripts import add_script_argument, read_scripts
from xval.config.loader import find_config, load_config
from xval.core.arguments import Subcommands
from xval.core.entry import describe_error
from xval.core.errors import ConfigurationError, XvalError
from xval.core.layout import check_experiment_folder
from xval.ensembles.tables import install_report
from xval.report.results import ExperimentResults
from xval.report.terminal import terminal_table


def add_parser(sub: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `report` subcommand to `python -m xval`."""
    p = sub.add_parser("report", parents=parents, help=COMMANDS["report"].help)
    p.add_argument("experiment", help="results/<dataset>/experiment_<N>")
    p.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    p.add_argument("--no-workbook", action="store_true", help="print only")
    p.add_argument("--config", help="config.ini (selection metric, alpha)")
    add_script_argument(p)


def main_report(args: argparse.Namespace) -> int:
    """Runs `python -m xval report`; returns the exit code.

    A workbook that cannot be written (a read-only folder, a sheet whose writer raised)
    never costs the table: it is printed, then the error, with `--no-workbook` offered.
    """
    install_report()  # the ensembles sit above the layers that show and predict them
    exp_dir = Path(args.experiment)
    check_experiment_folder(exp_dir)  # before anything is read or written
    config = load_config(args.config or find_config())
    read_scripts(args.script)
    results = ExperimentResults(exp_dir)
    results.check_task()
    failed: XvalError | OSError | None = None
    if not args.no_workbook:
        # `xval.report` loads the workbook (openpyxl) on first use: not for --no-workbook.
        try:
            path = xval.report.build_workbook(results, config=config)
        except (XvalError, OSError) as e:
            failed = e
        else:
            if args.format == "text" and not args.quiet:
                print(f"Rebuilt {path}")
    print(terminal_table(results, config=config, fmt=args.format, advice=not args.quiet))
    if failed is not None:
        raise ConfigurationError(
            f"the workbook: {describe_error(failed)} The table above is read from the "
            "results (`--no-workbook` prints it alone, writing nothing).")
    return 0
