"""Command line of experiment scripts: `python experiments/expN.py [FIRST [LAST [GPU]]]`."""

import argparse
import traceback

from xval.config import BACKENDS, EXECUTORS
from xval.errors import ConfigurationError, XvalError
from xval.params import parse_override


def _instance_list(text):
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"--instances {text!r}: expected comma-separated integers like 1,3,5"
        ) from e


def experiment_parser(experiment):
    parser = argparse.ArgumentParser(
        description=f"{experiment.description} (dataset {experiment.dataset!r}, experiment "
                    f"{experiment.number}, instances {sorted(experiment.instances)})",
        epilog="Examples: `exp1.py` runs every instance; `exp1.py 3 7 1` runs instances 3..7 "
               "on GPU 1; `exp1.py --instances 2,5 --set epochs=3 --dry-run`.",
    )
    parser.add_argument("first", nargs="?", type=int, help="first instance to run")
    parser.add_argument("last", nargs="?", type=int, help="last instance to run (inclusive)")
    parser.add_argument("gpu", nargs="?", help="GPU id for CUDA_VISIBLE_DEVICES (-1: CPU)")
    parser.add_argument("--instances", type=_instance_list, help="explicit list, e.g. 1,4,7")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter in every selected instance (repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="rerun selected instances that already have results")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate, print resolved parameters and folds, train nothing")
    parser.add_argument("--debug", action="store_true",
                        help="stop at the first error with its traceback")
    parser.add_argument("--config", help="path of config.ini")
    parser.add_argument("--backend", choices=BACKENDS, help="Keras backend (else config.ini)")
    parser.add_argument("--executor", choices=EXECUTORS, help="inline or process (else config)")
    parser.add_argument("--gpus", help="GPU ids for the process executor, e.g. 0,1")
    return parser


def run_experiment_cli(experiment, argv=None):
    """Parses the command line and runs the experiment.

    Returns:
        The exit code: 0 when every selected instance is complete, 1 when one failed,
        2 for a usage, configuration or data error (nothing trained, nothing written).
    """
    import os

    parser = experiment_parser(experiment)
    args = parser.parse_args(argv)
    try:
        if args.instances is not None and args.first is not None:
            raise ConfigurationError(
                "Give either FIRST LAST or --instances, not both."
            )
        overrides = dict(parse_override(text) for text in args.set)
        if args.backend:
            os.environ["KERAS_BACKEND"] = args.backend
        selected = experiment.select(args.first, args.last, args.instances)
        gpus = args.gpus.split(",") if args.gpus else None
        outcome = experiment.run(
            selected, overrides=overrides, overwrite=args.overwrite or None,
            dry_run=args.dry_run, gpu=args.gpu, config=args.config, executor=args.executor,
            gpus=gpus, debug=args.debug or None,
        )
        return outcome.exit_code
    except XvalError as e:
        if args.debug or experiment.debug_mode:
            traceback.print_exc()
        print(f"error: {e}")
        return 2
