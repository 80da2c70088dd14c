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
import re
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from architectures.hf import LocalModel, model_name, names_model
from preprocessing import sources
from preprocessing.build import build_store, feature_params, silent_note
from preprocessing.features import encoders
from preprocessing.features.encoders import torch_module
from preprocessing.features.pretrained import check_encoder
from preprocessing.intake import check_trainable
from preprocessing.parallel import auto_workers
from preprocessing.segment_length import SegmentChoice
from preprocessing.sources.labels import parse_separator
from preprocessing.stacked import stack_stores
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
from xval.cli.init_detection import SKIPPED_SHOWN, annotation_reading, init_detection
from xval.cli.init_outputs import Created, check_outputs, finish, shown_path
from xval.cli.init_stores import Built
from xval.cli.preprocess import print_skipped
from xval.cli.scripts import (
    CNN_ABOUT,
    CNN_INSTANCES,
    ENCODER_ABOUT,
    ENCODERS_ABOUT,
    INIT_RANK_SPLIT,
    RANK_ABOUT,
    encoder_instances,
    experiment_script,
    preference_line,
    rank_split_line,
    script_path,
    store_tag,
)
from xval.config import schema
from xval.config.loader import Config, load_config
from xval.core.arguments import Subcommands, renamed
from xval.core.backend import use_backend
from xval.core.errors import ConfigurationError, XvalError
from xval.core.outputs import check_output_folder
from xval.core.parameters import FeatureParams
from xval.running.declaration import ExperimentDeclaration
from xval.running.splitting import make_folds

DEFAULT_ENCODERS = (encoders.AISFX, encoders.BIRDNET)
"""The encoders `init` compares when `--encoders` is not given: each one installed (BirdNET
with the `[birdnet]` extra: its weights are non-commercial). Measured: docs/pretrained.md,
docs/results.md ("Which encoder for my data?")."""
CONFIG_HEADER = ("Written by `python -m xval init`: only what differs from the package "
                 "defaults.\n`python -m xval config` prints every setting and where it "
                 "comes from.")


