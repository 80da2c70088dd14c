"""Time-frequency features with librosa, oriented `(time, frequency)`."""

from functools import lru_cache

import numpy as np

FEATURES = ("stft", "mel", "mfcc", "cqt")
COMPRESSIONS = ("db", "log", "power", "none")


def compute_features(y, *, sample_rate, feature="mel", compression="db", power_exponent=0.3,
                     n_fft=512, hop_length=160, n_mels=64, n_mfcc=20, fmin=32.7, fmax=None,
                     n_bins=84, bins_per_octave=12, dtype="float32", **_ignored):
    """Computes one feature matrix of a signal.

    Args:
        y: `np.ndarray [shape=(n,)]`, mono audio.
        sample_rate: rate of `y` in Hz.
        feature: `"stft"` (magnitude), `"mel"`, `"mfcc"` or `"cqt"`. Defaults to `"mel"`.
        compression: of stft/cqt/mel magnitudes: `"db"`, `"log"` (log1p), `"power"`
            (`S ** power_exponent`) or `"none"`; ignored for mfcc. Defaults to `"db"`.
        power_exponent: exponent of power-law compression. Defaults to `0.3`.
        n_fft: FFT size. Defaults to `512`.
        hop_length: hop in samples. Defaults to `160`.
        n_mels: mel bands (mel, mfcc). Defaults to `64`.
        n_mfcc: MFCC coefficients. Defaults to `20`.
        fmin: lowest frequency of mel and cqt bins (Hz). Defaults to `32.7`.
        fmax: highest mel frequency (Hz), `None` for `sample_rate / 2`. Defaults to `None`.
        n_bins: CQT bins. Defaults to `84`.
        bins_per_octave: CQT bins per octave. Defaults to `12`.
        dtype: `"float32"` or `"float16"`. Defaults to `"float32"`.

    Returns:
        `np.ndarray [shape=(t, f)]`, time first and in order.

    Raises:
        ValueError: for an unknown feature or compression.
    """
    import librosa

    if feature not in FEATURES:
        raise ValueError(f"feature={feature!r}: expected one of {', '.join(FEATURES)}.")
    if compression not in COMPRESSIONS:
        raise ValueError(
            f"compression={compression!r}: expected one of {', '.join(COMPRESSIONS)}."
        )
    y = np.asarray(y, dtype=np.float32)
    if feature in ("mel", "mfcc"):
        # librosa.feature.melspectrogram, with the filterbank built once per setting
        # instead of once per segment (a fifth of the time on short segments).
        power_spec = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2
        mel = _mel_basis(sample_rate, n_fft, n_mels, fmin, fmax) @ power_spec
    if feature == "mfcc":
        S = librosa.feature.mfcc(S=librosa.power_to_db(mel), sr=sample_rate, n_mfcc=n_mfcc)
    else:
        if feature == "stft":
            S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
            power = 1.0
        elif feature == "mel":
            S = mel
            power = 2.0
        else:
            S = np.abs(librosa.cqt(y, sr=sample_rate, hop_length=hop_length, fmin=fmin,
                                   n_bins=n_bins, bins_per_octave=bins_per_octave))
            power = 1.0
        if compression == "db":
            to_db = librosa.power_to_db if power == 2.0 else librosa.amplitude_to_db
            S = to_db(S, ref=1.0, top_db=None, amin=1e-10)
        elif compression == "log":
            S = np.log1p(S)
        elif compression == "power":
            S = np.power(S, power_exponent)
    return np.ascontiguousarray(S.T, dtype=dtype)


