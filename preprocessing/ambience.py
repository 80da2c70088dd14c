"""Synthetic environmental backgrounds that are not speech: rain, wind, sea waves, an engine
(a helicopter's blade chop on a harmonic drone), a crackling fire and a machine room, each
drawn afresh from its own random parameters (`ambience`), so that two recordings of one
type share a kind of sound, never a stretch of audio.

`python -m preprocessing synth-ambience` writes one sub-folder per type, the layout that
`synth_events(..., background_groups=True)` reads (the `k`-th speaker takes the `k`-th
type): digits on backgrounds whose type a fold never trains on. `preprocessing.synth_scenes`
puts synthetic events (not speech either) on them.

    OUT/<type>/<type>_<k>.wav   the backgrounds (16-bit PCM)
    OUT/recipe.json             the parameters
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.interpolate
import scipy.signal
import soundfile as sf

from preprocessing.mixing import coloured_noise
from preprocessing.staging import check_out, staging
from xval.core.errors import DatasetError
from xval.core.outputs import OwnedFolder

AMBIENCE = OwnedFolder(kind="a synth-ambience folder", command="synth-ambience",
                  markers=("recipe.json",),
                  entries=("recipe.json", "[0-9][0-9]_*", "[0-9][0-9]_*/*.wav"))
"""What `ambience_backgrounds` writes (`xval.core.outputs`): only such a folder is replaced."""


def band_pass(y: np.ndarray, low: float | None, high: float | None, sample_rate: int,
          order: int = 4) -> np.ndarray:
    """`y` filtered to `[low, high]` Hz (either may be `None`: a high- or low-pass)."""
    nyquist = sample_rate / 2
    low = None if low is None or low <= 0 else min(low, 0.9 * nyquist)
    high = None if high is None or high >= 0.95 * nyquist else high
    if low is None and high is None:
        return y
    if low is None:
        sos = scipy.signal.butter(order, high, "lowpass", fs=sample_rate, output="sos")
    elif high is None or high <= low:
        sos = scipy.signal.butter(order, low, "highpass", fs=sample_rate, output="sos")
    else:
        sos = scipy.signal.butter(order, [low, high], "bandpass", fs=sample_rate,
                                  output="sos")
    return scipy.signal.sosfilt(sos, y)


def _slow(n: int, rng: np.random.Generator, sample_rate: int, hz: float) -> np.ndarray:
    """A smooth random curve in `[0, 1]` changing at about `hz` (a cubic spline through
    random knots)."""
    knots = max(4, int(n / sample_rate * hz) + 4)
    spline = scipy.interpolate.CubicSpline(np.linspace(0, n, knots), rng.random(knots))
    return np.clip(spline(np.arange(n)), 0.0, 1.0)


def _impulses(n: int, rate: float, length: tuple[float, float], band: tuple[float, float],
              rng: np.random.Generator, sample_rate: int, heavy: bool = False) -> np.ndarray:
    """A Poisson train of short decaying clicks (drops, crackles) at `rate` per second."""
    out = np.zeros(n)
    count = rng.poisson(rate * n / sample_rate)
    for at in rng.integers(0, n, size=count):
        m = max(8, int(rng.uniform(*length) * sample_rate))
        t = np.arange(m) / sample_rate
        f = rng.uniform(*band)
        click = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) \
            * np.exp(-t * 6.9 / (m / sample_rate)) * (0.5 + 0.5 * rng.standard_normal(m))
        gain = rng.pareto(2.0) + 0.2 if heavy else rng.uniform(0.2, 1.0)
        out[at:at + m] += gain * click[:n - at]
    return out


def _rain(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    hiss = band_pass(coloured_noise(n, colour="pink", rng=rng, sample_rate=sr),
                 rng.uniform(300, 800), None, sr)
    drops = _impulses(n, rng.uniform(40, 200), (0.002, 0.012), (1000, 6000), rng, sr)
    return hiss / np.std(hiss) + rng.uniform(1, 3) * drops / (np.std(drops) + 1e-9)


def _wind(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    noise = coloured_noise(n, colour="brown", rng=rng, sample_rate=sr)
    centre = rng.uniform(150, 600)
    howl = band_pass(coloured_noise(n, colour="pink", rng=rng, sample_rate=sr),
                 centre * 0.8, centre * 1.25, sr, order=2)
    gusts = 0.2 + _slow(n, rng, sr, rng.uniform(0.2, 0.8))
    return gusts * (noise / np.std(noise) + 0.6 * howl / np.std(howl))


def _waves(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    surf = band_pass(coloured_noise(n, colour="pink", rng=rng, sample_rate=sr), None,
                 rng.uniform(1500, 3500), sr)
    period = rng.uniform(5, 11) * sr
    phase = rng.uniform(0, 2 * np.pi)
    swell = 0.15 + (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / period + phase)) ** 3
    return swell * surf / np.std(surf)


def _engine(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = rng.uniform(35, 110) * (1 + 0.03 * (_slow(n, rng, sr, 0.3) - 0.5))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    drone = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k ** rng.uniform(0.6, 1.2)
                for k in range(1, int(min(30, sr / 2 / 120))))
    chop = 1 - rng.uniform(0.2, 0.7) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(6, 22) * t))
    rumble = coloured_noise(n, colour="pink", rng=rng, sample_rate=sr)
    return chop * (drone / np.std(drone) + rng.uniform(0.3, 0.8) * rumble)


def _fire(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    roar = coloured_noise(n, colour="brown", rng=rng, sample_rate=sr)
    crackle = _impulses(n, rng.uniform(8, 40), (0.001, 0.006), (800, 7000), rng, sr,
                        heavy=True)
    return 0.5 * roar / np.std(roar) + crackle / (np.std(crackle) + 1e-9)


def _machine(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    mains = rng.choice([50.0, 60.0])
    hum = sum(np.sin(2 * np.pi * k * mains * t) / k for k in range(1, 6))
    fan = band_pass(coloured_noise(n, colour="white", rng=rng, sample_rate=sr),
                rng.uniform(100, 300), rng.uniform(900, 2000), sr)
    level = 1 + 0.15 * (_slow(n, rng, sr, 0.1) - 0.5)
    return level * (fan / np.std(fan) + rng.uniform(0.3, 1.0) * hum / np.std(hum))


TYPES: dict[str, Callable[[int, np.random.Generator, int], np.ndarray]] = {
    "rain": _rain, "wind": _wind, "waves": _waves, "engine": _engine, "fire": _fire,
    "machine": _machine}
"""The background types: `(n_samples, rng, sample_rate) -> samples`, any level."""


def ambience(kind: str, n_samples: int, *, rng: np.random.Generator,
             sample_rate: int = 16000) -> np.ndarray:
    """One background of type `kind`, at unit RMS.

    Args:
        kind: one of `TYPES`.
        n_samples: length in samples.
        rng: the generator of every draw.
        sample_rate: rate in Hz. Defaults to `16000`.

    Returns:
        `np.ndarray [shape=(n_samples,)]`, float64, zero mean, RMS 1.

    Raises:
        ValueError: for an unknown type.
    """
    if kind not in TYPES:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(TYPES)}.")
    y = np.asarray(TYPES[kind](n_samples, rng, sample_rate), dtype=np.float64)
    y = y - y.mean()
    return y / max(float(np.sqrt(np.mean(y ** 2))), 1e-12)


def check_types(types: Sequence[str] | None) -> list[str]:
    """The background types asked for (`None`: all of `TYPES`), checked.

    Raises:
        DatasetError: for an unknown or repeated type.
    """
    chosen = list(TYPES) if types is None else list(types)
    unknown = [t for t in chosen if t not in TYPES]
    if unknown or not chosen or len(set(chosen)) < len(chosen):
        raise DatasetError(f"types={chosen}: expected distinct names among "
                           f"{', '.join(TYPES)}.")
    return chosen


def ambience_backgrounds(out_dir: str | Path, *, types: Sequence[str] | None = None,
                         files_per_type: int = 3, seconds: float = 60.0,
                         sample_rate: int = 16000, seed: int = 0,
                         overwrite: bool = False) -> dict[str, Any]:
    """Writes synthetic backgrounds, one sub-folder per type (`TYPES`).

    Files are written at `sample_rate`, 16-bit, peak at -3 dBFS (the level does not
    matter: `synth_events` scales every background).

    Args:
        out_dir: the folder to write (must not exist, unless `overwrite`).
        types: the types, in the order of the sub-folders' names (sorted by
            `background_groups`); `None`: all. Defaults to `None`.
        files_per_type: files per type. Defaults to `3`.
        seconds: length of every file. Defaults to `60.0`.
        sample_rate: output rate in Hz. Defaults to `16000`.
        seed: seed of every random draw. Defaults to `0`.
        overwrite: replace a folder written by this function. Defaults to `False`.

    Returns:
        dict `out, files, types`.

    Raises:
        DatasetError: for a bad parameter or an existing folder; nothing is written then.
    """
    chosen = check_types(types)
    if files_per_type < 1 or seconds <= 0 or sample_rate < 4000:
        raise DatasetError(f"files_per_type={files_per_type}, seconds={seconds}, sample_rate="
                           f"{sample_rate}: expected >= 1, > 0 and >= 4000.")
    out = Path(out_dir)
    check_out(out, overwrite, AMBIENCE)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    with staging(out, AMBIENCE) as tmp:
        for k, kind in enumerate(chosen):
            folder = tmp / f"{k:02d}_{kind}"
            folder.mkdir()
            for i in range(files_per_type):
                y = ambience(kind, n, rng=rng, sample_rate=sample_rate)
                sf.write(folder / f"{kind}_{i}.wav",
                         (0.7 * y / np.max(np.abs(y))).astype(np.float32), sample_rate,
                         subtype="PCM_16")
        (tmp / "recipe.json").write_text(json.dumps(
            {"command": "synth-ambience", "types": chosen, "files_per_type": files_per_type,
             "seconds": seconds, "sample_rate": sample_rate, "seed": seed}, indent=2) + "\n")
    return {"out": str(out), "files": files_per_type * len(chosen), "types": chosen}
