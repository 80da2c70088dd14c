"""`python -m xval init AUDIO_DIR`: from a folder of audio to an experiment ready to run.

Steps: find the labels and items (class sub-folders, a known or given file-name pattern, or
a CSV manifest), write a minimal `config.ini` (when the project has none), build the feature
store, write `experiments/<name>.py` in the house style, run its dry run (the plan and the
data checks), and print the one command that runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from preprocessing import sources
from preprocessing.build import build_store, feature_params
from preprocessing.intake import check_trainable
from preprocessing.store import FeatureStore, check_store_out, store_output
from xval.cli.preprocess import label_map_argument
from xval.cli.scripts import SCRIPT, SCRIPT_MARK, load_experiment
from xval.config import schema
from xval.config.loader import Config, load_config
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.files import atomic_write_text
from xval.core.outputs import check_output_folder, remove_output
from xval.folds import allowed_folds

PRESETS = {"fsdd": sources.FSDD_PATTERN, "ravdess": sources.RAVDESS_PATTERN,
           "speaker-id": sources.SPEAKER_ID_PATTERN}
MAX_FOLDS = 5
CONFIG_HEADER = ("Written by `python -m xval init`: only what differs from the package "
                 "defaults.\n`python -m xval config` prints every setting and where it "
                 "comes from.")


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Adds the `init` subcommand to `python -m xval`."""
    p = sub.add_parser(
        "init", parents=parents,
        help="from a folder of audio: config.ini, feature store, experiment script, dry run",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", metavar="AUDIO_DIR", help="the folder of audio files")
    p.add_argument("--name", help="dataset and script name (default: the folder's name)")
    p.add_argument("--pattern", help="regex over relative paths with (?P<label>..) and "
                                     "(?P<item>..), or a preset: fsdd, ravdess, speaker-id "
                                     "(default: class sub-folders, else a preset that fits)")
    p.add_argument("--label-map", help="with --pattern: preset (ravdess) or CODE=NAME,...")
    p.add_argument("--item-pattern", help="with class sub-folders: regex with (?P<item>..) "
                                          "over relative paths (the speaker, session, ...)")
    p.add_argument("--manifest", help="a CSV manifest of the files (path, label, item columns)")
    p.add_argument("--folds", type=int, help=f"folds over items (default: the items, at most "
                                             f"{MAX_FOLDS})")
    p.add_argument("--project", default=".", help="the project folder (default: here)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a store or script of the same name")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main_init(args: argparse.Namespace) -> int:
    """Runs `python -m xval init`; returns the exit code.

    Everything is checked before anything is written (the arguments, the config, the rows,
    the folds and every output: `_check_outputs`); what is written is removed again when a
    later step fails (`_Created`), so a refused init leaves nothing behind.
    """
    audio = _audio_dir(args.audio)
    project = check_output_folder(Path(args.project).expanduser(), what="--project").resolve()
    name = _name(audio.name if args.name is None else args.name)
    if args.label_map is not None and not args.pattern:
        raise ConfigurationError(f"--label-map {args.label_map!r} goes with --pattern (it maps "
                                 "the codes the pattern's (?P<label>..) group finds).")
    config_path = project / "config.ini"
    config_text = None if config_path.exists() else schema.render(
        {"paths": {"data_dir": "data", "results_dir": "results"}}, header=CONFIG_HEADER)
    config = load_config(config_path, text=config_text)
    script = project / "experiments" / f"{name}.py"
    _check_outputs(audio, project, config, script, name, args.overwrite)
    rows, skipped, how = _rows(audio, args)
    check_trainable(rows, skipped, stage=f"found ({how})")
    _check_rows(rows, how)
    folds = _folds(rows, args.folds)
    print(f"Found {len(rows)} files in {audio}: {rows['label'].nunique()} classes, "
          f"{rows['item'].nunique()} items ({how}).")
    created = _Created()
    try:
        code = _write_project(args, audio, project, config, config_path, config_text,
                              script, name, (rows, skipped, how, folds), created)
    except BaseException:
        created.undo()
        raise
    if code:
        created.undo()
    return code


def _write_project(args: argparse.Namespace, audio: Path, project: Path, config: Config,
                   config_path: Path, config_text: str | None, script: Path, name: str,
                   found: tuple[pd.DataFrame, list, str, int], created: _Created) -> int:
    """Writes the store, config.ini and the script, then runs the dry run (what is
    written is added to `created`)."""
    rows, skipped, how, folds = found
    store_path = config.data_dir / name
    created.folders(project, config.data_dir, script.parent)
    existed = store_path.exists()
    store, summary = build_store(
        rows, store_path, params=feature_params(config.features),
        workers=config.features["workers"], overwrite=args.overwrite, skipped=skipped,
        progress=not args.no_progress, info={"source": f"python -m xval init {audio}"},
        inputs=[audio])
    if not existed:
        created.store(store.path)
    print(f"Wrote the store {store.path}: {summary['rows']} rows, "
          f"{len(summary['skipped'])} file(s) skipped.")
    if config_text is not None:
        atomic_write_text(config_path, config_text)
        created.file(config_path)
    if not script.exists():
        created.file(script)
    _write_script(script, store, rows, folds, how, audio, config, project)
    print(f"Wrote {script.relative_to(project)} and {config_path.relative_to(project)}.\n")
    experiment = load_experiment(script)
    outcome = experiment.run(dry_run=True, config=config)
    if outcome.exit_code:
        print(f"The dry run failed: nothing written by init is kept ({script.name}, the "
              "store, config.ini).", file=sys.stderr)
        return outcome.exit_code
    command = f"{_python()} {script.relative_to(project)}"
    print(f"\nReady. Run the experiment with:\n\n    {command}\n")
    return 0


class _Created:
    """What init created, removed again by `undo` when a later step fails: its own files,
    its store (through the output rule), and the folders it made if they are empty."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Path]] = []

    def folders(self, *paths: Path) -> None:
        """Notes the missing folders among `paths` and their parents (made later)."""
        for path in paths:
            for folder in (path, *path.parents):
                if folder.exists():
                    break
                self._undo.append(("folder", folder))

    def store(self, path: Path) -> None:
        self._undo.append(("store", path))

    def file(self, path: Path) -> None:
        self._undo.append(("file", path))

    def undo(self) -> None:
        """Removes what was created, files first, then the folders left empty."""
        order = {"file": 0, "store": 1, "folder": 2}
        for kind, path in sorted(self._undo, key=lambda e: (order[e[0]], -len(e[1].parts))):
            with contextlib.suppress(OSError, ConfigurationError, DatasetError):
                if kind == "file":
                    path.unlink(missing_ok=True)
                elif kind == "store" and path.exists():
                    remove_output(path, store_output())
                elif kind == "folder" and path.is_dir() and not any(path.iterdir()):
                    path.rmdir()


def _audio_dir(text: str) -> Path:
    audio = Path(text).expanduser()
    if not audio.is_dir():
        raise DatasetError(f"AUDIO_DIR {text!r} is not a folder; give the folder that holds "
                           "your audio files.")
    return audio.resolve()


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def _check_outputs(audio: Path, project: Path, config: Config, script: Path, name: str,
                   overwrite: bool) -> None:
    """The output rule for everything init writes, before anything is written: nothing
    inside the audio folder, the store replaced only when it is one (and --overwrite), the
    script only when init wrote it.

    Raises:
        ConfigurationError, DatasetError: naming the path and the fix.
    """
    for what, path in (("--project", project), ("[paths] data_dir", config.data_dir),
                       ("[paths] results_dir", config.results_dir)):
        if _inside(path, audio):
            raise ConfigurationError(
                f"{what} {str(path)!r} is inside AUDIO_DIR {str(audio)!r} (or is it); init "
                "never writes into the audio folder. Run it from a project folder outside "
                "it (or pass --project).")
        check_output_folder(path, what=what)
    check_store_out(config.data_dir / name, overwrite=overwrite, inputs=[audio])
    check_output_folder(script.parent, what="the experiments folder")
    if script.is_symlink() or (script.exists() and not script.is_file()):
        raise ConfigurationError(f"{script} exists and is not a file; choose another --name.")
    if script.exists():
        if SCRIPT_MARK not in script.read_text(errors="replace"):
            raise ConfigurationError(
                f"{script} exists and was not written by `xval init`; it is never replaced. "
                "Choose another --name.")
        if not overwrite:
            raise ConfigurationError(f"{script} exists; choose another --name or pass "
                                     "--overwrite.")


def _name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    if not name:
        raise ConfigurationError(f"--name {text!r}: give a name of letters, digits or _.")
    return name if not name[0].isdigit() else f"data_{name}"


def _rows(audio: Path, args: argparse.Namespace) -> tuple[pd.DataFrame, list, str]:
    """The source rows, the skipped files, and how labels and items were found."""
    if args.manifest:
        rows, skipped = sources.manifest_source(args.manifest, root=audio,
                                                item_column=_item_column(args.manifest))
        return rows, skipped, f"manifest {args.manifest}"
    if args.pattern:
        label_map = _parse_label_map(args.label_map) if args.label_map is not None \
            else sources.LABEL_MAPS.get(args.pattern)
        rows, skipped = sources.regex_source(audio, PRESETS.get(args.pattern, args.pattern),
                                             label_map=label_map)
        return rows, skipped, f"pattern {args.pattern}"
    if any(p.is_dir() for p in audio.iterdir()):
        rows, skipped = sources.folder_source(audio, item_pattern=args.item_pattern)
        what = "class sub-folders" + (f", items by {args.item_pattern}" if args.item_pattern
                                      else ", every file its own item")
        return rows, skipped, what
    for preset, pattern in PRESETS.items():
        try:
            rows, skipped = sources.regex_source(audio, pattern,
                                                 label_map=sources.LABEL_MAPS.get(preset))
        except DatasetError:
            continue
        if not skipped:
            return rows, skipped, f"file names of the {preset} preset"
    raise DatasetError(
        f"{audio} has no class sub-folders and its file names fit no preset "
        f"({', '.join(PRESETS)}). Put each class in its own folder, or give --pattern with "
        "named groups, e.g. --pattern '(?P<label>[a-z]+)_(?P<item>spk\\d+)_\\d+\\.wav'.")


def _parse_label_map(text: str) -> dict[str, str] | None:
    """`--label-map` as `python -m preprocessing regex` reads it (a preset, a JSON file,
    `CODE=NAME` pairs)."""
    try:
        return label_map_argument(text)
    except argparse.ArgumentTypeError as e:
        raise ConfigurationError(str(e)) from None


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


def _check_rows(rows: pd.DataFrame, how: str) -> None:
    """Refuses what cannot be cross-validated, before anything is written."""
    if rows["label"].nunique() < 2:
        raise DatasetError(f"Only one class ({rows['label'].iloc[0]!r}) was found ({how}); "
                           "classification needs two or more.")
    n_items = rows["item"].nunique()
    if n_items < 3:
        raise DatasetError(
            f"{n_items} item(s) found ({how}); cross-validation over items needs at least 3 "
            "(each fold tests one item, validates on another and trains on the rest). Give "
            "items with --pattern's (?P<item>..) group or --item-pattern.")


def _folds(rows: pd.DataFrame, wanted: int | None) -> int:
    n_items = int(rows["item"].nunique())
    allowed = [k for k in allowed_folds(n_items) if k >= 2]  # the splitter's own rule
    if wanted is None and allowed:
        return max(k for k in allowed if k <= MAX_FOLDS)
    if wanted not in allowed:
        raise ConfigurationError(
            f"--folds {wanted}: {n_items} items allow {', '.join(map(str, allowed)) or 'none'} "
            "(every fold keeps test, validation and training items apart).")
    return wanted


def _write_script(script: Path, store: FeatureStore, rows: pd.DataFrame, folds: int, how: str,
                  audio: Path, config: Config, project: Path) -> None:
    classes = sorted(map(str, rows["label"].unique()))
    shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
    relative = Path("experiments") / script.name
    results = (config.results_dir / store.path.name / "experiment_1")
    summary = (f"Written by `python -m xval init` from {audio}: {len(rows)} files, "
               f"{len(classes)} classes ({shown}), {rows['item'].nunique()} items ({how}). "
               "Folds never split an item, so the test score says how well a model does on "
               "items it has never seen.")
    values: dict[str, Any] = {
        "number": 1, "question": f"which model recognises the classes of {audio.name} on "
                                 "items it has never seen?",
        "summary": "\n".join(textwrap.wrap(summary, width=88, break_on_hyphens=False)),
        "script": relative, "results": _shown(results, project),
        "description": json.dumps(f"{audio.name}: first models"),
        "dataset": json.dumps(store.path.name), "num_folds": folds,
        "task_type": json.dumps("classification")}
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(SCRIPT.format(**values))


def _shown(path: Path, project: Path) -> str:
    try:
        return str(path.relative_to(project))
    except ValueError:
        return str(path)


def _python() -> str:
    """How to call this Python in the printed command (the project's .venv when it is it)."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return "python"
