"""A sound event detection dataset: FSDD spoken digits placed into longer backgrounds.

Every output recording is a background (coloured noise, or a random stretch of a given
background file) with a few spoken digits of ONE speaker added at known sample ranges and
known signal-to-noise ratios, so that the speaker is the foldable item: no speaker's voice
is on both sides of a fold. Optionally (the harder set): event trains (a digit repeated 2 to
6 times with gaps under 250 ms, like barks, calls or syllables), several classes whose trains
may overlap, recordings of varying length, and real recorded backgrounds grouped by site
(`background_groups`: speaker `k` draws its backgrounds from the `k`-th sub-folder only, so
that a site's backgrounds stay on one side of a fold too; `preprocessing.babble` makes such
folders of reverberant multi-talker babble from any speech corpus, e.g. RAVDESS).
`python -m preprocessing synth-events` writes:

    OUT/<speaker>_<k>.wav   the recordings (16-bit PCM)
    OUT/annotations.csv     wide sample-range layout: File name, Voice start sample (1),
                            Voice end sample (1), Label (1), ... (`digit`, or the digit)
    OUT/events.csv          the same events, one row each, with their SNR and source file
    OUT/items.csv           file -> item (the FSDD speaker)
    OUT/recipe.json         the parameters, so that the folder can be regenerated
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pandas as pd
import soundfile as sf

from preprocessing.audio import AUDIO_EXTENSIONS, load_audio
from preprocessing.sources import FSDD_PATTERN, regex_source
from xval.core.errors import DatasetError
from xval.core.outputs import Output, check_apart, check_replace, remove_output

NOISES = ("white", "pink", "brown", "mixed")
LABEL_MODES = ("single", "digit")
SINGLE_LABEL = "digit"
# Background RMS before the events are added (-26 dBFS): room for 20 dB SNR events.
BACKGROUND_RMS = 0.05
PEAK = 0.99


Background = tuple[str | None, list[Path] | None]
"""A speaker's backgrounds: `(group name or None, background files or None for noise)`."""


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


