"""`python -m xval config`: the effective configuration, each value with where it comes from.

    python -m xval config                               # package defaults < config.ini
    python -m xval config --defaults                    # the package defaults, with help
    python -m xval config --reference                   # docs/reference/parameters.md
    python -m xval config experiments/exp1.py 3 --set epochs=5
                                                        # ... < experiment < instance < --set

With an experiment script, an instance is resolved as its run resolves it (with the facts of
the store it trains on, when the store is built): every parameter, the one a dry run shows
and the others, each with where it came from.
"""

from __future__ import annotations

import argparse

from xval.cli.commands import COMMANDS, load_reference
from xval.cli.scripts import load_experiment
from xval.config import schema
from xval.config.effective import format_settings, settings
from xval.config.loader import Config
from xval.core.arguments import Subcommands
from xval.core.errors import ConfigurationError
from xval.running.declaration import ExperimentDeclaration
from xval.running.environment import run_config

REFERENCE = "xval.cli.reference:parameter_reference"
"""The parameter reference's Markdown (its module imports the registries)."""
INSTANCE_SETTINGS = "xval.cli.instance_config:command_settings"
"""An instance's settings, resolved as its run resolves them: imported only with an
experiment script (it needs the planner, as the script's own import of `xval` does)."""


def add_parser(sub: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `config` subcommand to `python -m xval`."""
    p = sub.add_parser(
        "config", parents=parents,
        help=COMMANDS["config"].help,
        description="Prints every setting and its source: the package default, the config "
                    "file, and with an experiment script its parameters, an instance and "
                    "--set.")
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT.py",
                   help="an experiment script: show an instance's training parameters too")
    p.add_argument("instance", nargs="?", type=int, metavar="K",
                   help="with EXPERIMENT.py: the instance to show (default: its first)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="with EXPERIMENT.py: a parameter override, as for the experiment")
    p.add_argument("--config", help="config.ini (default: found as for experiments)")
    p.add_argument("--defaults", action="store_true",
                   help="print the package defaults as a commented config.ini")
    p.add_argument("--reference", action="store_true",
                   help="print the parameter reference, the Markdown of "
                        "docs/reference/parameters.md")


def main_config(args: argparse.Namespace) -> int:
    """Runs `python -m xval config`; returns the exit code."""
    if args.defaults or args.reference:
        flag = "--defaults" if args.defaults else "--reference"
        if args.experiment or args.instance is not None or args.set or \
                args.defaults and args.reference:
            raise ConfigurationError(f"{flag} prints the package defaults alone; give no "
                                     "experiment, instance, --set or other such flag with it.")
        if args.reference:
            print(load_reference(REFERENCE)(), end="")
            return 0
        print(schema.render(header="The package defaults (xval.config.schema). A config.ini "
                                   "holds only what differs from them."), end="")
        return 0
    if args.experiment is None and (args.instance is not None or args.set):
        raise ConfigurationError("An instance K and --set need an EXPERIMENT.py.")
    experiment = load_experiment(args.experiment) if args.experiment else None
    config = _load(args.config, experiment)
    print(f"# config file: {config.path or 'none (package defaults)'}")
    if experiment is None:
        print(format_settings(settings(config)))
        return 0
    print(format_settings(load_reference(INSTANCE_SETTINGS)(experiment, config, args)))
    return 0


def _load(path: str | None, experiment: ExperimentDeclaration | None) -> Config:
    """The configuration as an experiment run here would load it (`run_config`): the same
    file, and the same error when it is missing or wrong."""
    return run_config(path, experiment.config_path if experiment else None,
                      experiment.script if experiment else None)
