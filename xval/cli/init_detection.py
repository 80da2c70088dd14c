"""`python -m xval init AUDIO_DIR --annotations annotations.csv`: annotated recordings to a
detection experiment ready to run.

The recordings are cut into a detection store with its own windows and frames (the
detection defaults, `Detection.feature_defaults`: what `python -m preprocessing detection`
gives with nothing named), and the script's one instance names only the stock detector,
`fast_detector`: everything else, the training (the task's learning rate and the weight of
events' bounds) and the reading of recordings at evaluation (the post-processing chosen per
fold on validation), is the detection default, which `python -m xval config SCRIPT` shows.
Event mixing, overlapping windows at evaluation and PCEN stores are there to try, off by
default (docs/results.md, "Detection on recordings and backgrounds never seen"). With
`--encoders` (a frame encoder: aisfx_frames, Resemblyzer, a transformers speech model) the
store holds the encoder's frames and the instance is `pretrained_detector`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from preprocessing import annotation_source
from preprocessing.build import feature_params
from preprocessing.detection import TASK_TYPE as EVENT_TASK
from preprocessing.detection import (
    build_detection_store,
    check_frame_hop,
    check_items,
    read_items,
)
from preprocessing.features.pretrained import check_encoder, encoder_overrides
from preprocessing.store import FeatureStore
from xval import tasks
from xval.cli.annotations import READING, reading_options
from xval.cli.init_data import folds_for
from xval.cli.init_outputs import Created, check_outputs, finish
from xval.cli.preprocess import print_skipped, task_features
from xval.cli.scripts import experiment_script, literal, rank_split_line, script_path
from xval.config.loader import Config
from xval.core.backend import use_backend
from xval.core.errors import ConfigurationError

INSTANCES = """experiment[1] = {"architecture": "fast_detector", "reshaping_type": "conv",
                 "comment_1": "fast_detector", "comment_2": "detection defaults"}
"""
ENCODER_INSTANCES = """experiment[1] = {{"architecture": "pretrained_detector", "reshaping_type": "rnn",
                 "boundary_weight": 0.0,  # as measured: 3 of its frames are 280 ms
                 "comment_1": "pretrained_detector", "comment_2": {encoder}}}
