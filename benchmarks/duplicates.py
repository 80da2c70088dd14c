"""The content check (`preprocessing.duplicates`) on real recordings with planted copies.

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
`aisfx` (the shipped aisfx encoder's mean embedding, the same way). `--scale N` times the
candidate index on N synthetic files whose landmarks are drawn from the real ones.

    python -m benchmarks.duplicates [--datasets fsdd ravdess] [--methods ...] [--scale 100000]

`chromaprint` needs `pip install pyacoustid` and Debian's `libchromaprint-tools` (not
project dependencies: the check does not use them).

Timings are CPU seconds on whatever machine runs it (2 cores shared with other work when the
figures in docs/results.md were taken: noisy).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks._common import SHARED
from preprocessing import duplicates as dup

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


def load(dataset: str) -> tuple[list[Path], list[str], list[tuple[np.ndarray, int]]]:
    """Files, items (speaker, actor) and audio of a dataset."""
    if dataset == "fsdd":
        files = sorted((SHARED / "fsdd" / "recordings").glob("*.wav"))
        items = [f.stem.split("_")[1] for f in files]
    else:
        files = sorted((SHARED / "ravdess" / "audio").glob("*/*.flac"))
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
        self.score, self.threshold, self.known = score, threshold, {}

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

    wave = dup.content_print(y, sr).wave
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
        copies.append(transform(*audio[i], kind, rng))
        under.append(str(rng.choice([n for n in names if n != items[i]])))
        same_rate = copies[-1][1] == audio[i][1]
        snr.append(snr_db(audio[i][0], copies[-1][0]) if same_rate else float("inf"))
    return chosen, copies, under, np.array(snr)


def run_dataset(dataset: str, methods: Sequence[str], seed: int,
                transforms: Sequence[str] = TRANSFORMS) -> dict:
    files, items, audio = load(dataset)
    group = twins(audio)
    t0 = time.process_time()
    prints = [dup.content_print(y, sr) for y, sr in audio]
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
    copy_prints = [dup.content_print(y, sr) for y, sr in copies]
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
        runs[f"{rate:.0%}"] = {"planted": m, "recall": round(float(hit.mean()), 4),
                               "false": int(false),
                               "s_per_1000": round(1000 * seconds / len(keep), 2)}
        if np.any(snr[:m] < 20):  # copies distorted past 20 dB SNR (8 bits of a quiet file)
            runs[f"{rate:.0%}"].update(
                below_20db=int(np.sum(snr[:m] < 20)),
                recall_20db_or_more=round(float(hit[snr[:m] >= 20].mean()), 4))
    return runs


def scale(n_files: int, seed: int) -> dict:
    """The candidate index on `n_files` synthetic files: each file's landmark count drawn
    from FSDD's and RAVDESS's, each hash field (frequency, the two steps in frequency and in
    time) drawn from that field's own distribution in their landmarks, times uniform."""
    rng = np.random.default_rng(seed)
    real = []
    for dataset in ("fsdd", "ravdess"):
        _, _, audio = load(dataset)
        real += [dup.content_print(y, sr) for y, sr in audio[::25]]
    pool = np.concatenate([p.hashes for p in real])
    fields = [(26, 7), (19, 7), (14, 5), (5, 9), (0, 5)]  # (shift, bits) of `_landmarks`
    counts = rng.choice(np.array([len(p.hashes) for p in real]), n_files)
    hashes = np.zeros(int(counts.sum()), np.int64)
    for shift, bits in fields:
        hashes |= rng.choice((pool >> shift) & ((1 << bits) - 1), len(hashes)) << shift
    ends = np.cumsum(counts)
    prints = [dup.ContentPrint(np.zeros(0, np.int16), hashes[end - m:end],
                               np.sort(rng.integers(0, max(1, m // 8), m)).astype(np.int32))
              for m, end in zip(counts, ends)]
    t0, c0 = time.perf_counter(), time.process_time()
    pairs = dup.candidate_pairs(prints)
    return {"files": n_files, "landmarks": len(hashes), "candidate_pairs": int(len(pairs)),
            "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(time.process_time() - c0, 1),
            "max_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["fsdd", "ravdess"])
    p.add_argument("--methods", nargs="+", default=["landmarks"],
                   choices=["landmarks", "chromaprint", "vectors", "aisfx"])
    p.add_argument("--transforms", nargs="+", default=list(TRANSFORMS), choices=TRANSFORMS)
    p.add_argument("--scale", type=int, default=0, help="files of the synthetic index run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args(argv)
    if not SHARED.is_dir():
        print(f"{SHARED} is absent: nothing to measure.")
        return 0
    report = {d: run_dataset(d, args.methods, args.seed, args.transforms)
              for d in args.datasets}
    if args.scale:
        report["scale"] = scale(args.scale, args.seed)
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
