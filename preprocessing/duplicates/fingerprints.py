"""Files that hold the same audio, found by content: exact copies, other codecs and
bit depths, other sample rates, trims of up to a third, gain changes, noise added at 20 dB
SNR or more.

Two stages, as audio fingerprinting systems work (Wang's Shazam landmarks, Ellis's
audfprint), with a waveform check at the end:

1. **Candidates** from an inverted index of spectral landmarks: each file's spectral peaks
   (8 kHz, 64 ms frames every 16 ms) grouped in threes into hashes `(frequency, and the
   frequency and time steps to two later peaks)`; two files are candidates when they share hashes at one consistent time offset.
   The index is a sort of all hashes, never a loop over all pairs: its cost grows with the
   number of landmarks, and each file keeps its `neighbours` best candidates.
2. **Verification** of each candidate pair on the waveforms (8 kHz, mean removed): the
   normalised cross-correlation at the best lag, over the stretch the two share, refined
   to a fraction of a sample. A copy keeps its waveform up to a gain and a delay, so its
   residual is the distortion the transformation added; two takes of one sentence by one
   speaker do not share a waveform. `similarity >= threshold` (default 0.95: the best
   scaled copy of one leaves a residual at least 9.7 dB below the other,
   `similarity_db`) is a duplicate; 20 dB SNR of added noise alone is 0.995.

Measured on FSDD and RAVDESS by `benchmarks/duplicates.py` (docs/results.md, "The content
check"); the method and its limits are in docs/preprocessing.md.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future

import librosa
import numpy as np
import scipy.fft
import scipy.ndimage

from preprocessing.duplicates.candidates import MIN_MATCHES, Landmarks, indexed_pairs
from preprocessing.parallel import fork_is_safe, process_pool

__all__ = ["METHOD", "MIN_MATCHES", "NEIGHBOURS", "POOL_PAIRS", "POOL_PAIRS_FRESH", "RATE",
           "TASK_PAIRS", "THRESHOLD", "DuplicatePair", "Fingerprint", "Landmarks",
           "candidate_pairs", "compact", "find_duplicates", "fingerprint", "landmarks_of",
           "similarities", "similarity", "similarity_db", "verified_pairs"]

RATE = 8000
"""Sample rate of the check (Hz): every store rate reaches it, and telephone-band copies keep
everything it sees."""
THRESHOLD = 0.95
"""Waveform similarity at or above which two files are one recording."""
NEIGHBOURS = 5
"""Candidates kept per file (the best by shared landmarks): at 100,000 files, 10 found no
planted copy that 5 missed, and verified twice the pairs."""
METHOD = "landmarks + waveform correlation"
POOL_PAIRS = 256
"""Candidate pairs below which the verification runs in this process whatever the worker
count: about 0.3 s of work, which forked workers would not shorten."""
POOL_PAIRS_FRESH = 8192
"""The same when the workers cannot be forked (a deep-learning framework is loaded:
`preprocessing.parallel.fork_is_safe`) and start fresh, each importing numpy, scipy and
librosa (3 to 11 s for two, measured on 2 busy cores): about 10 s of work."""
TASK_PAIRS = 64
"""Candidate pairs verified by one task of the workers, at most (their waveforms go with
the task: a few MB)."""

_N_FFT, _HOP = 512, 128          # 64 ms frames every 16 ms at RATE
_BINS = slice(4, 241)            # 62.5 Hz to 3.75 kHz
_PEAKS_PER_FRAME = 4
_PEAK_AREA = (5, 3)              # a peak is the largest of 5 bins x 3 frames
_FLOOR_DB = 50.0                 # peaks within 50 dB of the file's loudest bin
_FAN, _AHEAD = 5, 16             # each peak with two of its first 5 partners in 16 peaks
_DT_MAX, _DF_MAX = 24, 48        # frames (384 ms), bins (750 Hz)
_Q_F, _Q_T = 1, 2                # hash resolution: 1 bin (15.6 Hz), 2 frames (32 ms)
_SHARED_ENERGY = 0.9             # the lag must cover 90 % of the shorter file's energy
_REFINE = 0.5                    # a half-sample shift keeps at least this of a copy


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """What the check keeps of one file.

    Attributes:
        wave: `np.ndarray [shape=(n,)]`, float32 at `RATE`, mean removed.
        hashes: `np.ndarray [shape=(m,)]`, int64 landmark hashes.
        times: `np.ndarray [shape=(m,)]`, int32 frame of each landmark.
    """

    wave: np.ndarray
    hashes: np.ndarray
    times: np.ndarray


@dataclasses.dataclass(frozen=True)
class DuplicatePair:
    """Two files found to hold the same audio (indices into the list checked)."""

    first: int
    second: int
    similarity: float


def fingerprint(y: np.ndarray, sample_rate: int) -> Fingerprint:
    """The content print of a mono signal.

    Args:
        y: `np.ndarray [shape=(n,)]`, the decoded audio.
        sample_rate: its rate (Hz).

    Returns:
        Its `Fingerprint` (empty landmarks for a signal too short or silent).
    """
    y = np.asarray(y, np.float32)
    if sample_rate != RATE and len(y):
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=RATE, res_type="soxr_hq")
    wave = (y - y.mean()).astype(np.float32) if len(y) else y
    hashes, times = _landmarks(*_peaks(wave))
    return Fingerprint(wave, hashes, times)


def compact(content: Fingerprint) -> Fingerprint:
    """The print with its waveform as 16-bit integers scaled to its peak (half the memory;
    the similarity ignores gain)."""
    peak = float(np.max(np.abs(content.wave))) if len(content.wave) else 0.0
    if peak == 0.0 or content.wave.dtype == np.int16:
        return dataclasses.replace(content, wave=content.wave.astype(np.int16))
    wave = np.round(content.wave * (32767 / peak)).astype(np.int16)
    return dataclasses.replace(content, wave=wave)


def _peaks(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames and bins of the spectral peaks: local maxima of the log magnitude within
    `_FLOOR_DB` of the loudest bin, the `_PEAKS_PER_FRAME` largest per frame."""
    if len(wave) < _N_FFT // 2 or not np.any(wave):
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    level = 20 * np.log10(np.abs(librosa.stft(wave, n_fft=_N_FFT, hop_length=_HOP))[_BINS]
                          + 1e-9)
    top = scipy.ndimage.maximum_filter(level, size=_PEAK_AREA, mode="constant", cval=-np.inf)
    f, t = np.nonzero((level == top) & (level > level.max() - _FLOOR_DB))
    order = np.lexsort((-level[f, t], t))
    f, t = f[order], t[order]
    rank = np.arange(len(t)) - np.searchsorted(t, t)
    keep = rank < _PEAKS_PER_FRAME
    return t[keep].astype(np.int32), f[keep].astype(np.int32)


