"""The argument parser of `python -m preprocessing`: one sub-command per registered source
(`xval.cli.sources`), and demo, detection, report, check, synth-events, synth-babble,
synth-ambience and synth-scenes; the `[features]` flags made from the schema."""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable
from typing import Any

import xval.config.schema as schema
from preprocessing.detection import TASK_TYPE as EVENT_TASK
from preprocessing.duplicates.fingerprints import THRESHOLD
from preprocessing.features import encoders
from xval import tasks
from xval.cli import sources
from xval.cli.annotations import add_reading_arguments
from xval.core.arguments import ArgumentParser, RawDescriptionHelpFormatter, renamed
from xval.core.optional import EXTRAS
from xval.core.version import add_version

KINDS = {bool: "True or False", int: "an integer", float: "a number"}
"""What `--feature-option` expects of an option whose default is of that type."""


def _feature_option(text: str) -> tuple[str, Any]:
    """`NAME=VALUE` of `--feature-option`: the value as a Python literal, else a string."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=VALUE, e.g. encoder=resemblyzer or layers=[1,2]")
    try:
        parsed = ast.literal_eval(value.strip())  # literals only: never evaluates code
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        parsed = value
    return name.strip(), parsed


def verbosity(p: argparse.ArgumentParser) -> None:
    """`-q`/`-v`, which every command of the project takes."""
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only the results and errors (no bar, no report)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="every skipped file, and the frameworks' log lines")


def _one_encoder(text: str) -> str:
    """`--encoders` of a store: one name (a store holds one encoder's embeddings)."""
    if "," in text:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a store holds one encoder's embeddings; give one name (`python -m "
            "xval init AUDIO --encoders A,B` builds a store per encoder and compares them)")
    return text


def _common(p: argparse.ArgumentParser, needs_out: bool = True) -> None:
    if needs_out:
        p.add_argument("--out", required=True,
                       help="store folder, or a dataset name under --data-dir")
    p.add_argument("--data-dir", help="folder of stores (default: config.ini [paths] data_dir)")
    p.add_argument("--config", help="config.ini to read [features] defaults from")
    p.add_argument("--strict", action="store_true", help="fail on the first unusable file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--task-type", default=tasks.DEFAULT, choices=schema.task_types(),
                   help="what the labels are for (a task registered in xval.tasks)")
    p.add_argument("--augment", type=schema.augmented_versions("--augment"), default=0,
                   metavar="N",
                   help="add N augmented versions of every file, marked augmented "
                        f"(training only; needs `{EXTRAS['augment'].install}`)")
    p.add_argument("--noise-dir", help="with --augment: folder of background noises")
    p.add_argument("--ir-dir", help="with --augment: folder of impulse responses")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--merge-duplicates", action="store_true",
                   help="make each group of items whose files hold the same audio one item "
                        "(the duplicate check; without it they are listed)")
    verbosity(p)
    group = p.add_argument_group("feature parameters (default: config.ini [features])")
    schema.add_arguments(group, "features")
    group.add_argument("--encoders", dest="encoder", metavar="NAME", type=_one_encoder,
                       help="the pretrained encoder whose embeddings the store holds: "
                            f"{', '.join(encoders.BUILT_IN)}, or a transformers audio model "
                            "on this disk (FOLDER or HUB_ID, hf: optional); sets --feature "
                            "pretrained with the encoder's rate, hop and segment")
    renamed(group, "--encoder", "--encoders NAME")
    group.add_argument("--feature-option", action="append", type=_feature_option,
                       default=[], metavar="NAME=VALUE",
                       help="an option of the --feature type, repeatable, e.g. "
                            "encoder=resemblyzer or layers=[1,2] (the value is read as a "
                            "Python literal, else as a string)")


Command = Callable[[argparse.Namespace, Any], int]
"""What a sub-command runs: `run(args, argv) -> exit status`."""


