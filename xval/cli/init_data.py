"""What `python -m xval init` reads of the audio folder: the rows (labels and items, and
how they were found, with the grouping of takes by recording stated), the folds the items
allow, and the segment length the clip durations call for."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import textwrap
from pathlib import Path

import pandas as pd

from architectures.hf import LocalModel
from preprocessing import sources
from preprocessing.duplicates.check import (
    DuplicateCheck,
    check_files,
    check_labels,
    check_merge,
    clip_labels,
    cross_item_conflicts,
    cross_item_duplicates,
    item_groups,
    label_conflicts,
    merged_items,
    report_lines,
)
from preprocessing.features import encoders
from preprocessing.features.pretrained import encoder_defaults
from preprocessing.recordings import OVERRIDE
from preprocessing.segment_length import (
    ENCODER_LONGEST,
    SegmentChoice,
    choose_segment,
    clip_durations,
    encoder_segment,
)
from preprocessing.sources import Source
from preprocessing.sources.labels import (
    LABEL_SETS_TASK,
    MULTI_LABEL,
    detect_separator,
    fsd50k_layout,
)
from xval import tasks
from xval.cli import sources as cli_sources
from xval.config.loader import PACKAGE_DEFAULT, Config
from xval.core.errors import ConfigurationError, DatasetError
from xval.folds import allowed_folds

__all__ = ["MAX_FOLDS", "MIN_ITEMS", "check_content", "check_foldable", "classes_of_rows",
           "encoder_store_params", "find_rows", "folds_for", "segment_for", "task_of_rows"]

MAX_FOLDS = 5
MIN_ITEMS = 3
"""The fewest items init cross-validates: each fold tests one, validates on another and
trains on the rest."""
ITEMS_RULE = (f"cross-validation over items needs at least {MIN_ITEMS} (each fold tests one "
              "item, validates on another and trains on the rest)")
NO_SHARED_ID = ("every file is its own item: the file names give no sound grouping by "
                "recording id (a name without its trailing take or slice suffix, such as -A "
                "or _02): none is shared, or the shared ones only number a class's files "
                "alike (bark_01 ... bark_06 in one class folder), are class names, or would "
                "leave a class on one item. If several files come from one recording, give "
                "--item-pattern REGEX with (?P<item>..).")


def _items(rows: pd.DataFrame, args: argparse.Namespace) -> tuple[str, str]:
    """How the items of a source without an item rule were found: a short phrase, and the
    sentence init prints."""
    grouped = rows.attrs.get("recordings")
    if grouped:
        return "items: the recording ids in the file names", f"Items: {grouped}."
    if args.item_per_file:
        return "every file its own item", f"Items: every file is its own item ({OVERRIDE})."
    return "every file its own item", "Items: " + NO_SHARED_ID


def find_rows(audio: Path, args: argparse.Namespace, corpus: Source | None = None
              ) -> tuple[pd.DataFrame, list, str, str | None]:
    """The source rows (of `corpus`, `--corpus`, else of the folder `audio`), the skipped
    files, how labels and items were found, and the sentence saying how the items were
    chosen (`None` when a rule was given)."""
    by_recording = not args.item_per_file
    if corpus is not None:
        paths = [str(audio)] + ([args.supervisions] if args.supervisions else [])
        rows, skipped = cli_sources.rows(corpus, paths, args)
        grouped = rows.attrs.get("recordings")  # a corpus without speakers: the fallback
        return (rows, skipped, f"{corpus.name} {' + '.join(paths)}",
                f"Items: {grouped}" if grouped else None)
    if args.manifest:
        column = _item_column(args.manifest)
        rows, skipped = sources.manifest_source(
            args.manifest, root=audio, item_column=column, by_recording=by_recording,
            label_separator=_label_separator(args), empty_label=args.empty_label,
            allow_outside_root=bool(args.allow_outside_root))
        if column is not None:
            return rows, skipped, f"manifest {args.manifest}", None
        how, said = _items(rows, args)
        return rows, skipped, f"manifest {args.manifest}, {how}", said
    if args.pattern:
        label_map = sources.label_map(args.label_map) if args.label_map is not None \
            else sources.LABEL_MAPS.get(args.pattern)
        pattern = sources.PRESETS.get(args.pattern, args.pattern)
        rows, skipped = sources.regex_source(audio, pattern, label_map=label_map,
                                             by_recording=by_recording)
        if "item" in re.compile(pattern).groupindex:
            return rows, skipped, f"pattern {args.pattern}", None
        how, said = _items(rows, args)
        return rows, skipped, f"pattern {args.pattern}, {how}", said
    if any(p.is_dir() for p in audio.iterdir()):
        rows, skipped = sources.folder_source(audio, item_pattern=args.item_pattern,
                                              by_recording=by_recording)
        if args.item_pattern:
            return rows, skipped, f"class sub-folders, items by {args.item_pattern}", None
        how, said = _items(rows, args)
        return rows, skipped, f"class sub-folders, {how}", said
    for preset, pattern in sources.PRESETS.items():
        try:
            rows, skipped = sources.regex_source(audio, pattern,
                                                 label_map=sources.LABEL_MAPS.get(preset))
        except DatasetError:
            continue
        if not skipped:
            return rows, skipped, f"file names of the {preset} preset", None
    raise DatasetError(
        f"{audio} has no class sub-folders and its file names fit no preset "
        f"({', '.join(sources.PRESETS)}). Put each class in its own folder, or give --pattern with "
        "named groups, e.g. --pattern '(?P<label>[a-z]+)_(?P<item>spk\\d+)_\\d+\\.wav'.")


def _label_separator(args: argparse.Namespace) -> str | None:
    """What separates the labels of a clip in the manifest: `--label-separator`, else FSD50K's
    comma (its columns), else `;` or `|` when some label holds one (`detect_separator`),
    else `None` (one label per clip)."""
    if args.label_separator is not None:
        return str(args.label_separator)
    table = pd.read_csv(args.manifest, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if fsd50k_layout(table.columns) is not None and "label" not in table.columns:
        return None  # the manifest source reads FSD50K's layout itself
    if "label" not in table.columns:
        return None  # the manifest source names the missing column
    return detect_separator(table["label"])


def task_of_rows(rows: pd.DataFrame, task_type: str = tasks.DEFAULT, *,
                 quiet: bool = True) -> str:
    """The task of a store or an experiment of `rows`: a source's rows of several labels
    per clip (`rows.attrs["multi_label"]`) make a store of the task of label sets
    (`LABEL_SETS_TASK`, or one derived from it) where `--task-type` is left at its default
    (said on one line unless `quiet`), else `task_type`.

    Raises:
        ConfigurationError: for rows of label sets with another `--task-type` named.
    """
    tagging = LABEL_SETS_TASK
    if not rows.attrs.get(MULTI_LABEL) or isinstance(tasks.get(task_type),
                                                     type(tasks.get(tagging))):
        return task_type
    if task_type != tasks.DEFAULT:
        raise ConfigurationError(
            f"--task-type {task_type}: the source gives several labels per clip, which a "
            f"{task_type} store cannot hold; use --task-type {tagging} (or leave it out).")
    if not quiet:
        print(f"Labels: several per clip, so the store is a {tagging} store "
              f"(task_type={tagging!r}).", flush=True)
    return tagging


def classes_of_rows(rows: pd.DataFrame) -> list[str]:
    """The classes of the rows, sorted: their labels, or for label sets the labels they
    hold."""
    targets = tasks.get(task_of_rows(rows)).targets
    return sorted({name for text in rows["label"].unique() for name in targets.classes_in(text)})


def _item_column(manifest: str) -> str | None:
    path = Path(manifest)
    if not path.is_file():
        raise DatasetError(f"--manifest {manifest!r} is not a file; give the CSV manifest "
                           "of the audio files.")
    try:
        columns = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError,
            ValueError) as e:
        raise DatasetError(f"--manifest {manifest!r} is not a readable UTF-8 CSV file "
                           f"({type(e).__name__}); give the CSV manifest.") from None
    return "item" if "item" in columns else None


def check_foldable(rows: pd.DataFrame, how: str) -> None:
    """Refuses what cannot be cross-validated, before anything is written."""
    tasks.get(task_of_rows(rows)).targets.check_labels(rows["label"].tolist(), f"the rows ({how})")
    n_items = rows["item"].nunique()
    if n_items < MIN_ITEMS:
        raise DatasetError(
            f"{n_items} item(s) found ({how}); {ITEMS_RULE}. Give items with --pattern's "
            "(?P<item>..) group or --item-pattern.")


def check_content(rows: pd.DataFrame, args: argparse.Namespace, workers: int
                  ) -> tuple[pd.DataFrame, DuplicateCheck]:
    """The duplicate check of the files found (`preprocessing.duplicates.check`): prints the
    pairs of files that hold the same audio under two items and the fix; with
    `--merge-duplicates`, each connected group of items becomes one item of the rows
    returned (printed), before the folds are cut.

    Returns:
        The rows (their items merged when asked; the check in `rows.attrs["duplicates"]`,
        which the stores record) and the check.

    Raises:
        DatasetError: when copies it would join carry different labels (`check_labels`),
            or merging leaves fewer than `MIN_ITEMS` items (`check_merge`).
    """
    check = check_files(rows, workers=workers, progress=not args.no_progress)
    items = dict(zip(rows["clip"].astype(str), rows["item"].astype(str)))
    sources = dict(zip(rows["clip"].astype(str), rows["path"].astype(str)))
    crossing = cross_item_duplicates(check, items)
    labels = clip_labels(rows)
    fix = "`python -m xval init ... --merge-duplicates`"
    review = "`python -m preprocessing check STORE --csv PAIRS.csv` once the store is built"
    for line in report_lines(check, crossing, sources, fix=fix, review=review,
                             merging=args.merge_duplicates,
                             conflicts=label_conflicts(check, labels, items)):
        print(textwrap.fill(line, width=100, subsequent_indent="    ", break_on_hyphens=False,
                            break_long_words=False) if not line.startswith("  ") else line)
    if not (crossing and args.merge_duplicates):
        rows.attrs["duplicates"] = check
        return rows, check
    check_labels(cross_item_conflicts(crossing, labels), sources,
                 fix="correct the label or remove the copy in the audio folder and rerun init, "
                     "or run init without --merge-duplicates")
    groups = item_groups(crossing)
    new = merged_items(groups)
    rows = rows.assign(item=[new.get(i, i) for i in rows["item"].astype(str)])
    check_merge(groups, rows["item"].nunique(), needed=MIN_ITEMS, rule=ITEMS_RULE,
                fix="if they are copies filed under several items, remove the copies from "
                    "the audio folder and rerun init; if they are not (a jingle, silence or "
                    "one take shared on purpose), run init without --merge-duplicates and "
                    "clean the data")
    for group in groups:
        print(f"Merged items {', '.join(group)} into one: {'+'.join(group)} (--merge-duplicates).")
    check = dataclasses.replace(check, merged=tuple(map(tuple, groups)))
    rows.attrs["duplicates"] = check
    return rows, check


def folds_for(rows: pd.DataFrame, wanted: int | None) -> int:
    """The folds of the experiment: `--folds` when the items allow it, else the most the
    items allow up to `MAX_FOLDS`.

    Raises:
        ConfigurationError: for `--folds` the splitter cannot make of the items.
    """
    n_items = int(rows["item"].nunique())
    allowed = [k for k in allowed_folds(n_items) if k >= 2]  # the splitter's own rule
    if wanted is None and allowed:
        return max(k for k in allowed if k <= MAX_FOLDS)
    if wanted not in allowed:
        raise ConfigurationError(
            f"--folds {wanted}: {n_items} items allow {', '.join(map(str, allowed)) or 'none'} "
            "(every fold keeps test, validation and training items apart).")
    return wanted


def segment_for(rows: pd.DataFrame, config: Config) -> SegmentChoice:
    """The segment length of the store: config.ini's `[features] segment_seconds` when it
    sets one, else chosen from the clip durations (`choose_segment`)."""
    features = config.features
    if config.source("features", "segment_seconds") != PACKAGE_DEFAULT:
        return SegmentChoice(features.segment_seconds, features.segment_hop_seconds,
                             f"[features] segment_seconds of {config.path}")
    choice = choose_segment(clip_durations(rows))
    if config.source("features", "segment_hop_seconds") != PACKAGE_DEFAULT:
        return SegmentChoice(choice.seconds, features.segment_hop_seconds,
                             choice.reason + f" (the hop: [features] segment_hop_seconds "
                                             f"of {config.path})")
    return choice


def encoder_store_params(rows: pd.DataFrame, encoder: str) -> dict:
    """The feature parameters of the encoder store `init` builds, its segment said on one
    line: the encoder's own (`encoder_defaults`), and for a block encoder segments as long
    as 3 clips in 4 (`encoder_segment`), so that a row holds every block of its clip. A
    transformers model (any other name, `hf:` optional) has the same segments, at most its
    window (a short clip costs Whisper what it holds), and its family's layers and pooled
    frames (`Family.store_defaults`).

    Returns:
        The `[features]` values over the encoder's defaults.
    """
    params = encoder_defaults(encoder)
    if encoder not in encoders.BUILT_IN:
        family = LocalModel(encoder).family
        choice = encoder_segment(
            clip_durations(rows), block_seconds=family.shortest / family.sample_rate,
            default=family.segment_seconds,
            longest=min(ENCODER_LONGEST, family.window / family.sample_rate or math.inf))
        params = {**params, **family.store_defaults()}
    elif encoders.BUILT_IN[encoder].make.block_length:  # a frame encoder keeps its segment
        cls = encoders.BUILT_IN[encoder].make
        choice = encoder_segment(clip_durations(rows), block_seconds=cls.block_length
                                 / cls.sample_rate,
                                 default=float(encoders.BUILT_IN[encoder].segment_seconds))
    else:
        return params
    print(textwrap.fill(f"The {encoder} store: segments of {choice.seconds:g} s every "
                        f"{choice.hop:g} s ({choice.reason}).", width=100,
                        break_on_hyphens=False))
    return {**params, "segment_seconds": choice.seconds, "segment_hop_seconds": choice.hop}


def check_source(args: argparse.Namespace, audio: Path) -> Source | None:
    """The corpus of `--corpus` (`None`: a folder of audio), refusing a path or options that
    do not fit it, before anything is written."""
    source = sources.get(args.source) if args.source else None
    also = (("--allow-outside-root",) if args.manifest else ()) + \
        (("--label-column",) if getattr(args, "annotations", None) else ())
    cli_sources.options_given(args, source, sources.corpora(), also=also)
    if (args.label_separator or args.empty_label) and not args.manifest:
        flag = "--label-separator" if args.label_separator else "--empty-label"
        raise ConfigurationError(
            f"{flag} reads the label column of a manifest: give --manifest CSV (a corpus "
            "of several labels per clip is recognised as it is: lhotse --multi-label, a "
            "Hugging Face Sequence column).")
    mixed = [flag for flag in ("pattern", "label_map", "item_pattern", "item_per_file",
                               "manifest") if getattr(args, flag)]
    if source and mixed:
        raise ConfigurationError(f"--{mixed[0].replace('_', '-')} reads a folder of audio; "
                                 f"--corpus {source.name} reads the corpus's own files: give "
                                 "one or the other.")
    if args.item_per_file and args.item_pattern:
        raise ConfigurationError(f"--item-per-file and --item-pattern {args.item_pattern!r} "
                                 "contradict each other: give one.")
    if args.supervisions and (source is None or source.reads.most < 2):
        two = [c for c in sources.corpora() if c.reads.most > 1]
        raise ConfigurationError(
            f"A second path ({args.supervisions}) is for "
            + " or ".join(f"--corpus {c.name}, which reads {c.reads.what}" for c in two) + ".")
    kind, what = (source.reads.kind, source.reads.what) if source else \
        ("folder", "the folder that holds your audio files")
    if kind == "file" and not audio.is_file():
        raise DatasetError(f"{args.audio!r} is not a file; give {what}.")
    if kind == "folder" and not audio.is_dir():
        raise DatasetError(f"AUDIO_DIR {args.audio!r} is not a folder; give {what}.")
    return source


def data_name(text: str) -> str:
    """The data's name in the script and the stores (`--name`, else the folder's): letters,
    digits and `_`, never starting with a digit."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    if not name:
        raise ConfigurationError(f"--name {text!r}: give a name of letters, digits or _.")
    return name if not name[0].isdigit() else f"data_{name}"
