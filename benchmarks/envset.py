"""An environmental-sound set built only from what Debian packages ship.

Downloads a fixed list of Debian `main` packages (games and educational programs with real
recorded sound effects and ambiences) with `apt-get download` (no root install), unpacks
their audio with `dpkg-deb`, labels files by the explicit file-name rules of `SOURCES`
below (one list of regular expressions per package and class), drops exact and near
duplicates (the same recording shipped twice, in one package or in two), cuts recordings
longer than `--max-seconds` into clips, and writes

    OUT/<class>/<item>__<name>.wav      mono PCM, --sample-rate (22,050 Hz)
    OUT/manifest.csv                    path,label,item,clip,source_package,licence,...
    OUT/licences/<package>.copyright    each package's Debian copyright file

Items are packages (one game's sounds often come from one sound designer or one library:
they must stay on one side of a fold); clips are source recordings, or source recording
plus index for a long recording cut into several clips. Nothing is downloaded at run time
of the project; this script is run once by hand:

    python -m benchmarks.envset --out data/raw/envset
    python -m preprocessing manifest data/raw/envset/manifest.csv \\
        --item-column item --clip-column clip --out envset

The classes, counts, licences and limits are in docs/preprocessing.md ("An environmental
set from packages").
"""

import argparse
import csv
import hashlib
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import scipy.signal
import soundfile as sf

AUDIO = (".ogg", ".wav", ".flac")
MANIFEST_COLUMNS = ("path", "label", "item", "clip", "source_package", "licence",
                    "source_file", "start_seconds", "seconds", "source_rate")


@dataclass(frozen=True)
class Source:
    """One Debian package: its licence (read from its copyright file) and its class rules.

    `rules` maps a class to a regular expression searched (case-insensitively) in each
    audio file's path inside the package; the first class whose expression matches wins.
    """

    package: str
    licence: str
    rules: dict[str, str]


