"""`python -m xval ensemble EXP_DIR MEMBER MEMBER ...`: the ensemble of instances of an
experiment (or `EXP_DIR:K` of other experiments on the same folds), written as a new instance
of it from their recorded predictions: equal weights (or, with --weights validation, chosen
per fold on the validation clips), its scores on the test clips; the workbook rebuilt and
the table printed.

    python -m xval ensemble results/sounds/experiment_1 1 2
    python -m xval ensemble results/sounds/experiment_1 1 2 --weights validation --as 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xval.cli.commands import COMMANDS
from xval.config.loader import find_config, load_config
from xval.core.arguments import RawDescriptionHelpFormatter
from xval.core.layout import ExperimentLayout, check_experiment_folder
from xval.core.records.ensemble import DEFAULT_WEIGHTING, WEIGHTINGS
from xval.core.storage import RESULTS_STORE
from xval.ensembles.run import make_ensemble
from xval.ensembles.tables import install_report
from xval.report.terminal import terminal_table
from xval.running.derived import report_listeners
from xval.running.recorder import Recorder


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `ensemble` subcommand to `python -m xval`."""
    p = sub.add_parser("ensemble", parents=parents, help=COMMANDS["ensemble"].help,
                       description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    p.add_argument("experiment", help="results/<dataset>/experiment_<N>: where the ensemble "
                                      "is written")
    p.add_argument("members", nargs="+", metavar="MEMBER",
                   help="an instance id of EXP_DIR, or OTHER_EXP_DIR:K (same folds)")
    p.add_argument("--as", dest="instance", type=int, metavar="K",
                   help="the ensemble's instance id (default: after the last instance)")
    p.add_argument("--weights", choices=WEIGHTINGS, default=DEFAULT_WEIGHTING,
                   help="how the members weigh: equal (chosen on nothing), or validation "
                        "(chosen per fold on the validation clips, whose loss chose each "
                        "member's epoch)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of another instance in that folder")
    p.add_argument("--config", help="config.ini (selection metric, alpha)")


def main_ensemble(args: argparse.Namespace) -> int:
    """Runs `python -m xval ensemble`; returns the exit code."""
    install_report()  # the ensembles sit above the layers that show and predict them
    exp_dir = Path(args.experiment)
    check_experiment_folder(exp_dir)  # before anything is read or written
    config = load_config(args.config or find_config())
    layout = ExperimentLayout(exp_dir)
    manifest = RESULTS_STORE.manifest(layout)
    recorder = Recorder(layout, config, manifest.num_folds if manifest else 0,
                        out=(lambda *a: None) if args.quiet else print,
                        listeners=report_listeners(config, print), results_store=RESULTS_STORE)
    instance = make_ensemble(exp_dir, args.members, instance=args.instance,
                             weighting=args.weights, overwrite=args.overwrite,
                             recorder=recorder)
    print(terminal_table(recorder.results.refresh(), config=config, advice=not args.quiet))
    if not args.quiet:
        print(f"Wrote instance {instance} in {exp_dir}.")
    return 0
