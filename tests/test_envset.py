"""The environmental set built from Debian packages (benchmarks/envset.py, issue 33 point 5).

No download here: the rules, the duplicate check, the cutting and the manifest are tested
on FSDD recordings laid out as a package's files would be.
"""

import re
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from benchmarks import envset
from preprocessing.sources import manifest_source
from tests.conftest import SHARED

FSDD = SHARED / "fsdd" / "recordings"
RATE = 22050


@pytest.fixture
def fsdd() -> list[Path]:
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD}")
    return sorted(FSDD.glob("*_george_*.wav"))[:6]


def _recording(audio: np.ndarray, relpath: str, label: str = "bird",
               package: str = "pkg-data") -> envset.Recording:
    source = envset.Source(package, "GPL-2+", {label: r"\.wav$"})
    return envset.Recording(source, relpath, label, audio.astype(np.float32), RATE, 8000)


def _load(path: Path) -> np.ndarray:
    return librosa.load(path, sr=RATE, mono=True)[0]


def test_envset_rules_compile_and_every_class_has_several_packages() -> None:
    packages: dict[str, set[str]] = {}
    for source in envset.SOURCES:
        assert re.match(r"^[a-z0-9][a-z0-9.+-]+$", source.package), source.package
        assert source.licence
        for label, rule in source.rules.items():
            re.compile(rule)
            packages.setdefault(label, set()).add(source.package)
    assert len(packages) >= 8
    assert {label: len(p) for label, p in packages.items() if len(p) < 4} == {}


def test_envset_select_takes_only_files_a_rule_names(tmp_path: Path, fsdd: list[Path]) -> None:
    (tuxpaint,) = [s for s in envset.SOURCES if s.package == "tuxpaint-stamps-default"]
    birds = tmp_path / "usr/share/tuxpaint/stamps/animals/birds"
    birds.mkdir(parents=True)
    for name in ("crow.ogg", "crow_desc_da.ogg", "crow_name.ogg", "owl.ogg"):
        sf.write(birds / name, _load(fsdd[0]), RATE, format="OGG")
    (tmp_path / "usr/share/tuxpaint/stamps/animals/birds/notes.txt").write_text("x")
    taken = sorted(envset.select(tuxpaint, tmp_path))
    assert taken == [("/usr/share/tuxpaint/stamps/animals/birds/crow.ogg", "bird"),
                     ("/usr/share/tuxpaint/stamps/animals/birds/owl.ogg", "bird")]


def test_envset_deduplicate_drops_reencoded_and_trimmed_copies(tmp_path: Path,
                                                               fsdd: list[Path]) -> None:
    original = _load(fsdd[0])
    sf.write(tmp_path / "copy.ogg", original, RATE, format="OGG")
    reencoded = _load(tmp_path / "copy.ogg")
    trimmed = original[len(original) // 10:]
    recs = [_recording(original, "/a/one.wav", package="first-data"),
            _recording(_load(fsdd[1]), "/a/two.wav", package="first-data"),
            _recording(reencoded, "/b/one.ogg", package="second-data"),
            _recording(trimmed, "/b/one-trim.wav", package="second-data"),
            _recording(original.copy(), "/c/one.wav", label="canine", package="third-data")]
    kept, dropped = envset.deduplicate(recs)
    assert [r.relpath for r in kept] == ["/a/one.wav", "/a/two.wav"]
    assert len(dropped) == 3 and all(line.endswith("first-data:/a/one.wav") for line in dropped)


def test_envset_cut_spreads_clips_over_a_long_recording_and_drops_silence(
        fsdd: list[Path]) -> None:
    speech = np.concatenate([_load(p) for p in fsdd])
    audio = np.concatenate([np.zeros(5 * RATE), np.resize(speech, 40 * RATE)])  # 45 s
    rec = _recording(audio, "/a/long.wav")
    clips = envset.cut(rec, clip_seconds=4.0, max_seconds=8.0, max_clips=8, min_seconds=0.1)
    assert len(clips) == 7  # 8 of the 11 whole 4-s stretches, the silent first one left out
    assert all(len(c.audio) == 4 * RATE for c in clips)
    assert all(c.start == 4.0 * c.index for c in clips)
    assert 0 not in [c.index for c in clips]  # the first 4 s are silent
    assert clips[-1].index == 10  # evenly spread up to the last whole stretch
    assert len({c.name for c in clips}) == len(clips)
    short = _recording(_load(fsdd[0]), "/a/short.wav")
    (whole,) = envset.cut(short, 4.0, 8.0, 8, 0.1)
    assert whole.index is None and whole.name == "pkg-data__a-short"


def test_envset_cap_keeps_at_most_n_clips_per_class_and_item(fsdd: list[Path]) -> None:
    audio = _load(fsdd[0])
    clips = [envset.Clip(_recording(audio, f"/a/{k}.wav"), None, 0.0, audio) for k in range(9)]
    clips.append(envset.Clip(_recording(audio, "/b/x.wav", package="other"), None, 0.0, audio))
    kept = envset.cap(clips, 4)
    assert sorted(c.rec.relpath for c in kept) == ["/a/0.wav", "/a/3.wav", "/a/5.wav",
                                                    "/a/8.wav", "/b/x.wav"]


def test_envset_write_makes_a_manifest_preprocessing_reads(tmp_path: Path,
                                                           fsdd: list[Path]) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    for package in ("first-data", "second-data"):
        doc = cache / "x" / package / "usr/share/doc" / package
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(f"{package}: GPL-2+\n")
    recs = [_recording(_load(fsdd[0]), "/s/one.wav", "bird", "first-data"),
            _recording(_load(fsdd[1]), "/s/two.wav", "rain", "first-data"),
            _recording(_load(fsdd[2]), "/t/one.wav", "bird", "second-data")]
    out.mkdir()
    written = envset.write([c for r in recs for c in envset.cut(r, 4.0, 8.0, 8, 0.1)], out,
                           cache)
    assert list(written.columns) == list(envset.MANIFEST_COLUMNS)
    rows, skipped = manifest_source(out / "manifest.csv", item_column="item",
                                    clip_column="clip")
    assert skipped == []
    assert sorted(zip(rows["label"], rows["item"], strict=True)) == [
        ("bird", "first-data"), ("bird", "second-data"), ("rain", "first-data")]
    assert (out / "bird" / "first-data__s-one.wav").is_file()
    assert sf.info(str(out / "bird" / "first-data__s-one.wav")).samplerate == RATE
    assert sorted(p.name for p in (out / "licences").iterdir()) == [
        "first-data.copyright", "second-data.copyright"]


def test_envset_refuses_an_out_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit, match="not empty; pass --overwrite"):
        envset.main(["--out", str(tmp_path), "--cache", str(tmp_path / "cache")])
    with pytest.raises(SystemExit, match="has no manifest.csv"):
        envset.main(["--out", str(tmp_path), "--cache", str(tmp_path / "cache"),
                     "--overwrite"])
    assert (tmp_path / "mine.txt").read_text() == "keep"
    assert not (tmp_path / "cache").exists()
