"""The duplicate check (`preprocessing.duplicates`) on real recordings with planted copies.

For FSDD (3,000 spoken digits at 8 kHz; 50 takes of each digit by each speaker) and RAVDESS
(1,440 sentences at 16 kHz; two takes of each sentence by each actor per emotion and
intensity), it copies 1 %, 5 % and 10 % of the files with one transformation at a time,
each copy placed under another item (speaker, actor), and reports per transformation:

- recall: the planted pairs found;
- false pairs: pairs found that are not one recording (the takes are the hard negatives);
- the clean set's pairs (none planted), and the seconds per 1,000 files of each stage.

Methods compared (`--methods`): `landmarks` (the check: landmark candidates, waveform
verification), `chromaprint` (Chromaprint's raw fingerprints through pyacoustid and
libchromaprint, compared by bit error rate at the best alignment, on the same candidates),
`vectors` (a global log-mel vector per file, mean and spread over its loud frames, with
scikit-learn's nearest neighbours: the candidates it ranks in its 10 nearest), and
`aisfx` (the shipped aisfx encoder's mean embedding, the same way).

`--scale N [N ...]` checks N files made from FSDD's and RAVDESS's (`scale_file`: each source
file at up to 23 speeds and pitches, re-gained, with its own noise; one file in 100 a planted
copy of another with one of the transformations), the way a store's build does (prints spooled
to disk, then `FingerprintSpool.check`), and reports its seconds, peak resident memory, the planted
copies' recall and the other pairs found; `--baseline REVISION` also runs that git revision's
`find_duplicates` on the same files, side by side. `--workers W` (0: all cores) runs the check
with its verification in one process and in W, side by side in turns (`--repeat R` times
each): the median seconds of each and their ratio, the CPU seconds of this process and of
the workers, the peak memory of this process and of it and its workers together (summed
PSS, `benchmarks/_tree_memory.py`), and whether every run found the same pairs with the
same similarities.

    python -m benchmarks.duplicates [--datasets fsdd ravdess] [--methods ...]
    python -m benchmarks.duplicates --scale 10000 30000 100000 [--baseline 437371c]
    python -m benchmarks.duplicates --scale 10000 --workers 2 --repeat 3

`chromaprint` needs `pip install pyacoustid` and Debian's `libchromaprint-tools` (not
project dependencies: the check does not use them).

Timings are CPU seconds on whatever machine runs it (2 cores shared with other work when the
figures in docs/results.md were taken: noisy). Where the kernel shares the cores per session
(Linux's `sched_autogroup`), several busy sessions leave this one its part of the cores
however many workers it starts: the `--workers` ratio then says little of a quiet machine.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from benchmarks._common import ROOT, SHARED, datasets_option
from benchmarks._tree_memory import TreeMemory
from preprocessing.duplicates import fingerprints as dup

TRANSFORMS = ("exact", "flac", "ogg", "mp3", "8-bit", "24-bit", "sample rate", "trim a third",
              "gain", "noise 20 dB")
RATES = (0.01, 0.05, 0.10)
CHROMAPRINT_BER = 0.35


def _codec(y: np.ndarray, sr: int, fmt: str, subtype: str | None = None
           ) -> tuple[np.ndarray, int]:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format=fmt, subtype=subtype)
    buffer.seek(0)
    z, rate = sf.read(buffer, dtype="float32")
    return z, int(rate)


def transform(y: np.ndarray, sr: int, kind: str, rng: np.random.Generator
              ) -> tuple[np.ndarray, int]:
    """One copy of `y` made with the transformation `kind`."""
    if kind == "exact":
        return y, sr
    if kind in ("flac", "ogg", "mp3", "8-bit", "24-bit"):
        fmt, subtype = {"flac": ("FLAC", None), "ogg": ("OGG", "VORBIS"),
                        "mp3": ("MP3", "MPEG_LAYER_III"), "8-bit": ("WAV", "PCM_U8"),
                        "24-bit": ("WAV", "PCM_24")}[kind]
        return _codec(y, sr, fmt, subtype)
    if kind == "sample rate":
        import librosa  # noqa: PLC0415  (benchmark only)

        new = int(rng.choice([r for r in (8000, 11025, 22050, 44100) if r != sr]))
        return librosa.resample(y, orig_sr=sr, target_sr=new, res_type="soxr_hq"), new
    if kind == "trim a third":
        cut = len(y) // 3
        start = int(rng.integers(0, cut + 1))
        return y[start:len(y) - (cut - start)], sr
    if kind == "gain":
        peak = float(np.abs(y).max())
        db = rng.uniform(-20, -3) if rng.random() < 0.5 else 20 * np.log10(0.99 / peak)
        return (y * 10 ** (db / 20)).astype(np.float32), sr
    if kind == "noise 20 dB":
        power = float(np.mean(y.astype(np.float64) ** 2))
        noise = rng.standard_normal(len(y)) * np.sqrt(power / 100)
        return (y + noise).astype(np.float32), sr
    raise ValueError(kind)


def load(dataset: str, root: Path = SHARED
         ) -> tuple[list[Path], list[str], list[tuple[np.ndarray, int]]]:
    """Files, items (speaker, actor) and audio of a dataset (under `root`, the
    `--datasets-dir`)."""
    if dataset == "fsdd":
        files = sorted((root / "fsdd" / "recordings").glob("*.wav"))
        items = [f.stem.split("_")[1] for f in files]
    else:
        files = sorted((root / "ravdess" / "audio").glob("*/*.flac"))
        items = [f.parent.name for f in files]
    audio = []
    for f in files:
        y, sr = sf.read(f, dtype="float32")
        audio.append((y if y.ndim == 1 else y.mean(axis=1), int(sr)))
    return files, items, audio


def twins(audio: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """A group id per file: files whose decoded samples are identical share one."""
    seen: dict[bytes, int] = {}
    return np.array([seen.setdefault(y.tobytes() + str(sr).encode(), len(seen))
                     for y, sr in audio])


class Verified:
    """`find_duplicates` with the similarity of each pair kept between runs (the runs at
    1 %, 5 % and 10 % share most candidates)."""

    def __init__(self, score: Callable[[int, int], float], threshold: float) -> None:
        self.score, self.threshold = score, threshold
        self.known: dict[tuple[int, int], float] = {}

    def __call__(self, pairs: np.ndarray) -> list[tuple[int, int]]:
        found = []
        for i, j in map(tuple, pairs):
            if (i, j) not in self.known:
                self.known[(i, j)] = self.score(i, j)
            if self.known[(i, j)] >= self.threshold:
                found.append((i, j))
        return found


def _chromaprint(y: np.ndarray, sr: int) -> np.ndarray:
    import acoustid  # noqa: PLC0415  (optional: the comparison only)
    import chromaprint  # noqa: PLC0415

    pcm = (np.clip(y, -1, 1) * 32767).astype(np.int16).tobytes()
    raw, _ = chromaprint.decode_fingerprint(acoustid.fingerprint(sr, 1, iter([pcm])))
    return np.array(raw, np.uint32)


def chromaprint_score(a: np.ndarray, b: np.ndarray) -> float:
    """1 - bit error rate of two raw Chromaprint fingerprints at the best alignment that
    covers 90 % of the shorter one (0 when either is empty)."""
    if len(a) < len(b):
        a, b = b, a
    if len(b) == 0:
        return 0.0
    need = max(1, int(np.ceil(0.9 * len(b))))
    best = 1.0
    for offset in range(-(len(b) - need), len(a) - need + 1):
        i0, j0 = max(0, offset), max(0, -offset)
        n = min(len(a) - i0, len(b) - j0)
        bits = np.unpackbits((a[i0:i0 + n] ^ b[j0:j0 + n]).view(np.uint8)).mean()
        best = min(best, float(bits))
    return 1.0 - best


def vector(y: np.ndarray, sr: int) -> np.ndarray:
    """The global vector of the `vectors` method: mean and spread of the log-mel bands over
    the frames within 30 dB of the loudest, level removed, unit length."""
    import librosa  # noqa: PLC0415  (benchmark only)

    wave = dup.fingerprint(y, sr).wave
    mel = librosa.feature.melspectrogram(y=wave, sr=dup.RATE, n_fft=256, hop_length=80,
                                         n_mels=32, fmin=60, fmax=3800) + 1e-10
    level = 10 * np.log10(mel)
    loud = level[:, 10 * np.log10(mel.sum(0)) >= 10 * np.log10(mel.sum(0)).max() - 30]
    loud = loud - loud.mean()
    v = np.concatenate([loud.mean(1), loud.std(1)])
    return v / (np.linalg.norm(v) + 1e-12)


def aisfx_vectors(audio: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """The aisfx encoder's states of each file, averaged over its blocks (every file padded
    or cut to the longest file's length in whole blocks, at most 5 s: one network)."""
    import librosa  # noqa: PLC0415  (benchmark only)

    from preprocessing.features import encoders  # noqa: PLC0415  (loads Keras)

    encoder = encoders.BUILT_IN[encoders.AISFX].make()
    rate, block = encoder.sample_rate, encoder.block_length
    waves = [librosa.resample(y, orig_sr=sr, target_sr=rate) if sr != rate else y
             for y, sr in audio]
    length = block * int(np.ceil(min(max(map(len, waves)), 5 * rate) / block))
    out = []
    for z in waves:
        z = np.pad(z[:length], (0, max(0, length - len(z)))).astype(np.float32)
        states = encoder.states(z[None], layers=[0])
        v = states.reshape(-1, states.shape[-1]).mean(axis=0)
        out.append(v / (np.linalg.norm(v) + 1e-12))
    return np.array(out)


