"""The candidate stage of the content check (`preprocessing.duplicates`): which pairs of files
share enough landmarks at one time offset to be worth verifying, found from an inverted
index of landmark hashes, never by a loop over pairs of files, in bounded memory.

1. **The index** holds the hashes held by 2 to `MAX_BUCKET` landmarks (a hash held by more
   says little and would cost the square of its count: a stop word) with their postings
   (file, time), ordered by hash then file. It is built in parts by hash value: the
   landmarks go to one temporary file per part in one reading, and each part's landmarks
   (`PART_LANDMARKS` at most) are sorted at once.
2. **The counting** takes the files a block at a time: each posting of a file of the block
   and each later posting of its bucket give a key `(file, other file, time offset)`; the
   keys of a block (`BLOCK_KEYS` or so) are sorted and counted, and a pair keeps its most
   landmarks at one offset (give or take a frame) when that reaches `MIN_MATCHES`.
3. **The neighbours**: each file keeps its `neighbours` best pairs.

Memory is the index (13 bytes per indexed landmark), one part or one block of work arrays
(about 0.5 GB each), and the pairs that reach `MIN_MATCHES` (24 bytes each); the landmarks
themselves stay where `Landmarks` reads them (a spool on disk for a store's build), and the
parts on disk (16 bytes per landmark) while the index is built. Time offsets are counted
modulo 2 ** 19 frames (2.3 hours at 16 ms).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from preprocessing.spool import ArraySpool

__all__ = ["BLOCK_KEYS", "MAX_BUCKET", "MIN_MATCHES", "PART_LANDMARKS", "LandmarkSpool",
           "Landmarks", "candidate_pairs"]

MAX_BUCKET = 32
"""A hash held by more landmarks than this is a stop word: it is not indexed."""
MIN_MATCHES = 2
"""Landmarks two files must share at one time offset (give or take a frame)."""
PART_LANDMARKS = 1 << 23
"""Landmarks sorted at once while the index is built (about 0.5 GB of work arrays)."""
BLOCK_KEYS = 1 << 23
"""Shared-landmark keys counted at once (about 0.3 GB of work arrays)."""

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection of 64 bits
_FILE_BITS, _TIME_BITS = 22, 20         # a key: block file, other file, offset + 2 ** 19
_CYCLE = 1 << (_TIME_BITS - 1)          # times are kept modulo this many frames
_READ = 1 << 22                         # landmarks read at once
_RANGES = 128                           # ranges of files the keys are spread over

Reader = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


class Landmarks:
    """The landmarks of many files, read a range of files at a time (from memory, or from
    a file on disk: the store build's spool).

    Args:
        sizes: `np.ndarray [shape=(files,)]`, landmarks of each file.
        read: `read(lo, hi)` returns the hashes (int64) and times (int32) of files `lo` to
            `hi - 1`, concatenated in file order.
        folder: where the check's temporary files go. Defaults to the system's temporary
            folder.
    """

    def __init__(self, sizes: Sequence[int] | np.ndarray, read: Reader,
                 folder: str | os.PathLike[str] | None = None) -> None:
        self.sizes = np.asarray(sizes, np.int64)
        self.offsets = np.r_[0, np.cumsum(self.sizes)]
        self.folder = folder
        self._read = read

    @classmethod
    def from_arrays(cls, hashes: Sequence[np.ndarray], times: Sequence[np.ndarray]
                    ) -> Landmarks:
        """The landmarks of files held in memory (`hashes[i]`, `times[i]` of file `i`)."""
        def read(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            if hi <= lo:
                return np.zeros(0, np.int64), np.zeros(0, np.int32)
            return (np.concatenate(hashes[lo:hi]).astype(np.int64, copy=False),
                    np.concatenate(times[lo:hi]).astype(np.int32, copy=False))

        return cls([len(h) for h in hashes], read)

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def total(self) -> int:
        """Landmarks of all files."""
        return int(self.offsets[-1])

    def read(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hashes, times and file of each landmark of files `lo` to `hi - 1`."""
        hashes, times = self._read(lo, hi)
        owner = np.repeat(np.arange(lo, hi, dtype=np.int64), self.sizes[lo:hi])
        return hashes, times, owner

    def ranges(self, landmarks: int) -> Iterator[tuple[int, int]]:
        """Ranges of files holding about `landmarks` landmarks each (one file at least)."""
        lo = 0
        while lo < len(self):
            hi = int(np.searchsorted(self.offsets, self.offsets[lo] + landmarks, "right")) - 1
            hi = min(max(hi, lo + 1), len(self))
            yield lo, hi
            lo = hi


class LandmarkSpool:
    """Landmarks of many files kept on disk as they come (`ArraySpool`s). Use it as a
    context manager: the files are closed, and so removed, on leaving.

    Args:
        folder: where the temporary files go. Defaults to the system's temporary folder.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = folder
        self._hashes = ArraySpool(np.int64, folder)
        self._times = ArraySpool(np.int32, folder)
        self.sizes: list[int] = []

    def __enter__(self) -> LandmarkSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes (and so removes) the files."""
        self._hashes.close()
        self._times.close()

    def add(self, hashes: np.ndarray, times: np.ndarray) -> None:
        """Appends the landmarks of one file."""
        self._hashes.append(hashes)
        self._times.append(times)
        self.sizes.append(len(hashes))

    def landmarks(self) -> Landmarks:
        """The landmarks added so far, read from the files a range at a time."""
        offsets = np.r_[0, np.cumsum(self.sizes, dtype=np.int64)]

        def read(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            start, stop = int(offsets[lo]), int(offsets[hi])
            return self._hashes.read(start, stop), self._times.read(start, stop)

        return Landmarks(self.sizes, read, self.folder)


def _mixed(hashes: np.ndarray) -> np.ndarray:
    """The hashes spread over 64 bits (Fibonacci hashing), so that parts by value are even."""
    return hashes.astype(np.uint64) * _MIX


def _part(mixed: np.ndarray, parts: int) -> np.ndarray:
    """The part (0 to `parts - 1`) of each mixed hash: `floor(mixed * parts / 2 ** 64)`."""
    return ((mixed >> np.uint64(32)) * np.uint64(parts)) >> np.uint64(32)


def _records(table: Landmarks) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The hash and value (`file << 20 | time modulo 2 ** 19`) of every landmark, in file
    order, a range of files at a time."""
    for lo, hi in table.ranges(_READ):
        hashes, times, owner = table.read(lo, hi)
        yield hashes, (owner << _TIME_BITS) | (times.astype(np.int64) % _CYCLE)


def _route(spools: Sequence[ArraySpool], route: np.ndarray, rows: np.ndarray) -> None:
    """Appends each row to the spool its `route` names (`0` to `len(spools) - 1`)."""
    route = route.astype(np.uint8 if len(spools) <= 256 else np.uint16)  # a radix sort
    order = np.argsort(route, kind="stable")
    bounds = np.searchsorted(route[order], np.arange(len(spools) + 1))
    rows = rows[order]
    for k in np.flatnonzero(np.diff(bounds)).tolist():
        spools[k].append(rows[bounds[k]:bounds[k + 1]])


def _part_records(table: Landmarks, parts: int, stack: contextlib.ExitStack
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The records (`_records`) of each part in turn, in file order; with several parts,
    through one temporary file per part written in one reading of the landmarks."""
    if parts == 1:
        yield tuple(np.concatenate(a) for a in zip(*_records(table)))  # type: ignore[misc]
        return
    spools = [stack.enter_context(ArraySpool(np.int64, table.folder)) for _ in range(parts)]
    for hashes, value in _records(table):
        _route(spools, _part(_mixed(hashes), parts), np.stack([hashes, value], axis=1))
    for spool in spools:
        rows = spool.read().reshape(-1, 2)
        spool.close()  # its disk space goes
        yield rows[:, 0].copy(), rows[:, 1].copy()


def _postings(hashes: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values of the landmarks of the hashes held 2 to `MAX_BUCKET` times, ordered by
    hash then file, and the number of postings after each in its bucket."""
    position = max(1, len(hashes).bit_length())
    if len(hashes) and 0 <= hashes.min() and hashes.max() < 1 << (63 - position):
        # one sort of `hash << bits | position`: by hash, then file (the order read)
        hashes = np.sort((hashes << position) | np.arange(len(hashes)))
        order = hashes & ((1 << position) - 1)
        hashes >>= position
    else:
        order = np.argsort(hashes, kind="stable")
        hashes = hashes[order]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
    sizes = np.diff(np.r_[starts, len(hashes)])
    del hashes
    kept = np.repeat((sizes >= 2) & (sizes <= MAX_BUCKET), sizes)
    later = (np.repeat(starts + sizes, sizes) - np.arange(len(kept)) - 1)[kept]
    return value[order[kept]], later


def _keys(value: np.ndarray, later: np.ndarray) -> Iterator[np.ndarray]:
    """The keys `a << 42 | b << 20 | (time_b - time_a + 2 ** 19)` (each time modulo
    `2 ** 19`) of every posting with each later one of its bucket, `BLOCK_KEYS` or so at
    a time."""
    ends = np.cumsum(later)
    start = 0
    while start < len(later):
        done = ends[start - 1] if start else 0
        stop = min(max(int(np.searchsorted(ends, done + BLOCK_KEYS, "right")), start + 1),
                   len(later))
        count = later[start:stop].astype(np.int64)
        first = value[start:stop]
        base = ((first >> _TIME_BITS) << (_FILE_BITS + _TIME_BITS)) \
            - (first & (_CYCLE - 1)) + _CYCLE
        other = np.arange(int(count.sum()))
        other += np.repeat(np.arange(start + 1, stop + 1) - np.cumsum(count) + count, count)
        keys = value[other].view(np.uint64)
        del other
        keys += np.repeat(base, count).view(np.uint64)
        yield keys
        start = stop


def _pair_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs `(a, b)`, `a < b`, of `keys` (`_keys`, sorted here in place) whose most
    keys at one offset, give or take one, reach `MIN_MATCHES`, and that count."""
    if len(keys) == 0:
        return (np.zeros(0, np.int64),) * 3
    keys.sort()
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    unique, counts = keys[starts], np.diff(np.r_[starts, len(keys)])
    del starts
    total = counts.copy()
    step = unique[1:] == unique[:-1] + 1  # the next offset of one pair is the next key
    total[:-1][step] += counts[1:][step]
    total[1:][step] += counts[:-1][step]
    pairs = (unique >> _TIME_BITS).astype(np.int64)
    group = np.flatnonzero(np.r_[True, pairs[1:] != pairs[:-1]])
    pairs, total = pairs[group], np.maximum.reduceat(total, group)
    a, b = pairs >> _FILE_BITS, pairs & ((1 << _FILE_BITS) - 1)
    keep = (total >= MIN_MATCHES) & (a != b)  # not a file that holds a hash twice
    return a[keep], b[keep], total[keep]


def candidate_pairs(table: Landmarks, neighbours: int) -> np.ndarray:
    """The pairs worth verifying: files sharing at least `MIN_MATCHES` landmarks at one
    time offset (give or take a frame); each file's `neighbours` best.

    Args:
        table: the files' landmarks.
        neighbours: pairs kept per file (those with the most shared landmarks).

    Returns:
        `np.ndarray [shape=(pairs, 2)]` of file indices, `first < second`, sorted.

    Raises:
        ValueError: for more files than a key can name (`2 ** 22`).
    """
    if len(table) > 1 << _FILE_BITS:
        raise ValueError(f"the content check takes at most {1 << _FILE_BITS} files at once, "
                         f"not {len(table)}: check the files in parts.")
    if table.total == 0:
        return np.zeros((0, 2), np.int64)
    parts = -(-table.total // PART_LANDMARKS)
    # the keys go to ranges of files (as many landmarks each), counted a few ranges at a time
    ranges = min(_RANGES, len(table))
    bounds = np.searchsorted(table.offsets, np.linspace(0, table.total, ranges + 1)[1:-1])
    range_of = np.searchsorted(bounds, np.arange(len(table)), "right").astype(np.uint16)
    best = _Best(neighbours, len(table))
    with contextlib.ExitStack() as stack:
        spools = [stack.enter_context(ArraySpool(np.uint64, table.folder))
                  for _ in range(ranges)]
        for hashes, value in _part_records(table, parts, stack):
            value, later = _postings(hashes, value)
            del hashes
            for keys in _keys(value, later):
                _route(spools, range_of[keys >> np.uint64(_FILE_BITS + _TIME_BITS)], keys)
        for group in _groups([len(spool) for spool in spools]):
            keys = np.concatenate([spools[k].read() for k in group])
            best.add(*_pair_counts(keys))
    return best.pairs()


def _groups(sizes: Sequence[int]) -> Iterator[list[int]]:
    """Consecutive ranges holding about `BLOCK_KEYS` keys together (one at least)."""
    group: list[int] = []
    held = 0
    for k, size in enumerate(sizes):
        if group and held + size > BLOCK_KEYS:
            yield group
            group, held = [], 0
        group.append(k)
        held += size
    if group:
        yield group


class _Best:
    """The pairs among the `neighbours` best (most shared landmarks, then lowest files) of
    either of their files, kept as the pairs come: a pair out of both files' best never
    comes back, since a pair's count is final when it comes."""

    def __init__(self, neighbours: int, files: int) -> None:
        self.neighbours = neighbours
        self._prune_at = max(1 << 20, 4 * neighbours * files)
        empty = np.zeros(0, np.int64)
        self._kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(empty,) * 3]
        self._held = 0

    def add(self, a: np.ndarray, b: np.ndarray, counts: np.ndarray) -> None:
        """Takes pairs `(a[i], b[i])` with `counts[i]` landmarks shared."""
        self._kept.append((a, b, counts))
        self._held += len(a)
        if self._held > self._prune_at:
            self._prune()

    def _prune(self) -> None:
        a, b, counts = (np.concatenate(x) for x in zip(*self._kept))
        ends = np.concatenate([a, b])
        index = np.concatenate([np.arange(len(a))] * 2)
        order = np.lexsort((np.concatenate([b, b]), np.concatenate([a, a]),
                            -np.concatenate([counts, counts]), ends))
        ends, index = ends[order], index[order]
        rank = np.arange(len(ends)) - np.searchsorted(ends, ends)
        chosen = np.unique(index[rank < self.neighbours])
        self._kept = [(a[chosen], b[chosen], counts[chosen])]
        self._held = len(chosen)

    def pairs(self) -> np.ndarray:
        """`np.ndarray [shape=(pairs, 2)]` of the pairs kept, sorted."""
        self._prune()
        a, b, _ = self._kept[0]
        order = np.lexsort((b, a))
        return np.stack([a[order], b[order]], axis=1)
