"""Recording ids in file names: takes of one recording are one item.

A dataset whose files carry no item (class folders, a pattern without `(?P<item>..)`, a
manifest without an item column) would make every file its own item. When the names say
that several files come from one recording (`1-100038-A.ogg` and `1-100038-B.ogg`, ESC-50's
`{fold}-{clip}-{take}`; `100263-2-0-117.wav`, UrbanSound8K's
`{recording}-{class}-{occurrence}-{slice}`; `alice_01.wav`, `alice_02.wav`), those files
must be one item, or takes of one recording land on both sides of a fold and the test score
measures memory, not generalisation.

The rule, one regular expression per level (`recording_pattern`), over the file's name:

- a **take suffix** is removed from the end of the name, up to `levels` times: a field after
  `-`, `_` or a space that is a number of 1 to 3 digits, a single letter, or a take word
  with its number (`take2`, `rep3`, `slice12`); a number of 1 to 3 digits glued to a word
  (`chicken-select2`, `bark03`) is a take suffix too, at the levels tried first;
- a **leading fold number** (1 or 2 digits then `-`, `_` or a space, when another field
  follows) is removed too (ESC-50's fold, FSDD's digit): files are grouped whatever it says;
- what is left is the **recording id**: files that share it are one item.

The coarsest level whose grouping is sound is chosen (`find_recordings`): some recording id
is shared by two or more files, no id is a class name (`dog/dog_01.wav` numbers the class's
files, it is no recording), and every class of two or more files keeps two or more items
(`dog/bark_01.wav` ... `dog/bark_40.wav` names the class's files alike, it is no recording
either). Grouping is always safe against leakage; it costs items.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from pathlib import PurePosixPath

import pandas as pd

__all__ = ["OVERRIDE", "Recordings", "find_recordings", "recording_pattern"]

OVERRIDE = "--item-per-file"
"""The command lines' flag that makes every file its own item (`by_recording=False`)."""
LEVELS = (3, 2, 1)
"""How many take suffixes a level removes at most, coarsest first (UrbanSound8K's
`-{class}-{occurrence}-{slice}` needs 3)."""
_TAKE = r"(?:take|tk|rep|slice|seg|part|cut|t|r|v)?\d{1,3}|[A-Za-z]"
_SEP = r"[-_ ]"
_GLUED = r"(?<=[A-Za-z])\d{1,3}"
"""A take number glued to a word (`select2`); never a number after a number, so a numeric
id (`100263`) keeps its digits."""
_SHOWN = 3
"""Groups named in a description."""


def recording_pattern(levels: int, *, fold: bool = True, glued: bool = False) -> str:
    """The item pattern of one level of the rule (see the module docstring).

    Args:
        levels: take suffixes removed at most.
        fold: also remove a leading fold number. Defaults to `True`.
        glued: also remove a take number glued to a word (`select2`). Defaults to `False`.

    Returns:
        A regular expression with `(?P<item>..)`, searched in a path relative to the dataset
        folder (as `--item-pattern` takes it).
    """
    lead = rf"(?:\d{{1,2}}{_SEP}(?=[^/]*{_SEP}))?" if fold else ""
    take = rf"{_SEP}(?:{_TAKE})|{_GLUED}" if glued else rf"{_SEP}(?:{_TAKE})"
    return rf"(?:^|/){lead}(?P<item>[^/]+?)(?:{take}){{0,{levels}}}\.[^./]+$"


@dataclasses.dataclass(frozen=True)
class Recordings:
    """A grouping of files by the recording ids in their names.

    Attributes:
        items: the recording id of every file, in the order given.
        pattern: the item pattern that gives them (`--item-pattern`).
        groups: recording ids shared by several files, with their files, largest first.
    """

    items: list[str]
    pattern: str
    groups: list[tuple[str, list[str]]]

    def describe(self, otherwise: str | None = None) -> str:
        """One sentence: what was grouped, examples, and how to choose otherwise.

        Args:
            otherwise: the closing sentence, how to choose the items otherwise. Defaults to
                the options of a folder of audio (`--item-per-file`, `--item-pattern`).

        Returns:
            The sentence.
        """
        shown = "; ".join(f"{', '.join(PurePosixPath(f).name for f in files[:2])}"
                          f"{' ...' if len(files) > 2 else ''} -> {item!r}"
                          for item, files in self.groups[:_SHOWN])
        files = sum(len(files) for _, files in self.groups)
        return (f"the recording ids in the file names, a trailing take or slice suffix and a "
                f"leading fold number removed: {len(set(self.items))} items for "
                f"{len(self.items)} files, {files} of them sharing a recording ({shown}), so "
                "takes of one recording never land on both sides of a fold. " + (
                    otherwise if otherwise is not None else f"Every file its own item: "
                    f"{OVERRIDE}; another rule: --item-pattern REGEX with (?P<item>..)"))


def _ids(paths: Sequence[str], pattern: str) -> list[str] | None:
    """The recording id of every file by `pattern` (`None` when a file does not match); a
    file stays its own item (its path) unless its id is shared with a file whose name lost
    a take suffix or a fold number (`dog/001.wav` and `cat/001.wav` are no takes)."""
    regex = re.compile(pattern)
    found = [regex.search(path) for path in paths]
    if any(match is None for match in found):
        return None
    ids = [match["item"] for match in found if match is not None]
    cut = {i for i, path in zip(ids, paths) if i != PurePosixPath(path).stem}
    return [i if i in cut else path for i, path in zip(ids, paths)]


def _sound(items: list[str], labels: list[str]) -> bool:
    """Whether a grouping is one of recordings: an id shared, none a class name, and every
    class of two or more files on two or more items."""
    table = pd.DataFrame({"item": items, "label": labels})
    if table["item"].nunique() == len(table) or table["item"].nunique() < 3:
        return False
    names = {re.sub(r"[-_ ]", "", str(label)).lower() for label in labels}
    if any(re.sub(r"[-_ ]", "", item).lower() in names for item in set(items)):
        return False
    per_class = table.groupby("label")["item"].agg(["size", "nunique"])
    return bool(((per_class["size"] < 2) | (per_class["nunique"] >= 2)).all())


def find_recordings(paths: Sequence[str], labels: Sequence[object]) -> Recordings | None:
    """The grouping of files by the recording ids in their names, or `None` when the names
    share none (every file is then its own item).

    Args:
        paths: the files, relative to the dataset folder (`/` separators).
        labels: the label of each file.

    Returns:
        The coarsest sound grouping (see the module docstring), or `None`.

    Example:
        >>> found = find_recordings(["dog/1-100038-A.ogg", "dog/1-100038-B.ogg",
        ...                          "dog/1-100032-A.ogg", "cat/2-100040-A.ogg",
        ...                          "cat/2-100041-A.ogg"], ["dog", "dog", "dog", "cat", "cat"])
        >>> found.items
        ['100038', '100038', '100032', '100040', '100041']
    """
    names = [str(label) for label in labels]
    for levels, glued, fold in itertools.product(LEVELS, (True, False), (True, False)):
        pattern = recording_pattern(levels, fold=fold, glued=glued)
        items = _ids(paths, pattern)
        if items is not None and _sound(items, names):
            table = pd.DataFrame({"item": items, "path": list(paths)})
            shared = table.groupby("item", sort=False)["path"].agg(list)
            groups = sorted(((str(item), files) for item, files in shared.items()
                             if len(files) > 1), key=lambda g: (-len(g[1]), g[0]))
            return Recordings(items=items, pattern=pattern, groups=groups)
    return None