def knn_candidates(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415  (benchmark only)

    _, near = NearestNeighbors(n_neighbors=min(k + 1, len(vectors))).fit(vectors).kneighbors()
    i = np.repeat(np.arange(len(vectors)), near.shape[1])
    pairs = np.sort(np.stack([i, near.ravel()], axis=1), axis=1)
    return np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)


def snr_db(y: np.ndarray, z: np.ndarray) -> float:
    """The copy's signal-to-distortion ratio (dB) when it has the original's samples on
    the original's grid (codecs, bit depths, gain, noise), else infinity."""
    if len(y) != len(z):
        return float("inf")
    gain = float(np.dot(z, y) / max(np.dot(y, y), 1e-20))
    error = float(np.sum((z - gain * y) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(gain ** 2 * float(np.sum(y ** 2))
                                                           / error)


def _planted(audio: list, items: list[str], rng: np.random.Generator, kind: str
             ) -> tuple[np.ndarray, list[tuple[np.ndarray, int]], list[str], np.ndarray]:
    """10 % of the files (the 1 % and 5 % runs take the first of them), their copies, the
    item each copy is filed under (another one), and each copy's SNR (`snr_db`)."""
    chosen = rng.choice(len(audio), int(round(RATES[-1] * len(audio))), replace=False)
    names = sorted(set(items))
    copies, under, snr = [], [], []
    for i in chosen:
        y, sr = audio[i]
        copies.append(transform(y, sr, kind, rng))
        under.append(str(rng.choice([n for n in names if n != items[i]])))
        same_rate = copies[-1][1] == audio[i][1]
        snr.append(snr_db(audio[i][0], copies[-1][0]) if same_rate else float("inf"))
    return chosen, copies, under, np.array(snr)


def run_dataset(dataset: str, methods: Sequence[str], seed: int,
                transforms: Sequence[str] = TRANSFORMS, root: Path = SHARED) -> dict:
    files, items, audio = load(dataset, root)
    group = twins(audio)
    t0 = time.process_time()
    prints = [dup.fingerprint(y, sr) for y, sr in audio]
    result: dict = {"files": len(files), "print_s_per_1000": 1000 * (time.process_time() - t0)
                    / len(files), "methods": {}}
    for method in methods:
        result["methods"][method] = _run_method(method, files, audio, prints, group, items,
                                                seed, transforms)
    return result


def _scorer(method: str, audio: list, prints: list) -> tuple[Callable, float]:
    if method == "chromaprint":
        raws = [_chromaprint(y, sr) for y, sr in audio]
        return (lambda i, j: chromaprint_score(raws[i], raws[j])), 1 - CHROMAPRINT_BER
    return (lambda i, j: dup.similarity(prints[i].wave, prints[j].wave)), dup.THRESHOLD


def _candidates(method: str, audio: list, prints: list) -> np.ndarray:
    if method == "vectors":
        return knn_candidates(np.array([vector(y, sr) for y, sr in audio]))
    if method == "aisfx":
        return knn_candidates(aisfx_vectors(audio))
    return dup.candidate_pairs(prints)


def _count(found: list[tuple[int, int]], group: np.ndarray, planted: set) -> tuple[int, int]:
    true = sum((i, j) in planted or group[i] == group[j] for i, j in found)
    return true, len(found) - true


def _run_method(method: str, files: list[Path], audio: list, prints: list,
                group: np.ndarray, items: list[str], seed: int,
                transforms: Sequence[str]) -> dict:
    n = len(audio)
    t0 = time.process_time()
    candidates = _candidates(method, audio, prints)
    verify = Verified(*_scorer(method, audio, prints))
    found = verify(candidates)
    seconds = time.process_time() - t0
    true, false = _count(found, group, set())
    true, false = int(true), int(false)
    names = [f.name for f in files]
    out: dict = {"clean": {"pairs": len(found), "identical": true, "false": false,
                           "s_per_1000": 1000 * seconds / n,
                           "examples": [(names[i], names[j], items[i] != items[j],
                                         round(verify.known[(i, j)], 3))
                                        for i, j in found[:10]]},
                 "planted": {}}
    for kind in transforms:
        rng = np.random.default_rng([seed, TRANSFORMS.index(kind)])
        chosen, copies, _, snr = _planted(audio, items, rng, kind)
        out["planted"][kind] = _planted_runs(method, audio, prints, copies, chosen, group, snr)
        print(f"  {method} {kind}: {out['planted'][kind]}", flush=True)
    return out


def _planted_runs(method: str, audio: list, prints: list, copies: list, chosen: np.ndarray,
                  group: np.ndarray, snr: np.ndarray) -> dict:
    n = len(audio)
    copy_prints = [dup.fingerprint(y, sr) for y, sr in copies]
    all_audio, all_prints = audio + copies, prints + copy_prints
    all_group = np.concatenate([group, group[chosen]])
    verify = Verified(*_scorer(method, all_audio, all_prints))
    runs = {}
    for rate in RATES:
        m = int(round(rate * n))
        keep = np.r_[np.arange(n), n + np.arange(m)]
        sub_audio = [all_audio[k] for k in keep]
        sub_prints = [all_prints[k] for k in keep]
        t0 = time.process_time()
        found = verify(_candidates(method, sub_audio, sub_prints))
        seconds = time.process_time() - t0
        planted = [(int(chosen[k]), n + k) for k in range(m)]
        hit = np.array([p in set(found) for p in planted])
        _, false = _count(found, all_group[keep], set(planted))
        recall = round(float(hit.mean()), 4) if m else None  # a set too small for 1 %
        runs[f"{rate:.0%}"] = {"planted": m, "recall": recall,
                               "false": int(false),
                               "s_per_1000": round(1000 * seconds / len(keep), 2)}
        if np.any(snr[:m] < 20):  # copies distorted past 20 dB SNR (8 bits of a quiet file)
            runs[f"{rate:.0%}"].update(
                below_20db=int(np.sum(snr[:m] < 20)),
                recall_20db_or_more=round(float(hit[snr[:m] >= 20].mean()), 4))
    return runs


SCALE_COPY_EVERY = 100
"""In the `--scale` files, one in this many is a planted copy of an earlier file."""
SCALE_KINDS = tuple(k for k in TRANSFORMS if k != "8-bit")
"""The transformations of the planted copies (8-bit copies of quiet files fall below 20 dB
SNR: see docs/results.md)."""
SCALE_BASELINE_FILES = 10_000
"""The largest `--scale` run `--baseline` joins: the check as first merged held every key in
memory (6.3 GB at 10,000 files, 9.4 GB at 20,000)."""
SCALE_STEP = 1.02
"""Speed (and pitch) step between two takes of one source file in the `--scale` files."""


def scale_sources(root: Path = SHARED) -> list[np.ndarray]:
    """The waveforms (at the check's rate) of FSDD's and RAVDESS's files under `root`, the
    sources of the `--scale` files."""
    import librosa  # noqa: PLC0415  (benchmark only)

    waves = []
    for dataset in ("fsdd", "ravdess"):
        for y, sr in load(dataset, root)[2]:
            waves.append(y if sr == dup.RATE else librosa.resample(
                y, orig_sr=sr, target_sr=dup.RATE, res_type="soxr_hq"))
    return waves


def scale_take(sources: Sequence[np.ndarray], k: int, seed: int) -> np.ndarray:
    """File `k` of the `--scale` set when it is not a copy: source `k % len(sources)` played
    `SCALE_STEP ** c` times faster (`c` from -11 to 11: each use of a source at another
    speed and pitch, so no two files hold one recording), re-gained, with its own noise at
    35 dB SNR. Takes of one source share many landmarks: they are the hard negatives."""
    import soxr  # noqa: PLC0415  (benchmark only; librosa's resampler)

    rng = np.random.default_rng([seed, k])
    y = sources[k % len(sources)].astype(np.float64)
    factor = SCALE_STEP ** ((k // len(sources)) % 23 - 11)
    if factor != 1.0:
        y = soxr.resample(y, dup.RATE * factor, dup.RATE)
    y = y * 10 ** (rng.uniform(-12, 0) / 20)
    y = y + rng.standard_normal(len(y)) * np.sqrt(np.mean(y ** 2) / 10 ** 3.5)
    return y.astype(np.float32)


def scale_file(sources: Sequence[np.ndarray], k: int, seed: int
               ) -> tuple[np.ndarray, int, int]:
    """File `k` of the `--scale` set: its audio, rate, and the file it copies (-1: none).
    File `k` with `k % SCALE_COPY_EVERY == SCALE_COPY_EVERY - 1` copies an earlier take with
    one of `SCALE_KINDS` (in turn); the others are takes (`scale_take`)."""
    if k % SCALE_COPY_EVERY != SCALE_COPY_EVERY - 1:
        return scale_take(sources, k, seed), dup.RATE, -1
    rng = np.random.default_rng([seed, k, 1])
    j = int(rng.integers(0, k))
    j -= int(j % SCALE_COPY_EVERY == SCALE_COPY_EVERY - 1)
    kind = SCALE_KINDS[(k // SCALE_COPY_EVERY) % len(SCALE_KINDS)]
    y, sr = transform(scale_take(sources, j, seed), dup.RATE, kind, rng)
    return y, sr, j


def _reset_peak() -> None:
    """Resets this process's peak resident memory (Linux: `VmHWM`)."""
    Path("/proc/self/clear_refs").write_text("5")


def _memory_gb(field: str = "VmHWM") -> float:
    """This process's peak resident memory since `_reset_peak` (`VmHWM`), or its resident
    memory now (`VmRSS`), in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) * 1024 / 1e9, 2)
    return float("nan")


def scale(sizes: Sequence[int], seed: int, baseline: str | None = None, workers: int = 1,
          repeat: int = 1, root: Path = SHARED) -> list[dict]:
    """The check of `n` files for each `n` of `sizes`, as a store's build runs it: the
    prints (`scale_file`) spooled to disk as they come (not timed), then
    `FingerprintSpool.check` (timed: seconds and peak resident memory); with `baseline`, the
    same prints held in memory and checked by `find_duplicates` of that revision's
    fingerprints module (`_baseline_module`, up to `SCALE_BASELINE_FILES` files); with `workers`
    over 1, the check in one process and in `workers` side by side (`side_by_side`)."""
    from preprocessing.duplicates.check import FingerprintSpool  # noqa: PLC0415  (scale only)

    sources = scale_sources(root)
    baseline_module = _baseline_module(baseline) if baseline else None
    out = []
    for n in sizes:
        old = baseline_module if n <= SCALE_BASELINE_FILES else None
        # `content_print` before issue 67 named the revision's `fingerprint`
        old_print = getattr(old, "fingerprint", None) or getattr(old, "content_print", None)
        copies: dict[int, int] = {}
        with FingerprintSpool() as spool:
            held = []
            _reset_peak()
            for k in range(n):
                y, sr, j = scale_file(sources, k, seed)
                spool.add(str(k), dup.fingerprint(y, sr))
                if old is not None:
                    held.append(old.compact(old_print(y, sr)))
                if j >= 0:
                    copies[k] = j
            run: dict = {"files": n, "planted": len(copies)}
            if old is not None:  # first, then its prints go
                run["baseline"] = _timed_check(functools.partial(
                    _as_check, old.find_duplicates, held), copies, reset=False)
                held.clear()
            if workers > 1:
                run.update(side_by_side(spool, copies, workers, repeat))
            else:
                run.update(_timed_check(spool.check, copies))
        print(f"  scale: {run}", flush=True)
        out.append(run)
    return out


def side_by_side(spool: Any, copies: dict[int, int], workers: int, repeat: int) -> dict:
    """The check of a spool's prints with its verification in one process and in `workers`
    (`FingerprintSpool.check(workers=...)`), `repeat` times each, in turns (1, N, N, 1, ...):
    the median seconds of each and their ratio, the candidate stage's seconds (in this
    process either way), the largest peak memory of the processes together, and whether
    every run found the same pairs with the same similarities."""
    t0 = time.perf_counter()
    candidates = len(spool.candidates())
    candidates_s = time.perf_counter() - t0
    runs: dict[int, list[dict]] = {1: [], workers: []}
    for r in range(repeat):
        for w in ((1, workers) if r % 2 == 0 else (workers, 1)):
            runs[w].append(_timed_check(functools.partial(spool.check, workers=w), copies))
            print(f"    workers={w}: {runs[w][-1]}", flush=True)
    summary = {w: {**{k: round(float(np.median([r[k] for r in rs])), 3)
                      for k in ("wall_s", "cpu_s", "cpu_here_s", "cpu_workers_s")},
                   **{k: max(r[k] for r in rs) for k in ("peak_rss_gb", "tree_pss_gb",
                                                          "tree_rss_gb")}}
               for w, rs in runs.items()}
    every = runs[1] + runs[workers]
    return {"candidates": candidates, "candidates_s": round(candidates_s, 1),
            "workers": workers, "repeat": repeat, "one": summary[1], "several": summary[workers],
            "speedup": round(summary[1]["wall_s"] / max(summary[workers]["wall_s"], 1e-3), 2),
            "identical": len({r["digest"] for r in every}) == 1,
            "recall": every[0]["recall"], "other_pairs": every[0]["other_pairs"]}


def _timed_check(check: Callable[[], Any], copies: dict[int, int], reset: bool = True
                 ) -> dict:
    """Seconds (wall; CPU of this process and of the workers it waited for), peak memory
    (of this process, since the prints were made when `reset` is off: the baseline's prints
    are in memory; and of it and its workers together, `TreeMemory`), recall of the planted
    copies, other pairs, and a digest of the pairs and similarities found."""
    before = _memory_gb("VmRSS")
    if reset:
        _reset_peak()
    with TreeMemory() as tree:
        t0, c0, w0 = time.perf_counter(), time.process_time(), _children_cpu()
        result = check()
        wall = time.perf_counter() - t0
        parent, workers = time.process_time() - c0, _children_cpu() - w0
    found = {(int(a), int(b)) for a, b, _ in result.pairs}
    hit = sum((j, k) in found for k, j in copies.items())
    digest = hashlib.sha256(repr([tuple(p) for p in result.pairs]).encode()).hexdigest()
    return {"wall_s": round(wall, 3), "cpu_s": round(parent + workers, 3),
            "cpu_here_s": round(parent, 3), "cpu_workers_s": round(workers, 3),
            "rss_before_gb": before,
            "peak_rss_gb": _memory_gb(), "tree_pss_gb": tree.peak.get("pss_gb"),
            "tree_rss_gb": tree.peak.get("rss_gb"),
            "recall": round(hit / max(1, len(copies)), 4), "other_pairs": len(found) - hit,
            "digest": digest[:16]}


def _children_cpu() -> float:
    """CPU seconds of the processes this one started and waited for (a pool's workers)."""
    times = os.times()
    return times.children_user + times.children_system


def _as_check(find: Callable[[list], Sequence[Any]], prints: list) -> Any:
    """The pairs the baseline's `find(prints)` finds, as a check's (`pairs` of `(first,
    second, similarity)`)."""
    return argparse.Namespace(pairs=[(p.first, p.second, p.similarity) for p in find(prints)])


def _git_show(revision: str, path: str) -> str | None:
    """`path` as it was at `revision` (git), `None` where it did not exist."""
    import subprocess  # noqa: PLC0415  (baseline only)

    shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT,
                           capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def _load(name: str, source: str) -> Any:
    """`source` imported as the module `name` (registered in `sys.modules`: its dataclasses
    and the modules loaded after it look it up)."""
    import importlib.util  # noqa: PLC0415  (baseline only)
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name.rpartition('.')[2]}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def _baseline_module(revision: str) -> Any:
    """The fingerprints module as it was at `revision` (git), with the siblings it imports
    (the spool, the candidate index) of the same revision, each imported under another
    name: `preprocessing/duplicates/` since issue 67, `preprocessing/duplicates.py`,
    `candidates.py` and `spool.py` before."""
    folder = "preprocessing/duplicates/"
    layouts = {"spool": ("spool.py", "preprocessing/spool.py"),
               "candidates": ("candidates.py", "preprocessing/candidates.py"),
               "fingerprints": ("fingerprints.py", "preprocessing/duplicates.py")}
    new = _git_show(revision, folder + "fingerprints.py") is not None
    module = None
    for name, (today, before) in layouts.items():
        source = _git_show(revision, folder + today if new else before)
        if source is None:
            if name == "fingerprints":
                raise SystemExit(f"--baseline {revision}: no duplicate check at that revision")
            continue  # a revision before the spool or the candidate index
        for sibling in layouts:
            for old in (f"preprocessing.duplicates.{sibling} ", f"preprocessing.{sibling} "):
                source = source.replace(f"from {old}", f"from duplicates_baseline_{sibling} ")
        module = _load(f"duplicates_baseline_{name}", source)
    return module


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=["fsdd", "ravdess"],
                   help="the sets run (default: both, none with --scale)")
    p.add_argument("--methods", nargs="+", default=["landmarks"],
                   choices=["landmarks", "chromaprint", "vectors", "aisfx"])
    p.add_argument("--transforms", nargs="+", default=list(TRANSFORMS), choices=TRANSFORMS)
    p.add_argument("--scale", type=int, nargs="+", default=[],
                   help="file counts of the scale runs (e.g. 10000 30000 100000)")
    p.add_argument("--baseline", metavar="REVISION",
                   help="with --scale, also time this git revision's check on the same files")
    p.add_argument("--workers", type=int, default=1,
                   help="with --scale, also check with the verification in this many "
                        "processes, side by side with one (0: all cores)")
    p.add_argument("--repeat", type=int, default=1,
                   help="with --workers, runs of each side (the medians are compared)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the figures as JSON here")
    datasets_option(p)
    args = p.parse_args(argv)
    if not args.datasets_dir.is_dir():
        print(f"{args.datasets_dir} is absent: nothing to measure.")
        return 0
    datasets = args.datasets if args.datasets is not None else \
        ([] if args.scale else ["fsdd", "ravdess"])
    report: dict = {d: run_dataset(d, args.methods, args.seed, args.transforms,
                                   args.datasets_dir) for d in datasets}
    if args.scale:
        report["scale"] = scale(args.scale, args.seed, args.baseline,
                                workers=args.workers or os.cpu_count() or 1,
                                repeat=args.repeat, root=args.datasets_dir)
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