def _landmarks(t: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of each peak with two of its next `_FAN` peaks: `(f1, f2 - f1, t2 - t1, f3 -
    f1, t3 - t1)` in 34 bits, so that hash buckets stay small in 100,000 files."""
    n = len(t)
    if n < 3:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    j = np.arange(n)[:, None] + np.arange(1, _AHEAD + 1)[None, :]
    inside = j < n
    j = np.minimum(j, n - 1)
    dt, df = t[j] - t[:, None], f[j] - f[:, None]
    valid = inside & (dt > 0) & (dt <= _DT_MAX) & (np.abs(df) <= _DF_MAX)
    valid &= np.cumsum(valid, axis=1) <= _FAN
    # the k-th valid partner of each peak, k < _FAN (-1: none)
    slot = np.where(valid, np.cumsum(valid, axis=1) - 1, _FAN)
    partner = np.full((n, _FAN + 1), -1)
    rows = np.repeat(np.arange(n), _AHEAD)
    partner[rows, slot.ravel()] = np.where(valid, np.arange(_AHEAD)[None, :], -1).ravel()
    partner = partner[:, :_FAN]
    first, second = np.triu_indices(_FAN, 1)
    p, q = partner[:, first], partner[:, second]
    ok = (p >= 0) & (q >= 0)
    i, k = np.nonzero(ok)
    a, b = p[i, k], q[i, k]
    # time steps halved (a trim that moves the frame grid by part of a hop keeps most
    # hashes); frequencies whole: halved, the landmarks of FSDD and RAVDESS fell in hash
    # buckets 3.3 times larger, and at 100,000 files three quarters were stop words
    f1 = f[i].astype(np.int64) // _Q_F
    d1, d2 = (df[i, a] + 64) // _Q_F, (df[i, b] + 64) // _Q_F
    t1, t2 = dt[i, a] // _Q_T, dt[i, b] // _Q_T
    hashes = (f1 << 26) | (d1.astype(np.int64) << 19) | (t1.astype(np.int64) << 14) \
        | (d2.astype(np.int64) << 5) | t2
    return hashes, t[i].astype(np.int32)


def landmarks_of(prints: Sequence[Fingerprint]) -> Landmarks:
    """The landmarks of prints held in memory, for `candidate_pairs`."""
    return Landmarks.from_arrays([p.hashes for p in prints], [p.times for p in prints])


def candidate_pairs(prints: Sequence[Fingerprint] | Landmarks, neighbours: int = NEIGHBOURS
                    ) -> np.ndarray:
    """The pairs worth verifying: files sharing at least `MIN_MATCHES` landmarks at one
    time offset (give or take a frame); each file's `neighbours` best
    (`preprocessing.duplicates.candidates`).

    Args:
        prints: one `Fingerprint` per file, or their `Landmarks`.
        neighbours: candidates kept per file. Defaults to `NEIGHBOURS`.

    Returns:
        `np.ndarray [shape=(pairs, 2)]` of file indices, `first < second`, sorted.
    """
    table = prints if isinstance(prints, Landmarks) else landmarks_of(prints)
    return indexed_pairs(table, neighbours)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How much of one waveform the other explains: the normalised cross-correlation at the
    best lag (polarity ignored), over the stretch they share, which must hold
    `_SHARED_ENERGY` of the shorter one's energy; refined between samples.

    Args:
        a, b: `np.ndarray [shape=(n,)]`, waveforms at one rate, mean removed.

    Returns:
        A value in [0, 1]: 1 for a copy up to gain and delay; `1 / sqrt(1 + 10 ** (-snr /
        10))` for a copy with noise at `snr` dB.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if len(a) < len(b):
        a, b = b, a
    if len(b) == 0 or not np.any(b) or not np.any(a):
        return 0.0
    ca = np.r_[0.0, np.cumsum(np.square(a, dtype=np.float64))]
    cb = np.r_[0.0, np.cumsum(np.square(b, dtype=np.float64))]
    lags = _shared_lags(cb, len(a))
    # a circular correlation this long leaves the lags that may share undisturbed
    n = scipy.fft.next_fast_len(max(len(a) - lags[0], lags[-1] + len(b)), real=True)
    cross = scipy.fft.rfft(a, n) * np.conj(scipy.fft.rfft(b, n))
    c = scipy.fft.irfft(cross, n)[lags % n]
    lo, hi = np.clip(lags, 0, len(a)), np.clip(lags + len(b), 0, len(a))
    energy_a = ca[hi] - ca[lo]
    energy_b = cb[hi - lags] - cb[lo - lags]
    shared = energy_b >= _SHARED_ENERGY * cb[-1]
    denominator = np.sqrt(energy_a * energy_b)
    ok = shared & (denominator > 0)
    if not np.any(ok):
        return 0.0
    value = np.where(ok, np.abs(c) / np.where(ok, denominator, 1.0), 0.0)
    best = int(np.argmax(value))
    top = float(value[best])
    if _REFINE <= top < 0.999:  # a copy shifted by a fraction of a sample: between samples
        top = max(top, _between_samples(cross, n, int(lags[best])) / float(denominator[best]))
    return min(top, 1.0)


def _between_samples(cross: np.ndarray, n: int, lag: int) -> float:
    """The largest absolute circular correlation at the 9 lags from `lag - 0.5` to `lag +
    0.5` in eighths of a sample, from its spectrum `cross` (`rfft` of length `n`): the
    inverse transform at those lags, each lag's phase turns one step from the last's."""
    k = np.arange(len(cross))
    weight = np.full(len(cross), 2.0 / n)
    weight[0] = 1.0 / n
    if n % 2 == 0:
        weight[-1] = 1.0 / n  # the Nyquist bin, counted once
    turned = cross * weight * np.exp(2j * np.pi * (lag - 0.5) / n * k)
    step = np.exp(2j * np.pi / (8 * n) * k)
    best = 0.0
    for _ in range(9):
        best = max(best, abs(float(turned.real.sum())))
        turned *= step
    return best


def _shared_lags(cb: np.ndarray, length: int) -> np.ndarray:
    """The lags (of the shorter waveform against the longer, of `length` samples) at which
    the stretch they share may hold `_SHARED_ENERGY` of the shorter one's energy (`cb`, its
    cumulative energy): it may lose the rest at its start or at its end, not both."""
    drop = (1 - _SHARED_ENERGY) * cb[-1]
    start = int(np.searchsorted(cb, drop, "right"))       # samples it may lose at its start
    end = int(np.searchsorted(cb, cb[-1] - drop, "left"))  # where its end may be cut
    first = -min(start, len(cb) - 2)
    last = max(length - end, first) + 1
    return np.arange(first - 1, last + 1)  # a sample to spare each side: `shared` decides


def similarity_db(value: float) -> float:
    """The similarity as the level of the residual below the signal (dB): 9.7 dB at the
    default threshold of 0.95, 20 dB for noise at 20 dB SNR."""
    value = min(max(value, 1e-12), 1 - 1e-12)
    return float(10 * np.log10(value ** 2 / (1 - value ** 2)))


def find_duplicates(prints: Sequence[Fingerprint], *, threshold: float = THRESHOLD,
                    neighbours: int = NEIGHBOURS, workers: int = 1) -> list[DuplicatePair]:
    """The pairs of files that hold the same audio.

    Args:
        prints: one `Fingerprint` per file.
        threshold: the similarity at or above which a candidate pair is a duplicate.
            Defaults to `THRESHOLD`.
        neighbours: candidates kept per file. Defaults to `NEIGHBOURS`.
        workers: processes verifying the candidates (`verified_pairs`). Defaults to `1`.

    Returns:
        The duplicate pairs, `first < second`, in order.
    """
    return verified_pairs(candidate_pairs(prints, neighbours), lambda i: prints[i].wave,
                          threshold=threshold, workers=workers)


def verified_pairs(pairs: np.ndarray, wave: Callable[[int], np.ndarray], *,
                   threshold: float = THRESHOLD, workers: int = 1) -> list[DuplicatePair]:
    """The candidate pairs whose waveforms are one recording.

    Args:
        pairs: `np.ndarray [shape=(pairs, 2)]`, file indices (`candidate_pairs`).
        wave: the waveform of file `i` (`Fingerprint.wave`).
        threshold: see `find_duplicates`.
        workers: processes computing the similarities (`similarities`). Defaults to `1`.

    Returns:
        The pairs at or above `threshold`, in the order given (the same whatever `workers`).
    """
    values = similarities(pairs, wave, workers=workers)
    return [DuplicatePair(int(i), int(j), round(float(value), 4))
            for (i, j), value in zip(pairs, values) if value >= threshold]


def similarities(pairs: np.ndarray, wave: Callable[[int], np.ndarray], *, workers: int = 1
                 ) -> np.ndarray:
    """The `similarity` of each pair of waveforms, in `workers` processes
    (`preprocessing.parallel.process_pool`) when there are `POOL_PAIRS` pairs or more
    (`POOL_PAIRS_FRESH` when the workers cannot be forked).

    The pairs go to the workers `TASK_PAIRS` at a time, each task with the waveforms it
    needs (read here with `wave`), and at most two tasks per worker are out at once: the
    memory is a few tasks' waveforms, never all of them. Each value is computed by the same
    code on the same samples in whichever process: the values are those of `workers=1`,
    bit for bit.

    Args:
        pairs: `np.ndarray [shape=(pairs, 2)]`, file indices.
        wave: the waveform of file `i`.
        workers: processes. Defaults to `1` (this one).

    Returns:
        `np.ndarray [shape=(pairs,)]`, float64.
    """
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if workers <= 1 or len(pairs) < (POOL_PAIRS if fork_is_safe() else POOL_PAIRS_FRESH):
        return np.array([similarity(wave(int(i)), wave(int(j))) for i, j in pairs], np.float64)
    size = min(TASK_PAIRS, -(-len(pairs) // (4 * workers)))
    pool = process_pool(workers)
    try:
        return np.concatenate(list(_bounded(
            pool.submit, _task_similarities,
            (_task(pairs[k:k + size], wave) for k in range(0, len(pairs), size)),
            2 * workers)))
    finally:
        pool.shutdown(cancel_futures=True)


def _task(pairs: np.ndarray, wave: Callable[[int], np.ndarray]
          ) -> tuple[list[np.ndarray], np.ndarray]:
    """The waveforms a task needs (each once) and its pairs as indices into them."""
    files, local = np.unique(pairs, return_inverse=True)
    return [wave(int(i)) for i in files], local.reshape(-1, 2)


def _task_similarities(waves: Sequence[np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """The similarities of one task's pairs (`pairs` index `waves`): run in the workers."""
    return np.array([similarity(waves[i], waves[j]) for i, j in pairs], np.float64)


def _bounded(submit: Callable[..., Future[np.ndarray]],
             function: Callable[..., np.ndarray], tasks: Iterator[tuple[object, ...]],
             limit: int) -> Iterator[np.ndarray]:
    """The results of `function(*task)` for each task, in order, submitted as earlier ones
    end so that at most `limit` are out at once (`Executor.map` would submit them all, and
    hold all their arguments)."""
    out: collections.deque[Future[np.ndarray]] = collections.deque()
    for task in tasks:
        out.append(submit(function, *task))
        if len(out) >= limit:
            yield out.popleft().result()
    while out:
        yield out.popleft().result()
