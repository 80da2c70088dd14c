"""The duplicate check of a dataset: which of its files hold the same audio
(`preprocessing.duplicates.fingerprints`), which of those pairs cross items, and the fix.

A store records the check in `dataset.json` under `duplicates` (a `DuplicateCheck`: method,
threshold, the files checked and every pair found, by clip id), so that later checks, the
dry run and the run need no audio: the pairs that cross items follow from the pairs and the
store's items (`cross_item_duplicates`). `merged_items` makes each connected group of items one
item, `--merge-duplicates` on the command lines.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
import scipy.sparse.csgraph
from tqdm import tqdm

from preprocessing.audio import Region, load_audio
from preprocessing.duplicates.candidates import LandmarkSpool
from preprocessing.duplicates.fingerprints import (
    METHOD,
    RATE,
    THRESHOLD,
    Fingerprint,
    candidate_pairs,
    compact,
    fingerprint,
    verified_pairs,
)
from preprocessing.duplicates.spool import ArraySpool
from preprocessing.parallel import process_pool
from preprocessing.rows import row_region
from xval.core.errors import DatasetError
from xval.core.files import atomic_write_text
from xval.core.terminal import is_terminal

__all__ = ["EXAMPLES", "Conflict", "CrossItemDuplicate", "DuplicateCheck", "FingerprintSpool",
           "check_files", "check_labels", "check_merge", "clip_labels", "cross_item_conflicts",
           "cross_item_duplicates", "duplicates_per_fold", "fingerprint_of", "groups_text",
           "item_groups", "label_conflicts", "merged_items", "report_lines", "write_pairs_csv"]

EXAMPLES = 5
"""Pairs shown by the command lines (the CSV holds them all)."""


@dataclasses.dataclass(frozen=True)
class DuplicateCheck:
    """What a store records of its duplicate check (`dataset.json` `duplicates`).

    Attributes:
        method: how pairs were found (`preprocessing.METHOD`).
        threshold: the similarity at or above which a pair is one recording.
        sample_rate: the rate the check ran at (Hz).
        files: the files (clips) checked.
        pairs: `(clip, clip, similarity)` of every pair found, crossing items or not.
        unreadable: clips whose audio the check could not read (not checked).
        merged: the groups of items merged into one (`--merge-duplicates`), each sorted.
        seconds: how long the check took.
    """

    method: str = METHOD
    threshold: float = THRESHOLD
    sample_rate: int = RATE
    files: int = 0
    pairs: tuple[tuple[str, str, float], ...] = ()
    unreadable: tuple[str, ...] = ()
    merged: tuple[tuple[str, ...], ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `dataset.json`'s `duplicates`."""
        return {"method": self.method, "threshold": self.threshold,
                "sample_rate": self.sample_rate, "files": self.files,
                "pairs": [list(p) for p in self.pairs], "unreadable": list(self.unreadable),
                "merged": [list(g) for g in self.merged], "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DuplicateCheck:
        """Reads `dataset.json`'s `duplicates`.

        Raises:
            DatasetError: when it is not what `to_dict` writes.
        """
        try:
            return cls(method=str(data["method"]), threshold=float(data["threshold"]),
                       sample_rate=int(data["sample_rate"]), files=int(data["files"]),
                       pairs=tuple((str(a), str(b), float(s)) for a, b, s in data["pairs"]),
                       unreadable=tuple(map(str, data.get("unreadable", ()))),
                       merged=tuple(tuple(map(str, g)) for g in data.get("merged", ())),
                       seconds=float(data.get("seconds", 0.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"dataset.json: its 'duplicates' entry cannot be read "
                               f"({type(e).__name__}: {e}); rebuild the store, or run "
                               "`python -m preprocessing check STORE --recheck`.") from None

    @property
    def described(self) -> str:
        """The method and threshold in words."""
        return f"{self.method}, similarity >= {self.threshold:g}"


@dataclasses.dataclass(frozen=True)
class CrossItemDuplicate:
    """A pair of files holding the same audio under two items."""

    first: str
    second: str
    similarity: float
    items: tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Conflict:
    """A pair of files holding the same audio under two labels (the store would keep that
    audio under both)."""

    first: str
    second: str
    similarity: float
    labels: tuple[str, str]
    items: tuple[str, str]


def fingerprint_of(path: str, region: Region | None = None) -> Fingerprint | str:
    """The content print of one file (or region), or why it cannot be read: run in the
    check's workers."""
    try:
        y, _ = load_audio(path, sample_rate=RATE, peak_normalize=False,
                          region=region)
    except DatasetError as e:
        return str(e)
    return compact(fingerprint(y, RATE))


def check_files(rows: pd.DataFrame, *, workers: int = 1, threshold: float = THRESHOLD,
               progress: bool = False) -> DuplicateCheck:
    """Decodes every clip of source rows (`path`, `clip`, optional region columns) at the
    check's rate and checks them, in `workers` processes: the decoding, then the
    verification (the prints kept on disk as they come, `FingerprintSpool`).

    Args:
        rows: one row per clip (a clip's rows beyond the first are ignored).
        workers: processes. Defaults to `1`.
        threshold: see `preprocessing.duplicates.find_duplicates`.
        progress: show a progress bar in a terminal. Defaults to `False`.

    Returns:
        The `DuplicateCheck` (files that cannot be read are listed, not checked).
    """
    t0 = time.perf_counter()
    rows = rows.drop_duplicates("clip")
    work = [(str(r["path"]), row_region(r)) for r in rows.to_dict("records")]
    workers = max(1, min(workers, len(work)))
    unreadable = []
    with FingerprintSpool() as spool:
        with contextlib.ExitStack() as stack:  # the decoding workers end before the check
            if workers == 1:
                results: Iterable[Fingerprint | str] = (fingerprint_of(*w) for w in work)
            else:
                pool = stack.enter_context(process_pool(workers))
                results = pool.map(fingerprint_of, *zip(*work), chunksize=8)
            results = tqdm(results, total=len(work), unit="file", desc="duplicate check",
                           disable=not (progress and is_terminal()))
            for clip, result in zip(rows["clip"].astype(str), results):
                if isinstance(result, str):
                    unreadable.append(clip)
                else:
                    spool.add(clip, result)
        return spool.check(threshold, workers=workers, unreadable=unreadable,
                           seconds=time.perf_counter() - t0)


class FingerprintSpool:
    """The content prints of many files, kept on disk for their check (a large store holds
    hours of audio): the waveforms and the landmarks in unnamed temporary files in `folder`
    (the system removes them with the process, however it ends, SIGKILL included), read
    back a range at a time. Use it as a context manager: the files are closed on leaving.

    Args:
        folder: where the temporary files go (beside the store). Defaults to the system's
            temporary folder.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self._waves = ArraySpool(np.int16, folder)
        self._landmarks = LandmarkSpool(folder)
        self.clips: list[str] = []
        self._spans: list[tuple[int, int]] = []

    def __enter__(self) -> FingerprintSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._waves.close()
        self._landmarks.close()

    def add(self, clip: str, content: Fingerprint) -> None:
        """Keeps the print of one clip."""
        start = self._waves.append(compact(content).wave)
        self._spans.append((start, start + len(content.wave)))
        self._landmarks.add(content.hashes, content.times)
        self.clips.append(str(clip))

    def wave(self, i: int) -> np.ndarray:
        """The waveform of the `i`-th clip added (16-bit, scaled to its peak)."""
        return self._waves.read(*self._spans[i])

    def candidates(self) -> np.ndarray:
        """The candidate pairs of the clips added (`fingerprints.candidate_pairs`).
        """
        return candidate_pairs(self._landmarks.landmarks())

    def check(self, threshold: float = THRESHOLD, *, workers: int = 1,
              unreadable: Iterable[str] = (), seconds: float = 0.0) -> DuplicateCheck:
        """The check of every clip added: the candidates found here, verified in `workers`
        processes (`preprocessing.duplicates.similarities`: the same pairs and similarities
        whatever the count); `unreadable`: clips left out, `seconds`: time spent before,
        both recorded."""
        t0 = time.perf_counter()
        pairs = verified_pairs(self.candidates(), self.wave, threshold=threshold,
                               workers=workers)
        found = tuple((self.clips[p.first], self.clips[p.second], p.similarity) for p in pairs)
        return DuplicateCheck(threshold=threshold, files=len(self.clips), pairs=found,
                              unreadable=tuple(unreadable),
                              seconds=seconds + time.perf_counter() - t0)


def cross_item_duplicates(check: DuplicateCheck,
                          items: Mapping[str, str]) -> list[CrossItemDuplicate]:
    """The pairs of `check` whose clips are under two items (`items[clip]`), most similar
    first; pairs of clips no longer in the data are left out."""
    out = [CrossItemDuplicate(a, b, s, (items[a], items[b])) for a, b, s in check.pairs
           if a in items and b in items and items[a] != items[b]]
    return sorted(out, key=lambda c: (-c.similarity, c.first, c.second))


def label_conflicts(check: DuplicateCheck, labels: Mapping[str, str],
                    items: Mapping[str, str]) -> list[Conflict]:
    """The pairs of `check` whose clips carry different labels (`labels[clip]`, from
    `clip_labels`), most similar first; clips without a label are left out.

    Args:
        check: the check.
        labels: clip -> its label.
        items: clip -> its item.
    """
    out = [Conflict(a, b, s, (labels[a], labels[b]), (items.get(a, "?"), items.get(b, "?")))
           for a, b, s in check.pairs
           if a in labels and b in labels and labels[a] != labels[b]]
    return sorted(out, key=lambda c: (-c.similarity, c.first, c.second))


def clip_labels(meta: pd.DataFrame) -> dict[str, str]:
    """Clip -> its label (the labels of its original rows, `|`-joined when they are
    several), or `{}` for rows without labels."""
    if "label" not in meta:
        return {}
    original = meta[~meta["augmented"].astype(bool)] if "augmented" in meta else meta
    grouped = original.groupby(original["clip"].astype(str), sort=False)["label"]
    return {str(clip): "|".join(sorted(set(map(str, values)))) for clip, values in grouped}


def check_labels(conflicts: Sequence[Conflict], sources: Mapping[str, str], *,
                 fix: str) -> None:
    """Refuses a merge (`--merge-duplicates`) of items whose copies of one recording carry
    different labels: the merged item would keep that audio under both labels.

    Args:
        conflicts: the pairs the merge would join that carry two labels.
        sources: clip -> the file it was read from (named in the message).
        fix: what to do instead (the command's own words).

    Raises:
        DatasetError: naming the pairs (both files, both labels), their count and the fix.
    """
    if not conflicts:
        return
    shown = "; ".join(f"{sources.get(c.first, c.first)} (label {c.labels[0]!r}, item "
                      f"{c.items[0]}) = {sources.get(c.second, c.second)} (label "
                      f"{c.labels[1]!r}, item {c.items[1]})" for c in conflicts[:3])
    more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
    raise DatasetError(
        f"--merge-duplicates: {len(conflicts)} pair(s) of files hold the same audio under two "
        f"labels: {shown}{more}; merging their items would keep that audio under both "
        f"labels. Nothing was merged or written. Fix the label of one copy, or remove it: "
        f"{fix}.")


def item_groups(crossing: Sequence[CrossItemDuplicate]) -> list[list[str]]:
    """The items joined by crossing pairs, each connected group sorted, largest first."""
    names = sorted({i for c in crossing for i in c.items})
    if not names:
        return []
    index = {n: k for k, n in enumerate(names)}
    first = [index[c.items[0]] for c in crossing]
    second = [index[c.items[1]] for c in crossing]
    graph = scipy.sparse.coo_matrix((np.ones(len(first)), (first, second)),
                                    shape=(len(names), len(names)))
    _, label = scipy.sparse.csgraph.connected_components(graph, directed=False)
    groups: dict[int, list[str]] = {}
    for name, k in zip(names, label):
        groups.setdefault(int(k), []).append(name)
    return sorted(groups.values(), key=lambda g: (-len(g), g))


def merged_items(groups: Sequence[Sequence[str]]) -> dict[str, str]:
    """Item -> the one item of its group (`a+b`, the group's items joined in order)."""
    return {item: "+".join(group) for group in groups for item in group}


def merge_duplicates(check: DuplicateCheck, meta: pd.DataFrame
                     ) -> tuple[DuplicateCheck, pd.DataFrame]:
    """Makes each connected group of items that crossing pairs join one item.

    Args:
        check: the check of the store's files.
        meta: the store's rows (`item`, `clip`, `source`, `augmented` columns).

    Returns:
        The check with the groups it merged (`merged`), and the rows with their new items.

    Raises:
        DatasetError: when copies it would join carry different labels (`check_labels`),
            or merging leaves fewer than two items (`check_merge`).
    """
    items, sources = clip_table(meta)
    crossing = cross_item_duplicates(check, items)
    groups = item_groups(crossing)
    if not groups:
        return check, meta
    check_labels(cross_item_conflicts(crossing, clip_labels(meta)), sources,
                 fix="rebuild from the audio folder once the labels agree, or without "
                     "--merge-duplicates to review the pairs (`python -m preprocessing check "
                     "STORE --csv PAIRS.csv`)")
    new = merged_items(groups)
    meta = meta.assign(item=[new.get(i, i) for i in meta["item"].astype(str)])
    check_merge(groups, meta["item"].nunique(), needed=2,
                rule="a store needs two or more to cross-validate",
                fix="rebuild from the audio folder with the copies removed, or, if they are "
                    "not copies, without --merge-duplicates once the data is cleaned (`python "
                    "-m preprocessing check STORE --csv PAIRS.csv` lists every pair)")
    return (dataclasses.replace(check, merged=check.merged + tuple(map(tuple, groups))),
            meta)


def cross_item_conflicts(crossing: Sequence[CrossItemDuplicate], labels: Mapping[str, str]
                       ) -> list[Conflict]:
    """The crossing pairs (those a merge joins) whose clips carry different labels."""
    return [Conflict(c.first, c.second, c.similarity, (labels[c.first], labels[c.second]),
                     c.items) for c in crossing
            if c.first in labels and c.second in labels and labels[c.first] != labels[c.second]]


def duplicates_per_fold(crossing: Sequence[CrossItemDuplicate],
                   folds: Sequence[Mapping[str, Sequence[str]]]) -> list[int]:
    """For each fold, how many test items share audio with a training or validation item."""
    out = []
    for fold in folds:
        test = set(map(str, fold["test"]))
        seen = set(map(str, fold["train"])) | set(map(str, fold.get("val", ())))
        leaking = {a for c in crossing for a, b in (c.items, c.items[::-1])
                   if a in test and b in seen}
        out.append(len(leaking))
    return out


def report_lines(check: DuplicateCheck, crossing: Sequence[CrossItemDuplicate],
                 sources: Mapping[str, str], *, fix: str, review: str = "--csv PAIRS.csv",
                 examples: int = EXAMPLES, merging: bool = False,
                 conflicts: Sequence[Conflict] = ()) -> list[str]:
    """What the command lines print of a check: the count, a few pairs with both files and
    their similarity, the items involved, and the fix.

    Args:
        check: the check.
        crossing: its pairs that cross items (`cross_item_duplicates`).
        sources: clip -> the file it was read from (shown for each example).
        fix: how to merge the items (`--merge-duplicates` of the command at hand).
        review: how to write every pair to a CSV. Defaults to `"--csv PAIRS.csv"`.
        examples: pairs shown. Defaults to `EXAMPLES`.
        merging: the command merges the groups already (`--merge-duplicates` given): the
            last line says so instead of giving `fix`. Defaults to `False`.
        conflicts: its pairs whose files carry two labels (`label_conflicts`), listed
            after the rest. Defaults to none.
    """
    head = f"Duplicate check ({check.described}) of {check.files} files: "
    skipped = (f" ({len(check.unreadable)} could not be read, not checked)"
               if check.unreadable else "")
    if not crossing:
        within = len(check.pairs)
        return [head + ("no file shares its audio with a file of another item"
                        + (f" ({within} pair(s) share audio inside one item)" if within else "")
                        + skipped + "."), *_conflict_lines(conflicts, sources, examples)]
    groups = item_groups(crossing)
    lines = [head + f"{len(crossing)} pair(s) of files hold the same audio under two items"
             f" ({sum(map(len, groups))} items in {len(groups)} group(s)){skipped}:"]
    for c in crossing[:examples]:
        lines.append(f"  {sources.get(c.first, c.first)} ({c.items[0]}) = "
                     f"{sources.get(c.second, c.second)} ({c.items[1]}): similarity "
                     f"{c.similarity:.3f}")
    if len(crossing) > examples:
        lines.append(f"  ... and {len(crossing) - examples} more ({review} writes them all)")
    lines.append("  Items involved: " + groups_text(groups, examples))
    if merging:
        lines.append("  Their files could sit on both sides of a fold: each group becomes one "
                     f"item (--merge-duplicates); review the pairs with {review}.")
    else:
        lines.append("  Their files could sit on both sides of a fold. Fix: each group becomes "
                     f"one item with {fix}; or review the pairs ({review}).")
    return lines + _conflict_lines(conflicts, sources, examples)


def _conflict_lines(conflicts: Sequence[Conflict], sources: Mapping[str, str],
                    examples: int) -> list[str]:
    """The pairs whose copies carry two labels, a few shown (`report_lines`)."""
    if not conflicts:
        return []
    lines = [f"  Label conflict: {len(conflicts)} pair(s) of these files hold the same audio "
             "under two labels (the data keeps it under both; fix the label of one copy, or "
             "remove it):"]
    lines += [f"    {sources.get(c.first, c.first)} (label {c.labels[0]!r}) = "
              f"{sources.get(c.second, c.second)} (label {c.labels[1]!r}): similarity "
              f"{c.similarity:.3f}" for c in conflicts[:examples]]
    if len(conflicts) > examples:
        lines.append(f"    ... and {len(conflicts) - examples} more")
    return lines


def groups_text(groups: Sequence[Sequence[str]], examples: int = EXAMPLES) -> str:
    """`{a, b, c}; {d, e}`: the first `examples` groups of items, six items of each at most,
    and how many more."""
    shown = ["{" + ", ".join(g[:6]) + (", ..." if len(g) > 6 else "") + "}"
             for g in groups[:examples]]
    return "; ".join(shown) + (f"; ... ({len(groups) - examples} more groups)"
                               if len(groups) > examples else "")


def check_merge(groups: Sequence[Sequence[str]], left: int, *, needed: int, rule: str,
                fix: str) -> None:
    """Refuses a merge (`--merge-duplicates`) that leaves too few items to cross-validate:
    files that hold the same audio chain the items together (a jingle, a silence, one
    recording filed under every speaker), so that merging joins them all.

    Args:
        groups: the groups of items merged (`item_groups`).
        left: the items left after the merge.
        needed: the fewest items the command can use.
        rule: why, e.g. `"cross-validation needs at least 3"`.
        fix: what to do instead (the command's own words).

    Raises:
        DatasetError: naming the items left, the groups merged, the rule and the fix.
    """
    if left >= needed:
        return
    merged = sum(map(len, groups))
    raise DatasetError(
        f"--merge-duplicates left {left} item(s): files that hold the same audio join "
        f"{merged} items into {len(groups)} group(s) ({groups_text(groups)}), each merged into "
        f"one item, and {rule}. Look at the pairs: {fix}.")


def write_pairs_csv(path: str | os.PathLike[str], crossing: Sequence[CrossItemDuplicate],
                    sources: Mapping[str, str]) -> Path:
    """Writes the crossing pairs for review: `first, second, similarity, first_item,
    second_item, first_clip, second_clip` (atomically)."""
    path = Path(path)
    lines: list[list[Any]] = [["first", "second", "similarity", "first_item", "second_item",
                               "first_clip", "second_clip"]]
    lines += [[sources.get(c.first, c.first), sources.get(c.second, c.second),
               f"{c.similarity:.4f}", *c.items, c.first, c.second] for c in crossing]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(lines)
    atomic_write_text(path, text.getvalue())
    return path


def clip_table(meta: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """`(clip -> item, clip -> source)` of a store's original rows."""
    original = meta[~meta["augmented"].astype(bool)] if "augmented" in meta else meta
    first = original.drop_duplicates("clip")
    clips = first["clip"].astype(str)
    return (dict(zip(clips, first["item"].astype(str))),
            dict(zip(clips, first["source"].astype(str) if "source" in first else clips)))
