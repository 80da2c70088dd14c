"""A sound event detection dataset with no speech in it: synthetic events (barks, noise
bursts, bird-like chirps) on synthetic environmental backgrounds (`preprocessing.ambience`:
rain, wind, sea waves, an engine, a fire, a machine room).

Each background type is one item, so that a fold never trains on the type (nor, since
every background is drawn afresh, on the recording) it is tested on. Every event is drawn
from its class's random parameters (`EVENTS`): no two are the same sound. Events come in
trains (a bark repeated, a bird's syllables), classes on their own time lines (trains of
two classes may overlap), each train at an SNR drawn from `[snr_min, snr_max]` against the
background's mean power, as `synth_events` measures it. `python -m preprocessing
synth-scenes` writes, as `synth-events` does:

    OUT/<type>_<k>.wav      the recordings (16-bit PCM)
    OUT/annotations.csv     wide sample-range layout (File name, Voice start sample (1), ...)
    OUT/events.csv          the same events, one row each, with their SNR, class and train
    OUT/items.csv           file -> item (the background type)
    OUT/recipe.json         the parameters
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from preprocessing.ambience import ambience, band_pass, check_types
from preprocessing.recipe import BACKGROUND_RMS, PEAK
from preprocessing.staging import check_out, staging
from preprocessing.synth_events import write_tables
from xval.core.errors import DatasetError
from xval.core.outputs import OwnedFolder

SYNTH_SCENES = OwnedFolder(kind="a synth-scenes folder", command="synth-scenes",
                      markers=("recipe.json",),
                      entries=("recipe.json", "annotations.csv", "events.csv", "items.csv",
                               "*.wav"))
"""What `synth_scenes` writes (`xval.core.outputs`): only such a folder is replaced."""


def _decay(m: int, attack: int, floor_db: float = 35.0) -> np.ndarray:
    """A linear attack of `attack` samples, then an exponential decay to `-floor_db` dB at
    the last sample."""
    attack = int(min(max(attack, 1), m - 1))
    rise = np.linspace(0.0, 1.0, attack, endpoint=False)
    fall = 10 ** (-floor_db / 20 * np.linspace(0.0, 1.0, m - attack))
    return np.concatenate([rise, fall])


def bark(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A bark-like call: a harmonic burst whose pitch falls, with breath noise, 80-300 ms."""
    m = int(rng.uniform(0.08, 0.3) * sample_rate)
    f0 = rng.uniform(250, 650) * np.geomspace(1.0, rng.uniform(0.6, 0.9), m)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    tilt = rng.uniform(0.5, 1.5)
    voiced = sum(np.sin(k * phase) / k ** tilt
                 for k in range(1, int(sample_rate / 2 / f0.max())))
    voiced = band_pass(voiced, None, rng.uniform(1500, 3500), sample_rate, order=2)
    breath = band_pass(rng.standard_normal(m), 500, 0.4 * sample_rate, sample_rate)
    mix = voiced / np.std(voiced) + rng.uniform(0.1, 0.5) * breath / np.std(breath)
    return mix * _decay(m, int(rng.uniform(0.005, 0.02) * sample_rate))