# Reviewed by hand: every expression names the files it takes; nothing else is taken.
SOURCES: tuple[Source, ...] = (
    Source("scorched3d-data", "GPL-2+ (apoc mod: CC-BY-SA-3.0)", {
        "bird": r"/wav/misc/(birdchirp\d|birds\d|gull\d|rooster)\.wav$",
        "canine": r"/wav/misc/(dog\d?|wolf)\.wav$",
        "livestock": r"/wav/misc/(cows|moo|sheep)\.wav$",
        "rain": r"/wav/misc/rain\.wav$",
        "water": r"/wav/misc/(oceanwaves|splash)\.wav$",
        "engine": r"/wav/misc/(cessna|helicopter|f16_\d|f18_\d|jet|apache_\d|t38)\.wav$",
        "explosion": r"/wav/explosions/(exp|small|medium|large|xlarge)\.wav$",
        "crowd": r"/wav/misc/cheeringloop\.wav$",
    }),
    Source("wesnoth-1.16-data", "GPL-2+", {
        "bird": r"/ambient/birds\d\.ogg$",
        "fire": r"/ambient/campfire\.ogg$",
        "canine": r"/wolf-(growl|die)-\d\.ogg$",
        "livestock": r"/horse-(canter|elf-canter|die|hit-\d)\.(ogg|wav)$",
        "explosion": r"/explosion\.ogg$",
    }),
    Source("flare-game", "CC-BY-SA-3.0+", {
        "bird": r"/(bird_twitter_loop|forest_owl_loop|raven_loop)\.ogg$",
        "rain": r"/rain\.ogg$",
        "wind": r"/(wind_ambient|wind_loop|cave_wind_loop)\.ogg$",
        "water": r"/(river_loop|cave_droplets_loop)\.ogg$",
        "fire": r"/(open_fire|open_fire_loop)\.ogg$",
        "footsteps": r"/step_(cloth|leather|metal|echo)\d\.ogg$",
    }),
    Source("megaglest-data", "CC-BY-SA-3.0", {
        "bird": r"/tilesets/[^/]+/sounds/(owl|hawk|rooster|chicken)\.(ogg|wav)$"
                r"|/units/chicken/sounds/",
        "canine": r"/tilesets/[^/]+/sounds/wolf\.(ogg|wav)$",
        "livestock": r"/commondata/sounds/(cow|pig)_[a-z]+\d\.wav$"
                     r"|/units/(sheep|bull|wild_sow)/sounds/",
        "rain": r"/tilesets/[^/]+/sounds/rain\.(ogg|wav)$",
        "wind": r"/tilesets/[^/]+/sounds/wind\.(ogg|wav)$",
        "water": r"/water_sounds/water\d\.(ogg|wav)$",
        "fire": r"/wicker_fire\.(ogg|wav)$",
    }),
    Source("tuxpaint-stamps-default", "GPL-2", {
        "bird": r"/stamps/animals/birds/(?![a-z_]*_(desc|name))[a-z_]+\.ogg$",
        "canine": r"/stamps/animals/mammals/dogs/(dog|fox)\.ogg$",
        "livestock": r"/stamps/animals/mammals/(bovines/(bull|cow|cow_white|goat|ram|sheep"
                     r"|sheep_lamb)|equines/(donkey|horse)|pig)\.ogg$",
        "engine": r"/stamps/vehicles/emergency/firetruck\.ogg$",
    }),
    Source("qabcs-data", "GPL-3+", {
        "bird": r"/noises/(bird|crow|duck|eagle-owl|goose|owl|pheasant|rooster|sparrow|stork"
                r"|wood_grouse|guinea_fowl|quail|heron|pelican)\.ogg$",
        "canine": r"/noises/(dog|wolf)\.ogg$",
        "livestock": r"/noises/(calf|cow|foal|horse|pig|sheep|yak)\.ogg$",
        "fire": r"/noises/fire\.ogg$",
        "engine": r"/noises/(airplane|excavator|helicopter|tractor)\.ogg$",
    }),
    Source("scratch", "CC-BY-SA-3.0 (Media/*)", {
        "bird": r"/Sounds/Animal/(Bird|Duck|Goose|Owl|Rooster)\.wav$",
        "canine": r"/Sounds/Animal/(Dog\d|WolfHowl)\.wav$",
        "livestock": r"/Sounds/Animal/(Horse|HorseGallop)\.wav$",
        "water": r"/Sounds/Effects/(Bubbles|Ripples|Plunge)\.wav$",
        "engine": r"/Sounds/Effects/(CarPassing|MotorcyclePassing)\.wav$",
        "footsteps": r"/Sounds/Human/Footsteps-\d\.wav$",
        "crowd": r"/Sounds/Human/PartyNoise\.wav$",
    }),
    Source("lugaru-data", "CC-BY-SA-3.0 (Data/*)", {
        "bird": r"/Sounds/Hawk\.ogg$",
        "canine": r"/Sounds/(Bark\d?|BarkGrowl|Growl\d?|Snarl\d?)\.ogg$",
        "wind": r"/Sounds/Wind\.ogg$",
        "fire": r"/Sounds/Fire\.ogg$",
        "footsteps": r"/Sounds/FootStep(Grass|Snow|Stone)\d\.ogg$",
    }),
    Source("minetest-data", "CC-BY-SA-3.0 (sounds; doors: CC-BY-3.0)", {
        "footsteps": r"/default_(dirt|grass|gravel|hard|ice|metal|sand|snow|wood)_footstep"
                     r"(\.\d)?\.ogg$",
        "water": r"/env_sounds_water\.\d\.ogg$",
        "fire": r"/fire_(fire\.\d|large|small)\.ogg$",
        "explosion": r"/tnt_explode\.ogg$",
    }),
    Source("ardentryst", "CC-BY-SA-3.0", {
        "rain": r"/Rain_Loop\.ogg$",
        "wind": r"/cavewind\.ogg$",
        "fire": r"/fire_loop\.ogg$",
        "footsteps": r"/(NYX|PYR)_STEP_[A-Z]+\d\.ogg$",
    }),
    Source("lincity-ng-data", "GPL-2+ (sound effects also CC-BY-SA-2.0)", {
        "water": r"/(Water\d|ParklandLake\d)\.wav$",
        "fire": r"/Fire\d\.wav$",
        "engine": r"/TraficHigh\d\.wav$",
        "explosion": r"/RocketExplosion\d\.wav$",
        "crowd": r"/SportsCroud\d\.wav$",
    }),
    Source("btanks-data", "GPL-2 with the Battle Tanks exception", {
        "explosion": r"/(building-explosion\d|explosion|nuke-explosion|vehicle-explosion\d?)"
                     r"\.ogg$",
        "engine": r"/(engine-start|helicopter|tank-move|vehicle-sound)\.ogg$",
        "fire": r"/sounds/fire\.ogg$",
        "footsteps": r"/man-steps\.ogg$",
        "livestock": r"/sounds/cow\.ogg$",
    }),
    Source("supertux-data", "GPL-3+ (sounds: GPL-2+ or CC-BY-SA-3.0)", {
        "rain": r"/sounds/rain\.wav$",
        "water": r"/sounds/(waterfall|splash)\.(wav|ogg)$",
        "explosion": r"/sounds/explosion\.wav$",
        "fire": r"/sounds/fire\.ogg$",
    }),
    Source("searchandrescue-data", "GPL", {
        "engine": r"/(helicopter_engine_(inside|outside\d?|start|shutdown)|(jet_)?engine_"
                  r"(inside\d?|outside|start\d?|shutdown\d?))\.wav$",
        "water": r"/splash_(aircraft|human)\.wav$",
    }),
    Source("etw-data", "GPL-2+", {
        "crowd": r"/crowd/crowd\d+\.wav$",
        "engine": r"/snd/engine\.wav$",
        "canine": r"/snd/dog\.wav$",
    }),
    Source("crossfire-client", "GPL-2+ (some sounds from Wesnoth)", {
        "footsteps": r"/step_lth\d\.(ogg|wav)$",
        "explosion": r"/Explosion\.wav$",
    }),
    Source("micropolis-data", "GPL-3+", {
        "explosion": r"/sounds/explosion-(high|hi|low)\.wav$",
    }),
    Source("bzflag-data", "LGPL-2.1 or MPL", {
        "explosion": r"/bzflag/explosion\.wav$",
    }),
    Source("madbomber-data", "GPL-2", {
        "explosion": r"/sounds/(big)?explosion\.wav$",
    }),
    Source("enemylines7", "GPL-2", {
        "explosion": r"/explosion_(plane|building)\.ogg$",
    }),
    Source("simutrans-pak64", "Artistic-1.0", {
        "explosion": r"/pak/sound/explosion\.wav$",
    }),
    Source("caveexpress-data", "CC-BY-SA-4.0 (*.ogg)", {
        "water": r"/sounds/(water-impact|water-leave|tile-waterfall)\.ogg$",
    }),
    Source("pekka-kana-2-data", "BSD-2-Clause", {
        "bird": r"/(bird|crow|chick|hen)\.wav$",
        "livestock": r"/(moo|pig\d?)\.wav$",
    }),
)


