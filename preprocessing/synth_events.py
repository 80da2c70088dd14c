"""A sound event detection dataset: FSDD spoken digits placed into longer backgrounds.

Every output recording is a background (coloured noise, or a random stretch of a given
background file) with a few spoken digits of ONE speaker added at known sample ranges and
known signal-to-noise ratios, so that the speaker is the foldable item: no speaker's voice
is on both sides of a fold. `python -m preprocessing synth-events` writes:

    OUT/<speaker>_<k>.wav   the recordings (16-bit PCM)
    OUT/annotations.csv     wide sample-range layout: File name, Voice start sample (1),
                            Voice end sample (1), Label (1), ... (`digit`, or the digit)
    OUT/events.csv          the same events, one row each, with their SNR and source file
    OUT/items.csv           file -> item (the FSDD speaker)
    OUT/recipe.json         the parameters, so that the folder can be regenerated
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from preprocessing.audio import AUDIO_EXTENSIONS, load_audio
from preprocessing.sources import FSDD_PATTERN, regex_source
from xval.core.errors import DatasetError

NOISES = ("white", "pink", "brown", "mixed")
LABEL_MODES = ("single", "digit")
SINGLE_LABEL = "digit"
# Background RMS before the events are added (-26 dBFS): room for 20 dB SNR events.
BACKGROUND_RMS = 0.05
PEAK = 0.99


def coloured_noise(n_samples, *, colour, rng, sample_rate=8000, corner_hz=20.0):
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


def synth_events(fsdd_dir, out_dir, *, files_per_speaker=10, seconds=10.0, events_min=1,
                 events_max=4, min_gap=0.5, snr_min=0.0, snr_max=20.0, labels="single",
                 backgrounds=None, noise=None, sample_rate=8000, trim_db=30.0, seed=0,
                 overwrite=False):
    """Writes FSDD digits placed into backgrounds, with their annotations.

    For each speaker (sorted) and each of `files_per_speaker` recordings: a background of
    `seconds`; a number of events drawn uniformly from `[events_min, events_max]`; that
    many recordings of the speaker drawn without replacement, each trimmed of its leading
    and trailing silence (`librosa.effects.trim` at `trim_db`, 8 ms frames), so that the annotated
    sample range is where the digit's energy is; positions drawn uniformly among those
    that keep events at least `min_gap` seconds apart and inside the recording; each
    event scaled to an SNR drawn uniformly from `[snr_min, snr_max]` dB: the ratio of the
    event's mean power to the background's mean power over the whole recording (every
    background is first scaled to the RMS `BACKGROUND_RMS`). A recording whose peak
    would clip is scaled down as a whole, which keeps the SNRs.

    Args:
        fsdd_dir: the FSDD `recordings` folder (`{digit}_{speaker}_{index}.wav`).
        out_dir: the folder to write (must not exist, unless `overwrite`).
        files_per_speaker: recordings per speaker. Defaults to `10`.
        seconds: length of each recording. Defaults to `10.0`.
        events_min: fewest events per recording. Defaults to `1`.
        events_max: most events per recording (fewer when they do not fit). Defaults to `4`.
        min_gap: shortest silence between two events, in seconds. Defaults to `0.5`.
        snr_min: lowest SNR in dB. Defaults to `0.0`.
        snr_max: highest SNR in dB. Defaults to `20.0`.
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

    Returns:
        dict `out, files, events, speakers, skipped_events` (events that did not fit).

    Raises:
        DatasetError: for a bad or contradictory parameter, a folder without FSDD
            recordings, an unusable background, a digit longer than `seconds`, or an
            existing output folder; nothing is written then.
    """
    _check(files_per_speaker=files_per_speaker, seconds=seconds, events_min=events_min,
           events_max=events_max, min_gap=min_gap, snr_min=snr_min, snr_max=snr_max,
           labels=labels, noise=noise, backgrounds=backgrounds, sample_rate=sample_rate)
    out = Path(out_dir)
    if out.exists():
        if not overwrite:
            raise DatasetError(f"{out} exists; choose another --out or pass --overwrite.")
        if not (out / "recipe.json").is_file():
            raise DatasetError(
                f"{out} exists and was not written by synth-events (no recipe.json); "
                "--overwrite only replaces a synth-events folder. Choose another --out.")
    rows, _ = regex_source(fsdd_dir, FSDD_PATTERN)
    background_files = _background_files(backgrounds) if backgrounds is not None else None
    noise = noise or "mixed"
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    gap = int(round(min_gap * sample_rate))
    digits, events, items, skipped_events = {}, [], [], 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for speaker, group in sorted(rows.groupby("item"), key=lambda g: g[0]):
            paths = sorted(group["path"])
            for k in range(files_per_speaker):
                name = f"{speaker}_{k:03d}.wav"
                if background_files is not None:
                    background, source = _background(background_files, n, sample_rate, rng)
                else:
                    source = noise if noise != "mixed" else str(rng.choice(NOISES[:3]))
                    background = BACKGROUND_RMS * coloured_noise(
                        n, colour=source, rng=rng, sample_rate=sample_rate)
                count = int(rng.integers(events_min, events_max + 1))
                chosen = rng.choice(len(paths), size=min(count, len(paths)), replace=False)
                clips = [(paths[i], _digit(paths[i], sample_rate, trim_db, digits, seconds))
                         for i in chosen]
                while sum(len(c) for _, c in clips) + gap * (len(clips) - 1) > n:
                    clips.pop()
                    skipped_events += 1
                slack = n - sum(len(c) for _, c in clips) - gap * (len(clips) - 1)
                offsets = np.sort(rng.integers(0, slack + 1, size=len(clips)))
                mixture = background.copy()
                position = 0
                for (path, clip), offset in zip(clips, offsets):
                    start = int(offset) + position
                    end = start + len(clip)
                    position += len(clip) + gap
                    snr = float(rng.uniform(snr_min, snr_max))
                    gain = BACKGROUND_RMS * np.sqrt(10 ** (snr / 10) / np.mean(clip ** 2))
                    mixture[start:end] += gain * clip
                    digit = Path(path).name.split("_")[0]
                    events.append({"file": name, "start_sample": start, "end_sample": end,
                                   "label": digit if labels == "digit" else SINGLE_LABEL,
                                   "snr_db": round(snr, 3), "source": Path(path).name,
                                   "background": source})
                peak = np.max(np.abs(mixture))
                if peak > PEAK:
                    mixture *= PEAK / peak
                sf.write(tmp / name, mixture.astype(np.float32), sample_rate, subtype="PCM_16")
                items.append({"file": name, "item": speaker})
        _write_tables(tmp, events, items)
        recipe = {"fsdd_dir": str(fsdd_dir), "files_per_speaker": files_per_speaker,
                  "seconds": seconds, "events_min": events_min, "events_max": events_max,
                  "min_gap": min_gap, "snr_min": snr_min, "snr_max": snr_max,
                  "labels": labels, "backgrounds": None if backgrounds is None
                  else str(backgrounds), "noise": None if backgrounds is not None else noise,
                  "sample_rate": sample_rate, "trim_db": trim_db, "seed": seed,
                  "background_rms": BACKGROUND_RMS}
        (tmp / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return {"out": str(out), "files": len(items), "events": len(events),
            "speakers": sorted({i["item"] for i in items}), "skipped_events": skipped_events}


def _check(*, files_per_speaker, seconds, events_min, events_max, min_gap, snr_min, snr_max,
           labels, noise, backgrounds, sample_rate):
    problems = []
    if files_per_speaker < 1:
        problems.append(f"files_per_speaker={files_per_speaker}: expected >= 1")
    if seconds <= 0:
        problems.append(f"seconds={seconds}: expected > 0")
    if events_min < 0 or events_max < events_min:
        problems.append(f"events_min={events_min}, events_max={events_max}: expected "
                        "0 <= events_min <= events_max")
    if min_gap < 0:
        problems.append(f"min_gap={min_gap}: expected >= 0")
    if snr_max < snr_min:
        problems.append(f"snr_min={snr_min} > snr_max={snr_max}: expected snr_min <= snr_max")
    if labels not in LABEL_MODES:
        problems.append(f"labels={labels!r}: expected one of {', '.join(LABEL_MODES)}")
    if noise is not None and noise not in NOISES:
        problems.append(f"noise={noise!r}: expected one of {', '.join(NOISES)}")
    if sample_rate <= 0:
        problems.append(f"sample_rate={sample_rate}: expected > 0")
    if noise is not None and backgrounds is not None:
        problems.append("noise and backgrounds were both given: coloured noise is the "
                        "background when no background folder is given; give one of them")
    if problems:
        raise DatasetError("; ".join(problems) + ".")


def _digit(path, sample_rate, trim_db, cache, seconds):
    if path not in cache:
        import librosa

        y, _ = load_audio(path, sample_rate=sample_rate)
        # 8 ms frames, 2 ms hops: librosa's default 2048-sample frames would keep up to a
        # quarter of a second of silence at 8 kHz inside the annotated range.
        frame = max(16, sample_rate // 125)
        trimmed, _ = librosa.effects.trim(y, top_db=trim_db, frame_length=frame,
                                          hop_length=frame // 4)
        if len(trimmed) > seconds * sample_rate:
            raise DatasetError(f"{path} lasts {len(trimmed) / sample_rate:.2f} s after trimming, "
                               f"more than seconds={seconds}; give longer recordings.")
        cache[path] = trimmed.astype(np.float64)
    return cache[path]


def _background_files(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"Background folder {str(folder)!r} does not exist.")
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise DatasetError(f"No audio files in the background folder {folder}.")
    return files


def _background(files, n, sample_rate, rng):
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


def _write_tables(folder, events, items):
    table = pd.DataFrame(events, columns=["file", "start_sample", "end_sample", "label",
                                          "snr_db", "source", "background"])
    table.to_csv(folder / "events.csv", index=False)
    pd.DataFrame(items, columns=["file", "item"]).to_csv(folder / "items.csv", index=False)
    wide = []
    for item in items:
        row = {"File name": item["file"]}
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