@lru_cache(maxsize=16)
def _mel_basis(sample_rate, n_fft, n_mels, fmin, fmax):
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def segment(y, *, sample_rate, segment_seconds, hop_seconds, grid=1):
    """Cuts a signal into fixed windows; a short signal is zero-padded to one window.

    When the regular hops miss the tail, one more window covers it (ending within `grid`
    samples of the end), and no window is ever repeated. Starts fall on multiples of
    `grid` (the feature hop), so that the features of overlapping windows are exact slices
    of the features of the whole signal.

    Args:
        y: `np.ndarray [shape=(n,)]`.
        sample_rate: rate of `y` in Hz.
        segment_seconds: window length in seconds.
        hop_seconds: hop between windows in seconds (rounded to a multiple of `grid`).
        grid: starts are multiples of this many samples. Defaults to `1`.

    Returns:
        `(segments, starts)`: `np.ndarray [shape=(k, window)]` and the start of each
        window in seconds.
    """
    starts, window = window_starts(len(y), sample_rate=sample_rate,
                                   segment_seconds=segment_seconds, hop_seconds=hop_seconds,
                                   grid=grid)
    if len(y) <= window:
        padded = np.zeros(window, dtype=y.dtype)
        padded[: len(y)] = y
        return padded[None], np.array([0.0])
    segments = np.stack([y[s: s + window] for s in starts])
    return segments, np.asarray(starts, dtype=float) / sample_rate


def window_starts(n_samples, *, sample_rate, segment_seconds, hop_seconds, grid=1):
    """The start samples of the windows `segment` cuts from a signal of `n_samples`.

    Args:
        n_samples: length of the signal in samples.
        sample_rate: rate in Hz.
        segment_seconds: window length in seconds.
        hop_seconds: hop between windows in seconds (rounded to a multiple of `grid`).
        grid: starts are multiples of this many samples. Defaults to `1`.

    Returns:
        `(starts, window)`: a list of start samples (`[0]` for a signal no longer than one
        window, which is then zero-padded) and the window length in samples.

    Raises:
        ValueError: when `segment_seconds` or `hop_seconds` is not positive.
    """
    if segment_seconds <= 0 or hop_seconds <= 0:
        raise ValueError(
            f"segment_seconds={segment_seconds} and hop_seconds={hop_seconds} must be > 0."
        )
    window = max(1, int(round(segment_seconds * sample_rate)))
    hop = max(1, int(round(hop_seconds * sample_rate)))
    hop = max(grid, int(round(hop / grid)) * grid)
    if n_samples <= window:
        return [0], window
    starts = list(range(0, n_samples - window + 1, hop))
    tail = (n_samples - window) // grid * grid
    if tail > starts[-1]:
        starts.append(tail)
    return starts, window


def bin_frequencies(params):
    """The centre frequency (Hz) of every feature bin, lowest first, or `None` for MFCCs
    (cepstral coefficients have no frequency).

    Args:
        params: the store's feature parameters (`dataset.json` `feature_params`).

    Returns:
        `np.ndarray [shape=(bins,)]` or `None`.
    """
    import librosa

    feature, sr = params["feature"], params["sample_rate"]
    if feature == "stft":
        return librosa.fft_frequencies(sr=sr, n_fft=params["n_fft"])
    if feature == "mel":
        # The centres of librosa.filters.mel's triangles: n_mels + 2 edges, the inner ones.
        fmax = params.get("fmax") or sr / 2
        return librosa.mel_frequencies(params["n_mels"] + 2, fmin=params["fmin"],
                                       fmax=fmax)[1:-1]
    if feature == "cqt":
        return librosa.cqt_frequencies(params["n_bins"], fmin=params["fmin"],
                                       bins_per_octave=params["bins_per_octave"])
    return None


def feature_shape(params):
    """The `(time, frequency)` shape one segment's features will have."""
    sr = params["sample_rate"]
    window = max(1, int(round(params["segment_seconds"] * sr)))
    frames = 1 + window // params["hop_length"]
    bins = {"stft": params["n_fft"] // 2 + 1, "mel": params["n_mels"],
            "mfcc": params["n_mfcc"], "cqt": params["n_bins"]}[params["feature"]]
    return frames, bins