@dataclass
class Recording:
    """One selected source file, decoded to mono at the output rate."""

    source: Source
    relpath: str
    label: str
    audio: np.ndarray
    rate: int
    source_rate: int
    twin_stem: bool = False

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate


def fetch(packages: Sequence[str], cache: Path) -> None:
    """Downloads the packages' .deb files into `cache/debs` (those not there yet)."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        print(f"apt-get download {' '.join(missing)}", flush=True)
        try:
            subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True,
                           stdout=subprocess.DEVNULL)
        except subprocess.CalledProcessError:
            raise SystemExit(f"error: apt-get download failed for {' '.join(missing)}; run "
                             "'apt-get update' (Debian 12 main must be a source) and run again."
                             ) from None


def unpack(package: str, cache: Path) -> Path:
    """Unpacks the package's audio files and copyright file into `cache/x/PACKAGE`.

    Regular files only: a symbolic link is a second name for a file already taken.
    """
    folder = cache / "x" / package
    done = folder / ".unpacked"
    if done.exists():
        return folder
    deb = sorted((cache / "debs").glob(f"{package}_*.deb"))[-1]  # the newest one fetched
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE) as proc:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            for member in archive:
                name = member.name.lower()
                if member.isfile() and (name.endswith(AUDIO) or name.endswith("/copyright")):
                    archive.extract(member, folder, filter="data")
    if proc.returncode != 0:
        raise SystemExit(f"error: dpkg-deb could not read {deb}; delete it and run again.")
    done.touch()
    return folder


def select(source: Source, folder: Path) -> Iterator[tuple[str, str]]:
    """`(path inside the package, class)` of the package's files that a rule names."""
    rules = {label: re.compile(rx, re.IGNORECASE) for label, rx in source.rules.items()}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in AUDIO or not path.is_file():
            continue
        rel = "/" + path.relative_to(folder).as_posix()
        label = next((lab for lab, rx in rules.items() if rx.search(rel)), None)
        if label is not None:
            yield rel, label