def add_parser(sub: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `init` subcommand to `python -m xval`."""
    p = sub.add_parser(
        "init", parents=parents, help=COMMANDS["init"].help,
        usage="python -m xval init AUDIO_DIR [options]",
        description="From a folder of audio to an experiment ready to run: config.ini, the "
                    "feature store, experiments/NAME.py and its dry run, then the command "
                    "that runs it. Guide: docs/quickstart.md.")
    p.add_argument("audio", metavar="AUDIO_DIR",
                   help="the folder of audio files (with --corpus: the corpus)")
    p.add_argument("supervisions", nargs="?", metavar="SUPERVISIONS",
                   help="with --corpus lhotse and a RecordingSet: its SupervisionSet")
    found = p.add_argument_group("labels and items of a folder of audio",
                                 "default: a sub-folder per label, items from the file names")
    found.add_argument("--pattern",
                       help="regex over relative paths with (?P<label>..) and (?P<item>..), "
                            "or a preset: fsdd, ravdess, speaker-id")
    found.add_argument("--label-map", help="with --pattern: ravdess, or CODE=NAME,...")
    found.add_argument("--item-pattern",
                       help="with class sub-folders: regex with (?P<item>..) over relative "
                            "paths")
    found.add_argument("--item-per-file", action="store_true",
                       help="every file its own item (else takes of one recording are one)")
    found.add_argument("--manifest", metavar="CSV",
                       help="a CSV of the files (path, label, item; FSD50K's layout too)")
    found.add_argument("--label-separator", type=_separator,
                       help="with --manifest: what separates a clip's labels (; | , space "
                            "tab): a tagging experiment (default: ; or | when found)")
    found.add_argument("--empty-label",
                       help="with several labels per clip: the class of a clip without one "
                            "(default: refused)")
    found.add_argument("--merge-duplicates", action="store_true",
                       help="make items whose files hold the same audio one item (else "
                            "listed)")
    corpora = sources.corpora()
    corpus = p.add_argument_group("a corpus instead of a folder of audio")
    corpus.add_argument("--corpus", dest="source", choices=[c.name for c in corpora],
                        help="read AUDIO_DIR as a corpus of that toolkit (`python -m "
                             "preprocessing NAME --help` says what each reads)")
    renamed(corpus, "--source", "--corpus NAME")
    options = [o for c in corpora for o in c.options]
    cli_sources.add_options(corpus, [o for i, o in enumerate(options) if o not in options[:i]],
                            defaults=False)
    events = p.add_argument_group("events in recordings: a detection experiment")
    events.add_argument("--annotations", metavar="CSV",
                        help="the annotation CSV of the recordings in AUDIO_DIR")
    events.add_argument("--items", metavar="CSV",
                        help="a CSV file,item grouping the recordings (default: each its own)")
    add_reading_arguments(events, defaults=False, label_column=False)  # --corpus hf's
    experiment = p.add_argument_group("the experiment")
    experiment.add_argument("--name", help="dataset and script name (default: the folder's)")
    experiment.add_argument("--folds", type=int,
                            help=f"folds over items (default: the items, at most {MAX_FOLDS})")
    experiment.add_argument(
        "--encoders", dest="encoder", metavar="NAMES", action=_GivenOnce,
        help="pretrained encoders compared, comma-separated: "
             f"{', '.join(n for n in encoders.BUILT_IN if n != encoders.AISFX_FRAMES)}, "
             f"hf:MODEL, or none (default: {' and '.join(DEFAULT_ENCODERS)} where installed; "
             f"with --annotations: none, or {encoders.AISFX_FRAMES})")
    renamed(experiment, "--encoder", "--encoders NAMES")
    experiment.add_argument("--project", default=".", help="the project folder")
    experiment.add_argument("--overwrite", action="store_true",
                            help="replace a store or script of the same name")
    experiment.add_argument("--no-progress", action="store_true", help="no progress bar")
    experiment.add_argument("--dry-run", action="store_true",
                            help="print what init would write, and write nothing")


class _GivenOnce(argparse.Action):
    """An option given at most once: `--encoders aisfx --encoders birdnet` is refused (the
    second would silently replace the first)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        before = getattr(namespace, self.dest, None)
        if before is not None:
            merged = ",".join(dict.fromkeys(f"{before},{values}".split(",")))
            raise argparse.ArgumentError(
                self, f"{option_string} {values} given after {before}: the encoders are one "
                      f"list; give it once, comma-separated "
                      f"({self.option_strings[0]} {merged}).")
        setattr(namespace, self.dest, values)


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
    chosen = _encoders(args.encoder)
    tags = _store_tags(chosen)
    stores = [config.data_dir / name] + [config.data_dir / f"{name}_{tag}" for tag in tags] \
        + ([config.data_dir / f"{name}_{'_'.join(tags)}"] if len(chosen) > 1 else [])
    check_outputs(audio, project, config, script, stores, args.overwrite)
    rows, skipped, how, items = find_rows(audio, args, source)
    task = task_of_rows(rows)
    check_trainable(rows, skipped, task_type=task, stage=f"found ({how})")
    check_foldable(rows, how)
    folds_for(rows, args.folds)  # refused before the files are read
    print(f"Found {len(rows)} files in {audio}: {len(classes_of_rows(rows))} classes"
          + (" (several per clip: a tagging experiment)" if task != tasks.DEFAULT else "")
          + f", {rows['item'].nunique()} items ({how}).")
    print_skipped(skipped, "files", SKIPPED_SHOWN, "the store's dataset.json lists them all")
    if items:
        print(textwrap.fill(items, width=100, break_on_hyphens=False,
                            break_long_words=False))
    rows, _ = check_content(rows, args, config.features.workers or auto_workers(len(rows)))
    check_foldable(rows, how)
    folds = folds_for(rows, args.folds)
    segment = segment_for(rows, config)
    print(textwrap.fill(f"Segments: {segment.seconds:g} s every {segment.hop:g} s "
                        f"({segment.reason}; [features] segment_seconds in config.ini sets "
                        "another).", width=100, break_on_hyphens=False))
    if args.dry_run:
        _print_plan(stores, chosen, script, config_path, config_text, project)
        return 0
    created = Created()
    created.folders(project, config.data_dir, script.parent)
    return created.kept_if_done(lambda: _write_project(
        args, audio, project, config, (config_path, config_text), script,
        (rows, skipped, how, folds), (stores, chosen), created, segment))


def _build_stores(args: argparse.Namespace, audio: Path,
                  found: tuple[pd.DataFrame, list, str, int],
                  planned: tuple[list[Path], list[str]], params: FeatureParams,
                  config: Config, created: Created) -> list[Built]:
    """Builds the project's stores (each new one noted in `created`): the log-mel store,
    each encoder's store, the log-mel store beside the first when cores allow
    (`init_stores`), and with two encoders or more their stacked store (made from theirs,
    `preprocessing.features.stacked`). Returns `(store, summary)` of each, in that order."""
    (stores, chosen), (rows, skipped, _, _) = planned, found
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
                            + (f" --encoders {chosen[i - 1]}" if i else "")}, inputs=[audio],
            duplicates=rows.attrs.get("duplicates"))

    def label(i: int) -> str:
        return f"store {i + 1} of {len(stores)}, " + (chosen[i - 1] if i else params.feature)

    if not chosen:
        return [note(0, build(0, params, label(0)))]
    use_backend(config.backend.backend)  # the encoders' layers run in Keras (not imported yet)
    encoded = [feature_params(config.features, **encoder_params(rows, e)) for e in chosen]
    built: list[Built] = []
    beside = init_stores.BuildBeside(lambda: build(0, params, label(0), progress=False)) \
        if init_stores.can_build_beside() else None
    try:
        if beside is None:
            built.append(note(0, build(0, params, label(0))))
        for k, encoder_params_k in enumerate(encoded, start=1):
            built.append(note(k, build(k, encoder_params_k, label(k) + (
                " (store 1 beside it)" if beside is not None and k == 1 else ""))))
    except BaseException:
        if beside is not None:
            with contextlib.suppress(XvalError):  # wait for it, so that undo removes it too
                note(0, beside.result(stores[0]))
        raise
    if beside is not None:
        built.insert(0, note(0, beside.result(stores[0])))
    if len(chosen) > 1:
        built.append(note(len(stores) - 1, _stacked(built[1:], stores[-1], args, audio)))
    return built


