"""`python -m xval init AUDIO_DIR`: from a folder of audio to an experiment ready to run.

Steps: find the labels and items (class sub-folders, a known or given file-name pattern, a
CSV manifest, or a corpus: `--source kaldi|lhotse|hf`), write a minimal `config.ini` (when the project has none), build the feature
store, write `experiments/<name>.py` in the house style, run its dry run (the plan and the
data checks), and print the one command that runs it. With `--annotations` (an annotation
CSV of the recordings), a detection store and a detection experiment with the detection
defaults (`xval.cli.init_detection`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from architectures.hf import LocalModel, names_model
from preprocessing import sources
from preprocessing.build import build_store, feature_params, silent_note
from preprocessing.features import encoders
from preprocessing.features.encoders import torch_module
from preprocessing.features.pretrained import check_encoder
from preprocessing.intake import check_trainable
from preprocessing.segment_length import SegmentChoice
from preprocessing.sources.labels import parse_separator
from preprocessing.store import FeatureStore
from xval import tasks
from xval.cli import init_stores
from xval.cli import sources as cli_sources
from xval.cli.annotations import add_reading_arguments
from xval.cli.commands import COMMANDS
from xval.cli.init_data import (
    MAX_FOLDS,
    check_content,
    check_foldable,
    check_source,
    classes_of_rows,
    data_name,
    find_rows,
    folds_for,
    segment_for,
    task_of_rows,
)
from xval.cli.init_data import encoder_store_params as encoder_params
from xval.cli.init_detection import annotation_reading, init_detection
from xval.cli.init_outputs import Created, check_outputs, finish, shown_path
from xval.cli.init_stores import Built
from xval.cli.scripts import (
    CNN_ABOUT,
    CNN_INSTANCES,
    ENCODER_ABOUT,
    INIT_RANK_SPLIT,
    RANK_ABOUT,
    SCRIPT,
    encoder_instances,
    rank_split_line,
    script_path,
    store_tag,
)
from xval.config import schema
from xval.config.loader import Config, load_config
from xval.core.arguments import Subcommands
from xval.core.backend import use_backend
from xval.core.errors import ConfigurationError, XvalError
from xval.core.outputs import check_output_folder
from xval.core.parameters import FeatureParams
from xval.running.declaration import ExperimentDeclaration
from xval.running.splitting import make_folds

DEFAULT_ENCODER = encoders.AISFX
"""The encoder of instance 1 when it is installed (measured: docs/pretrained.md)."""
CONFIG_HEADER = ("Written by `python -m xval init`: only what differs from the package "
                 "defaults.\n`python -m xval config` prints every setting and where it "
                 "comes from.")


def add_parser(sub: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `init` subcommand to `python -m xval`."""
    p = sub.add_parser(
        "init", parents=parents,
        help=COMMANDS["init"].help,
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", metavar="AUDIO_DIR",
                   help="the folder of audio files; with --source: the Kaldi data directory, "
                        "the Lhotse CutSet (or RecordingSet), the Hugging Face dataset folder")
    p.add_argument("supervisions", nargs="?", metavar="SUPERVISIONS",
                   help="with --source lhotse and a RecordingSet: its SupervisionSet")
    p.add_argument("--name", help="dataset and script name (default: the folder's name)")
    p.add_argument("--pattern", help="regex over relative paths with (?P<label>..) and "
                                     "(?P<item>..), or a preset: fsdd, ravdess, speaker-id "
                                     "(default: class sub-folders, else a preset that fits)")
    p.add_argument("--label-map", help="with --pattern: preset (ravdess) or CODE=NAME,...")
    p.add_argument("--item-pattern", help="with class sub-folders: regex with (?P<item>..) "
                                          "over relative paths (the speaker, session, ...)")
    p.add_argument("--item-per-file", action="store_true",
                   help="every file its own item (default: files whose names share a "
                        "recording id, such as 1-100038-A.ogg and 1-100038-B.ogg, are one)")
    p.add_argument("--manifest", help="a CSV manifest of the files (path, label, item columns; "
                                      "FSD50K's fname, labels, mids, split is recognised)")
    p.add_argument("--label-separator", type=_separator,
                   help="with --manifest: what separates the labels of a clip (; | , space "
                        "tab): a tagging experiment (default: ; or | when a label holds one)")
    p.add_argument("--empty-label", help="with several labels per clip: the class of a clip "
                                         "without a label (e.g. none; default: refused)")
    p.add_argument("--merge-duplicates", action="store_true",
                   help="make each group of items whose files hold the same audio (the "
                        "duplicate check: re-encoded, resampled, trimmed copies) one item; "
                        "without it they are listed")
    corpora = sources.corpora()
    p.add_argument("--source", choices=[c.name for c in corpora],
                   help="read a corpus: " + "; ".join(f"{c.name}: {c.help}" for c in corpora))
    options = [o for c in corpora for o in c.options]
    cli_sources.add_options(p.add_argument_group("corpus options (with --source)"),
                            [o for i, o in enumerate(options) if o not in options[:i]],
                            defaults=False)
    p.add_argument("--annotations", help="an annotation CSV of the recordings in AUDIO_DIR "
                                         "(wide or long layout): a detection experiment")
    p.add_argument("--items", help="with --annotations: a CSV file,item grouping the "
                                   "recordings (speaker, site); default: each its own item")
    add_reading_arguments(p.add_argument_group("how the annotation CSV is read (with "
                                               "--annotations)"),
                          defaults=False, label_column=False)  # --label-column: --source hf's
    p.add_argument("--folds", type=int, help=f"folds over items (default: the items, at most "
                                             f"{MAX_FOLDS})")
    p.add_argument("--encoder", help="the pretrained encoder of instance 1: "
                                     f"{', '.join(encoders.BUILT_IN)}, a FOLDER or HUB_ID, "
                                     "hf: optional (a transformers audio model on this disk: "
                                     "wav2vec2, "
                                     "HuBERT, WavLM, data2vec-audio, Whisper, AST, CLAP) or "
                                     f"none (default: {DEFAULT_ENCODER} when it is "
                                     "installed, else none; with --annotations: none, or a "
                                     "frame encoder such as aisfx_frames)")
    p.add_argument("--project", default=".", help="the project folder (default: here)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a store or script of the same name")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="find the files, check them and print what init would write, "
                        "writing nothing (no deep-learning backend is imported)")