def decode(source: Source, folder: Path, rate: int) -> tuple[list[Recording], list[str]]:
    """The package's selected files decoded, and the ones that could not be read."""
    kept, unreadable = [], []
    for rel, label in select(source, folder):
        path = folder / rel.lstrip("/")
        try:
            source_rate = sf.info(str(path)).samplerate
            audio, _ = librosa.load(path, sr=rate, mono=True)
        except (RuntimeError, sf.LibsndfileError, ValueError) as e:
            unreadable.append(f"{source.package}:{rel} ({type(e).__name__})")
            continue
        kept.append(Recording(source, rel, label, audio.astype(np.float32), rate, source_rate))
    stems = [str(Path(r.relpath).with_suffix("")) for r in kept]
    for r, stem in zip(kept, stems, strict=True):
        r.twin_stem = stems.count(stem) > 1
    return kept, unreadable


def _copies(a: Recording, b: Recording, threshold: float) -> bool:
    """Whether two recordings are one: durations within 20 % and a normalised waveform
    cross-correlation over `threshold` at some lag (re-encoded or trimmed copies score
    about 1, different recordings of one kind of sound under 0.1).
    """
    if min(a.seconds, b.seconds) < 0.8 * max(a.seconds, b.seconds):
        return False
    energy = float(np.sqrt(np.sum(a.audio ** 2) * np.sum(b.audio ** 2)))
    if energy == 0.0:
        return False
    peak = np.abs(scipy.signal.correlate(a.audio, b.audio, mode="full", method="fft")).max()
    return float(peak) / energy > threshold


def deduplicate(recs: Sequence[Recording], threshold: float = 0.9
                ) -> tuple[list[Recording], list[str]]:
    """Drops exact copies (same samples, any class) and near copies (same class, see
    `_copies`); the first one in `SOURCES` order is kept.

    Returns:
        `(kept, "dropped = kept" lines)`.
    """
    kept: list[Recording] = []
    digests: dict[str, Recording] = {}
    dropped = []
    for rec in recs:
        digest = hashlib.sha256((rec.audio * 32767).astype(np.int16).tobytes()).hexdigest()
        twin = digests.get(digest) or next(
            (k for k in kept if k.label == rec.label and _copies(k, rec, threshold)), None)
        if twin is not None:
            dropped.append(f"{rec.source.package}:{rec.relpath} = "
                           f"{twin.source.package}:{twin.relpath}")
            continue
        digests[digest] = rec
        kept.append(rec)
    return kept, dropped


@dataclass(frozen=True)
class Clip:
    """One output file: a recording, or a stretch of a long one."""

    rec: Recording
    index: int | None
    start: float
    audio: np.ndarray

    @property
    def item(self) -> str:
        return self.rec.source.package

    @property
    def name(self) -> str:
        """`<item>__<last three path parts>[-<extension>][_<index>]`, file-name safe."""
        path = Path(self.rec.relpath)
        tail = "-".join(path.with_suffix("").parts[-3:])
        if self.rec.twin_stem:  # another file of the package differs only by its extension
            tail += path.suffix
        name = f"{self.item}__{re.sub(r'[^A-Za-z0-9]+', '-', tail).strip('-')}"
        return name if self.index is None else f"{name}_{self.index}"


def cut(rec: Recording, clip_seconds: float, max_seconds: float, max_clips: int,
        min_seconds: float) -> list[Clip]:
    """The recording whole, or up to `max_clips` evenly spread `clip_seconds` stretches of
    it when it is longer than `max_seconds`; silent or too short clips are left out.
    """
    if rec.seconds <= max_seconds:
        clips = [Clip(rec, None, 0.0, rec.audio)]
    else:
        size = int(round(clip_seconds * rec.rate))
        count = len(rec.audio) // size
        picks = np.unique(np.linspace(0, count - 1, min(count, max_clips)).round().astype(int))
        clips = [Clip(rec, int(k), k * clip_seconds, rec.audio[k * size:(k + 1) * size])
                 for k in picks]
    return [c for c in clips
            if len(c.audio) >= min_seconds * rec.rate and np.abs(c.audio).max() > 1e-3]


def cap(clips: Sequence[Clip], per_class_item: int) -> list[Clip]:
    """At most `per_class_item` clips of one class from one item, evenly spread over its
    files in path order, so that no package floods a class.
    """
    groups: dict[tuple[str, str], list[Clip]] = {}
    for c in clips:
        groups.setdefault((c.rec.label, c.item), []).append(c)
    kept = []
    for group in groups.values():
        picks = np.unique(np.linspace(0, len(group) - 1, min(len(group), per_class_item))
                          .round().astype(int))
        kept += [group[k] for k in picks]
    return kept