def burst(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A sneeze- or knock-like noise burst, 150-700 ms: a quiet rising breath, then a
    band of noise that starts at once and dies away."""
    m = int(rng.uniform(0.15, 0.7) * sample_rate)
    pre = int(m * rng.uniform(0.0, 0.4))
    centre = rng.uniform(700, 0.3 * sample_rate)
    noise = band_pass(rng.standard_normal(m), centre / rng.uniform(1.5, 3.0),
                  centre * rng.uniform(1.3, 2.5), sample_rate)
    envelope = np.concatenate([rng.uniform(0.1, 0.3) * np.linspace(0, 1, pre) ** 2,
                               _decay(m - pre, int(0.004 * sample_rate))])
    return noise / np.std(noise) * envelope


def chirp(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A bird-like syllable, 50-250 ms: a frequency sweep (or a trill) with a smooth
    envelope and a faint second harmonic."""
    m = int(rng.uniform(0.05, 0.25) * sample_rate)
    low, high = 0.12 * sample_rate, 0.3 * sample_rate
    start, end = rng.uniform(low, high, size=2)
    f = np.geomspace(start, end, m)
    if rng.random() < 0.3:  # a trill: a fast wobble of the pitch
        f = f + rng.uniform(100, 400) * np.sin(2 * np.pi * rng.uniform(20, 60)
                                                 * np.arange(m) / sample_rate)
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    tone = np.sin(phase) + 0.2 * np.sin(2 * phase) * (2 * f.max() < sample_rate / 2)
    return tone * np.sin(np.pi * np.arange(m) / m) ** rng.uniform(0.5, 2.0)


EVENTS: dict[str, tuple[Callable[[np.random.Generator, int], np.ndarray],
                        tuple[int, int], tuple[float, float]]] = {
    "bark": (bark, (1, 4), (0.1, 0.35)),
    "burst": (burst, (1, 1), (0.2, 0.5)),
    "chirp": (chirp, (1, 5), (0.06, 0.2)),
}
"""Event classes: `(make, (fewest, most) repetitions in a train, (shortest, longest) gap
inside a train in seconds)`."""


@dataclasses.dataclass
class SceneRecipe:
    """How `synth_scenes` draws its recordings (see its arguments, of the same names)."""

    files_per_type: int = 7
    seconds: float = 30.0
    events_min: int = 3
    events_max: int = 7
    min_gap: float = 0.3
    snr_min: float = 0.0
    snr_max: float = 15.0
    sample_rate: int = 16000
    types: tuple[str, ...] | None = None
    seed: int = 0

    def check(self) -> None:
        """Raises DatasetError naming every bad parameter."""
        checks = [
            (self.files_per_type < 1, f"files_per_type={self.files_per_type}: expected >= 1"),
            (self.seconds < 2, f"seconds={self.seconds}: expected >= 2"),
            (self.events_min < 0 or self.events_max < self.events_min,
             f"events_min={self.events_min}, events_max={self.events_max}: expected "
             "0 <= events_min <= events_max"),
            (self.min_gap < 0, f"min_gap={self.min_gap}: expected >= 0"),
            (self.snr_max < self.snr_min,
             f"snr_min={self.snr_min} > snr_max={self.snr_max}: expected snr_min <= snr_max"),
            (self.sample_rate < 8000, f"sample_rate={self.sample_rate}: expected >= 8000"),
        ]
        problems = [text for bad, text in checks if bad]
        if problems:
            raise DatasetError("; ".join(problems) + ".")
        check_types(self.types)


def _train(kind: str, rng: np.random.Generator, sample_rate: int
           ) -> tuple[list[np.ndarray], list[int]]:
    """A train of class `kind`: its repetitions and the gaps between them (samples)."""
    make, (fewest, most), gaps = EVENTS[kind]
    clips = [make(rng, sample_rate) for _ in range(int(rng.integers(fewest, most + 1)))]
    return clips, [int(rng.uniform(*gaps) * sample_rate) for _ in clips[1:]]


def _lay(trains: list[tuple[list[np.ndarray], list[int]]], n: int, gap: int,
         rng: np.random.Generator) -> list[tuple[int, list[np.ndarray], list[int]]]:
    """Places a lane's trains at least `gap` apart inside `n` samples (the last trains
    dropped until they fit): `(start, clips, gaps)` each."""
    def span(train: tuple[list[np.ndarray], list[int]]) -> int:
        return sum(len(c) for c in train[0]) + sum(train[1])

    while trains and sum(span(t) for t in trains) + gap * (len(trains) - 1) > n:
        trains.pop()
    slack = n - sum(span(t) for t in trains) - gap * (len(trains) - 1)
    offsets = np.sort(rng.integers(0, slack + 1, size=len(trains)))
    placed, position = [], 0
    for (clips, gaps), offset in zip(trains, offsets):
        placed.append((int(offset) + position, clips, gaps))
        position += span((clips, gaps)) + gap
    return placed


def scene(kind: str, recipe: SceneRecipe, rng: np.random.Generator
          ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One recording on a background of type `kind`: its samples and its events."""
    sr = recipe.sample_rate
    n = int(round(recipe.seconds * sr))
    mixture = BACKGROUND_RMS * ambience(kind, n, rng=rng, sample_rate=sr)
    lanes: dict[str, list[tuple[list[np.ndarray], list[int]]]] = {}
    for _ in range(int(rng.integers(recipe.events_min, recipe.events_max + 1))):
        label = str(rng.choice(sorted(EVENTS)))
        lanes.setdefault(label, []).append(_train(label, rng, sr))
    events: list[dict[str, Any]] = []
    number = 0
    for label in sorted(lanes):
        for start, clips, gaps in _lay(lanes[label], n, int(recipe.min_gap * sr), rng):
            snr = float(rng.uniform(recipe.snr_min, recipe.snr_max))
            for j, clip in enumerate(clips):
                gain = BACKGROUND_RMS * np.sqrt(10 ** (snr / 10) / np.mean(clip ** 2))
                mixture[start:start + len(clip)] += gain * clip
                events.append({"start_sample": start, "end_sample": start + len(clip),
                               "label": label, "snr_db": round(snr, 3), "source": label,
                               "background": kind, "train": number})
                start += len(clip) + (gaps[j] if j < len(gaps) else 0)
            number += 1
    peak = np.max(np.abs(mixture))
    if peak > PEAK:
        mixture *= PEAK / peak
    return mixture, sorted(events, key=lambda e: (e["start_sample"], e["label"]))


def synth_scenes(out_dir: str | Path, *, files_per_type: int = 7, seconds: float = 30.0,
                 events_min: int = 3, events_max: int = 7, min_gap: float = 0.3,
                 snr_min: float = 0.0, snr_max: float = 15.0, sample_rate: int = 16000,
                 types: Sequence[str] | None = None, seed: int = 0,
                 overwrite: bool = False) -> dict[str, Any]:
    """Writes synthetic events on synthetic backgrounds, with their annotations.

    Args:
        out_dir: the folder to write (must not exist, unless `overwrite`).
        files_per_type: recordings per background type. Defaults to `7`.
        seconds: length of every recording. Defaults to `30.0`.
        events_min: fewest trains per recording. Defaults to `3`.
        events_max: most trains per recording (fewer if they do not fit). Defaults to `7`.
        min_gap: shortest silence between two trains of one class, seconds. Defaults to
            `0.3`.
        snr_min, snr_max: the range of SNRs in dB (one per train). Defaults to `0` and `15`.
        sample_rate: rate in Hz. Defaults to `16000`.
        types: the background types (`preprocessing.ambience.TYPES`), one item each;
            `None`: all six. Defaults to `None`.
        seed: seed of every random draw. Defaults to `0`.
        overwrite: replace a folder written by this function. Defaults to `False`.

    Returns:
        dict `out, files, events, items`.

    Raises:
        DatasetError: for a bad parameter or an existing folder; nothing is written then.
    """
    recipe = SceneRecipe(files_per_type=files_per_type, seconds=seconds,
                         events_min=events_min, events_max=events_max, min_gap=min_gap,
                         snr_min=snr_min, snr_max=snr_max, sample_rate=sample_rate,
                         types=None if types is None else tuple(types), seed=seed)
    recipe.check()
    out = Path(out_dir)
    check_out(out, overwrite, SYNTH_SCENES)
    rng = np.random.default_rng(seed)
    events: list[dict[str, Any]] = []
    items: list[dict[str, str]] = []
    with staging(out, SYNTH_SCENES) as tmp:
        for kind in check_types(recipe.types):
            for k in range(files_per_type):
                name = f"{kind}_{k:03d}.wav"
                mixture, found = scene(kind, recipe, rng)
                events += [{"file": name, **event} for event in found]
                sf.write(tmp / name, mixture.astype(np.float32), sample_rate,
                         subtype="PCM_16")
                items.append({"file": name, "item": kind})
        write_tables(tmp, events, items, trains=True)
        (tmp / "recipe.json").write_text(json.dumps(
            {"command": "synth-scenes", **dataclasses.asdict(recipe),
             "classes": sorted(EVENTS)}, indent=2) + "\n")
    return {"out": str(out), "files": len(items), "events": len(events),
            "items": sorted({i["item"] for i in items})}
