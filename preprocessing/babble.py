"""Reverberant multi-talker babble, one folder per site: real recorded backgrounds for
`synth_events(..., background_groups=True)` (`python -m preprocessing synth-babble`).

The talkers (the parent folder of each speech file, e.g. RAVDESS's `Actor_01`), sorted, are
split into `groups` contiguous, disjoint pools, so that no voice of one site's babble is in
another's; each site is also one simulated room. Writes:

    OUT/<group>/babble_<k>.wav   the babble
    OUT/backgrounds.csv          file, group, talkers, room size, rt60
    OUT/recipe.json              the parameters
"""

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import fftconvolve

from preprocessing.audio import load_audio
from preprocessing.synth_events import background_files, check_out, staging
from xval.core.errors import DatasetError
from xval.core.optional import EXTRAS
from xval.core.outputs import OwnedFolder

BABBLE = OwnedFolder(kind="a synth-babble folder", command="synth-babble",
                markers=("recipe.json",),
                entries=("recipe.json", "backgrounds.csv", "site_*", "site_*/babble_*.wav"))
"""What `babble_backgrounds` writes (`xval.core.outputs`): only such a folder is replaced."""


@dataclasses.dataclass
class BabbleRecipe:
    """How `babble_backgrounds` mixes its files (see its arguments, of the same names)."""

    groups: int = 6
    files_per_group: int = 2
    seconds: float = 60.0
    talkers_min: int = 3
    talkers_max: int = 4
    pause_max: float = 1.0
    reverb: bool = True
    rt60_min: float = 0.3
    rt60_max: float = 0.9
    sample_rate: int = 8000
    seed: int = 0

    def check(self) -> None:
        """Raises DatasetError naming every bad parameter."""
        checks = [
            (self.groups < 1 or self.files_per_group < 1,
             f"groups={self.groups}, files_per_group={self.files_per_group}: expected >= 1"),
            (self.seconds <= 0 or self.pause_max < 0,
             f"seconds={self.seconds}, pause_max={self.pause_max}: expected seconds > 0 and "
             "pause_max >= 0"),
            (self.talkers_min < 1 or self.talkers_max < self.talkers_min,
             f"talkers_min={self.talkers_min}, talkers_max={self.talkers_max}: expected "
             "1 <= talkers_min <= talkers_max"),
            (self.reverb and not 0 < self.rt60_min <= self.rt60_max,
             f"rt60_min={self.rt60_min}, rt60_max={self.rt60_max}: expected "
             "0 < rt60_min <= rt60_max"),
            (self.sample_rate <= 0, f"sample_rate={self.sample_rate}: expected > 0"),
        ]
        problems = [text for bad, text in checks if bad]
        if problems:
            raise DatasetError("; ".join(problems) + ".")


@dataclasses.dataclass
class Room:
    """One site's simulated room: its size (m), reverberation time (s) and the impulse
    response from each talker's place to the microphone (`None`s without reverb)."""

    size: list[float] | None
    rt60: float | None
    responses: list[np.ndarray] | None


