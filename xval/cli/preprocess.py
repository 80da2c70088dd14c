"""`python -m preprocessing SOURCE ...`: build a feature store from audio files.

Sources: `demo`, `regex`, `folders`, `manifest`, and the corpora of speech toolkits
`kaldi`, `lhotse`, `hf`; plus `report` to describe a store, `check` to list the files that
hold the same audio under two items (and merge them), and
`synth-events` to write a sound event detection dataset (FSDD digits in backgrounds),
`synth-babble` and `synth-ambience` to make grouped backgrounds for it (babble; rain, wind,
waves, engine, fire, machine), and `synth-scenes` to write one with no speech in it.
Recipes (FSDD, RAVDESS, ESC-50, speaker identification): docs/preprocessing.md.

Exit status: 0 when the store is written (unusable files are skipped and listed), 2 for a
bad argument, configuration or dataset (one `error:` line on stderr, nothing written)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import preprocessing.features as feature_types
import xval.config.schema as schema
from augmentation import Augmenter, require_augment_extra
from preprocessing import sources
from preprocessing.ambience import ambience_backgrounds
from preprocessing.babble import babble_backgrounds
from preprocessing.build import build_store, feature_params, silent_note
from preprocessing.demo import build_demo
from preprocessing.detection import TASK_TYPE as EVENT_TASK
from preprocessing.detection import build_detection_store, read_items
from preprocessing.duplicates.check import DuplicateCheck, report_lines, write_pairs_csv
from preprocessing.duplicates.store_check import (
    merge_store,
    recheck_store,
    record_check,
    store_check,
)
from preprocessing.features.pretrained import (
    PRETRAINED,
    PretrainedOptions,
    check_encoder,
    encoder_overrides,
)
from preprocessing.parallel import auto_workers
from preprocessing.report import dataset_report, format_report
from preprocessing.rows import source_count
from preprocessing.store import FeatureStore
from preprocessing.synth_events import synth_events
from preprocessing.synth_scenes import synth_scenes
from xval import tasks
from xval.cli import sources as cli_sources
from xval.cli.annotations import reading_options
from xval.cli.init_data import task_of_rows
from xval.cli.preprocess_parser import KINDS, preprocessing_parser
from xval.config.loader import PACKAGE_DEFAULT, Config, find_config, load_config
from xval.core.backend import use_backend
from xval.core.entry import exit_process, run_entry
from xval.core.errors import ConfigurationError
from xval.core.logs import quiet_framework_logs
from xval.core.outputs import check_output_files, check_output_folder


def _feature_options(args: argparse.Namespace, config: Config,
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """The `--feature-option` values, checked against the options of the chosen type."""
    given: list[tuple[str, Any]] = getattr(args, "feature_option", None) or []
    if not given:
        return {}
    feature = str(overrides.get("feature", config.features.feature))
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
            raise ConfigurationError(f"--feature-option {name} is given twice; give it once.")
        default = options[name]
        if isinstance(default, bool | int | float) and not (
                type(value) is type(default) or (type(default) is float
                                                 and type(value) is int)):
            raise ConfigurationError(
                f"--feature-option {name}={value!r}: expected "
                f"{KINDS[type(default)]} like its default, {default!r}.")
        out[name] = value
    return out


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m preprocessing` (`--help` opens with this module's
    docstring)."""
    return preprocessing_parser(__doc__, demo=_demo, source=_from_source, detection=_detection,
                        report=_report, synth_events=_synth_events,
                        synth_babble=_synth_babble, synth_ambience=_synth_ambience,
                        synth_scenes=_synth_scenes, check=_check)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (no traceback reaches the user:
    `xval.core.entry`)."""
    return run_entry(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    quiet_framework_logs(verbose=args.verbose)
    if args.quiet and args.verbose:
        raise ConfigurationError("Give -q/--quiet or -v/--verbose, not both.")
    return int(args.run(args, argv))


def _report(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    if args.plot is not None:
        if Path(args.plot).suffix.lower() != ".png":
            raise ConfigurationError(f"--plot {args.plot!r}: expected a .png file name.")
        check_output_files([args.plot], overwrite=args.overwrite)
    print(format_report(dataset_report(args.store, plot_path=args.plot)))
    return 0


def _print_duplicate_check(store: FeatureStore, summary: dict[str, Any]) -> None:
    """The duplicate check of a store just built: its pairs across items and the fix, and
    the groups merged (`--merge-duplicates`)."""
    if not summary.get("duplicates"):
        return
    found = store_check(store)
    assert found.check is not None  # the build recorded it
    for group in found.check.merged:
        print(f"Merged items {', '.join(group)} into one: {'+'.join(group)} (they share "
              "audio).")
    fix = f"python -m preprocessing check {store.path} --merge-duplicates (or a rebuild " \
          "with --merge-duplicates)"
    for line in report_lines(found.check, found.cross_item, found.sources, fix=fix,
                             conflicts=found.conflicts):
        print(line)


def _check(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """`check STORE`: the pairs of files that hold the same audio under two items, and the
    fix (`--merge-duplicates`, `--csv`)."""
    if args.threshold is not None and not args.recheck:
        raise ConfigurationError(f"--threshold {args.threshold:g} goes with --recheck (the "
                                 "recorded check keeps its own threshold).")
    if args.csv is not None:
        check_output_files([args.csv], overwrite=args.overwrite)
    store = FeatureStore(args.store)
    found = store_check(store)
    if found.check is None or args.recheck:
        why = "as asked (--recheck)" if args.recheck else \
            "it records none: built before the check existed, or a detection store"
        if not args.quiet:
            print(f"Checking {store.path} from its audio files ({why})...", flush=True)
        check = recheck_store(store, workers=args.workers or auto_workers(len(store.meta)),
                              threshold=args.threshold, progress=_progress(args))
        if found.check is not None:  # the groups merged before stay recorded
            check = dataclasses.replace(check, merged=found.check.merged)
        store = record_check(store, check)
        found = store_check(store)
    assert found.check is not None  # recorded just above when missing
    fix = f"python -m preprocessing check {args.store} --merge-duplicates"
    for line in report_lines(found.check, found.cross_item, found.sources, fix=fix,
                             merging=args.merge_duplicates, conflicts=found.conflicts):
        print(line)
    if args.csv is not None and found.cross_item:
        print(f"Wrote {write_pairs_csv(args.csv, found.cross_item, found.sources)}: "
              f"{len(found.cross_item)} pair(s).")
    if args.merge_duplicates and found.cross_item:
        _merge(store, found.check)
    return 0


def _merge(store: FeatureStore, check: DuplicateCheck) -> None:
    """Rewrites the store with each group of items sharing audio as one item, and says so."""
    before = store.info.n_items
    store, merged = merge_store(store, check)
    for group in merged.merged[len(check.merged):]:
        print(f"Merged items {', '.join(group)} into one: {'+'.join(group)}.")
    print(f"Rewrote {store.path}: {before} items became {store.info.n_items}; "
          "experiments made from it before have other folds (rerun them).")


def _features(args: argparse.Namespace, segments: bool = True
              ) -> tuple[Config, dict[str, Any], dict[str, Any]]:
    """The configuration, the `[features]` flags given (with `--encoders`'; its segments
    unless `segments` is `False`: a detection store cuts its own windows) and the
    `--feature-option` values, checked: an encoder that cannot run here is refused now,
    before any audio is read (`check_encoder`)."""
    config = load_config(args.config or find_config())
    overrides = {k: getattr(args, k) for k in schema.SCHEMA["features"]
                 if k != "workers" and getattr(args, k) is not None}
    named = any(option == "encoder" for option, _ in getattr(args, "feature_option", ()) or ())
    overrides = encoder_overrides(getattr(args, "encoder", None), overrides, named, segments)
    options = _feature_options(args, config, overrides)
    if str(overrides.get("feature", config.features.feature)) == PRETRAINED:
        chosen = PretrainedOptions.of({**overrides, **options})
        check_encoder(chosen.encoder, chosen.revision)
    return config, overrides, options


def _backend(config: Config, overrides: dict[str, Any]) -> None:
    """Chooses the Keras backend when the feature type runs an encoder's layers."""
    feature = str(overrides.get("feature", config.features.feature))
    if "encoder" in feature_types.get(feature).options:
        use_backend(config.backend.backend)