@dataclasses.dataclass
class Recipe:
    """How `synth_events` draws its recordings (see its arguments, of the same names).

    For each speaker (sorted) and each of `files_per_speaker` recordings: a background of
    `seconds`; a number of events drawn uniformly from `[events_min, events_max]`; that
    many recordings of the speaker drawn without replacement, each trimmed of its leading
    and trailing silence (`librosa.effects.trim` at `trim_db`, 8 ms frames), so that the
    annotated sample range is where the digit's energy is; positions drawn uniformly among
    those that keep events at least `min_gap` seconds apart and inside the recording; each
    event scaled to an SNR drawn uniformly from `[snr_min, snr_max]` dB: the ratio of the
    event's mean power to the background's mean power over the whole recording (every
    background is first scaled to the RMS `BACKGROUND_RMS`). A recording whose peak
    would clip is scaled down as a whole, which keeps the SNRs.

    Event trains (`train_max > 1`, or `overlap`): each of the drawn events becomes a
    train: a digit (the class with `labels="digit"`) drawn uniformly among `digits`,
    repeated a number of times drawn from `[train_min, train_max]` with different
    recordings of it by the speaker, separated by gaps drawn from `[train_gap_min,
    train_gap_max]` seconds; every repetition is annotated as its own event, and every
    event of a train has the train's SNR. Trains keep `min_gap` from each other; with
    `overlap`, only from trains of the same class (each class is placed on its own time
    line, so trains of different classes may overlap).
    """

    files_per_speaker: int = 10
    seconds: float = 10.0
    events_min: int = 1
    events_max: int = 4
    min_gap: float = 0.5
    snr_min: float = 0.0
    snr_max: float = 20.0
    labels: str = "single"
    noise: str | None = None
    sample_rate: int = 8000
    trim_db: float = 30.0
    seed: int = 0
    seconds_max: float | None = None
    train_min: int = 1
    train_max: int = 1
    train_gap_min: float = 0.08
    train_gap_max: float = 0.25
    overlap: bool = False
    digits: tuple[str, ...] | None = None
    background_groups: bool = False

    @property
    def trains(self) -> bool:
        """Whether events come as trains (`train_max > 1`, or `overlap`)."""
        return self.train_max > 1 or self.overlap

    @property
    def extended(self) -> bool:
        """Whether an option of the harder set is used (recorded in `recipe.json`)."""
        return self.seconds_max is not None or self.trains or self.digits is not None \
            or self.background_groups

    def check(self, backgrounds: str | Path | None) -> None:
        """Raises DatasetError naming every bad or contradictory parameter."""
        problems = self._train_problems(backgrounds) + self._problems(backgrounds)
        if problems:
            raise DatasetError("; ".join(problems) + ".")

    def _train_problems(self, backgrounds: str | Path | None) -> list[str]:
        problems = []
        if self.seconds_max is not None and self.seconds_max < self.seconds:
            problems.append(f"seconds_max={self.seconds_max} < seconds={self.seconds}: "
                            "expected seconds <= seconds_max")
        if self.train_min < 1 or self.train_max < self.train_min:
            problems.append(f"train_min={self.train_min}, train_max={self.train_max}: "
                            "expected 1 <= train_min <= train_max")
        if self.train_gap_min < 0 or self.train_gap_max < self.train_gap_min:
            problems.append(f"train_gap_min={self.train_gap_min}, train_gap_max="
                            f"{self.train_gap_max}: expected 0 <= train_gap_min <= "
                            "train_gap_max")
        if self.background_groups and backgrounds is None:
            problems.append("background_groups needs backgrounds (a folder with one "
                            "sub-folder of background recordings per speaker)")
        return problems

    def _problems(self, backgrounds: str | Path | None) -> list[str]:
        checks = [
            (self.files_per_speaker < 1,
             f"files_per_speaker={self.files_per_speaker}: expected >= 1"),
            (self.seconds <= 0, f"seconds={self.seconds}: expected > 0"),
            (self.events_min < 0 or self.events_max < self.events_min,
             f"events_min={self.events_min}, events_max={self.events_max}: expected "
             "0 <= events_min <= events_max"),
            (self.min_gap < 0, f"min_gap={self.min_gap}: expected >= 0"),
            (self.snr_max < self.snr_min, f"snr_min={self.snr_min} > snr_max={self.snr_max}: "
                                          "expected snr_min <= snr_max"),
            (self.labels not in LABEL_MODES,
             f"labels={self.labels!r}: expected one of {', '.join(LABEL_MODES)}"),
            (self.noise is not None and self.noise not in NOISES,
             f"noise={self.noise!r}: expected one of {', '.join(NOISES)}"),
            (self.sample_rate <= 0, f"sample_rate={self.sample_rate}: expected > 0"),
            (self.noise is not None and backgrounds is not None,
             "noise and backgrounds were both given: coloured noise is the background when "
             "no background folder is given; give one of them"),
        ]
        return [text for bad, text in checks if bad]

    def record(self, fsdd_dir: str | Path, backgrounds: str | Path | None) -> dict[str, Any]:
        """The content of `recipe.json` (the original keys first; the harder set's only
        when one of them is used, so that the original recipe's file is unchanged)."""
        recipe = {"fsdd_dir": str(fsdd_dir), "files_per_speaker": self.files_per_speaker,
                  "seconds": self.seconds, "events_min": self.events_min,
                  "events_max": self.events_max, "min_gap": self.min_gap,
                  "snr_min": self.snr_min, "snr_max": self.snr_max, "labels": self.labels,
                  "backgrounds": None if backgrounds is None else str(backgrounds),
                  "noise": None if backgrounds is not None else (self.noise or "mixed"),
                  "sample_rate": self.sample_rate, "trim_db": self.trim_db,
                  "seed": self.seed, "background_rms": BACKGROUND_RMS}
        if self.extended:
            recipe.update({"seconds_max": self.seconds_max, "train_min": self.train_min,
                           "train_max": self.train_max, "train_gap_min": self.train_gap_min,
                           "train_gap_max": self.train_gap_max, "overlap": self.overlap,
                           "digits": None if self.digits is None else "".join(self.digits),
                           "background_groups": self.background_groups})
        return recipe


