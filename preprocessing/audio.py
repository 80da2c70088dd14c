"""Decoding audio files (or a stretch of one, or encoded bytes) to mono float32 at a fixed
sample rate."""

import dataclasses
import io
import os
from collections.abc import Callable
from pathlib import Path

import audioread
import librosa
import numpy as np
import soundfile as sf

from xval.core.errors import DatasetError
from xval.core.input_paths import AUDIO_EXTENSIONS, SNDFILE_EXTENSIONS, unreadable_reason

# How far a region may end past the end of its file (Lhotse's default tolerance for a
# duration mismatch): the rest is cut; a region ending later is an error.
REGION_TOLERANCE_SECONDS = 0.025
FILE_RATES = (1_000, 768_000)
"""The sample rates (Hz) a recording's header may declare: one outside (1 Hz) is a wrong
header, which resampling would turn into a made-up signal. A rate below 1000 Hz is read
where the target rate is as low."""


class FatalReadError(DatasetError):
    """An error of a region's reader that stops the build instead of skipping its row: a
    `wav.scp` command past its time limit (every other entry could wait as long)."""


@dataclasses.dataclass(frozen=True)
class Region:
    """Where a row's audio is when it is not a whole file: a stretch of a file (Kaldi
    `segments`, Lhotse supervisions and cuts), or encoded audio kept inside another file (a
    Hugging Face dataset's Arrow table).

    Attributes:
        offset: start of the stretch in the file, in seconds. Defaults to `0.0`.
        duration: length of the stretch in seconds; `None` reads to the end of the file.
        read: `read() -> bytes`, the encoded audio (WAV, FLAC, OGG or MP3 bytes) when it is
            not a file of its own; a picklable callable (a `functools.partial` of a module
            function), since extraction workers call it. A `DatasetError` it raises skips
            the row; a `FatalReadError` stops the build. `None` reads the path.
    """

    offset: float = 0.0
    duration: float | None = None
    read: Callable[[], bytes] | None = None

    def __post_init__(self) -> None:
        if not (self.offset >= 0 and np.isfinite(self.offset)):
            raise DatasetError(f"Region offset={self.offset!r}: expected seconds >= 0.")
        if self.duration is not None and not (self.duration > 0
                                              and np.isfinite(self.duration)):
            raise DatasetError(f"Region duration={self.duration!r}: expected seconds > 0.")

    @property
    def end(self) -> float:
        """The end of the stretch in seconds (infinity when it reads to the end)."""
        return np.inf if self.duration is None else self.offset + self.duration


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


def check_rate(path: Path, rate: int, sample_rate: int) -> None:
    """Refuses a file whose header declares a rate outside `FILE_RATES` (below them only
    for a target `sample_rate` as low).

    Raises:
        DatasetError: naming the file, the rate and the fix.
    """
    low, high = min(FILE_RATES[0], sample_rate), FILE_RATES[1]
    if not low <= rate <= high:
        raise DatasetError(
            f"Cannot use {path}: its header declares a sample rate of {rate} Hz; recordings "
            f"are read at {FILE_RATES[0]} to {high} Hz (lower only for a target rate as low, "
            f"here {sample_rate} Hz), so the header is wrong: write the file again at the "
            "rate it was recorded at.")


