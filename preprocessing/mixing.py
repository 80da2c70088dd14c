"""Mixing one speaker's recording: spoken digits (alone or in trains) added at known
signal-to-noise ratios to a background of coloured noise or of recorded background files
(`preprocessing.synth_events` makes the dataset of them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import librosa
import numpy as np

from preprocessing.audio import AUDIO_EXTENSIONS, load_audio
from preprocessing.recipe import BACKGROUND_RMS, NOISES, PEAK, SINGLE_LABEL, Background, Recipe
from xval.core.errors import DatasetError


def coloured_noise(n_samples: int, *, colour: str, rng: np.random.Generator,
                   sample_rate: int = 8000, corner_hz: float = 20.0) -> np.ndarray:
    """Gaussian noise with a power spectrum falling as `1 / f ** alpha`, at unit RMS.

    The spectrum is flat below `corner_hz`, so that pink and brown noise are not dominated
    by an inaudible drift.

    Args:
        n_samples: length in samples.
        colour: `"white"` (alpha 0: flat), `"pink"` (alpha 1: -3 dB per octave) or
            `"brown"` (alpha 2: -6 dB per octave).
        rng: a `np.random.Generator`.
        sample_rate: rate in Hz. Defaults to `8000`.
        corner_hz: the spectrum is flat below this frequency. Defaults to `20.0`.

    Returns:
        `np.ndarray [shape=(n_samples,)]`, float64, zero mean, RMS 1.

    Raises:
        ValueError: for an unknown colour.
    """
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}.get(colour)
    if alpha is None:
        raise ValueError(f"colour={colour!r}: expected white, pink or brown.")
    y = rng.standard_normal(n_samples)
    if alpha:
        spectrum = np.fft.rfft(y)
        f = np.maximum(np.fft.rfftfreq(n_samples, 1 / sample_rate), corner_hz)
        y = np.fft.irfft(spectrum / f ** (alpha / 2), n_samples)
    y = y - y.mean()
    return y / np.sqrt(np.mean(y ** 2))


class Mixer:
    """Draws and mixes recordings, in the order of draws that makes a seed reproducible.

    Args:
        recipe: the parameters.
        rng: the generator of every draw.
    """

    def __init__(self, recipe: Recipe, rng: np.random.Generator) -> None:
        self.recipe = recipe
        self.rng = rng
        self.skipped = 0
        self.cache: dict[str, np.ndarray] = {}
        self.gap = int(round(recipe.min_gap * recipe.sample_rate))

    def digit(self, path: str) -> np.ndarray:
        """A trimmed FSDD recording (cached)."""
        r = self.recipe
        if path not in self.cache:
            self.cache[path] = trimmed_digit(path, r.sample_rate, r.trim_db,
                                             r.seconds_max or r.seconds)
        return self.cache[path]

    def recording(self, paths: list[str], background: Background
                  ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One recording of a speaker: its samples and its events (without `file`)."""
        r, rng = self.recipe, self.rng
        length = r.seconds if r.seconds_max is None else float(
            rng.uniform(r.seconds, r.seconds_max))
        n = int(round(length * r.sample_rate))
        mixture, source = self.background(n, background)
        count = int(rng.integers(r.events_min, r.events_max + 1))
        placed = self.trains(paths, count, n) if r.trains else self.singles(paths, count, n)
        for event in placed:
            clip = event.pop("clip")
            gain = BACKGROUND_RMS * np.sqrt(10 ** (event["snr_db"] / 10) / np.mean(clip ** 2))
            mixture[event["start_sample"]:event["end_sample"]] += gain * clip
            event["snr_db"] = round(event["snr_db"], 3)
            event["background"] = source
        peak = np.max(np.abs(mixture))
        if peak > PEAK:
            mixture *= PEAK / peak
        return mixture, placed

    def background(self, n: int, background: Background) -> tuple[np.ndarray, str]:
        """`n` samples of background at `BACKGROUND_RMS`, and what it is."""
        group, files = background
        if files is not None:
            samples, source = _background(files, n, self.recipe.sample_rate, self.rng)
            return samples, source if group is None else f"{group}/{source}"
        noise = self.recipe.noise or "mixed"
        colour = noise if noise != "mixed" else str(self.rng.choice(NOISES[:3]))
        return BACKGROUND_RMS * coloured_noise(n, colour=colour, rng=self.rng,
                                               sample_rate=self.recipe.sample_rate), colour

    def singles(self, paths: list[str], count: int, n: int) -> list[dict[str, Any]]:
        """`count` single events (the original recipe), at least `min_gap` apart."""
        rng, gap = self.rng, self.gap
        chosen = rng.choice(len(paths), size=min(count, len(paths)), replace=False)
        clips = [(paths[i], self.digit(paths[i])) for i in chosen]
        while sum(len(c) for _, c in clips) + gap * (len(clips) - 1) > n:
            clips.pop()
            self.skipped += 1
        slack = n - sum(len(c) for _, c in clips) - gap * (len(clips) - 1)
        offsets = np.sort(rng.integers(0, slack + 1, size=len(clips)))
        events, position = [], 0
        for (path, clip), offset in zip(clips, offsets):
            start = int(offset) + position
            position += len(clip) + gap
            events.append({"start_sample": start, "end_sample": start + len(clip),
                           "label": self.label(path),
                           "snr_db": float(rng.uniform(self.recipe.snr_min,
                                                       self.recipe.snr_max)),
                           "source": Path(path).name, "clip": clip})
        return events

    def label(self, path: str) -> str:
        """The class of an event from FSDD file `path`."""
        return Path(path).name.split("_")[0] if self.recipe.labels == "digit" \
            else SINGLE_LABEL

    def trains(self, paths: list[str], count: int, n: int) -> list[dict[str, Any]]:
        """`count` event trains placed in `n` samples (each class on its own time line
        with `overlap`), sorted by start."""
        lanes: dict[str, list[dict[str, Any]]] = {}
        for number, train in enumerate(self.draw_trains(paths, count)):
            train["number"] = number
            lanes.setdefault(train["digit"] if self.recipe.overlap else "", []).append(train)
        events: list[dict[str, Any]] = []
        for key in sorted(lanes):
            events += self.lay(lanes[key], n)
        events.sort(key=lambda e: (e["start_sample"], e["label"]))
        return events

    def draw_trains(self, paths: list[str], count: int) -> list[dict[str, Any]]:
        """`count` trains: a digit, its repetitions (different recordings), the gaps
        between them (samples) and one SNR."""
        r, rng = self.recipe, self.rng
        by_digit: dict[str, list[str]] = {}
        for path in paths:
            by_digit.setdefault(Path(path).name.split("_")[0], []).append(path)
        classes = sorted(by_digit)
        drawn = []
        for _ in range(count):
            digit = classes[int(rng.integers(len(classes)))]
            pool = by_digit[digit]
            reps = int(rng.integers(r.train_min, r.train_max + 1))
            chosen = rng.choice(len(pool), size=min(reps, len(pool)), replace=False)
            clips = [(pool[i], self.digit(pool[i])) for i in chosen]
            inner = [int(round(g * r.sample_rate)) for g in
                     rng.uniform(r.train_gap_min, r.train_gap_max, size=len(clips) - 1)]
            drawn.append({"digit": digit, "clips": clips, "gaps": inner,
                          "snr": float(rng.uniform(r.snr_min, r.snr_max))})
        return drawn

    def lay(self, lane: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        """The events of the trains of one time line, at least `min_gap` apart, shortened
        (last repetitions first, then whole trains) until they fit in `n` samples."""
        gap = self.gap
        while lane and sum(_span(t) for t in lane) + gap * (len(lane) - 1) > n:
            last = lane[-1]
            if len(last["clips"]) > 1:  # shorten the last train before dropping it
                last["clips"].pop()
                last["gaps"].pop()
            else:
                lane.pop()
            self.skipped += 1
        slack = n - sum(_span(t) for t in lane) - gap * (len(lane) - 1)
        offsets = np.sort(self.rng.integers(0, slack + 1, size=len(lane)))
        events, position = [], 0
        for train, offset in zip(lane, offsets):
            start = int(offset) + position
            for j, (path, clip) in enumerate(train["clips"]):
                events.append({"start_sample": start, "end_sample": start + len(clip),
                               "label": self.label(path), "snr_db": train["snr"],
                               "source": Path(path).name, "train": train["number"],
                               "clip": clip})
                start += len(clip) + (train["gaps"][j] if j < len(train["gaps"]) else 0)
            position += _span(train) + gap
        return events


def _span(train: dict[str, Any]) -> int:
    """Samples a train covers: its repetitions and the gaps between them."""
    return sum(len(c) for _, c in train["clips"]) + sum(train["gaps"])


def trimmed_digit(path: str, sample_rate: int, trim_db: float, seconds: float) -> np.ndarray:
    """An FSDD recording with its leading and trailing silence trimmed.

    Raises:
        DatasetError: when it lasts more than `seconds` after trimming.
    """
    y, _ = load_audio(path, sample_rate=sample_rate)
    # 8 ms frames, 2 ms hops: librosa's default 2048-sample frames would keep up to a
    # quarter of a second of silence at 8 kHz inside the annotated range.
    frame = max(16, sample_rate // 125)
    trimmed, _ = librosa.effects.trim(y, top_db=trim_db, frame_length=frame,
                                      hop_length=frame // 4)
    if len(trimmed) > seconds * sample_rate:
        raise DatasetError(f"{path} lasts {len(trimmed) / sample_rate:.2f} s after trimming, "
                           f"more than seconds={seconds}; give longer recordings.")
    return np.asarray(trimmed, dtype=np.float64)


def background_files(folder: str | Path) -> list[Path]:
    """The audio files under `folder`, sorted.

    Raises:
        DatasetError: for a missing folder or one without audio.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"Background folder {str(folder)!r} does not exist.")
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise DatasetError(f"No audio files in the background folder {folder}.")
    return files


def background_groups(folder: str | Path) -> list[tuple[str, list[Path]]]:
    """`[(name, files), ...]` of the sub-folders of `folder` that hold audio, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"Background folder {str(folder)!r} does not exist.")
    groups = [(d.name, background_files(d)) for d in sorted(folder.iterdir())
              if d.is_dir() and any(p.suffix.lower() in AUDIO_EXTENSIONS
                                    for p in d.rglob("*") if p.is_file())]
    if not groups:
        raise DatasetError(f"background_groups: {folder} has no sub-folder holding audio; "
                           "put each group's backgrounds in a sub-folder of its own.")
    return groups


def _background(files: list[Path], n: int, sample_rate: int,
                rng: np.random.Generator) -> tuple[np.ndarray, str]:
    path = files[int(rng.integers(len(files)))]
    y, _ = load_audio(path, sample_rate=sample_rate)
    y = y.astype(np.float64)
    if len(y) < n:
        y = np.resize(y, n)  # looped
    start = int(rng.integers(0, len(y) - n + 1))
    y = y[start:start + n]
    rms = np.sqrt(np.mean(y ** 2))
    if rms == 0:
        raise DatasetError(f"Background {path} is silent where it was cut; an SNR needs a "
                           "background with energy. Remove it from the background folder.")
    return BACKGROUND_RMS * y / rms, path.name