def _separator(text: str) -> str:
    """`--label-separator`'s value (`parse_separator`), its error an argparse one."""
    try:
        return parse_separator(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main_init(args: argparse.Namespace) -> int:
    """Runs `python -m xval init`; returns the exit code.

    Everything is checked before anything is written (the arguments, the config, the
    encoder, every output: `check_outputs`, the rows and the folds); what is written is
    removed again when a later step fails (`Created`), so a refused init leaves nothing
    behind.
    """
    audio = Path(args.audio).expanduser().resolve()
    source = check_source(args, audio)
    project = check_output_folder(Path(args.project).expanduser(), what="--project").resolve()
    name = data_name(audio.name.split(".")[0] if args.name is None else args.name)
    if args.label_map is not None and not args.pattern:
        raise ConfigurationError(f"--label-map {args.label_map!r} goes with --pattern (it maps "
                                 "the codes the pattern's (?P<label>..) group finds).")
    config_path = project / "config.ini"
    config_text = None if config_path.exists() else schema.render(
        {"paths": {"data_dir": "data", "results_dir": "results"}}, header=CONFIG_HEADER)
    config = load_config(config_path, text=config_text)
    if annotation_reading(args) is not None:
        return init_detection(args, audio, project, name, config, (config_path, config_text))
    script = script_path(project, name)
    encoder = _encoder(args.encoder)
    stores = [config.data_dir / name] + ([config.data_dir / f"{name}_{store_tag(encoder)}"]
                                         if encoder is not None else [])
    check_outputs(audio, project, config, script, stores, args.overwrite)
    rows, skipped, how, items = find_rows(audio, args, source)
    task = task_of_rows(rows)
    check_trainable(rows, skipped, task_type=task, stage=f"found ({how})")
    check_foldable(rows, how)
    folds_for(rows, args.folds)  # refused before the files are read
    print(f"Found {len(rows)} files in {audio}: {len(classes_of_rows(rows))} classes"
          + (" (several per clip: a tagging experiment)" if task != tasks.DEFAULT else "")
          + f", {rows['item'].nunique()} items ({how}).")
    if items:
        print(textwrap.fill(items, width=100, break_on_hyphens=False,
                            break_long_words=False))
    rows, _ = check_content(rows, args, config.features.workers or os.cpu_count() or 1)
    check_foldable(rows, how)
    folds = folds_for(rows, args.folds)
    segment = segment_for(rows, config)
    print(textwrap.fill(f"Segments: {segment.seconds:g} s every {segment.hop:g} s "
                        f"({segment.reason}; [features] segment_seconds in config.ini sets "
                        "another).", width=100, break_on_hyphens=False))
    if args.dry_run:
        _print_plan(stores, encoder, script, config_path, config_text, project)
        return 0
    created = Created()
    created.folders(project, config.data_dir, script.parent)
    return created.kept_if_done(lambda: _write_project(
        args, audio, project, config, (config_path, config_text), script,
        (rows, skipped, how, folds), (stores, encoder), created, segment))


def _build_stores(args: argparse.Namespace, audio: Path,
                  found: tuple[pd.DataFrame, list, str, int],
                  planned: tuple[list[Path], str | None], params: FeatureParams,
                  config: Config, created: Created) -> list[Built]:
    """Builds the project's stores (each new one noted in `created`): the log-mel store,
    and with an encoder the encoder store, the log-mel store beside it when cores allow
    (`init_stores`). Returns `(store, summary)` of each, in that order."""
    (stores, encoder), (rows, skipped, _, _) = planned, found
    existed = [path.exists() and any(path.iterdir()) for path in stores]

    def note(i: int, built: Built) -> Built:
        if not existed[i]:
            created.store(stores[i])
        return built

    def build(i: int, params: Mapping[str, Any], label: str, progress: bool = True) -> Built:
        return build_store(
            rows, stores[i], params=params, workers=config.features.workers,
            task_type=task_of_rows(rows),
            overwrite=args.overwrite, skipped=list(skipped),
            progress=progress and not args.no_progress, bar_label=label,
            info={"source": f"python -m xval init {audio}"
                            + (f" --encoder {encoder}" if i else "")}, inputs=[audio],
            duplicates=rows.attrs.get("duplicates"))

    first = f"store 1 of {len(stores)}, {params.feature}"
    if encoder is None:
        return [note(0, build(0, params, first))]
    encoded = feature_params(config.features, **encoder_params(rows, encoder))
    use_backend(config.backend.backend)  # the encoder's layers run in Keras (not imported yet)
    if not init_stores.can_build_beside():
        return [note(0, build(0, params, first)),
                note(1, build(1, encoded, f"store 2 of 2, {encoder}"))]
    beside = init_stores.BuildBeside(lambda: build(0, params, first, progress=False))
    try:
        second = note(1, build(1, encoded, f"store 2 of 2, {encoder} (store 1 beside it)"))
    except BaseException:
        with contextlib.suppress(XvalError):  # wait for it, so that undo removes it too
            note(0, beside.result(stores[0]))
        raise
    return [note(0, beside.result(stores[0])), second]


def _write_project(args: argparse.Namespace, audio: Path, project: Path, config: Config,
                   config_file: tuple[Path, str | None], script: Path,
                   found: tuple[pd.DataFrame, list, str, int],
                   planned: tuple[list[Path], str | None], created: Created,
                   segment: SegmentChoice) -> int:
    """Writes the stores, config.ini and the script, then runs the dry run (what is written
    is noted in `created`)."""
    (config_path, _), (_, encoder) = config_file, planned
    rows, skipped, how, folds = found
    params = feature_params(config.features, segment_seconds=segment.seconds,
                            segment_hop_seconds=segment.hop)
    built = _build_stores(args, audio, found, planned, params, config, created)
    store, summary = built[0]
    print(f"Wrote the store {store.path}: {summary['rows']} rows, "
          f"{len(summary['skipped'])} file(s) skipped{silent_note(summary)} "
          f"({summary['seconds']:.1f} s).")
    embedded = None
    if encoder is not None:
        embedded, summary = built[1]
        licence = embedded.info.front_end.get("licence") or "licence not recorded"
        print(f"Wrote the store {embedded.path} ({encoder} embeddings, "
              f"{licence}): {summary['rows']} rows ({summary['seconds']:.1f} s).")

    def write_script() -> None:
        _write_script(script, store, rows, folds, how, (audio, args.name or audio.name),
                      config, project, embedded)
        print(f"Wrote {script.relative_to(project)} and {config_path.relative_to(project)}.\n")

    return finish(script, config, config_file, created, write_script, "the stores")


def _print_plan(stores: list[Path], encoder: str | None, script: Path, config_path: Path,
                config_text: str | None, project: Path) -> None:
    """What `init` would write (`--dry-run`)."""
    print(f"Would write the store {stores[0]} (log-mel features)" + (
        f" and the store {stores[1]} ({encoder} embeddings)" if encoder else "") + ",")
    written = [script] + ([config_path] if config_text is not None else [])
    print(f"and {' and '.join(shown_path(path, project) for path in written)}, then run the "
          "script's dry run. Nothing was written (--dry-run).")


def _encoder(name: str | None) -> str | None:
    """The encoder of instance 1: the one named, else the default when it is installed (and
    a line saying how to install it when it is not)."""
    if name == "none":
        return None
    if name == encoders.AISFX_FRAMES:
        raise ConfigurationError(
            f"--encoder {name}: aisfx's frames are for detection (with --annotations); for "
            f"clips use --encoder {encoders.AISFX} (its embeddings pooled by the head).")
    if (name is not None and name not in encoders.BUILT_IN and not names_model(name)
            and not Path(name).expanduser().is_dir()):  # a typo more likely than a model
        close = difflib.get_close_matches(name, list(encoders.BUILT_IN), n=1)
        raise ConfigurationError(
            f"--encoder {name}: expected one of {', '.join(encoders.BUILT_IN)}, none, or a "
            "transformers model (hf:NAME, a folder written by save_pretrained, or an ORG/NAME "
            "hub id)" + (f"; did you mean {close[0]}?" if close else "."))
    if name is not None and name not in encoders.BUILT_IN:  # a transformers model
        check_encoder(name)  # no such model: said with the built-in encoders
        torch_module()
        try:
            LocalModel(name)
        except ConfigurationError as e:
            raise ConfigurationError(f"--encoder {name}: {e}.") from None
        return name
    if name is not None:
        if not encoders.installed(name):
            raise ConfigurationError(f"--encoder {name} is not installed: "
                                     f"{encoders.BUILT_IN[name].install}")
        return name
    if encoders.installed(DEFAULT_ENCODER):
        return DEFAULT_ENCODER
    print(f"No pretrained encoder is installed, so the experiment starts from a CNN trained "
          f"from scratch. For a pretrained baseline (the stronger one on most audio): "
          f"{encoders.BUILT_IN[DEFAULT_ENCODER].install}, then rerun init with --overwrite.")
    return None


def _write_script(script: Path, store: FeatureStore, rows: pd.DataFrame, folds: int, how: str,
                  source: tuple[Path, str], config: Config, project: Path,
                  embedded: FeatureStore | None = None) -> None:
    """Writes the experiment script; `source` is the audio read and the data's name
    (`--name`, else the folder's)."""
    audio, called = source
    classes = classes_of_rows(rows)
    shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
    relative = Path("experiments") / script.name
    results = (config.results_dir / store.path.name / "experiment_1")
    summary = (f"Written by `python -m xval init` from {audio}: {len(rows)} files, "
               f"{len(classes)} classes ({shown}), {rows['item'].nunique()} items ({how}). "
               "Folds never split an item, so the test score says how well a model does on "
               "items it has never seen.")
    share = _rank_split(store, folds, config)
    about = (ENCODER_ABOUT if embedded is not None else CNN_ABOUT).format(
        script=relative, models=_models_take(embedded))
    if share:
        about += " " + RANK_ABOUT.format(share=share, percent=f"{share:.0%}")
    values: dict[str, Any] = {
        "number": 1, "question": f"which model {_verb(rows)} of {called} on items it has "
                                 "never seen?",
        "summary": "\n".join(textwrap.wrap(summary, width=88, break_on_hyphens=False)),
        "script": relative, "results": shown_path(results, project),
        "description": json.dumps(f"{called}: first models"),
        "dataset": json.dumps(store.path.name), "num_folds": folds,
        "task_type": json.dumps(task_of_rows(rows)), "parameters": rank_split_line(share),
        "imports": "Ensemble, Experiment" if embedded is not None else "Experiment",
        "instances": (encoder_instances(embedded.path.name, str(embedded.info.encoder))
                      if embedded is not None else CNN_INSTANCES),
        "about": textwrap.fill(about, width=88, break_on_hyphens=False,
                               break_long_words=False)}
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(SCRIPT.format(**values))


def _verb(rows: pd.DataFrame) -> str:
    """What the experiment's models do, for its question."""
    return "recognises the classes" if task_of_rows(rows) == tasks.DEFAULT else \
        "tags the clips with the labels"


def _rank_split(store: FeatureStore, folds: int, config: Config) -> float:
    """The `rank_split` of the script: `INIT_RANK_SPLIT` when every fold has two validation
    items or more (some can rank without choosing an epoch), else 0 (the folds as the run
    cuts them; a store the splitter refuses gets 0, and the dry run says why)."""
    experiment = ExperimentDeclaration(description="init", dataset=store.path.name, number=1,
                                       num_folds=folds, config=config.path)
    try:
        cut, _ = make_folds(experiment, config, store)
    except XvalError:
        return 0.0
    return INIT_RANK_SPLIT if all(len(fold["val"]) >= 2 for fold in cut) else 0.0


def _models_take(embedded: FeatureStore | None) -> str:
    """What instance 1's saved models take, said in the script."""
    if embedded is not None and embedded.info.encoder in encoders.in_model():
        return "Its saved models take audio."
    return ("Its saved models take the encoder's embeddings; predict computes them from "
            "audio with the same encoder.")