"""
"""Instance 1 on a frame encoder's store; `{encoder}` is the encoder's name as a literal
(`literal`)."""
ABOUT = ("Instance 1 is the stock detector with the detection defaults (`python -m xval "
         "config {script}` shows them): bounds of events weighted 2 more in the loss, "
         "post-processing chosen per fold on the validation recordings; event_mix and "
         "prediction_hop are there to try (docs/tasks.md, Detection). Its saved models give "
         "frame probabilities; `python -m xval detect` turns new recordings into events.")
ABOUT_ENCODER = ("Instance 1 is pretrained_detector (a small GRU head) on the frames of the "
                 "encoder `ENCODERS` names below (with the licence of its weights), with the "
                 "detection defaults (`python -m xval config {script}` "
                 "shows them). On two sets aisfx_frames stayed below the stock detector "
                 "(docs/results.md, \"Detection on recordings and backgrounds never "
                 "seen\"; other encoders were not measured there): "
                 "compare it with `init` without --encoders. Its saved models give frame "
                 "probabilities; `python -m xval detect` turns new recordings into events.")
SKIPPED_SHOWN = 10
"""The skipped recordings `init` names (the rest are counted; the store lists them all)."""
NOT_WITH = ("pattern", "label_map", "item_pattern", "manifest", "source", "merge_duplicates")
"""`init` options that find labels and items in files: an annotation CSV does both."""


def check_detection_arguments(args: argparse.Namespace) -> None:
    """Refuses the options that do not go with `--annotations`.

    Raises:
        ConfigurationError: naming them.
    """
    given = [f"--{name.replace('_', '-')}" for name in NOT_WITH if getattr(args, name, None)]
    if given:
        raise ConfigurationError(
            f"{', '.join(given)} cannot be used with --annotations: the annotation CSV gives "
            "the events and --items the items (leave them out).")


def annotation_reading(args: argparse.Namespace) -> dict[str, Any] | None:
    """How `--annotations` is read: the `read_annotations` keywords given
    (`--annotation-units seconds`, ...), or `None` without `--annotations`.

    Raises:
        ConfigurationError: for such an option without `--annotations` (it would do
            nothing).
    """
    options = reading_options(args)
    given = {k: v for k, v in options.items() if k != "label_column"}  # also --corpus hf's
    if args.annotations is None and given:
        flag = next(name for name, keyword in READING.items() if keyword in given)
        raise ConfigurationError(f"--{flag.replace('_', '-')} goes with --annotations: it "
                                 "says how the annotation CSV is read.")
    return options if args.annotations is not None else None


def detection_encoder(name: str | None) -> dict[str, Any]:
    """`--encoders NAME` of a detection init: the store's `[features]` overrides (the
    encoder's rate and frame hop; the detection windows stay), or none without one.

    Args:
        name: `--encoders`' value (`None` or `"none"`: the log-mel store).

    Returns:
        dict of `feature`, `encoder`, `sample_rate` and `hop_length`, or `{}`.

    Raises:
        ConfigurationError: for an encoder that cannot run here, or one whose embeddings
            are too far apart to place an event (aisfx's blocks: use aisfx_frames).
    """
    if name in (None, "none"):
        return {}
    if "," in name:
        raise ConfigurationError(
            f"--encoders {name} with --annotations: a detection experiment reads one frame "
            "encoder's frames; give one (e.g. aisfx_frames) or none.")
    check_encoder(str(name))
    overrides = encoder_overrides(str(name), {}, segments=False)
    try:
        check_frame_hop(int(overrides["hop_length"]), int(overrides["sample_rate"]), name)
    except ConfigurationError as e:
        raise ConfigurationError(f"--encoders {name} with --annotations: {e}") from None
    return overrides


def init_detection(args: argparse.Namespace, audio: Path, project: Path, name: str,
                   config: Config, config_file: tuple[Path, str | None]) -> int:
    """Runs `init` on annotated recordings: checks, the store, config.ini, the script and
    its dry run; what it wrote is removed again when a later step fails.

    Args:
        args: the command line.
        audio: the folder of recordings.
        project: the project folder.
        name: the dataset's and the script's name.
        config: the project's configuration.
        config_file: `(path, text)` of config.ini; `text` is `None` when it exists.

    Returns:
        The exit code.
    """
    check_detection_arguments(args)
    encoder = detection_encoder(args.encoder)
    script = script_path(project, name)
    store_path = config.data_dir / name
    check_outputs(audio, project, config, script, [store_path], args.overwrite)
    reading = annotation_reading(args) or {}
    recordings, events, skipped = annotation_source(args.annotations, audio, **reading)
    items = read_items(args.items) if args.items is not None else None
    check_items(items, list(recordings["file"]), skipped, f"--items {args.items}")
    table = recordings.assign(item=[items[f] if items is not None else f
                                    for f in recordings["file"]])
    folds = folds_for(table, args.folds)
    print(f"Found {len(recordings)} annotated recordings in {audio}: {len(events)} events of "
          f"{events['label'].nunique()} classes, {table['item'].nunique()} items "
          f"({'--items' if items is not None else 'each recording its own item'}); "
          f"{folds} folds.")
    print_skipped(skipped, "recordings", SKIPPED_SHOWN, "the store's dataset.json lists "
                  "them all")
    if args.dry_run:
        print(f"Would write the detection store {store_path}"
              + (f" of {args.encoder}'s frames" if encoder else "")
              + f" and {script.relative_to(project)}"
              ", then run the script's dry run. Nothing was written (--dry-run).")
        return 0
    created = Created()
    created.folders(project, config.data_dir, script.parent)
    return created.kept_if_done(lambda: _write(args, audio, (name, store_path, script, folds),
                                               config, config_file, (items, encoder), created,
                                               reading))


def _write(args: argparse.Namespace, audio: Path, planned: tuple[str, Path, Path, int],
           config: Config, config_file: tuple[Path, str | None],
           grouping: tuple[dict[str, str] | None, dict[str, Any]], created: Created,
           reading: dict[str, Any]) -> int:
    """Builds the store (of the encoder's frames when `grouping` names one), writes
    config.ini and the script, runs the dry run."""
    name, store_path, script, folds = planned
    items, encoder = grouping
    existed = store_path.exists() and any(store_path.iterdir())
    if encoder:
        use_backend(config.backend.backend)  # the encoder's layers run in Keras
    params = feature_params(config.features, **{
        **task_features(tasks.get(EVENT_TASK), config, encoder), **encoder})
    store, summary = build_detection_store(
        args.annotations, audio, store_path, params=params, items=items,
        overwrite=args.overwrite, **reading,
        info={"source": f"python -m xval init {audio} --annotations {args.annotations}"
                        + (f" --encoders {encoder['encoder']}" if encoder else "")})
    if not existed:
        created.store(store_path)
    print(f"Wrote the detection store {store.path}: {summary['windows']} windows of "
          f"{summary['recordings']} recordings, {len(summary['skipped'])} file(s) skipped.")
    print_skipped(summary["unreadable"], "annotated recordings", SKIPPED_SHOWN,
                  "the store's dataset.json lists them all")
    if summary["unreadable"]:  # items may have gone with them: the folds the rest allow
        kept = folds_for(store.meta, args.folds)
        if kept != folds:
            print(f"{kept} folds, not {folds}: the recordings read hold "
                  f"{store.meta['item'].nunique()} items.")
        folds = kept
    return finish(script, config, config_file, created,
                  lambda: _write_script(script, store, audio, summary, folds,
                                        args.name or name),
                  "the store")


def _write_script(script: Path, store: FeatureStore, audio: Path, summary: dict[str, Any],
                  folds: int, called: str) -> None:
    """Writes the detection experiment script (what comes from the data only as literals:
    `experiment_script`)."""
    relative = Path("experiments") / script.name
    encoder = store.info.encoder
    text = (f"Written by `python -m xval init` from the audio folder `AUDIO` below: "
            f"{summary['recordings']} annotated recordings, {summary['events']} events of "
            f"{len(summary['classes'])} classes (`CLASSES`). Folds never split an item, so "
            "the test score says how well a detector does on recordings it has never seen.")
    data: dict[str, object] = {"AUDIO": str(audio), "CLASSES": list(summary["classes"])}
    if encoder:
        data["ENCODERS"] = {encoder: str(store.info.front_end.get("licence")
                                         or "licence not recorded")}
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(experiment_script(
        question="which detector finds the events in recordings it has never seen?",
        summary=text, about=(ABOUT_ENCODER if encoder else ABOUT).format(script=relative),
        script=relative, results=f"results/{store.path.name}/experiment_1", data=data,
        settings={"description": f"{called}: detection", "dataset": store.path.name,
                  "number": 1, "num_folds": folds, "task_type": EVENT_TASK},
        instances=(ENCODER_INSTANCES.format(encoder=literal(encoder)) if encoder
                   else INSTANCES),
        parameters=rank_split_line(0)),  # one instance: nothing to select between
        encoding="utf-8")
