"""What every source is and returns: the `Source` class (its name, what it reads, its
options) and the rows `(rows, skipped)` it gives.

A source turns a dataset on disk into rows `(path, label, item, clip)`: a `pandas.DataFrame`
with those columns (and `split` when the source has one; `offset`, `duration` and `read`
when a row is a region of a file, see `preprocessing.audio.Region`), and a list of
`{"path", "reason"}` for files it could not use (with the file's `label` when the source
knows it, so that a class that lost every file is named, `preprocessing.intake`). A source
that gives no item groups the files whose names share a recording id
(`preprocessing.recordings`) and says so in `rows.attrs["recordings"]` (`None` when every
file is its own item).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd

from preprocessing.recordings import find_recordings
from xval.core.errors import ConfigurationError, DatasetError

__all__ = ["ITEM_PER_FILE", "ROOT", "Corpus", "Option", "Reads", "Rows", "Skipped", "Source",
           "group_recordings", "source_table"]

Skipped = list[dict[str, str]]
"""Files a source could not use: `{"path", "reason"}` each (and `label`, when known)."""
Rows = tuple[pd.DataFrame, Skipped]
"""What every source returns: `(rows, skipped)`."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a source, as the command lines take it (`--flag VALUE`).

    Attributes:
        flag: the option, e.g. `"--label-file"`; its value is the keyword `label_file`.
        help: what it is, for `--help`. Defaults to `None`.
        default: its value when not given. Defaults to `None`.
        required: it must be given. Defaults to `False`.
        switch: a flag without a value, `True` when given. Defaults to `False`.
        parse: turns the text given into the value, raising `ValueError` (naming the fix)
            for a bad one; `None` keeps the text. Defaults to `None`.
    """

    flag: str
    help: str | None = None
    default: Any = None
    required: bool = False
    switch: bool = False
    parse: Callable[[str], Any] | None = None

    @property
    def key(self) -> str:
        """The option's keyword: `--label-file` -> `label_file`."""
        return self.flag[2:].replace("-", "_")


@dataclasses.dataclass(frozen=True)
class Reads:
    """What a source reads: the path or paths given first on its command line.

    Attributes:
        metavar: their name in `--help` (`root`, `DATA_DIR`, `MANIFEST`).
        what: what they are, in messages ("the Kaldi data directory (wav.scp, ...)").
        help: the positional argument's help. Defaults to `None`.
        kind: `"folder"` or `"file"`. Defaults to `"folder"`.
        most: how many it takes at most (one at least). Defaults to `1`.
    """

    metavar: str
    what: str
    help: str | None = None
    kind: Literal["folder", "file"] = "folder"
    most: int = 1


ITEM_PER_FILE = Option(
    "--item-per-file", "without an item rule, every file its own item (default: files whose "
                       "names share a recording id, such as 1-100038-A.ogg and "
                       "1-100038-B.ogg, are one item)", switch=True)
"""The option of the sources that read files without an item rule: no grouping by
recording (`preprocessing.recordings`)."""


ROOT = Option("--root", "folder relative audio paths are read from (default: the current "
                       "folder, as Kaldi and Lhotse read them)")
"""The option of the corpora whose lists name audio files by relative paths."""


class Source:
    """A kind of dataset on disk, found by name (`preprocessing.sources.get`): `python -m
    preprocessing NAME PATH ...`, and for a corpus `python -m xval init PATH --corpus NAME`.

    A subclass sets `name`, `help`, `reads` and `options`, and writes `read`; registered
    with `@preprocessing.sources.register`, it is a sub-command of both command lines.

    Attributes:
        name: its name (the sub-command).
        help: one line for `--help`.
        reads: the paths it reads.
        options: its options, in the order `--help` lists them.
    """

    name: ClassVar[str]
    help: ClassVar[str]
    reads: ClassVar[Reads]
    options: ClassVar[tuple[Option, ...]] = ()

    def rows(self, paths: Sequence[str], given: Mapping[str, Any]) -> Rows:
        """The rows of the dataset at `paths`, with the options `given`.

        Args:
            paths: what the source reads (`reads`).
            given: option keyword -> value; a missing or `None` one takes its default.

        Returns:
            `(rows, skipped)`.

        Raises:
            ConfigurationError: for a required option not given, or a number of paths the
                source does not read.
            DatasetError: from the source.
        """
        if not 1 <= len(paths) <= self.reads.most:
            raise ConfigurationError(f"{self.name} reads {self.reads.what}; got "
                                     f"{len(paths)} paths.")
        return self.read([str(path) for path in paths], self.values(given))

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every option's value: the one given, else its default.

        Raises:
            ConfigurationError: for a required option not given.
        """
        values: dict[str, Any] = {}
        for option in self.options:
            value = given.get(option.key)
            if value is None and option.required:
                raise ConfigurationError(f"{self.name} needs {option.flag}: {option.help}.")
            values[option.key] = option.default if value is None else value
        return values

    def read(self, paths: list[str], values: dict[str, Any]) -> Rows:
        """The rows, from the paths and every option's value (`values`)."""
        raise NotImplementedError

    def inputs(self, paths: Sequence[str], values: Mapping[str, Any],
               rows: pd.DataFrame) -> list[str]:
        """The folders and files the source read: a store is never written inside one,
        nor one inside a store. Defaults to the paths it was given."""
        return [str(path) for path in paths]


class Corpus(Source):
    """A corpus of a speech toolkit (Kaldi, Lhotse, Hugging Face `datasets`): it reads its
    own files (a data directory, manifests, a dataset folder), which list the audio files,
    wherever they are; `python -m xval init PATH --corpus NAME` reads it too."""

    def inputs(self, paths: Sequence[str], values: Mapping[str, Any],
               rows: pd.DataFrame) -> list[str]:
        """Its own files, and the folders of the audio files they list (`--root` is only
        where relative paths start: a store inside it overwrites nothing read)."""
        held = rows["read"].map(callable) if "read" in rows else pd.Series(False, rows.index)
        return [*map(str, paths),
                *sorted({str(Path(p).parent) for p in rows.loc[~held, "path"]})]


def source_table(rows: list[dict[str, Any]], skipped: Skipped, what: str,
                recordings: str | None = None) -> Rows:
    """The `(rows, skipped)` of a source from its row dicts, refusing a source without rows.

    Args:
        rows: one dict per row: `path`, `label`, `item`, `clip` (optional `split`, and
            `offset`, `duration`, `read` for a region, see `preprocessing.audio.Region`).
        skipped: the files the source could not use.
        what: the source, for the error (e.g. `"Kaldi data directory data/train"`).
        recordings: how files were grouped by recording (`Recordings.describe`), kept in
            `rows.attrs["recordings"]`. Defaults to `None` (not grouped).

    Returns:
        `(rows, skipped)`, the rows as a `pandas.DataFrame`.

    Raises:
        DatasetError: when there is no row, naming the first problems.
    """
    if not rows and not skipped:
        raise DatasetError(f"{what} lists nothing: it produced no rows.")
    if not rows:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
        raise DatasetError(f"{what} produced no rows. First problems: {reasons}")
    table = pd.DataFrame(rows)
    table.attrs["recordings"] = recordings
    return table, skipped


def group_recordings(rows: list[dict[str, Any]], names: list[str]) -> str | None:
    """Gives rows that are each their own item the recording id their file names share
    (`preprocessing.recordings.find_recordings`); returns how, or `None` when none is
    shared."""
    found = find_recordings(names, [row["label"] for row in rows]) if rows else None
    if found is None:
        return None
    for row, item in zip(rows, found.items):
        row["item"] = item
    return found.describe()
