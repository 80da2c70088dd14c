"""`python -m xval config`: the effective configuration, each value with where it comes from.

    python -m xval config                               # package defaults < config.ini
    python -m xval config --defaults                    # the package defaults, with help
    python -m xval config experiments/exp1.py --instance 3 --set epochs=5
                                                        # ... < experiment < instance < --set
"""

from __future__ import annotations

import argparse

import architectures
from xval.cli.commands import COMMANDS
from xval.cli.scripts import load_experiment
from xval.config import schema
from xval.config.effective import format_settings, settings
from xval.config.loader import Config
from xval.config.params import parse_instance, parse_overrides, resolve
from xval.core.errors import ConfigurationError
from xval.running.declaration import ExperimentDeclaration
from xval.running.environment import run_config


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `config` subcommand to `python -m xval`."""
    p = sub.add_parser(
        "config", parents=parents,
        help=COMMANDS["config"].help,
        description="Prints every setting and its source: the package default, the config "
                    "file, and with an experiment script its parameters, an instance and "
                    "--set.")
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT.py",
                   help="an experiment script: show an instance's training parameters too")
    p.add_argument("--instance", type=int, metavar="K",
                   help="with EXPERIMENT.py: the instance to show (default: its first)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="with EXPERIMENT.py: a parameter override, as for the experiment")
    p.add_argument("--config", help="config.ini (default: found as for experiments)")
    p.add_argument("--defaults", action="store_true",
                   help="print the package defaults as a commented config.ini")


def main_config(args: argparse.Namespace) -> int:
    """Runs `python -m xval config`; returns the exit code."""
    if args.defaults:
        if args.experiment or args.instance is not None or args.set:
            raise ConfigurationError("--defaults prints the package defaults alone; give no "
                                     "experiment, --instance or --set with it.")
        print(schema.render(header="The package defaults (xval.config.schema). A config.ini "
                                   "holds only what differs from them."), end="")
        return 0
    if args.experiment is None and (args.instance is not None or args.set):
        raise ConfigurationError("--instance and --set need an EXPERIMENT.py.")
    experiment = load_experiment(args.experiment) if args.experiment else None
    config = _load(args.config, experiment)
    print(f"# config file: {config.path or 'none (package defaults)'}")
    if experiment is None:
        print(format_settings(settings(config)))
        return 0
    print(format_settings(_instance_settings(experiment, config, args)))
    return 0


def _load(path: str | None, experiment: ExperimentDeclaration | None) -> Config:
    """The configuration as an experiment run here would load it (`run_config`): the same
    file, and the same error when it is missing or wrong."""
    return run_config(path, experiment.config_path if experiment else None,
                      experiment.script if experiment else None)


def _instance_settings(experiment: ExperimentDeclaration, config: Config,
                       args: argparse.Namespace) -> list:
    if not experiment.instances:
        raise ConfigurationError(f"{args.experiment} declares no instances.")
    k = sorted(experiment.instances)[0] if args.instance is None else args.instance
    if k in experiment.ensembles:
        raise ConfigurationError(f"--instance {k} is {experiment.ensembles[k]!r}: it trains "
                                 "nothing, so it has no parameters of its own; give one of "
                                 "its members.")
    if k not in experiment.instances:
        raise ConfigurationError(f"--instance {k}: the experiment declares instances "
                                 f"{sorted(experiment.instances)}.")
    overrides = parse_overrides(args.set)
    params = resolve(k, experiment.instances[k], training_defaults=config.training,
                     architectures=architectures, experiment_params=experiment.parameters,
                     overrides=overrides, task_type=experiment.task_type)
    layers = [("experiment parameters", parse_instance(experiment.parameters, "parameters")),
              (f"instance {k}", parse_instance(experiment.instances[k], f"instance {k}")),
              ("--set", overrides)]
    print(f"# {args.experiment}: instance {k} ({experiment.task_type})")
    return settings(config, params=params, layers=layers)