def _detection_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(EVENT_TASK,
                       help="annotated recordings cut into windows with frame-level targets")
    p.add_argument("root", help="folder of the recordings")
    p.add_argument("--annotations", required=True,
                   help="annotation CSV: wide (start/end sample column pairs) or long (one "
                        "row per event)")
    p.add_argument("--items", help="CSV file,item grouping the recordings (speaker, site, "
                                   "night); default: each recording is its own item")
    add_reading_arguments(p, defaults=True)
    _common(p)
    return p


def _synth_events_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("synth-events",
                       help="FSDD digits placed into longer backgrounds, with annotations")
    p.add_argument("fsdd", help="the FSDD recordings folder ({digit}_{speaker}_{index}.wav)")
    p.add_argument("--out", required=True, help="folder to write (must not exist)")
    p.add_argument("--files-per-speaker", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each recording")
    p.add_argument("--events-min", type=int, default=1, help="fewest digits per recording")
    p.add_argument("--events-max", type=int, default=4, help="most digits per recording")
    p.add_argument("--min-gap", type=float, default=0.5,
                   help="shortest silence between two digits (s)")
    p.add_argument("--snr-min", type=float, default=0.0, help="lowest SNR (dB)")
    p.add_argument("--snr-max", type=float, default=20.0, help="highest SNR (dB)")
    p.add_argument("--labels", choices=("single", "digit"), default="single",
                   help="single: one class 'digit'; digit: the spoken digit is the class")
    p.add_argument("--backgrounds", help="folder of background recordings (default: noise)")
    p.add_argument("--noise", choices=("white", "pink", "brown", "mixed"),
                   help="coloured-noise background without --backgrounds (default: mixed)")
    p.add_argument("--background-groups", action="store_true",
                   help="--backgrounds holds one sub-folder per speaker (site): speaker k "
                        "draws only from the k-th sub-folder")
    p.add_argument("--seconds-max", type=float,
                   help="draw each recording's length from --seconds..--seconds-max")
    p.add_argument("--train-min", type=int, default=1,
                   help="fewest repetitions of an event train (a digit repeated)")
    p.add_argument("--train-max", type=int, default=1,
                   help="most repetitions of an event train (1: single events)")
    p.add_argument("--train-gap-min", type=float, default=0.08,
                   help="shortest gap inside a train (s)")
    p.add_argument("--train-gap-max", type=float, default=0.25,
                   help="longest gap inside a train (s)")
    p.add_argument("--overlap", action="store_true",
                   help="trains of different classes may overlap")
    p.add_argument("--digits", help="digits used as events, e.g. 136 (default: all)")
    return _synth_output(p, 8000)


def _synth_babble_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("synth-babble",
                       help="reverberant multi-talker babble backgrounds, one folder per site")
    p.add_argument("speech", help="folder of speech files, one sub-folder per talker "
                                  "(e.g. RAVDESS's Actor_XX)")
    p.add_argument("--out", required=True, help="folder to write (must not exist)")
    p.add_argument("--groups", type=int, default=6, help="sites (disjoint talker pools)")
    p.add_argument("--files-per-group", type=int, default=2)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--talkers-min", type=int, default=3)
    p.add_argument("--talkers-max", type=int, default=4)
    p.add_argument("--pause-max", type=float, default=1.0,
                   help="longest pause between a talker's utterances (s)")
    p.add_argument("--no-reverb", action="store_true", help="no simulated room")
    p.add_argument("--rt60-min", type=float, default=0.3)
    p.add_argument("--rt60-max", type=float, default=0.9)
    return _synth_output(p, 8000)


def _synth_ambience_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("synth-ambience",
                       help="synthetic environmental backgrounds (rain, wind, waves, engine, "
                            "fire, machine), one folder per type")
    p.add_argument("--out", required=True, help="folder to write (must not exist)")
    p.add_argument("--types", help="comma-separated types (default: all six)")
    p.add_argument("--files-per-type", type=int, default=3)
    p.add_argument("--seconds", type=float, default=60.0)
    return _synth_output(p, 16000)


def _synth_scenes_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("synth-scenes",
                       help="synthetic events (barks, bursts, chirps) on synthetic "
                            "environmental backgrounds, with annotations; no speech")
    p.add_argument("--out", required=True, help="folder to write (must not exist)")
    p.add_argument("--types", help="comma-separated background types, one item each "
                                   "(default: all six)")
    p.add_argument("--files-per-type", type=int, default=7)
    p.add_argument("--seconds", type=float, default=30.0, help="length of each recording")
    p.add_argument("--events-min", type=int, default=3, help="fewest trains per recording")
    p.add_argument("--events-max", type=int, default=7, help="most trains per recording")
    p.add_argument("--min-gap", type=float, default=0.3,
                   help="shortest silence between two trains of one class (s)")
    p.add_argument("--snr-min", type=float, default=0.0, help="lowest SNR (dB)")
    p.add_argument("--snr-max", type=float, default=15.0, help="highest SNR (dB)")
    return _synth_output(p, 16000)


def _synth_output(p: argparse.ArgumentParser, sample_rate: int) -> argparse.ArgumentParser:
    """The options every synth command ends with: its sample rate, its seed, `--overwrite`."""
    p.add_argument("--sample-rate", type=int, default=sample_rate)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace a folder written by {p.prog.split()[-1]}")
    verbosity(p)
    return p


def _check_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="files of a store that hold the same audio under two "
                                     "items (the duplicate check), and the fix")
    p.add_argument("store", help="the store folder")
    p.add_argument("--merge-duplicates", action="store_true",
                   help="rewrite the store with each group of items that share audio as "
                        "one item")
    p.add_argument("--csv", metavar="PAIRS.csv",
                   help="write every pair that crosses items to this CSV, for review")
    p.add_argument("--recheck", action="store_true",
                   help="check again from the audio files (the store's sources), and record "
                        "it (a store built before the check is checked this way anyway)")
    p.add_argument("--threshold", type=_similarity, metavar="S",
                   help="with --recheck: the waveform similarity (0 < S <= 1) at or above "
                        f"which two files are one recording (default: {THRESHOLD})")
    p.add_argument("--workers", type=int, default=0,
                   help="processes decoding and verifying (0: all cores)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --csv file when it exists (else an error)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    verbosity(p)
    return p


def _similarity(text: str) -> float:
    """`--threshold`: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a similarity in (0, 1], e.g. "
                                         "0.95")
    return value


def preprocessing_parser(description: str | None = None, *, demo: Command, source: Command,
                 detection: Command, report: Command, synth_events: Command,
                 synth_babble: Command, synth_ambience: Command, synth_scenes: Command,
                 check: Command) -> argparse.ArgumentParser:
    """The command line of `python -m preprocessing`: each sub-command's `args.run` is the
    command given for it.

    Args:
        description: what `--help` says first (`xval.cli.preprocess` gives its own
            docstring: the sources and the exit status). Defaults to `None` (this module's).
        demo, source, detection, report, synth_events, synth_babble, synth_ambience,
            synth_scenes, check: what the sub-commands run (`source`: every registered source's).
    """
    top = ArgumentParser(prog="python -m preprocessing", description=description or __doc__,
                         formatter_class=RawDescriptionHelpFormatter)
    add_version(top)
    sub = top.add_subparsers(dest="source", required=True)
    p = sub.add_parser("demo", help="the built-in synthetic demo dataset")
    _common(p, needs_out=False)
    p.set_defaults(run=demo)
    sources.add_parsers(sub, _common, source)
    _detection_parser(sub).set_defaults(run=detection)
    p = sub.add_parser("report", help="describe an existing store")
    p.add_argument("store")
    p.add_argument("--plot", help="write a sample-rate histogram PNG here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --plot file when it exists (else an error)")
    verbosity(p)
    p.set_defaults(run=report)
    _check_parser(sub).set_defaults(run=check)
    _synth_events_parser(sub).set_defaults(run=synth_events)
    _synth_babble_parser(sub).set_defaults(run=synth_babble)
    _synth_ambience_parser(sub).set_defaults(run=synth_ambience)
    _synth_scenes_parser(sub).set_defaults(run=synth_scenes)
    return top