def load_audio(path: str | os.PathLike[str], *, sample_rate: int,
               peak_normalize: bool = False,
               region: Region | None = None) -> tuple[np.ndarray, int]:
    """Reads an audio file (or a region of one) as mono float32, resampled to `sample_rate`.

    Args:
        path: the file (with `region.read`, the name its audio is known by).
        sample_rate: target rate in Hz.
        peak_normalize: scale to a peak of 1 (silent input stays silent). Defaults to `False`.
        region: the stretch of the file to read, or the reader of audio kept inside another
            file. Defaults to `None` (the whole file).

    Returns:
        `(y, original_rate)`: `y` is `np.ndarray [shape=(n,)]`, float32.

    Raises:
        DatasetError: when the path is not a readable regular file (never opened), a WAV
            file is truncated, the file cannot be decoded (the message says what to install for
            formats libsndfile does not read), declares a sample rate outside `FILE_RATES`,
            holds no samples, holds NaN or infinite samples, or when the region starts or
            ends after the end of the file.
    """
    path = Path(path)
    region = region or Region()
    if region.read is None:
        reason = unreadable_reason(path)
        if reason is not None:  # checked before opening: a FIFO would block the read forever
            raise DatasetError(f"Cannot use {path}: {reason}.")
    try:
        y, rate = _decode(path, region)
    except DatasetError:
        raise
    except Exception as e:  # decoders raise many types: name the file and the reason
        raise DatasetError(f"Cannot decode {path}: {type(e).__name__}: {e}") from e
    check_rate(path, rate, sample_rate)
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


def _decode(path: Path, region: Region) -> tuple[np.ndarray, int]:
    """The region's samples (mono) and the file's rate."""
    if region.read is not None:
        data = region.read()
        try:
            y, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except sf.LibsndfileError as e:
            raise DatasetError(
                f"Cannot decode {path}: its {len(data)} bytes are not audio libsndfile reads "
                f"(WAV, FLAC, OGG, MP3; they begin {data[:12]!r}): "
                f"{str(e).rsplit(': ', 1)[-1]}") from None
        return _cut(path, y.mean(axis=1), rate, region), rate
    reason = truncation(path)
    if reason is not None:
        raise DatasetError(f"Cannot use {path}: {reason}; copy it again.")
    if path.suffix.lower() not in SNDFILE_EXTENSIONS:
        y, rate = _load_audioread(path)
        return _cut(path, y, rate, region), rate
    with sf.SoundFile(path) as f:
        rate = f.samplerate
        if region.offset == 0 and region.duration is None:
            return f.read(dtype="float32", always_2d=True).mean(axis=1), rate
        start, stop = _bounds(path, f.frames, rate, region)
        f.seek(start)
        y = f.read(stop - start, dtype="float32", always_2d=True)
    return y.mean(axis=1), rate


def _bounds(path: Path, frames: int, rate: int, region: Region) -> tuple[int, int]:
    """The first and the last-but-one sample of a region of a file of `frames` samples."""
    start = int(round(region.offset * rate))
    stop = frames if region.duration is None else int(round(region.end * rate))
    length = frames / rate
    if start > 0 and start >= frames:
        raise DatasetError(f"Cannot use {path}: its region starts at {region.offset:g} s, "
                           f"at or after the end of the file ({length:g} s).")
    if stop > frames + REGION_TOLERANCE_SECONDS * rate:
        raise DatasetError(f"Cannot use {path}: its region ends at {region.end:g} s, after "
                           f"the end of the file ({length:g} s).")
    return start, min(stop, frames)


def _cut(path: Path, y: np.ndarray, rate: int, region: Region) -> np.ndarray:
    """The region of a decoded signal."""
    if region.offset == 0 and region.duration is None:
        return y
    start, stop = _bounds(path, len(y), rate, region)
    return y[start:stop]


def _load_audioread(path: Path) -> tuple[np.ndarray, int]:
    try:
        with audioread.audio_open(str(path)) as f:
            rate, channels = f.samplerate, f.channels
            data = b"".join(f)
    except audioread.exceptions.NoBackendError as e:
        if path.suffix.lower() not in AUDIO_EXTENSIONS:  # /etc/passwd: no audio at all
            raise DatasetError(
                f"Cannot decode {path}: it is no audio file (its name has "
                f"{'no extension' if not path.suffix else f'the extension {path.suffix!r}'}"
                f", none of {', '.join(sorted(AUDIO_EXTENSIONS))}, and no decoder reads "
                "it); give an audio file.") from e
        raise DatasetError(
            f"Cannot decode {path}: no audioread backend reads {path.suffix!r}. Install "
            "ffmpeg (`apt-get install ffmpeg`)."
        ) from e
    y = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return y.reshape(-1, channels).mean(axis=1), rate