def babble_backgrounds(speech_dir: str | Path, out_dir: str | Path, *, groups: int = 6,
                       files_per_group: int = 2, seconds: float = 60.0, talkers_min: int = 3,
                       talkers_max: int = 4, pause_max: float = 1.0, reverb: bool = True,
                       rt60_min: float = 0.3, rt60_max: float = 0.9, sample_rate: int = 8000,
                       seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """Writes reverberant multi-talker babble, one sub-folder per group (site).

    With `reverb`, each group is a shoebox room (4-10 m by 4-10 m by 2.5-3.5 m) with a
    reverberation time drawn from `[rt60_min, rt60_max]` seconds, one microphone and one
    place per talker, simulated by pyroomacoustics' image sources (no ray tracing, so the
    output is reproducible). Each file mixes a number of talkers drawn from `[talkers_min,
    talkers_max]` (at most the pool): each talker's utterances, in a random order, with
    pauses of up to `pause_max` seconds between them and a gain drawn from -6 to 0 dB, from
    a random starting point, so that the number of voices speaking changes over time. Files
    are written at `sample_rate`, 16-bit, peak at -3 dBFS (the level does not matter:
    `synth_events` scales every background).

    Args:
        speech_dir: a folder of speech files, one sub-folder per talker.
        out_dir: the folder to write (must not exist, unless `overwrite`).
        groups: number of groups (sites). Defaults to `6`.
        files_per_group: babble files per group. Defaults to `2`.
        seconds: length of every file. Defaults to `60.0`.
        talkers_min: fewest talkers in a file. Defaults to `3`.
        talkers_max: most talkers in a file. Defaults to `4`.
        pause_max: longest pause between a talker's utterances, seconds. Defaults to `1.0`.
        reverb: simulate a room per group. Defaults to `True`.
        rt60_min: shortest reverberation time, seconds. Defaults to `0.3`.
        rt60_max: longest reverberation time, seconds. Defaults to `0.9`.
        sample_rate: output rate in Hz. Defaults to `8000`.
        seed: seed of every random draw. Defaults to `0`.
        overwrite: replace an existing folder written by this function. Defaults to `False`.

    Returns:
        dict `out, files, groups` (group name -> its talkers).

    Raises:
        DatasetError: for a bad parameter, fewer talkers than `groups * talkers_min`, a
            missing pyroomacoustics (the `[augment]` extra) with `reverb`, or an existing
            output folder.
    """
    recipe = BabbleRecipe(groups=groups, files_per_group=files_per_group, seconds=seconds,
                          talkers_min=talkers_min, talkers_max=talkers_max,
                          pause_max=pause_max, reverb=reverb, rt60_min=rt60_min,
                          rt60_max=rt60_max, sample_rate=sample_rate, seed=seed)
    recipe.check()
    out = Path(out_dir)
    check_out(out, overwrite, BABBLE, inputs=[speech_dir])
    by_talker = _talkers(speech_dir, recipe)
    rooms = _pyroomacoustics() if reverb else None
    rng = np.random.default_rng(seed)
    mixer = _Babble(recipe, rng, by_talker)
    rows: list[dict[str, Any]] = []
    pools: dict[str, list[str]] = {}
    with staging(out, BABBLE) as tmp:
        for g, pool in enumerate(np.array_split(np.array(sorted(by_talker)), groups)):
            group = f"site_{g}"
            pools[group] = [str(t) for t in pool]
            (tmp / group).mkdir()
            room = _room(rooms, recipe, rng, len(pool))
            for k in range(files_per_group):
                name = f"{group}/babble_{k:02d}.wav"
                mix, chosen = mixer.file(pools[group], room)
                sf.write(tmp / name, mix.astype(np.float32), sample_rate, subtype="PCM_16")
                rows.append({"file": name, "group": group, "talkers": " ".join(chosen),
                             "room_size": None if room.size is None
                             else "x".join(f"{v:.2f}" for v in room.size),
                             "rt60": None if room.rt60 is None else round(room.rt60, 3)})
        pd.DataFrame(rows).to_csv(tmp / "backgrounds.csv", index=False)
        (tmp / "recipe.json").write_text(json.dumps(
            {"speech_dir": str(speech_dir), **dataclasses.asdict(recipe), "pools": pools},
            indent=2) + "\n")
    return {"out": str(out), "files": len(rows), "groups": pools}


def _talkers(speech_dir: str | Path, recipe: BabbleRecipe) -> dict[str, list[Path]]:
    """Talker (parent folder name) -> its speech files.

    Raises:
        DatasetError: for fewer talkers than `groups * talkers_min`.
    """
    by_talker: dict[str, list[Path]] = {}
    for path in background_files(speech_dir):
        by_talker.setdefault(path.parent.name, []).append(path)
    need = recipe.groups * recipe.talkers_min
    if len(by_talker) < need:
        raise DatasetError(
            f"{speech_dir} has {len(by_talker)} talker folder(s); {recipe.groups} groups of "
            f"at least {recipe.talkers_min} disjoint talkers need {need}. Give more talkers "
            "(one sub-folder each), or fewer --groups or --talkers-min.")
    return by_talker


def _pyroomacoustics() -> Any:
    """The pyroomacoustics module (optional: the `[augment]` extra).

    Raises:
        DatasetError: when it is not installed.
    """
    try:
        return importlib.import_module("pyroomacoustics")
    except ImportError as e:
        raise DatasetError(f"reverb needs pyroomacoustics: {EXTRAS['augment'].install} "
                           "(or pass reverb=False / --no-reverb).") from e


def _room(pra: Any, recipe: BabbleRecipe, rng: np.random.Generator, talkers: int) -> Room:
    """A site's room and the impulse responses of its `talkers` places (no room when
    `pra` is `None`)."""
    if pra is None:
        return Room(None, None, None)
    size = [float(rng.uniform(4, 10)), float(rng.uniform(4, 10)), float(rng.uniform(2.5, 3.5))]
    rt60 = float(rng.uniform(recipe.rt60_min, recipe.rt60_max))
    absorption, order = pra.inverse_sabine(rt60, size)
    room = pra.ShoeBox(size, fs=recipe.sample_rate, materials=pra.Material(absorption),
                       max_order=min(order, 12), use_rand_ism=False)
    box = np.array(size)
    for _ in range(talkers):
        room.add_source(list(rng.uniform(0.5, box - 0.5)))
    room.add_microphone(list(rng.uniform(0.5, box - 0.5)))
    room.compute_rir()
    return Room(size, rt60, [np.asarray(r, dtype=np.float64) for r in room.rir[0]])


class _Babble:
    """Mixes babble files from talkers' utterances (read once, cached).

    Args:
        recipe: the parameters.
        rng: the generator of every draw.
        by_talker: talker -> speech files.
    """

    def __init__(self, recipe: BabbleRecipe, rng: np.random.Generator,
                 by_talker: dict[str, list[Path]]) -> None:
        self.recipe = recipe
        self.rng = rng
        self.by_talker = by_talker
        self.cache: dict[Path, np.ndarray] = {}
        self.n = int(round(recipe.seconds * recipe.sample_rate))

    def speech(self, path: Path) -> np.ndarray:
        if path not in self.cache:
            self.cache[path] = load_audio(path, sample_rate=self.recipe.sample_rate)[0]
        return self.cache[path]

    def file(self, pool: list[str], room: Room) -> tuple[np.ndarray, list[str]]:
        """One babble file of talkers drawn from `pool`, and the talkers."""
        rng, n = self.rng, self.n
        count = int(rng.integers(self.recipe.talkers_min,
                                 min(self.recipe.talkers_max, len(pool)) + 1))
        chosen = np.sort(rng.choice(len(pool), size=count, replace=False))
        mix = np.zeros(n)
        for t in chosen:
            voice = _unit(self.voice(pool[t]))
            if room.responses is not None:
                voice = _unit(fftconvolve(voice, room.responses[t])[:n])
            mix[:len(voice)] += voice * 10 ** (rng.uniform(-6, 0) / 20)
        mix *= 10 ** (-3 / 20) / max(np.max(np.abs(mix)), 1e-9)
        return mix, [pool[t] for t in chosen]

    def voice(self, talker: str) -> np.ndarray:
        """`n` samples of one talker: utterances in a random order with random pauses and
        gains, from a random starting point."""
        rng, n, rate = self.rng, self.n, self.recipe.sample_rate
        utterances = self.by_talker[talker]
        stream: list[np.ndarray] = []
        length = 0
        target = n + int(rng.integers(0, 5 * rate))
        while length < target:
            y = self.speech(utterances[int(rng.integers(len(utterances)))])
            pause = np.zeros(int(rng.uniform(0, self.recipe.pause_max) * rate))
            stream += [y * 10 ** (rng.uniform(-6, 0) / 20), pause]
            length += len(y) + len(pause)
        joined = np.concatenate(stream)
        return joined[length - n:][:n] if length > n else joined


def _unit(y: np.ndarray) -> np.ndarray:
    """`y` scaled to RMS 1."""
    return y / max(np.sqrt(np.mean(y ** 2)), 1e-9)
