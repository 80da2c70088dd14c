"""The parsers of the commands that load a model: `python -m xval predict | detect |
evaluate | embed` (their handlers: `xval.cli.inference`). Nothing heavy is imported here, so
`python -m xval predict --help` answers at once."""

from __future__ import annotations

import argparse

from xval.cli.annotations import add_reading_arguments
from xval.cli.commands import COMMANDS
from xval.core.arguments import Subcommands, renamed


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


def add_predict_parser(sub: Subcommands,
                       parents: list[argparse.ArgumentParser]) -> None:
    """Adds `predict` to `python -m xval`."""
    p = sub.add_parser("predict", parents=parents, help=COMMANDS["predict"].help)
    p.add_argument("model", help="an instance_<k> folder (its fold models' ensemble, or its "
                                 "final.keras after --refit) or a .keras file")
    p.add_argument("audio", nargs="+")
    p.add_argument("--format", choices=("text", "csv"), default="text")
    p.add_argument("--embedding-classifier", action="store_true",
                   help="answer with the fold models' embedding classifiers (fold_<i>.skops, "
                        "instances trained with embedding_classifier)")
    _model_arguments(p)


def add_detect_parser(sub: Subcommands,
                      parents: list[argparse.ArgumentParser]) -> None:
    """Adds `detect` to `python -m xval`."""
    p = sub.add_parser("detect", parents=parents, help=COMMANDS["detect"].help)
    p.add_argument("model", help="an instance_<k> folder or a .keras file (as for predict)")
    p.add_argument("audio", nargs="+")
    p.add_argument("--format", choices=("text", "csv"), default="text")
    p.add_argument("--plot", metavar="DIR", help="write <file>_activity.png plots here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace activity plots that exist (else an error, nothing run)")
    _model_arguments(p)


def add_evaluate_parser(sub: Subcommands,
                        parents: list[argparse.ArgumentParser]) -> None:
    """Adds `evaluate` to `python -m xval`."""
    p = sub.add_parser("evaluate", parents=parents, help=COMMANDS["evaluate"].help)
    p.add_argument("model", help="an instance_<k> folder or a .keras file (as for predict)")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="class folders, folders for --pattern, CSV manifests (--source "
                        "manifest), or the folder of the recordings of --annotations")
    p.add_argument("--source", choices=("folders", "regex", "manifest"),  # evaluate.SOURCES
                   help="how SOURCE is read, as `python -m preprocessing` reads it (default: "
                        "regex with --pattern, else folders)")
    p.add_argument("--pattern", help="regex with (?P<label>..) over relative paths; presets: "
                                     "fsdd, ravdess, speaker-id")
    p.add_argument("--label-map", help="with --pattern: preset (ravdess) or CODE=NAME,...")
    renamed(p, "--manifest", "--source manifest (SOURCE a CSV manifest)")
    p.add_argument("--path-column", help="manifest column of audio paths (default: path)")
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


def add_embed_parser(sub: Subcommands,
                     parents: list[argparse.ArgumentParser]) -> None:
    """Adds `embed` to `python -m xval`."""
    p = sub.add_parser("embed", parents=parents, help=COMMANDS["embed"].help)
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