def _synth_events(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
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


def _synth_babble(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    summary = babble_backgrounds(
        args.speech, args.out, groups=args.groups, files_per_group=args.files_per_group,
        seconds=args.seconds, talkers_min=args.talkers_min, talkers_max=args.talkers_max,
        pause_max=args.pause_max, reverb=not args.no_reverb, rt60_min=args.rt60_min,
        rt60_max=args.rt60_max, sample_rate=args.sample_rate, seed=args.seed,
        overwrite=args.overwrite)
    print(f"Wrote {summary['out']}: {summary['files']} babble files in "
          f"{len(summary['groups'])} groups (backgrounds.csv).")
    return 0


def _types(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _synth_ambience(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    summary = ambience_backgrounds(
        args.out, types=_types(args.types), files_per_type=args.files_per_type,
        seconds=args.seconds, sample_rate=args.sample_rate, seed=args.seed,
        overwrite=args.overwrite)
    print(f"Wrote {summary['out']}: {summary['files']} backgrounds of "
          f"{len(summary['types'])} types ({', '.join(summary['types'])}), one folder each.")
    return 0


def _synth_scenes(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    summary = synth_scenes(
        args.out, types=_types(args.types), files_per_type=args.files_per_type,
        seconds=args.seconds, events_min=args.events_min, events_max=args.events_max,
        min_gap=args.min_gap, snr_min=args.snr_min, snr_max=args.snr_max,
        sample_rate=args.sample_rate, seed=args.seed, overwrite=args.overwrite)
    print(f"Wrote {summary['out']}: {summary['files']} recordings on "
          f"{len(summary['items'])} background types, {summary['events']} events "
          "(annotations.csv, events.csv, items.csv).")
    return 0


def _workers(args: argparse.Namespace, config: Config) -> int:
    return int(config.features.workers if args.workers is None else args.workers)


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


def _demo(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    config, overrides, options = _features(args)
    if options:
        raise ConfigurationError(
            "The demo dataset has fixed feature parameters; --feature-option cannot be used "
            "with `demo`. Build your own store with `regex`, `folders` or `manifest`.")
    if overrides or args.augment or args.merge_duplicates:
        given = ", ".join("--" + k.replace("_", "-") for k in overrides) or (
            "--augment" if args.augment else "--merge-duplicates")
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
    _backend(config, overrides)
    store, summary = build_demo(data_dir, overwrite=args.overwrite,
                                workers=_workers(args, config), progress=_progress(args),
                                task_type=args.task_type)
    _print_summary(args, store, summary)
    return 0


def _detection(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    config, overrides, options = _features(args, segments=False)
    overrides.update(options)
    given = [flag for flag, value in (("--augment", args.augment),
                                      ("--noise-dir", args.noise_dir),
                                      ("--ir-dir", args.ir_dir),
                                      ("--merge-duplicates", args.merge_duplicates))
             if value]
    if args.task_type != tasks.DEFAULT:
        given.append("--task-type")
    if given:
        raise ConfigurationError(
            f"{', '.join(given)} cannot be used with `detection` (a detection store's "
            "task is detection; augmentation and the duplicate check of detection stores "
            "are not available yet).")
    _backend(config, overrides)
    params = feature_params(config.features, style="flag",
                            **{**task_features(tasks.get(EVENT_TASK), config, overrides),
                               **overrides})
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


def task_features(task: tasks.Task, config: Config,
                   overrides: dict[str, Any]) -> dict[str, Any]:
    """The task's own `[features]` defaults (`Task.feature_defaults` at the store's sample
    rate) that config.ini does not name (the command line's values go over them)."""
    named = {k for k in schema.SCHEMA["features"]
             if k in overrides or config.source("features", k) != PACKAGE_DEFAULT}
    segment = config.features.segment_seconds if "segment_seconds" in named else None
    defaults = task.feature_defaults(int(overrides.get("sample_rate",
                                                       config.features.sample_rate)),
                                     overrides.get("segment_seconds", segment))
    return {k: v for k, v in defaults.items() if k not in named}


def _from_source(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """A store from the rows of the registered source `args.source`."""
    config, overrides, options = _features(args)
    overrides.update(options)
    _backend(config, overrides)
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
    source = sources.get(args.source)
    rows, skipped = cli_sources.rows(source, args.paths, args)
    args.task_type = task_of_rows(rows, args.task_type, quiet=bool(args.quiet))
    if rows.attrs.get("recordings") and not args.quiet:
        print(f"Items: {rows.attrs['recordings']}.", flush=True)
    out = _out(args, config)
    if _progress(args):
        found = source_count({"files": len(rows), "recordings": rows["path"].nunique(),
                              "unit": rows.attrs.get("unit")})
        print(f"Extracting features of {found} into {out} (the first run in "
              "a new environment compiles librosa's numba kernels: about 25 s)...",
              flush=True)
    store, summary = build_store(
        rows, out, params=params, workers=_workers(args, config), strict=args.strict,
        inputs=source.inputs(args.paths, source.values(cli_sources.given(args, source)), rows),
        overwrite=args.overwrite, task_type=args.task_type, skipped=skipped,
        augmenter=augmenter, augment_versions=args.augment,
        augment_seed=config.augmentation.seed, progress=_progress(args),
        info={"source": " ".join(sys.argv[1:]) if argv is None else " ".join(argv)},
        merge=args.merge_duplicates)
    _print_summary(args, store, summary)
    return 0


def _print_summary(args: argparse.Namespace, store: FeatureStore,
                   summary: dict[str, Any]) -> None:
    print(f"Wrote {store.path}: {summary['rows']} rows from {source_count(summary)}, "
          f"{summary['items']} items, {len(summary['classes'])} classes, features "
          f"{summary['shape'][1:]}, in {summary['seconds']:.1f}s{silent_note(summary)}.")
    if args.quiet:  # one line still says that some were left out
        if summary["skipped"]:
            print(f"Skipped {len(summary['skipped'])} of the "
                  f"{summary.get('unit') or 'files'} (listed in dataset.json; without -q, "
                  "here with the reasons).")
        return
    _print_duplicate_check(store, summary)
    print_skipped(summary["skipped"], summary.get("unit") or "files",
                  None if args.verbose else 20, "see dataset.json, or -v")
    print(format_report(dataset_report(store)))


def print_skipped(skipped: list[dict[str, Any]], unit: str, shown: int | None,
                  more: str) -> None:
    """Prints the skipped files (`{"path", "reason"}`), `shown` of them at most (`None`:
    all), and where the rest are listed (`more`); nothing when none was skipped."""
    if not skipped:
        return
    print(f"Skipped {len(skipped)} of the {unit}:")
    for s in skipped[:shown]:
        print(f"  {s['path']}: {s['reason']}")
    if shown is not None and len(skipped) > shown:
        print(f"  ... and {len(skipped) - shown} more ({more})")


if __name__ == "__main__":
    exit_process(main())
