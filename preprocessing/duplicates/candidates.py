"""The candidate stage of the duplicate check (`preprocessing.duplicates`): which pairs of files
share enough landmarks at one time offset to be worth verifying, found from an inverted
index of landmark hashes, never by a loop over pairs of files, in bounded memory.

1. **Byte copies**: files whose landmarks are exactly the same (the same hashes at the same
   times) are each paired with the first of them and kept out of the index (one reading of
   the landmarks, two 64-bit sums per file), so that a recording copied into hundreds of
   files costs one posting per landmark, and a group of identical files never fills the
   neighbours of a file that holds the same audio otherwise.
2. **The index** holds the hashes held by 2 to `MAX_BUCKET` landmarks with their postings
   (file, time), ordered by hash then file. It is built in parts by hash value: the
   landmarks go to one temporary file per part in one reading, and each part's landmarks
   (`PART_LANDMARKS` at most) are sorted at once.
3. **The counting** takes the files a block at a time: each posting of a file of the block
   and each later posting of its bucket give a key `(file, other file, time offset)`; the
   keys of a block (`BLOCK_KEYS` or so) are sorted and counted, and a pair keeps its most
   landmarks at one offset (give or take a frame) when that reaches `MIN_MATCHES`.
4. **The over-full buckets** (a hash held by more than `MAX_BUCKET` landmarks: a stop word,
   or a recording in 33 files or more, a jingle under every speaker) would cost the square
   of their count: each of their postings is paired with the bucket's first
   `REPRESENTATIVES` only, a cost linear in the bucket, and those keys are counted apart: a
   pair needs `CROWDED_MATCHES` landmarks at one offset (a stop word is weaker evidence
   than a rare hash), and each file keeps its `CROWDED_NEIGHBOURS` best of them.
5. **The neighbours**: each file keeps its `neighbours` best pairs of the index.

Memory is the index (13 bytes per indexed landmark), one part or one block of work arrays
(about 0.5 GB each), the pairs that reach `MIN_MATCHES` (24 bytes each) and 24 bytes per file
(its sums and first copy); the landmarks themselves stay where `Landmarks` reads them (a
spool on disk for a store's build), and the parts on disk (16 bytes per landmark) and the
keys of over-full buckets (`8 * REPRESENTATIVES` bytes per landmark in them) while the index
is built. Time offsets are counted
modulo 2 ** 19 frames (2.3 hours at 16 ms).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from preprocessing.duplicates.spool import ArraySpool

__all__ = ["BLOCK_KEYS", "CROWDED_MATCHES", "CROWDED_NEIGHBOURS", "MAX_BUCKET", "MIN_MATCHES",
           "PART_LANDMARKS", "REPRESENTATIVES", "LandmarkSpool", "Landmarks",
           "indexed_pairs"]

MAX_BUCKET = 32
"""A hash held by more landmarks than this is over-full: it is not indexed, its postings are
paired with its first ones only (`REPRESENTATIVES`)."""
MIN_MATCHES = 2
"""Landmarks two files must share at one time offset (give or take a frame)."""
PART_LANDMARKS = 1 << 23
"""Landmarks sorted at once while the index is built (about 0.5 GB of work arrays)."""
BLOCK_KEYS = 1 << 23
"""Shared-landmark keys counted at once (about 0.3 GB of work arrays)."""
REPRESENTATIVES = 3
"""The postings of an over-full bucket (a hash held by more than `MAX_BUCKET` landmarks)
that every other posting of it is paired with: its first ones, in file order. A recording
copied into 33 files or more (a jingle under every speaker) makes every one of its hashes
over-full; the lowest of its copies is among the first of nearly each bucket, so each copy
is paired with it at one offset, at a cost linear in the bucket, never its square."""

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection of 64 bits
_FILE_BITS, _TIME_BITS = 22, 20         # a key: block file, other file, offset + 2 ** 19
_CYCLE = 1 << (_TIME_BITS - 1)          # times are kept modulo this many frames
_READ = 1 << 22                         # landmarks read at once
CROWDED_MATCHES = 4
"""Landmarks of over-full buckets a pair must share at one offset. Measured on the 10,000
files of `benchmarks/duplicates.py --scale`: pairs through stop words share 2 (median) to 27
(the most), and 2 or 3 matches added 24 % to the pairs verified, 4 matches 3 %; a copy in a
group of 300 (codecs, trims, noise 20 dB) shares 4 or more with one of the group."""
CROWDED_NEIGHBOURS = 2
"""The pairs of over-full buckets each file keeps (its best): one was too few to join
copies of four kinds into one group of 300, two joined them."""
_RANGES = 128                           # ranges of files the keys are spread over
_FULL_RANGES = 16                       # the same for the keys of over-full buckets

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


def _landmark_sums(hashes: np.ndarray, times: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """`np.ndarray [shape=(files, 2)]`: two 64-bit sums over each file's landmarks of a mix
    of `(hash, time)` (the same landmarks give the same sums, in any order); `sizes` are
    the files' landmarks, in order."""
    x = (hashes.astype(np.uint64) << np.uint64(21)) ^ times.astype(np.uint64)
    out = np.zeros((len(sizes), 2), np.uint64)
    starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    held = sizes > 0
    for k, odd in enumerate((_MIX, np.uint64(0xC2B2AE3D27D4EB4F))):
        mixed = x * odd
        mixed ^= mixed >> np.uint64(29)
        mixed *= odd
        if len(mixed):
            out[held, k] = np.add.reduceat(mixed, starts[held])
    return out


