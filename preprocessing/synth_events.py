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
    OUT/recipe.json         the parameters, so that the folder can be regenerated"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from preprocessing.mixing import Mixer, background_files, background_groups, coloured_noise
from preprocessing.recipe import BACKGROUND_RMS, Background, Recipe, digit_set
from preprocessing.sources import FSDD_PATTERN, regex_source
from preprocessing.staging import check_out, staging
from xval.core.errors import DatasetError
from xval.core.outputs import OwnedFolder

__all__ = ["BACKGROUND_RMS", "background_files", "check_out", "coloured_noise", "staging",
           "synth_events", "write_tables"]

SYNTH_EVENTS = OwnedFolder(kind="a synth-events folder", command="synth-events",
                     markers=("recipe.json",),
                     entries=("recipe.json", "annotations.csv", "events.csv", "items.csv",
                              "*.wav"))
"""What `synth_events` writes (`xval.core.outputs`): only such a folder is replaced."""


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
    mixer = Mixer(recipe, np.random.default_rng(recipe.seed))
    events: list[dict[str, Any]] = []
    items: list[dict[str, str]] = []
    with staging(out, SYNTH_EVENTS) as tmp:
        for speaker, group in sorted(rows.groupby("item"), key=lambda g: g[0]):
            _write_speaker(tmp, str(speaker), sorted(group["path"]), sources[speaker], mixer,
                           events, items)
        write_tables(tmp, events, items, trains=recipe.trains)
        (tmp / "recipe.json").write_text(
            json.dumps(recipe.record(fsdd_dir, backgrounds), indent=2) + "\n")
    return {"out": str(out), "files": len(items), "events": len(events),
            "speakers": sorted({i["item"] for i in items}),
            "skipped_events": mixer.skipped}


def _write_speaker(folder: Path, speaker: str, paths: list[str], background: Background,
                   mixer: Mixer, events: list[dict[str, Any]],
                   items: list[dict[str, str]]) -> None:
    """Writes the recordings of one speaker into `folder`, adding their events and items."""
    for k in range(mixer.recipe.files_per_speaker):
        name = f"{speaker}_{k:03d}.wav"
        mixture, found = mixer.recording(paths, background)
        events += [{"file": name, **event} for event in found]
        sf.write(folder / name, mixture.astype(np.float32), mixer.recipe.sample_rate,
                 subtype="PCM_16")
        items.append({"file": name, "item": speaker})


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
    found = background_groups(backgrounds)
    if len(found) < len(speakers):
        raise DatasetError(
            f"background_groups: {backgrounds} has {len(found)} group folder(s) for "
            f"{len(speakers)} speakers; give one sub-folder of backgrounds per speaker "
            "(site, night), or leave background_groups off.")
    return {speaker: (name, files) for speaker, (name, files) in zip(speakers, found)}


def write_tables(folder: Path, events: list[dict[str, Any]], items: list[dict[str, str]],
                  trains: bool = False) -> None:
    """Writes `events.csv` (with a `train` column for event trains), `items.csv` and the
    wide `annotations.csv` (also `preprocessing.synth_scenes`'s tables)."""
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
