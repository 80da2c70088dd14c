"""What `python -m xval init` writes, checked before anything is written and removed again
when a later step fails (the output rule of `xval.core.outputs`, applied to a project).

- Nothing is written inside the audio folder (the project, `[paths] data_dir` and
  `results_dir`), and a store is replaced only when it is one (and `--overwrite` is given):
  `init data/wavs` never turns the recordings into a store.
- An experiment script is replaced only when `init` wrote it (it carries `SCRIPT_MARK`),
  and one that differs from the new script (edited, say) is kept beside it
  (`backup_path`: `<name>.py.bak`).
- `Created` records what init makes (files, stores, folders) and removes it when a later
  step fails, so a refused init leaves no half-made project.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from preprocessing.store_output import check_store_out, store_output
from xval.cli.scripts import SCRIPT_MARK, load_experiment
from xval.config.loader import Config
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.files import atomic_write_bytes, atomic_write_text
from xval.core.outputs import check_output_folder, remove_output

__all__ = ["Created", "check_outputs"]


class Created:
    """What init created, removed again by `undo`: its own files, its stores (through the
    output rule), and the folders it made if they are left empty."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Path]] = []
        self._contents: dict[Path, bytes] = {}

    def folders(self, *paths: Path) -> None:
        """Notes the missing folders among `paths` and their parents (made later)."""
        for path in paths:
            for folder in (path, *path.parents):
                if folder.exists():
                    break
                self._undo.append(("folder", folder))

    def store(self, path: Path) -> None:
        """Notes a store written where there was none."""
        self._undo.append(("store", path))

    def file(self, path: Path) -> None:
        """Notes a file written where there was none."""
        self._undo.append(("file", path))

    def replaced(self, path: Path, content: bytes) -> None:
        """Notes a file about to be written over, `content` what it held (put back by
        `undo`)."""
        self._undo.append(("content", path))
        self._contents[path] = content

    def kept_if_done(self, write: Callable[[], int]) -> int:
        """Runs `write` (init's steps that write) and undoes what was created when it
        raises (an interrupt included) or returns a non-zero exit code, which it returns."""
        try:
            code = write()
        except BaseException:
            self.undo()
            raise
        if code:
            self.undo()
        return code

    def undo(self) -> None:
        """Removes what was created: files first (a file written over gets its text
        back), then stores, then the folders left empty, deepest first."""
        order = {"content": 0, "file": 0, "store": 1, "folder": 2}
        for kind, path in sorted(self._undo, key=lambda e: (order[e[0]], -len(e[1].parts))):
            with contextlib.suppress(OSError, ConfigurationError, DatasetError):
                if kind == "content":
                    atomic_write_bytes(path, self._contents[path])
                elif kind == "file":
                    path.unlink(missing_ok=True)
                elif kind == "store" and path.exists():
                    remove_output(path, store_output())
                elif kind == "folder" and path.is_dir() and not any(path.iterdir()):
                    path.rmdir()


def finish(script: Path, config: Config, config_file: tuple[Path, str | None],
           created: Created, write_script: Callable[[], None], stores: str) -> int:
    """The end of every `init`: config.ini written (when it is new) and the script
    (`write_script`), each noted in `created`; then the script's dry run, and the command
    that runs the experiment.

    Args:
        script: the experiment script's path.
        config: the project's `Config`.
        config_file: `(path, text)` of config.ini; `text` `None`: it is there already.
        created: what init has created so far.
        write_script: writes the script (and says so).
        stores: what a failed dry run says is removed besides the script and config.ini
            (`"the store"`, `"the stores"`).

    Returns:
        0, or the dry run's exit code (the caller then undoes what `created` holds).
    """
    config_path, config_text = config_file
    if config_text is not None:
        atomic_write_text(config_path, config_text)
        created.file(config_path)
    before = script.read_bytes() if script.exists() else None
    if before is None:
        created.file(script)
    else:
        created.replaced(script, before)
    write_script()
    if before is not None and script.read_bytes() != before:
        backup = backup_path(script)
        atomic_write_bytes(backup, before)
        created.file(backup)
        print(f"The earlier {script.name} differed from the new one (your edits, if any): "
              f"kept as {shown_path(backup, Path.cwd())}.")
    outcome = load_experiment(script).run(dry_run=True, config=config)
    if outcome.exit_code:
        print(f"The dry run failed: nothing init wrote is kept (the script, {stores}, "
              "config.ini).", file=sys.stderr)
        return outcome.exit_code
    command = f"{python_command()} {shlex.quote(shown_path(script, Path.cwd()))}"
    print(f"\nReady. Run the experiment with:\n\n    {command}\n")  # from where one stands
    return 0


def backup_path(script: Path) -> Path:
    """Where `--overwrite` keeps the script it replaces: `<name>.py.bak`, else the first of
    `<name>.py.bak2`, `.bak3`, ... that is free."""
    k = 1
    while (path := script.with_name(f"{script.name}.bak{k if k > 1 else ''}")).exists() \
            or path.is_symlink():
        k += 1
    return path


def shown_path(path: Path, project: Path) -> str:
    """`path` relative to `project` where it is inside it, else as given."""
    try:
        return str(path.relative_to(project))
    except ValueError:
        return str(path)


def python_command() -> str:
    """How to call this Python in the printed command, from the current folder: its path
    from there (the project's .venv), else `python` when that is this Python on `PATH`,
    else its full path (a bare `python` would be another one, without this project)."""
    exe = Path(sys.executable)
    try:
        return shlex.quote(str(exe.relative_to(Path.cwd())))
    except ValueError:
        pass
    found = shutil.which("python")
    if found is not None and Path(found).resolve() == exe.resolve():
        return "python"
    return shlex.quote(str(exe))


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def check_outputs(audio: Path, project: Path, config: Config, script: Path,
                  stores: Iterable[Path], overwrite: bool) -> None:
    """The output rule for everything init writes, before anything is written.

    Args:
        audio: the folder (or corpus file) read.
        project: the project folder.
        config: the project's configuration (its `[paths]`).
        script: the experiment script to write.
        stores: the store folders to write.
        overwrite: `--overwrite`.

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
    for store in stores:
        check_store_out(store, overwrite=overwrite, inputs=[audio])
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
