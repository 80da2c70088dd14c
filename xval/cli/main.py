"""`python -m xval COMMAND`: report, compare, predict, detect, evaluate, embed, export."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from xval.cli import compare as cli_compare
from xval.cli import config as cli_config
from xval.cli import export as cli_export
from xval.cli import init as cli_init
from xval.cli.annotations import add_reading_arguments
from xval.cli.inference import main_detect, main_embed, main_evaluate, main_predict
from xval.config.loader import find_config, load_config
from xval.core.arguments import ArgumentParser
from xval.core.entry import run_entry
from xval.core.errors import ConfigurationError, XvalError
from xval.core.logs import quiet_framework_logs
from xval.core.version import add_version
from xval.report.results import check_experiment_folder
from xval.report.terminal import terminal_table
from xval.report.workbook import build_workbook
from xval.running.environment import check_backend


def _report(args: argparse.Namespace) -> int:
    exp_dir = Path(args.experiment)
    check_experiment_folder(exp_dir)  # before anything is read or written
    config = load_config(args.config or find_config())
    if not args.no_workbook:
        path = build_workbook(exp_dir, config=config)
        if args.format == "text" and not args.quiet:
            print(f"Rebuilt {path}")
    print(terminal_table(exp_dir, config=config, fmt=args.format))
    return 0


def choose_backend(config_path: str | None = None) -> str:
    """Sets `KERAS_BACKEND` for the model commands, as experiment scripts do.

    Order: the `KERAS_BACKEND` environment variable, then config.ini (`--config`, else found
    as for experiments), then the first installed of torch, tensorflow, jax.

    Returns:
        The backend name.

    Raises:
        ConfigurationError: when that backend is not installed.
    """
    backend = os.environ.get("KERAS_BACKEND")
    source = "KERAS_BACKEND"
    if not backend:
        try:
            path = config_path or find_config()
        except ConfigurationError:
            path = None
        if path is not None:
            backend, source = load_config(path).backend.backend, f"[backend] of {path}"
    if not backend:
        installed = [b for b in ("torch", "tensorflow", "jax")
                     if importlib.util.find_spec(b) is not None]
        backend, source = (installed or ["torch"])[0], "the installed frameworks"
    check_backend(backend, source)
    os.environ["KERAS_BACKEND"] = backend
    quiet_framework_logs(backend=backend)
    return backend


def _model_choice(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fold", type=int, metavar="I",
                   help="with an instance folder: only the model of fold I")
    p.add_argument("--ensemble", action="store_true",
                   help="with an instance folder: average the fold models even when "
                        "final.keras exists")


def _model_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by predict, detect and evaluate: which fold models answer, the
    dataset description and the config."""
    _model_choice(p)
    p.add_argument("--dataset-info", help="dataset.json with the feature parameters "
                                          "(default: found next to the model)")
    p.add_argument("--config", help="config.ini whose [backend] to use")


def _report_parser(sub: argparse._SubParsersAction, flags: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", parents=[flags],
                       help="rebuild an experiment's workbook and print its table")
    p.add_argument("experiment", help="results/<dataset>/experiment_<N>")
    p.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    p.add_argument("--no-workbook", action="store_true", help="print only")
    p.add_argument("--config", help="config.ini (selection metric, alpha)")


def _predict_parsers(sub: argparse._SubParsersAction, flags: argparse.ArgumentParser
                     ) -> None:
    p = sub.add_parser("predict", parents=[flags],
                       help="class probabilities of audio files from saved models")
    p.add_argument("model", help="an instance_<k> folder (its fold models' ensemble, or its "
                                 "final.keras after --refit) or a .keras file")
    p.add_argument("audio", nargs="+")
    p.add_argument("--format", choices=("text", "csv"), default="text")
    p.add_argument("--embedding-classifier", action="store_true",
                   help="answer with the fold models' embedding classifiers (fold_<i>.skops, "
                        "instances trained with embedding_classifier)")
    _model_arguments(p)
    p = sub.add_parser("detect", parents=[flags],
                       help="events (onset, offset, label) a detection model finds in audio files")
    p.add_argument("model", help="an instance_<k> folder or a .keras file (as for predict)")
    p.add_argument("audio", nargs="+")
    p.add_argument("--format", choices=("text", "csv"), default="text")
    p.add_argument("--plot", metavar="DIR", help="write <file>_activity.png plots here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace activity plots that exist (else an error, nothing run)")
    _model_arguments(p)