def synth_events(fsdd_dir: str | Path, out_dir: str | Path, *, files_per_speaker: int = 10,
                 seconds: float = 10.0, events_min: int = 1, events_max: int = 4,
                 min_gap: float = 0.5, snr_min: float = 0.0, snr_max: float = 20.0,
                 labels: str = "single", backgrounds: str | Path | None = None,
                 noise: str | None = None, sample_rate: int = 8000, trim_db: float = 30.0,
                 seed: int = 0, overwrite: bool = False, seconds_max: float | None = None,
                 train_min: int = 1, train_max: int = 1, train_gap_min: float = 0.08,
                 train_gap_max: float = 0.25, overlap: bool = False,
                 digits: str | Sequence[int | str] | None = None,
                 background_groups: bool = False) -> dict[str, Any]:
    """Writes FSDD digits placed into backgrounds, with their annotations.

    How recordings, events and trains are drawn: see `Recipe`.

    Args:
        fsdd_dir: the FSDD `recordings` folder (`{digit}_{speaker}_{index}.wav`).
        out_dir: the folder to write (must not exist, unless `overwrite`).
        files_per_speaker: recordings per speaker. Defaults to `10`.
        seconds: length of each recording (the shortest with `seconds_max`). Defaults to `10`.
        events_min: fewest events (trains) per recording. Defaults to `1`.
        events_max: most events (trains) per recording (fewer if they do not fit). Defaults to 4.
        min_gap: shortest silence between two events (trains), in seconds. Defaults to 0.5.
        snr_min, snr_max: the range of SNRs in dB. Defaults to `0` and `20`.
        labels: `"single"` (every event is class `"digit"`) or `"digit"` (the spoken digit
            `"0"`..`"9"` is the class). Defaults to `"single"`.
        backgrounds: a folder of background recordings (random stretches, looped when
            short); `None` uses coloured noise. Defaults to `None`.
        noise: `"white"`, `"pink"`, `"brown"` or `"mixed"` (a colour drawn per recording);
            not with `backgrounds`. Defaults to `None` (`"mixed"` without backgrounds).
        sample_rate: output rate in Hz (FSDD is 8000). Defaults to `8000`.
        trim_db: silence threshold of the trimming, in dB below the peak. Defaults to `30`.
        seed: seed of every random draw. Defaults to `0`.
        overwrite: replace an existing folder written by this function. Defaults to `False`.
        seconds_max: each recording's length drawn from `[seconds, seconds_max]`, or `None`.
        train_min, train_max: repetitions in an event train (`1, 1`: single events, the
            original recipe). Defaults to `1` and `1`.
        train_gap_min, train_gap_max: gaps inside a train, in seconds. Defaults to `0.08`
            and `0.25`.
        overlap: let trains of different classes overlap. Defaults to `False`.
        digits: the digits used as events (e.g. `"136"`, `[1, 3, 6]`), or `None`: all.
        background_groups: `backgrounds` holds one sub-folder per group (site, night); the
            `k`-th speaker (sorted) takes its backgrounds from the `k`-th sub-folder
            (sorted) only, so backgrounds never cross a fold either. Defaults to `False`.

    Returns:
        dict `out, files, events, speakers, skipped_events` (events that did not fit).

    Raises:
        DatasetError: for a bad or contradictory parameter, a folder without FSDD
            recordings (of `digits`), an unusable background, too few background groups, a
            digit longer than `seconds`, or an existing output folder; nothing is written
            then.
    """
    recipe = Recipe(files_per_speaker=files_per_speaker, seconds=seconds,
                    events_min=events_min, events_max=events_max, min_gap=min_gap,
                    snr_min=snr_min, snr_max=snr_max, labels=labels, noise=noise,
                    sample_rate=sample_rate, trim_db=trim_db, seed=seed,
                    seconds_max=seconds_max, train_min=train_min, train_max=train_max,
                    train_gap_min=train_gap_min, train_gap_max=train_gap_max,
                    overlap=overlap, digits=digit_set(digits),
                    background_groups=background_groups)
    recipe.check(backgrounds)
    out = Path(out_dir)
    check_out(out, overwrite, SYNTH_EVENTS, inputs=[fsdd_dir, backgrounds])
    rows = _fsdd_rows(fsdd_dir, recipe.digits)
    sources = _speaker_backgrounds(backgrounds, sorted(rows["item"].unique()),
                                   recipe.background_groups)
    mixer = _Mixer(recipe, np.random.default_rng(recipe.seed))
    events: list[dict[str, Any]] = []
    items: list[dict[str, str]] = []
    with staging(out, SYNTH_EVENTS) as tmp:
        for speaker, group in sorted(rows.groupby("item"), key=lambda g: g[0]):
            _write_speaker(tmp, str(speaker), sorted(group["path"]), sources[speaker], mixer,
                           events, items)
        _write_tables(tmp, events, items, trains=recipe.trains)
        (tmp / "recipe.json").write_text(
            json.dumps(recipe.record(fsdd_dir, backgrounds), indent=2) + "\n")
    return {"out": str(out), "files": len(items), "events": len(events),
            "speakers": sorted({i["item"] for i in items}),
            "skipped_events": mixer.skipped}


def _write_speaker(folder: Path, speaker: str, paths: list[str], background: Background,
                   mixer: "_Mixer", events: list[dict[str, Any]],
                   items: list[dict[str, str]]) -> None:
    """Writes the recordings of one speaker into `folder`, adding their events and items."""
    for k in range(mixer.recipe.files_per_speaker):
        name = f"{speaker}_{k:03d}.wav"
        mixture, found = mixer.recording(paths, background)
        events += [{"file": name, **event} for event in found]
        sf.write(folder / name, mixture.astype(np.float32), mixer.recipe.sample_rate,
                 subtype="PCM_16")
        items.append({"file": name, "item": speaker})


SYNTH_EVENTS = Output(kind="a synth-events folder", command="synth-events",
                     markers=("recipe.json",),
                     entries=("recipe.json", "annotations.csv", "events.csv", "items.csv",
                              "*.wav"))
"""What `synth_events` writes (`xval.core.outputs`): only such a folder is replaced."""


