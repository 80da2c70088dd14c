"""The FSDD-in-background recipe: where the events are, their SNRs, one speaker per file."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing.babble import babble_backgrounds
from preprocessing.synth_events import BACKGROUND_RMS, coloured_noise, synth_events
from tests.conftest import ROOT, SHARED
from xval.core.errors import DatasetError
from xval.tasks.detection import annotation_source

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
    # The user's folder: refused with or without --overwrite (the output rule), never
    # suggesting the flag that would not help.
    for overwrite in (False, True):
        with pytest.raises(DatasetError, match=r"was not written by synth-events \(it holds "
                                               r"keep.txt\); it is never replaced"):
            make(fsdd, tmp_path / "mine", overwrite=overwrite)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "x"
    make(fsdd, tmp_path / "sed")
    with pytest.raises(DatasetError, match="already exists.*pass --overwrite"):
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


@pytest.fixture
def fsdd_many(tmp_path):
    """A fake FSDD folder with 4 recordings per digit: 2 speakers x digits 0-2 x 4."""
    root = tmp_path / "many"
    root.mkdir()
    for speaker, base in (("alice", 400), ("bob", 900)):
        for digit in range(3):
            for index in range(4):
                t = np.arange(int((0.15 + 0.02 * index) * SR)) / SR
                tone = 0.5 * np.sin(2 * np.pi * (base + 100 * digit) * t)
                silence = np.zeros(int(0.05 * SR))
                sf.write(root / f"{digit}_{speaker}_{index}.wav",
                         np.concatenate([silence, tone, silence]).astype(np.float32), SR)
    return root


def trains_of(fsdd_many, out, **kwargs):
    settings = {"files_per_speaker": 3, "seconds": 4.0, "seconds_max": 6.0, "events_min": 2,
                "events_max": 4, "min_gap": 0.3, "train_min": 2, "train_max": 4,
                "train_gap_min": 0.05, "train_gap_max": 0.2, "labels": "digit",
                "noise": "white", "seed": 2, **kwargs}
    return synth_events(fsdd_many, out, **settings)


def test_synth_events_trains_gaps_classes_and_lengths(fsdd_many, tmp_path):
    out = tmp_path / "sed"
    trains_of(fsdd_many, out, digits="02", snr_min=3, snr_max=9)
    events = pd.read_csv(out / "events.csv")
    assert set(events["label"].astype(str)) == {"0", "2"}
    assert events["snr_db"].between(3, 9).all()
    assert (events["source"].str.split("_").str[0] == events["label"].astype(str)).all()
    lengths = {name: sf.info(out / name).duration for name in events["file"].unique()}
    assert all(4.0 <= seconds <= 6.0 for seconds in lengths.values())
    assert len(set(round(s, 3) for s in lengths.values())) > 1  # drawn per recording
    for (_, _), train in events.groupby(["file", "train"]):
        train = train.sort_values("start_sample")
        assert train["label"].nunique() == 1 and train["snr_db"].nunique() == 1
        assert len(train) <= 4 and train["source"].is_unique
        gaps = (train["start_sample"].to_numpy()[1:] - train["end_sample"].to_numpy()[:-1]) / SR
        assert ((gaps >= 0.05 - 1e-3) & (gaps <= 0.2 + 1e-3)).all()
    # Without overlap every event keeps clear of the others; annotations read back.
    for _, mine in events.groupby("file"):
        mine = mine.sort_values("start_sample")
        assert (mine["start_sample"].to_numpy()[1:] >= mine["end_sample"].to_numpy()[:-1]).all()
    recordings, read, skipped = annotation_source(out / "annotations.csv", out)
    assert skipped == [] and len(read) == len(events)
    assert (events.groupby(["file", "train"]).size() >= 2).mean() > 0.5


def test_synth_events_overlap_only_across_classes(fsdd_many, tmp_path):
    out = tmp_path / "sed"
    trains_of(fsdd_many, out, overlap=True, events_min=4, events_max=6, seconds=3.0,
              seconds_max=3.0, files_per_speaker=6)
    events = pd.read_csv(out / "events.csv")
    crossed = 0
    for _, mine in events.groupby("file"):
        for _, same in mine.groupby("label"):
            same = same.sort_values("start_sample")
            starts, ends = same["start_sample"].to_numpy(), same["end_sample"].to_numpy()
            assert (starts[1:] >= ends[:-1]).all()  # one class never overlaps itself
        mine = mine.sort_values("start_sample")
        crossed += int((mine["start_sample"].to_numpy()[1:]
                        < mine["end_sample"].to_numpy()[:-1]).sum())
    assert crossed > 0  # and different classes do overlap
    # annotation_source refuses overlapping events of one class: it accepts these.
    annotation_source(out / "annotations.csv", out)
    a = trains_of(fsdd_many, tmp_path / "a", overlap=True)
    b = trains_of(fsdd_many, tmp_path / "b", overlap=True)
    assert a == {**b, "out": a["out"]}
    assert (tmp_path / "a" / "events.csv").read_bytes() == \
        (tmp_path / "b" / "events.csv").read_bytes()
    recipe = json.loads((tmp_path / "a" / "recipe.json").read_text())
    assert recipe["overlap"] is True and recipe["train_max"] == 4


def test_synth_events_background_groups_keep_a_site_per_speaker(fsdd, tmp_path):
    folder = tmp_path / "sites"
    for site, hz in (("site_0", 50), ("site_1", 120)):
        (folder / site).mkdir(parents=True)
        t = np.arange(SR) / SR
        sf.write(folder / site / "room.wav", (0.3 * np.sin(2 * np.pi * hz * t)).astype(
            np.float32), SR)
    out = tmp_path / "sed"
    make(fsdd, out, noise=None, backgrounds=folder, background_groups=True)
    events = pd.read_csv(out / "events.csv")
    speaker = events["file"].str.split("_").str[0]
    assert set(events.loc[speaker == "alice", "background"]) == {"site_0/room.wav"}
    assert set(events.loc[speaker == "bob", "background"]) == {"site_1/room.wav"}
    with pytest.raises(DatasetError, match="1 group folder\\(s\\) for 2 speakers"):
        (folder / "site_1" / "room.wav").unlink()
        make(fsdd, tmp_path / "other", noise=None, backgrounds=folder,
             background_groups=True)
    with pytest.raises(DatasetError, match="background_groups needs backgrounds"):
        make(fsdd, tmp_path / "other", background_groups=True)


@pytest.mark.parametrize("kwargs,match", [
    ({"train_min": 3, "train_max": 2}, r"train_min=3, train_max=2"),
    ({"train_gap_min": 0.3, "train_gap_max": 0.1}, r"train_gap_min=0.3, train_gap_max=0.1"),
    ({"seconds_max": 2.0}, r"seconds_max=2.0 < seconds=3.0"),
    ({"digits": "7"}, r"digits=7: no FSDD recording"),
    ({"digits": "x"}, r"digits='x': expected digits 0-9"),
])
def test_synth_events_bad_train_parameters(fsdd, tmp_path, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        make(fsdd, tmp_path / "sed", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recordings"]


@pytest.fixture
def talkers(tmp_path):
    """A fake speech corpus: 4 talker folders of 2 short tone 'utterances' at 16 kHz."""
    root = tmp_path / "speech"
    for k in range(4):
        (root / f"Actor_{k:02d}").mkdir(parents=True)
        for u in range(2):
            t = np.arange(int(0.5 * 16000)) / 16000
            sf.write(root / f"Actor_{k:02d}" / f"{u}.flac",
                     (0.3 * np.sin(2 * np.pi * (300 + 50 * k + 20 * u) * t)).astype(
                         np.float32), 16000)
    return root


@pytest.mark.parametrize("reverb", [False, True])
def test_babble_backgrounds_disjoint_talkers_per_group(talkers, tmp_path, reverb):
    if reverb:
        pytest.importorskip("pyroomacoustics")
    out = tmp_path / "babble"
    summary = babble_backgrounds(talkers, out, groups=2, files_per_group=2, seconds=2.0,
                                 talkers_min=1, talkers_max=2, reverb=reverb, seed=0)
    assert summary["groups"] == {"site_0": ["Actor_00", "Actor_01"],
                                 "site_1": ["Actor_02", "Actor_03"]}
    table = pd.read_csv(out / "backgrounds.csv")
    assert len(table) == 4 and sorted(p.name for p in out.iterdir()) == [
        "backgrounds.csv", "recipe.json", "site_0", "site_1"]
    for row in table.itertuples():
        assert set(row.talkers.split()) <= set(summary["groups"][row.group])
        y, rate = sf.read(out / row.file)
        assert rate == 8000 and len(y) == 16000 and np.abs(y).max() > 0.5
    assert table["rt60"].notna().all() == reverb
    again = babble_backgrounds(talkers, tmp_path / "again", groups=2, files_per_group=2,
                               seconds=2.0, talkers_min=1, talkers_max=2, reverb=reverb,
                               seed=0)
    assert again["groups"] == summary["groups"]
    assert (out / "site_1" / "babble_01.wav").read_bytes() == \
        (tmp_path / "again" / "site_1" / "babble_01.wav").read_bytes()
    with pytest.raises(DatasetError, match="talkers need 6"):
        babble_backgrounds(talkers, tmp_path / "x", groups=3, talkers_min=2)
    with pytest.raises(DatasetError, match="talkers_min=3, talkers_max=2"):
        babble_backgrounds(talkers, tmp_path / "x", talkers_min=3, talkers_max=2)
    with pytest.raises(DatasetError, match="--overwrite"):
        babble_backgrounds(talkers, out, groups=2, talkers_min=1)


def test_synth_babble_and_trains_from_the_command_line(talkers, fsdd_many, tmp_path, capsys):
    from xval.cli.preprocess import main

    babble = tmp_path / "babble"
    assert main(["synth-babble", str(talkers), "--out", str(babble), "--groups", "2",
                 "--files-per-group", "1", "--seconds", "2", "--talkers-min", "1",
                 "--talkers-max", "2", "--no-reverb"]) == 0
    assert "2 babble files in 2 groups" in capsys.readouterr().out
    out = tmp_path / "sed"
    assert main(["synth-events", str(fsdd_many), "--out", str(out), "--backgrounds",
                 str(babble), "--background-groups", "--files-per-speaker", "2",
                 "--seconds", "3", "--seconds-max", "4", "--train-min", "2", "--train-max",
                 "3", "--overlap", "--labels", "digit", "--digits", "01"]) == 0
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["digits"] == "01" and recipe["background_groups"] is True
    events = pd.read_csv(out / "events.csv")
    assert set(events["label"].astype(str)) <= {"0", "1"} and "train" in events
    assert set(events["background"].str.split("/").str[0]) == {"site_0", "site_1"}


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