def write(clips: Sequence[Clip], out: Path, cache: Path) -> pd.DataFrame:
    """Writes the wavs, the manifest and the copyright files; returns the manifest."""
    rows = []
    for c in clips:
        rel = Path(c.rec.label) / f"{c.name}.wav"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(out / rel, c.audio, c.rec.rate, subtype="PCM_16")
        rows.append({"path": rel.as_posix(), "label": c.rec.label, "item": c.item,
                     "clip": c.name, "source_package": c.item,
                     "licence": c.rec.source.licence, "source_file": c.rec.relpath,
                     "start_seconds": round(c.start, 3),
                     "seconds": round(len(c.audio) / c.rec.rate, 3),
                     "source_rate": c.rec.source_rate})
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    manifest = manifest.sort_values(["label", "item", "path"], ignore_index=True)
    manifest.to_csv(out / "manifest.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    (out / "licences").mkdir(exist_ok=True)
    for package in manifest["source_package"].unique():
        for copyright_file in sorted((cache / "x" / package).glob("usr/share/doc/*/copyright")):
            shutil.copyfile(copyright_file, out / "licences" / f"{package}.copyright")
    return manifest


def summary(manifest: pd.DataFrame) -> str:
    """Clips per class and item, seconds per class, and the totals."""
    counts = pd.crosstab(manifest["label"], manifest["item"])
    per_class = manifest.groupby("label").agg(
        clips=("path", "size"), items=("item", "nunique"), seconds=("seconds", "sum"),
        recordings=("source_file", "nunique"))
    return (f"{counts.T.to_string()}\n\n{per_class.round(1).to_string()}\n\n"
            f"{len(manifest)} clips, {manifest['item'].nunique()} items, "
            f"{manifest['label'].nunique()} classes, {manifest['seconds'].sum() / 60:.1f} min")


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuses, before any work, an --out folder that would lose files not written here."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SystemExit(f"error: --out {out} is not empty; pass --overwrite to replace "
                             "a folder this script wrote, or give another --out.")
        if not (out / "manifest.csv").is_file():
            raise SystemExit(f"error: --out {out} has no manifest.csv: it was not written by "
                             "this script, so --overwrite leaves it alone; give another --out.")


def build(args: argparse.Namespace) -> pd.DataFrame:
    """Fetch, select, decode, deduplicate, cut, cap and write; returns the manifest."""
    out, cache = Path(args.out), Path(args.cache)
    _check_out(out, args.overwrite)
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} not found; this script needs a Debian system.")
    fetch([s.package for s in SOURCES], cache)
    recs: list[Recording] = []
    for source in SOURCES:
        decoded, unreadable = decode(source, unpack(source.package, cache), args.sample_rate)
        recs += decoded
        for line in unreadable:
            print(f"unreadable, left out: {line}")
    kept, dropped = deduplicate(recs)
    print(f"{len(recs)} files named by the rules, {len(dropped)} copies left out:")
    for line in dropped:
        print(f"  {line}")
    clips = [c for rec in kept for c in cut(rec, args.clip_seconds, args.max_seconds,
                                             args.max_clips, args.min_seconds)]
    clips = cap(clips, args.max_per_class_item)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return write(clips, out, cache)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/raw/envset", help="folder to write")
    p.add_argument("--cache", default="data/cache/envset",
                   help="folder of the downloaded .deb files and their unpacked audio")
    p.add_argument("--sample-rate", type=int, default=22050, help="output rate (Hz)")
    p.add_argument("--max-seconds", type=float, default=8.0,
                   help="recordings longer than this are cut into clips")
    p.add_argument("--clip-seconds", type=float, default=4.0, help="length of those clips")
    p.add_argument("--max-clips", type=int, default=8,
                   help="most clips cut from one recording (evenly spread)")
    p.add_argument("--min-seconds", type=float, default=0.1, help="shortest clip kept")
    p.add_argument("--max-per-class-item", type=int, default=20,
                   help="most clips of one class from one item (package)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an --out folder this script wrote")
    args = p.parse_args(argv)
    start = time.perf_counter()
    manifest = build(args)
    print(summary(manifest))
    print(f"wrote {args.out}/manifest.csv in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