def _evaluate_parser(sub: argparse._SubParsersAction, flags: argparse.ArgumentParser
                     ) -> None:
    p = sub.add_parser("evaluate", parents=[flags],
                       help="score saved models on new labelled audio")
    p.add_argument("model", help="an instance_<k> folder or a .keras file (as for predict)")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="class folders (default), folders for --pattern, CSV manifests, "
                        "or the folder of the recordings of --annotations")
    p.add_argument("--source", choices=("folders", "regex", "manifest"),
                   help="how SOURCE is read (default: regex with --pattern, else folders)")
    p.add_argument("--pattern", help="regex with (?P<label>..) over relative paths; presets: "
                                     "fsdd, ravdess, speaker-id")
    p.add_argument("--label-map", help="with --pattern: preset (ravdess) or CODE=NAME,...")
    p.add_argument("--manifest", action="store_true", help="SOURCE is a CSV manifest")
    p.add_argument("--path-column", default="path", help="manifest column of audio paths")
    p.add_argument("--label-column", help="manifest column of labels (default: label); "
                                          "with --annotations, the events' class column")
    p.add_argument("--clip-column", help="manifest column of clip ids")
    p.add_argument("--root", help="folder the manifest paths are relative to")
    p.add_argument("--annotations", help="detection models: the annotation CSV of the "
                                         "recordings in SOURCE (a folder)")
    read = p.add_argument_group(
        "reading --annotations", "as `python -m preprocessing detection` reads them; "
        "each option not given is read as the model's store read its own annotations")
    add_reading_arguments(read, defaults=False, label_column=False)  # --label-column above
    p.add_argument("--format", choices=("text", "csv"), default="text")
    _model_arguments(p)


def _embed_parser(sub: argparse._SubParsersAction, flags: argparse.ArgumentParser) -> None:
    p = sub.add_parser("embed", parents=[flags],
                       help="write the outputs of an inner layer for audio files")
    p.add_argument("model", help="a .keras file or an instance_<k> folder (as for predict: "
                                 "its final.keras after --refit, or one fold's model with "
                                 "--fold)")
    p.add_argument("--fold", type=int, metavar="I",
                   help="with an instance folder: the model of fold I")
    p.add_argument("audio", nargs="+")
    p.add_argument("--layer", help="layer name (an unknown name lists them); default: the "
                                   "autoencoder's 'bottleneck'")
    p.add_argument("--out", required=True, help="output .npy (rows) + .csv (row index)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the .npy and .csv when they exist (else an error, nothing "
                        "run)")
    p.add_argument("--dataset-info", help="dataset.json with the feature parameters")
    p.add_argument("--config", help="config.ini whose [backend] to use")


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m xval` and its commands."""
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
                       help="TensorFlow's and absl's log lines too")
    sub = parser.add_subparsers(dest="command", required=True)
    _report_parser(sub, flags)
    cli_compare.add_parser(sub, [flags])
    _predict_parsers(sub, flags)
    _evaluate_parser(sub, flags)
    _embed_parser(sub, flags)
    cli_config.add_parser(sub, [flags])
    cli_init.add_parser(sub, [flags])
    cli_export.add_parser(sub, [flags])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `python -m xval COMMAND ...`; returns the exit code (2: a one-line error; no
    traceback reaches the user, `xval.core.entry`)."""
    return run_entry(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    quiet_framework_logs(verbose=args.verbose)
    if args.quiet and args.verbose:
        raise XvalError("Give -q/--quiet or -v/--verbose, not both.")
    if args.command == "config":
        if args.experiment:
            choose_backend(args.config)  # the script's instances import Keras
        return cli_config.main_config(args)
    if args.command == "init":
        choose_backend(None)
        return cli_init.main_init(args)
    if args.command == "report":
        return _report(args)
    if args.command == "compare":
        return cli_compare.main_compare(args)
    if args.command == "export":  # the format chooses the backend
        return cli_export.main_export(args, choose_backend)
    choose_backend(args.config)
    if args.command == "evaluate":
        return main_evaluate(args)
    if args.command == "detect":
        return main_detect(args)
    return main_predict(args) if args.command == "predict" else main_embed(args)


def run() -> None:
    """The `xval` console script: `main()`, its return value the exit code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