def _stacked(parts: list[Built], path: Path, args: argparse.Namespace, audio: Path) -> Built:
    """The encoders' stores side by side (`stack_stores`), with a summary as `build_store`
    gives one."""
    started = time.perf_counter()
    store = stack_stores([store for store, _ in parts], path, overwrite=args.overwrite,
                         info={"source": f"python -m xval init {audio} --encoders "
                                         + ",".join(str(s.info.encoder) for s, _ in parts)})
    return store, {"rows": len(store), "skipped": [], "seconds": time.perf_counter() - started}


def _write_project(args: argparse.Namespace, audio: Path, project: Path, config: Config,
                   config_file: tuple[Path, str | None], script: Path,
                   found: tuple[pd.DataFrame, list, str, int],
                   planned: tuple[list[Path], list[str]], created: Created,
                   segment: SegmentChoice) -> int:
    """Writes the stores, config.ini and the script, then runs the dry run (what is written
    is noted in `created`)."""
    config_path = config_file[0]
    rows, skipped, how, folds = found
    params = feature_params(config.features, segment_seconds=segment.seconds,
                            segment_hop_seconds=segment.hop)
    built = _build_stores(args, audio, found, planned, params, config, created)
    store, summary = built[0]
    print(f"Wrote the store {store.path}: {summary['rows']} rows, "
          f"{len(summary['skipped'])} file(s) skipped{silent_note(summary)} "
          f"({summary['seconds']:.1f} s).")
    print_skipped(summary["skipped"][len(skipped):], "files when their audio was read",
                  SKIPPED_SHOWN, "the store's dataset.json lists them all")
    embedded = [store for store, _ in built[1:]]
    for embedded_store, summary in built[1:]:
        licence = embedded_store.info.front_end.get("licence") or "licence not recorded"
        what = embedded_store.info.encoder or "the encoders' embeddings side by side"
        print(f"Wrote the store {embedded_store.path} ({what}"
              f"{' embeddings' if embedded_store.info.encoder else ''}, {licence}): "
              f"{summary['rows']} rows ({summary['seconds']:.1f} s).")

    def write_script() -> None:
        _write_script(script, store, rows, folds, how, (audio, args.name or audio.name),
                      config, project, embedded)
        print(f"Wrote {script.relative_to(project)} and {config_path.relative_to(project)}.\n")

    return finish(script, config, config_file, created, write_script, "the stores")


