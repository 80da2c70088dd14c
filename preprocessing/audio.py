"""Decoding audio files to mono float32 at a fixed sample rate."""

import os
from pathlib import Path

import audioread
import librosa
import numpy as np
import soundfile as sf

from xval.core.errors import DatasetError

# What libsndfile reads directly; anything else goes through audioread (ffmpeg & co).
SNDFILE_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au",
                      ".caf", ".w64", ".rf64", ".opus"}
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | {".m4a", ".aac", ".wma", ".mp4"}


def load_audio(path: str | os.PathLike[str], *, sample_rate: int,
               peak_normalize: bool = False) -> tuple[np.ndarray, int]:
    """Reads an audio file as mono float32, resampled to `sample_rate`.

    Args:
        path: the file.
        sample_rate: target rate in Hz.
        peak_normalize: scale to a peak of 1 (silent input stays silent). Defaults to `False`.

    Returns:
        `(y, original_rate)`: `y` is `np.ndarray [shape=(n,)]`, float32.

    Raises:
        DatasetError: when the file cannot be decoded (the message says what to install for
            formats libsndfile does not read), holds no samples, or holds NaN or infinite
            samples.
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext in SNDFILE_EXTENSIONS:
            y, rate = sf.read(path, dtype="float32", always_2d=True)
            y = y.mean(axis=1)
        else:
            y, rate = _load_audioread(path)
    except DatasetError:
        raise
    except Exception as e:  # decoders raise many types: name the file and the reason
        raise DatasetError(f"Cannot decode {path}: {type(e).__name__}: {e}") from e
    if y.size == 0:
        raise DatasetError(f"Cannot use {path}: it holds no samples.")
    finite = np.isfinite(y)
    if not finite.all():
        bad = int(y.size - np.count_nonzero(finite))
        raise DatasetError(
            f"Cannot use {path}: {bad} of its {y.size} samples are not finite (NaN or "
            "infinity); the file is corrupt or was written from a diverged signal."
        )
    if rate != sample_rate:
        y = librosa.resample(y, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if peak_normalize:
        peak = float(np.max(np.abs(y)))
        if peak > 0:
            y = y / peak
    return y, int(rate)


def _load_audioread(path: Path) -> tuple[np.ndarray, int]:
    try:
        with audioread.audio_open(str(path)) as f:
            rate, channels = f.samplerate, f.channels
            data = b"".join(f)
    except audioread.exceptions.NoBackendError as e:
        raise DatasetError(
            f"Cannot decode {path}: no audioread backend reads {path.suffix!r}. Install "
            "ffmpeg (`apt-get install ffmpeg`)."
        ) from e
    y = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return y.reshape(-1, channels).mean(axis=1), rate


def peak_dbfs(y: np.ndarray) -> float:
    """Peak level of a signal in dBFS (-inf for silence)."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return float(20 * np.log10(peak)) if peak > 0 else -np.inf
