"""`Recipe`: the parameters of a synthetic event dataset (`recipe.json`), checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xval.core.errors import DatasetError

NOISES = ("white", "pink", "brown", "mixed")


LABEL_MODES = ("single", "digit")


SINGLE_LABEL = "digit"


# Background RMS before the events are added (-26 dBFS): room for 20 dB SNR events.
BACKGROUND_RMS = 0.05


PEAK = 0.99


Background = tuple[str | None, list[Path] | None]
"""A speaker's backgrounds: `(group name or None, background files or None for noise)`."""


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