def _print_plan(stores: list[Path], chosen: list[str], script: Path, config_path: Path,
                config_text: str | None, project: Path) -> None:
    """What `init` would write (`--dry-run`)."""
    encoded = [f"the store {path} ({encoder} embeddings)"
               for path, encoder in zip(stores[1:], chosen)]
    if len(chosen) > 1:
        encoded.append(f"the store {stores[-1]} (their embeddings side by side)")
    print(f"Would write the store {stores[0]} (log-mel features)"
          + "".join(f", {text}" for text in encoded) + ",")
    written = [script] + ([config_path] if config_text is not None else [])
    print(f"and {' and '.join(shown_path(path, project) for path in written)}, then run the "
          "script's dry run. Nothing was written (--dry-run).")


def _encoders(names: str | None) -> list[str]:
    """The encoders compared: those `--encoders` names (comma-separated; `none`: none),
    else each of `DEFAULT_ENCODERS` that is installed (and a line naming those that are not,
    with the command that installs each)."""
    if names is None:
        found = [name for name in DEFAULT_ENCODERS if encoders.installed(name)]
        absent = [name for name in DEFAULT_ENCODERS if name not in found]
        if absent:
            print(_absent_encoders(absent, bool(found)))
        return found
    listed = [name.strip() for name in names.split(",")]
    if listed == ["none"]:
        return []
    twice = sorted({name for name in listed if listed.count(name) > 1 and name})
    wrong = ("an empty name" if "" in listed else
             f"{', '.join(twice)} named twice" if twice else "none with other encoders"
             if "none" in listed else "")
    if wrong:
        raise ConfigurationError(
            f"--encoders {names}: {wrong}; expected encoder names separated by commas, each "
            "once (e.g. aisfx,birdnet), or none alone.")
    chosen = [_encoder(name) for name in listed]
    models: dict[str, str] = {}
    for name in chosen:
        model = name if name in encoders.BUILT_IN else model_name(name)
        folder = Path(model).expanduser()
        key = str(folder.resolve()) if folder.is_dir() else model
        if key in models:
            raise ConfigurationError(
                f"--encoders {names}: {models[key]} and {name} are one model named twice; "
                "name each encoder once.")
        models[key] = name
    return chosen


def _store_tags(chosen: list[str]) -> list[str]:
    """Each encoder's part of its store's name (`store_tag`), numbered where two models'
    folders share a name (`/a/wavlm`, `/b/wavlm`: `hf_wavlm`, `hf_wavlm_2`), so that no
    store is written over by another encoder's."""
    tags: list[str] = []
    for encoder in chosen:
        tag, k = store_tag(encoder), 1
        while (tag if k == 1 else f"{tag}_{k}") in tags:
            k += 1
        tags.append(tag if k == 1 else f"{tag}_{k}")
    return tags


def _absent_encoders(absent: list[str], others: bool) -> str:
    """The line that names the default encoders not installed here, each with the command
    that installs it, and what the experiment compares without them."""
    listed = "; ".join(f"{name} ({encoders.BUILT_IN[name].licence}): "
                       f"{encoders.BUILT_IN[name].install}" for name in absent)
    without = ("the others" if others else "a CNN trained from scratch, without a "
               "pretrained baseline (the stronger one on most audio)")
    return (f"init would also compare the pretrained encoder{'s' * (len(absent) > 1)} "
            f"{' and '.join(absent)}, not installed here, so the experiment compares "
            f"{without}. To add {'them' if len(absent) > 1 else 'it'}: {listed}; then rerun "
            "init with --overwrite.")