def _originals(table: Landmarks) -> np.ndarray:
    """For each file, the first file whose landmarks are exactly its own (the same hashes
    at the same times: a copy of its bytes, or with another gain), itself when no earlier
    file has them; a file without landmarks is its own."""
    keys = np.zeros((len(table), 2), np.uint64)
    for lo, hi in table.ranges(_READ):
        hashes, times = table.read(lo, hi)[:2]
        keys[lo:hi] = _landmark_sums(hashes, times, table.sizes[lo:hi])
    files = np.arange(len(table))
    order = np.lexsort((files, keys[:, 1], keys[:, 0], table.sizes))
    keys, sizes = keys[order], table.sizes[order]
    new = np.r_[True, (sizes[1:] != sizes[:-1]) | np.any(keys[1:] != keys[:-1], axis=1)]
    new |= sizes == 0
    first = order[np.maximum.accumulate(np.where(new, np.arange(len(order)), 0))]
    out = np.empty(len(table), np.int64)
    out[order] = first
    return out


def _records(table: Landmarks, kept: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The hash and value (`file << 20 | time modulo 2 ** 19`) of every landmark of the
    files `kept` (a mask), in file order, a range of files at a time."""
    for lo, hi in table.ranges(_READ):
        hashes, times, owner = table.read(lo, hi)
        keep = kept[owner]
        yield hashes[keep], (owner[keep] << _TIME_BITS) | (times[keep].astype(np.int64)
                                                           % _CYCLE)


def _route(spools: Sequence[ArraySpool], route: np.ndarray, rows: np.ndarray) -> None:
    """Appends each row to the spool its `route` names (`0` to `len(spools) - 1`)."""
    route = route.astype(np.uint8 if len(spools) <= 256 else np.uint16)  # a radix sort
    order = np.argsort(route, kind="stable")
    bounds = np.searchsorted(route[order], np.arange(len(spools) + 1))
    rows = rows[order]
    for k in np.flatnonzero(np.diff(bounds)).tolist():
        spools[k].append(rows[bounds[k]:bounds[k + 1]])


def _part_records(table: Landmarks, parts: int, stack: contextlib.ExitStack,
                  kept: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The records (`_records`) of each part in turn, in file order; with several parts,
    through one temporary file per part written in one reading of the landmarks."""
    if parts == 1:
        yield tuple(np.concatenate(a) for a in zip(*_records(table, kept)))  # type: ignore[misc]
        return
    spools = [stack.enter_context(ArraySpool(np.int64, table.folder)) for _ in range(parts)]
    for hashes, value in _records(table, kept):
        _route(spools, _part(_mixed(hashes), parts), np.stack([hashes, value], axis=1))
    for spool in spools:
        rows = spool.read().reshape(-1, 2)
        spool.close()  # its disk space goes
        yield rows[:, 0].copy(), rows[:, 1].copy()


def _postings(hashes: np.ndarray, value: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The values of the landmarks of the hashes held 2 to `MAX_BUCKET` times, ordered by
    hash then file, and the number of postings after each in its bucket; then the values
    of the landmarks of the hashes held more often (over-full buckets), ordered so, and the
    position of each in its bucket."""
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
    full = np.repeat(sizes > MAX_BUCKET, sizes)
    position = (np.arange(len(full)) - np.repeat(starts, sizes))[full]
    return value[order[kept]], later, value[order[full]], position


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
        base = _base(value[start:stop])
        other = np.arange(int(count.sum()))
        other += np.repeat(np.arange(start + 1, stop + 1) - np.cumsum(count) + count, count)
        keys = value[other].view(np.uint64)
        del other
        keys += np.repeat(base, count).view(np.uint64)
        yield keys
        start = stop


def _base(first: np.ndarray) -> np.ndarray:
    """What a posting adds to the value of a later one to make their key (`_keys`)."""
    return ((first >> _TIME_BITS) << (_FILE_BITS + _TIME_BITS)) - (first & (_CYCLE - 1)) \
        + _CYCLE


def _full_keys(value: np.ndarray, position: np.ndarray) -> Iterator[np.ndarray]:
    """The keys (as `_keys`) of every posting of an over-full bucket with each of the
    bucket's first `REPRESENTATIVES` postings before it, `BLOCK_KEYS` or so at a time: a
    bucket of `n` postings gives about `REPRESENTATIVES * n` keys, never `n ** 2`."""
    for r in range(REPRESENTATIVES):
        later = np.flatnonzero(position > r)
        for lo in range(0, len(later), BLOCK_KEYS):
            chunk = later[lo:lo + BLOCK_KEYS]
            keys = value[chunk].view(np.uint64)
            keys += _base(value[chunk - position[chunk] + r]).view(np.uint64)
            yield keys


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


def indexed_pairs(table: Landmarks, neighbours: int) -> np.ndarray:
    """The pairs worth verifying: files sharing at least `MIN_MATCHES` landmarks at one
    time offset (give or take a frame); each file's `neighbours` best, among the pairs of
    the buckets of 2 to `MAX_BUCKET` landmarks and, apart, among those of the over-full
    buckets (each landmark with its bucket's first `REPRESENTATIVES`).

    Args:
        table: the files' landmarks.
        neighbours: pairs kept per file (those with the most shared landmarks).

    Returns:
        `np.ndarray [shape=(pairs, 2)]` of file indices, `first < second`, sorted.

    Raises:
        ValueError: for more files than a key can name (`2 ** 22`).
    """
    if len(table) > 1 << _FILE_BITS:
        raise ValueError(f"the duplicate check takes at most {1 << _FILE_BITS} files at once, "
                         f"not {len(table)}: check the files in parts.")
    if table.total == 0:
        return np.zeros((0, 2), np.int64)
    original = _originals(table)
    copies = np.flatnonzero(original != np.arange(len(table)))
    kept = original == np.arange(len(table))
    parts = -(-int(table.sizes[kept].sum()) // PART_LANDMARKS)
    with contextlib.ExitStack() as stack:
        shared = _Counted(table, _RANGES, neighbours, stack)
        crowded = _Counted(table, _FULL_RANGES, min(neighbours, CROWDED_NEIGHBOURS), stack,
                           least=CROWDED_MATCHES)
        for hashes, value in _part_records(table, max(parts, 1), stack, kept):
            value, later, full, position = _postings(hashes, value)
            del hashes
            for keys in _keys(value, later):
                shared.route(keys)
            for keys in _full_keys(full, position):
                crowded.route(keys)
        pairs = np.concatenate([shared.pairs(), crowded.pairs(),
                                np.stack([original[copies], copies], axis=1)])
    return np.unique(pairs, axis=0) if len(pairs) else pairs


class _Counted:
    """Keys routed to ranges of files (as many landmarks each) in files on disk as they
    come, then counted a few ranges at a time into each file's best pairs (`_Best`).

    Args:
        table: the files' landmarks.
        ranges: the ranges of files (one file at least each).
        neighbours: pairs kept per file.
        stack: closes the files.
        least: the landmarks a pair must share at one offset (`MIN_MATCHES` at least).
            Defaults to `MIN_MATCHES`.
    """

    def __init__(self, table: Landmarks, ranges: int, neighbours: int,
                 stack: contextlib.ExitStack, least: int = MIN_MATCHES) -> None:
        self._least = least
        ranges = min(ranges, len(table))
        bounds = np.searchsorted(table.offsets,
                                 np.linspace(0, table.total, ranges + 1)[1:-1])
        self._range_of = np.searchsorted(bounds, np.arange(len(table)),
                                         "right").astype(np.uint16)
        self._spools = [stack.enter_context(ArraySpool(np.uint64, table.folder))
                        for _ in range(ranges)]
        self._best = _Best(neighbours, len(table))

    def route(self, keys: np.ndarray) -> None:
        """Puts keys (`_keys`) with the range of their first file."""
        _route(self._spools, self._range_of[keys >> np.uint64(_FILE_BITS + _TIME_BITS)], keys)

    def pairs(self) -> np.ndarray:
        """The best pairs of every file (`_Best.pairs`), its keys counted."""
        for group in _groups([len(spool) for spool in self._spools]):
            keys = np.concatenate([self._spools[k].read() for k in group])
            a, b, counts = _pair_counts(keys)
            if self._least > MIN_MATCHES:
                keep = counts >= self._least
                a, b, counts = a[keep], b[keep], counts[keep]
            self._best.add(a, b, counts)
        return self._best.pairs()


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
