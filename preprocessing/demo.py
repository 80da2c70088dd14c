"""The built-in demo dataset: synthetic "speakers" saying four pitch contours.

Generated locally and deterministically (no download): 8 speakers (the foldable items),
each with their own pitch, timbre and noise level, produce 10 one-second clips of each of
four classes (`rise`, `fall`, `flat`, `vibrato`) at 8 kHz. A class is the shape of the
pitch contour, so a model must generalise across speakers' pitches to score well.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from preprocessing.build import build_store
from preprocessing.features import parameter_names, spectral
from preprocessing.sources import regex_source
from preprocessing.store import FeatureStore
from xval import tasks

CLASSES = ("fall", "flat", "rise", "vibrato")
SPEAKERS = 8
CLIPS_PER_CLASS = 10
SAMPLE_RATE = 8000
PATTERN = r"^(?P<item>spk\d+)/(?P<label>[a-z]+)_\d+\.wav$"
# Three half-second segments per one-second clip: clip-level evaluation has work to do.
FEATURES = {"sample_rate": SAMPLE_RATE, "feature": spectral.MEL, "compression": "db", "n_fft": 512,
            "hop_length": 128, "n_mels": 32, "fmin": 60.0, "fmax": None,
            "segment_seconds": 0.5, "segment_hop_seconds": 0.25, "dtype": "float32",
            "peak_normalize": True, "silence_threshold_db": -60.0}


def _clip(rng: np.random.Generator, label: str, f0: float, brightness: float,
          noise: float) -> np.ndarray:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    ratio = rng.uniform(3.0, 4.0)
    centre = f0 * np.sqrt(ratio)
    contour = {
        "rise": f0 * ratio**t,
        "fall": f0 * ratio ** (1 - t),
        "flat": np.full_like(t, centre),
        "vibrato": centre * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(4, 6) * t)),
    }[label]
    phase = 2 * np.pi * np.cumsum(contour) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
    y = sum(brightness**k * np.sin(k * phase) for k in range(1, 5))
    envelope = np.minimum(1, np.minimum(t, 1 - t) / 0.05)
    y = y * envelope + noise * rng.standard_normal(len(t))
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def write_demo_audio(folder: str | os.PathLike[str], *, seed: int = 0) -> int:
    """Writes the demo recordings as WAV files: `folder/spkN/<class>_<k>.wav`.

    Args:
        folder: the folder to fill (created if missing).
        seed: random seed. Defaults to `0`; the same seed writes identical files.

    Returns:
        The number of files written.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    count = 0
    for s in range(SPEAKERS):
        speaker = folder / f"spk{s}"
        speaker.mkdir(parents=True, exist_ok=True)
        f0 = 100 + 25 * s + rng.uniform(-10, 10)
        brightness = rng.uniform(0.3, 0.8)
        noise = rng.uniform(0.05, 0.3)
        for label in CLASSES:
            for k in range(CLIPS_PER_CLASS):
                sf.write(speaker / f"{label}_{k}.wav", _clip(rng, label, f0, brightness, noise),
                         SAMPLE_RATE, subtype="PCM_16")
                count += 1
    return count


def build_demo(data_dir: str | os.PathLike[str], *, name: str = "demo", overwrite: bool = False,
               workers: int = 0, progress: bool = True,
               task_type: str = tasks.DEFAULT) -> tuple[FeatureStore, dict[str, Any]]:
    """Writes the demo audio (if missing) and builds its feature store `data_dir/name`.

    Args:
        data_dir: the folder of feature stores (`config.ini [paths] data_dir`).
        name: the dataset name. Defaults to `"demo"`.
        overwrite: rebuild an existing store. Defaults to `False`.
        workers: extraction processes (0: all cores). Defaults to `0`.
        progress: show a progress bar. Defaults to `True`.
        task_type: the store's task (`classification` or `representation`: the demo has
            class labels and no frame targets). Defaults to `xval.tasks.DEFAULT`.

    Returns:
        `(store, summary)` as `build_store` returns them.
    """
    data_dir = Path(data_dir)
    audio = data_dir / f"{name}_audio"
    if not audio.is_dir() or not any(audio.rglob("*.wav")):
        write_demo_audio(audio)
    rows, skipped = regex_source(audio, PATTERN)
    params = _demo_params()
    return build_store(rows, data_dir / name, params=params, workers=workers,
                       overwrite=overwrite, classes=list(CLASSES), skipped=skipped,
                       info={"source": "built-in demo (preprocessing.demo)"},
                       progress=progress, task_type=task_type)


def _demo_params() -> dict[str, Any]:
    defaults = {"power_exponent": 0.3, "n_mfcc": 20, "n_bins": 84, "bins_per_octave": 12,
                "keep_silent_segments": False}
    params = {**defaults, **FEATURES}
    return {k: params[k] for k in parameter_names()}


__all__ = ["CLASSES", "build_demo", "write_demo_audio"]
