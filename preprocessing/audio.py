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


def unreadable_reason(path: Path) -> str | None:
    """Why an audio path is never opened, or `None` for a regular file: a dangling link,
    a FIFO (opening it could block forever), a socket or device, a folder, a file that
    cannot be read."""
    if path.is_symlink() and not path.exists():
        return f"dangling link (to {os.readlink(path)!r}): never opened"
    if not path.exists():
        return "file not found"
    if path.is_dir():
        return "a folder, not an audio file"
    if not path.is_file():
        return "not a regular file (FIFO, socket or device): never opened"
    if not os.access(path, os.R_OK):
        return "permission denied: the file cannot be read"
    return None


def truncation(path: Path) -> str | None:
    """Why a WAV file is truncated, or `None`: its RIFF header announces a `data` chunk
    longer than the bytes the file holds (a copy cut short). libsndfile reads such a file
    silently as a shorter one."""
    if path.suffix.lower() != ".wav":
        return None
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                held = os.fstat(f.fileno()).st_size - f.tell()
                if size != 0xFFFFFFFF and held < size:
                    return (f"truncated: its header announces {size} bytes of audio, the "
                            f"file holds {held}")
                return None
            f.seek(size + (size & 1), os.SEEK_CUR)


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
        DatasetError: when the path is not a readable regular file (never opened), a WAV
            file is truncated, the file cannot be decoded (the message says what to install for
            formats libsndfile does not read), holds no samples, or holds NaN or infinite
            samples.
    """
    path = Path(path)
    ext = path.suffix.lower()
    reason = unreadable_reason(path)
    if reason is not None:  # checked before opening: a FIFO would block the read forever
        raise DatasetError(f"Cannot use {path}: {reason}.")
    try:
        reason = truncation(path)
        if reason is not None:
            raise DatasetError(f"Cannot use {path}: {reason}; copy it again.")
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
