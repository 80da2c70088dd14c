"""The FSDD-in-background recipe: where the events are, their SNRs, one speaker per file."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing.annotations import annotation_source
from preprocessing.synth_events import BACKGROUND_RMS, coloured_noise, synth_events
from tests.conftest import ROOT, SHARED
from xval.core.errors import DatasetError

SR = 8000
TONE = 0.25  # seconds of tone in each fake digit, between 0.1 s of silence on both sides


@pytest.fixture
def fsdd(tmp_path):
    """A fake FSDD folder: 2 speakers x digits 0-2, each a tone burst padded with silence."""
    root = tmp_path / "recordings"
    root.mkdir()
    t = np.arange(int(TONE * SR)) / SR
    for speaker, base in (("alice", 400), ("bob", 900)):
        for digit in range(3):
            tone = 0.5 * np.sin(2 * np.pi * (base + 100 * digit) * t)
            silence = np.zeros(int(0.1 * SR))
            sf.write(root / f"{digit}_{speaker}_0.wav",
                     np.concatenate([silence, tone, silence]).astype(np.float32), SR)
    return root


def power_db(y):
    return 10 * np.log10(np.mean(y.astype(np.float64) ** 2))


def make(fsdd, out, **kwargs):
    settings = {"files_per_speaker": 2, "seconds": 3.0, "events_min": 1, "events_max": 3,
                "min_gap": 0.3, "seed": 1, "noise": "white", **kwargs}
    return synth_events(fsdd, out, **settings)


def test_synth_events_ranges_hold_the_event_energy_at_the_drawn_snr(fsdd, tmp_path):
    out = tmp_path / "sed"
    summary = make(fsdd, out, snr_min=5, snr_max=15)
    assert summary["files"] == 4 and summary["speakers"] == ["alice", "bob"]
    events = pd.read_csv(out / "events.csv")
    assert summary["events"] == len(events) and 4 <= len(events) <= 12
    assert events["snr_db"].between(5, 15).all()
    for name, mine in events.groupby("file"):
        y, rate = sf.read(out / name)
        assert rate == SR and len(y) == 3 * SR
        inside = np.zeros(len(y), bool)
        for e in mine.itertuples():
            inside[e.start_sample:e.end_sample] = True
            # Trimmed digits: the range is the tone itself (0.25 s), no padding silence.
            assert abs((e.end_sample - e.start_sample) - TONE * SR) < 0.02 * SR
        background = power_db(y[~inside])
        for e in mine.itertuples():
            span = y[e.start_sample:e.end_sample]
            # Event + independent (white, stationary) background: P = P_bg (1 + 10^(snr/10)).
            expected = background + 10 * np.log10(1 + 10 ** (e.snr_db / 10))
            assert abs(power_db(span) - expected) < 1.0
            edge = int(0.02 * SR)
            assert power_db(y[e.start_sample:e.start_sample + edge]) > background + 4
            assert power_db(y[e.end_sample - edge:e.end_sample]) > background + 4
        starts, ends = mine["start_sample"].to_numpy(), mine["end_sample"].to_numpy()
        assert (starts[1:] - ends[:-1] >= 0.3 * SR).all() and ends[-1] <= 3 * SR


def test_synth_events_one_speaker_per_file_and_items(fsdd, tmp_path):
    out = tmp_path / "sed"
    make(fsdd, out, files_per_speaker=3)
    items = pd.read_csv(out / "items.csv")
    assert items["item"].value_counts().to_dict() == {"alice": 3, "bob": 3}
    events = pd.read_csv(out / "events.csv").merge(items, on="file")
    speakers = events["source"].str.split("_").str[1]
    assert (speakers == events["item"]).all()
    assert (events["file"].str.split("_").str[0] == events["item"]).all()


def test_synth_events_wide_annotations_read_back(fsdd, tmp_path):
    out = tmp_path / "sed"
    make(fsdd, out, labels="digit")
    events = pd.read_csv(out / "events.csv")
    header = (out / "annotations.csv").read_text().splitlines()[0]
    assert header.startswith("File name,Voice start sample (1),Voice end sample (1),Label (1)")
    recordings, read, skipped = annotation_source(out / "annotations.csv", out)
    assert skipped == [] and len(recordings) == 4
    assert read["label"].tolist() == events["label"].astype(str).tolist()
    assert set(read["label"]) <= {"0", "1", "2"}
    np.testing.assert_allclose(read["onset_s"], events["start_sample"] / SR)
    np.testing.assert_allclose(read["offset_s"], events["end_sample"] / SR)
    # events.csv is the long layout of the same events.
    _, long, _ = annotation_source(out / "events.csv", out, file_column="file",
                                   onset_column="start_sample", offset_column="end_sample")
    pd.testing.assert_frame_equal(long, read)


def test_synth_events_single_class_and_same_seed_same_output(fsdd, tmp_path):
    make(fsdd, tmp_path / "a")
    make(fsdd, tmp_path / "b")
    assert set(pd.read_csv(tmp_path / "a" / "events.csv")["label"]) == {"digit"}
    for name in ("annotations.csv", "events.csv", "items.csv", "alice_001.wav"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    recipe = json.loads((tmp_path / "a" / "recipe.json").read_text())
    assert recipe["seed"] == 1 and recipe["noise"] == "white"


def test_synth_events_user_backgrounds(fsdd, tmp_path):
    folder = tmp_path / "bg"
    folder.mkdir()
    t = np.arange(SR) / SR  # 1 s, looped to fill 3 s
    sf.write(folder / "hum.wav", (0.3 * np.sin(2 * np.pi * 50 * t)).astype(np.float32), SR)
    out = tmp_path / "sed"
    make(fsdd, out, noise=None, backgrounds=folder, snr_min=0, snr_max=0, events_max=1)
    events = pd.read_csv(out / "events.csv")
    assert set(events["background"]) == {"hum.wav"}
    y, _ = sf.read(out / events["file"][0])
    quiet = y[: events["start_sample"][0]] if events["start_sample"][0] > SR // 2 else \
        y[events["end_sample"][0]:]
    spectrum = np.abs(np.fft.rfft(quiet))
    assert abs(np.fft.rfftfreq(len(quiet), 1 / SR)[spectrum.argmax()] - 50) < 3
    assert abs(np.sqrt(np.mean(quiet ** 2)) - BACKGROUND_RMS) < 0.005


@pytest.mark.parametrize("kwargs,match", [
    ({"snr_min": 10, "snr_max": 0}, r"snr_min=10 > snr_max=0"),
    ({"events_min": 3, "events_max": 2}, r"events_min=3, events_max=2"),
    ({"seconds": 0}, r"seconds=0: expected > 0"),
    ({"labels": "speaker"}, r"labels='speaker': expected one of single, digit"),
    ({"backgrounds": "/nowhere"}, r"noise and backgrounds were both given"),
    ({"noise": None, "backgrounds": "/nowhere"}, r"Background folder '/nowhere' does not"),
    ({"seconds": 0.2}, r"lasts 0.2\d s after trimming, more than seconds=0.2"),
])
def test_synth_events_bad_parameters_write_nothing(fsdd, tmp_path, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        make(fsdd, tmp_path / "sed", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recordings"]


def test_synth_events_refuses_existing_folders(fsdd, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="exists; choose another --out or pass --overwrite"):
        make(fsdd, tmp_path / "mine")
    with pytest.raises(DatasetError, match="was not written by synth-events"):
        make(fsdd, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "x"
    make(fsdd, tmp_path / "sed")
    make(fsdd, tmp_path / "sed", overwrite=True, files_per_speaker=1)
    assert len(pd.read_csv(tmp_path / "sed" / "items.csv")) == 2
    assert len(list((tmp_path / "sed").glob("*.wav"))) == 2
    with pytest.raises(DatasetError, match="produced no rows|No audio files"):
        make(tmp_path / "mine", tmp_path / "other")


@pytest.mark.parametrize("colour,alpha", [("white", 0), ("pink", 1), ("brown", 2)])
def test_coloured_noise_spectrum(colour, alpha):
    n = 2 ** 14
    y = coloured_noise(n, colour=colour, rng=np.random.default_rng(0), sample_rate=8000)
    white = coloured_noise(n, colour="white", rng=np.random.default_rng(0), sample_rate=8000)
    assert abs(np.sqrt(np.mean(y ** 2)) - 1) < 1e-9
    # The same draw, shaped: the power ratio to white noise falls as 1 / f ** alpha above
    # the 20 Hz corner (-3 dB per octave per unit of alpha) and is flat below it.
    ratio = np.abs(np.fft.rfft(y)) ** 2 / np.abs(np.fft.rfft(white)) ** 2
    at = lambda hz: ratio[int(round(hz * n / 8000))]  # noqa: E731
    assert at(800) / at(400) == pytest.approx(2.0 ** -alpha)
    assert at(10) / at(5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="colour='blue'"):
        coloured_noise(10, colour="blue", rng=np.random.default_rng(0))


def test_synth_events_command(fsdd, tmp_path):
    command = [sys.executable, "-m", "preprocessing", "synth-events", str(fsdd), "--out",
               str(tmp_path / "sed"), "--files-per-speaker", "1", "--seconds", "2",
               "--labels", "digit", "--noise", "pink", "--seed", "3"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "2 recordings of 2 speakers" in proc.stdout
    assert (tmp_path / "sed" / "annotations.csv").is_file()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "error:" in proc.stderr and "--overwrite" in proc.stderr


@pytest.mark.realdata
def test_realdata_synth_events_from_fsdd(tmp_path):
    recordings = SHARED / "fsdd" / "recordings"
    if not recordings.is_dir():
        pytest.skip(f"FSDD recordings not found at {recordings}")
    out = tmp_path / "sed"
    summary = synth_events(recordings, out, files_per_speaker=1, seconds=6, snr_min=10,
                           snr_max=20, seed=0)
    assert summary["files"] == 6 and len(summary["speakers"]) == 6
    recordings_table, events, skipped = annotation_source(out / "annotations.csv", out)
    assert skipped == [] and set(events["label"]) == {"digit"}
    for name, mine in events.groupby("file"):
        y, rate = sf.read(out / name)
        inside = np.zeros(len(y), bool)
        spans = [(int(a * rate), int(b * rate)) for a, b in zip(mine["onset_s"], mine["offset_s"])]
        for a, b in spans:
            inside[a:b] = True
        # Trimmed speech at 10-20 dB SNR: clearly louder than the background over its range.
        for a, b in spans:
            assert power_db(y[a:b]) > power_db(y[~inside]) + 8