def _encoder(name: str) -> str:
    """One encoder `--encoders` names, checked (installed, a model on this disk)."""
    if name == encoders.AISFX_FRAMES:
        raise ConfigurationError(
            f"--encoders {name}: aisfx's frames are for detection (with --annotations); "
            f"for clips use --encoders {encoders.AISFX} (its embeddings pooled by the head).")
    if (name not in encoders.BUILT_IN and not names_model(name)
            and not Path(name).expanduser().is_dir()):  # a typo more likely than a model
        close = difflib.get_close_matches(name.lower(), list(encoders.BUILT_IN), n=1)
        parts = re.split(r"[\s;|]+", name.strip().lower())
        hint = (f"; separate encoders with commas: --encoders {','.join(parts)}"
                if len(parts) > 1 and all(part in encoders.BUILT_IN for part in parts)
                else f"; did you mean {close[0]}?" if close else ".")
        raise ConfigurationError(
            f"--encoders {name}: expected one of {', '.join(encoders.BUILT_IN)}, none, or a "
            "transformers model (hf:NAME, a folder written by save_pretrained, or an ORG/NAME "
            "hub id)" + hint)
    if name not in encoders.BUILT_IN:  # a transformers model
        check_encoder(name)  # no such model: said with the built-in encoders
        torch_module()
        try:
            LocalModel(name).check_weights()  # what the store's build would refuse
        except ConfigurationError as e:
            raise ConfigurationError(f"--encoders {name}: {e}.") from None
        return name
    if not encoders.installed(name):
        raise ConfigurationError(f"--encoders {name} is not installed: "
                                 f"{encoders.BUILT_IN[name].install}")
    return name


def _write_script(script: Path, store: FeatureStore, rows: pd.DataFrame, folds: int, how: str,
                  source: tuple[Path, str], config: Config, project: Path,
                  embedded: list[FeatureStore]) -> None:
    """Writes the experiment script; `source` is the audio read and the data's name
    (`--name`, else the folder's); `embedded` the encoders' stores (and last, with two or
    more, their stacked store). What comes from the data (the folder, the classes, the
    name, how they were found, the encoders) is written only as literals
    (`experiment_script`)."""
    audio, called = source
    classes = classes_of_rows(rows)
    relative = Path("experiments") / script.name
    results = (config.results_dir / store.path.name / "experiment_1")
    summary = (f"Written by `python -m xval init` from the audio folder `AUDIO` below: "
               f"{len(rows)} files, {len(classes)} classes (`CLASSES`), "
               f"{rows['item'].nunique()} items (found as `FOUND` says). Folds never split "
               "an item, so the test score says how well a model does on items it has never "
               "seen.")
    share = _rank_split(store, folds, config)
    about = _about(embedded, relative)
    if share:
        about += " " + RANK_ABOUT.format(share=share, percent=f"{share:.0%}")
    data: dict[str, object] = {"AUDIO": str(audio), "FOUND": how, "CLASSES": classes}
    parts = embedded[:-1] if len(embedded) > 1 else embedded
    if parts:
        data["ENCODERS"] = {str(s.info.encoder): str(s.info.front_end.get("licence")
                                                     or "licence not recorded")
                            for s in parts}
    text = experiment_script(
        question=f"which model {_verb(rows)} on items it has never seen?",
        summary=summary, about=about, script=relative, results=shown_path(results, project),
        data=data, settings={"description": f"{called}: first models",
                             "dataset": store.path.name, "number": 1, "num_folds": folds,
                             "task_type": task_of_rows(rows)},
        parameters=rank_split_line(share) + preference_line(len(embedded)),
        imports="Ensemble, Experiment" if embedded else "Experiment",
        instances=encoder_instances(
            [(s.path.name, str(s.info.encoder)) for s in embedded if s.info.encoder],
            embedded[-1].path.name if len(embedded) > 1 else None, task_of_rows(rows))
        if embedded else CNN_INSTANCES)
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(text, encoding="utf-8")


def _about(embedded: list[FeatureStore], script: Path) -> str:
    """What the script's instances are, in its docstring (no encoder's name: those are in
    `ENCODERS`)."""
    if not embedded:
        return CNN_ABOUT.format(script=script)
    if len(embedded) == 1:
        return ENCODER_ABOUT.format(script=script, models=_models_take(embedded[0]))
    n = len(embedded) - 1
    return ENCODERS_ABOUT.format(n=n, stacked=n + 1, cnn=n + 2, fused=n + 3)


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