def check_out(out: Path, overwrite: bool, output: Output,
              inputs: Sequence[str | os.PathLike[str] | None] = ()) -> None:
    """The output rule for a generated folder: apart from the folders read, and an existing
    one replaced only with `overwrite` when it is `output`'s (its `recipe.json` and the
    files it writes, nothing else).

    Raises:
        DatasetError: naming the folder and what to do.
    """
    if not str(out).strip():
        raise DatasetError("--out is empty; give the folder to write.")
    check_apart(out, [p for p in inputs if p is not None], input_name="the folder read",
                error=DatasetError)
    check_replace(out, output, overwrite=overwrite, error=DatasetError)


@contextlib.contextmanager
def staging(out: Path, output: Output) -> Iterator[Path]:
    """A temporary folder beside `out` that replaces `out` when the block ends without
    an error (and is removed when it raises); the folder replaced is removed by the output
    rule (`remove_output`: only `output`'s own files)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists() and any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "folder")
            os.replace(tmp, out)
            remove_output(old / "folder", output)
            old.rmdir()
        else:
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def digit_set(digits: str | Sequence[int | str] | None) -> tuple[str, ...] | None:
    """`digits` (`"136"`, `"1,3,6"`, `[1, 3, 6]`) as a sorted tuple of digit strings, or
    `None`.

    Raises:
        DatasetError: for anything but digits 0-9.
    """
    if digits is None:
        return None
    text = digits if isinstance(digits, str) else ",".join(str(d) for d in digits)
    chosen = sorted({c for c in text if c not in ", "})
    if not chosen or any(c not in "0123456789" for c in chosen):
        raise DatasetError(f"digits={digits!r}: expected digits 0-9, e.g. '136' or '1,3,6'.")
    return tuple(chosen)


def _fsdd_rows(fsdd_dir: str | Path, digits: tuple[str, ...] | None) -> pd.DataFrame:
    """The FSDD recordings (`path`, `item` = speaker, `label` = digit), of `digits` only."""
    rows, _ = regex_source(fsdd_dir, FSDD_PATTERN)
    if digits is not None:
        rows = rows[rows["label"].astype(str).isin(digits)]
        if not len(rows):
            raise DatasetError(f"digits={''.join(digits)}: no FSDD recording of these digits "
                               f"in {fsdd_dir}; choose digits that are there.")
    return rows


def _speaker_backgrounds(backgrounds: str | Path | None, speakers: list[str],
                         groups: bool) -> dict[str, Background]:
    """Each speaker's backgrounds: the same files for all, the `k`-th group's for the
    `k`-th speaker (`groups`), or none (coloured noise)."""
    if backgrounds is None:
        return dict.fromkeys(speakers, (None, None))
    if not groups:
        files = background_files(backgrounds)
        return dict.fromkeys(speakers, (None, files))
    found = _background_groups(backgrounds)
    if len(found) < len(speakers):
        raise DatasetError(
            f"background_groups: {backgrounds} has {len(found)} group folder(s) for "
            f"{len(speakers)} speakers; give one sub-folder of backgrounds per speaker "
            "(site, night), or leave background_groups off.")
    return {speaker: (name, files) for speaker, (name, files) in zip(speakers, found)}


class _Mixer:
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



def _background_groups(folder: str | Path) -> list[tuple[str, list[Path]]]:
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


def _write_tables(folder: Path, events: list[dict[str, Any]], items: list[dict[str, str]],
                  trains: bool = False) -> None:
    """Writes `events.csv` (with a `train` column for event trains), `items.csv` and the
    wide `annotations.csv`."""
    table = pd.DataFrame(events, columns=["file", "start_sample", "end_sample", "label",
                                          "snr_db", "source", "background"]
                         + (["train"] if trains else []))
    table.to_csv(folder / "events.csv", index=False)
    pd.DataFrame(items, columns=["file", "item"]).to_csv(folder / "items.csv", index=False)
    wide: list[dict[str, Any]] = []
    for item in items:
        row: dict[str, Any] = {"File name": item["file"]}
        mine = table[table["file"] == item["file"]]
        for k, event in enumerate(mine.itertuples(index=False), start=1):
            row[f"Voice start sample ({k})"] = event.start_sample
            row[f"Voice end sample ({k})"] = event.end_sample
            row[f"Label ({k})"] = event.label
        wide.append(row)
    most = max((len(table[table["file"] == i["file"]]) for i in items), default=0)
    columns = ["File name"]
    for k in range(1, most + 1):
        columns += [f"Voice start sample ({k})", f"Voice end sample ({k})", f"Label ({k})"]
    frame = pd.DataFrame(wide, columns=columns)
    for column in columns[1:]:
        if "sample" in column:
            frame[column] = frame[column].astype("Int64")
    frame.to_csv(folder / "annotations.csv", index=False)
