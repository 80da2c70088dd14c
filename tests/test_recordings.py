"""Takes of one recording are one item (issue 38, point 1): the recording ids in file names
(`preprocessing.recordings`), applied by every source that gives no item. Real WAV files
written with soundfile; the sources and `python -m preprocessing` as a user runs them."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing import sources
from preprocessing.recordings import find_recordings, recording_pattern

SAMPLE_RATE = 8000


def _write(path, hz=440.0, seconds=0.5, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = 0.3 * np.sin(2 * np.pi * hz * t) + 0.01 * np.random.default_rng(seed).standard_normal(
        len(t))
    sf.write(path, y.astype(np.float32), SAMPLE_RATE)
    return path


def _esc_like(root):
    """ESC-50 style class folders: `{fold}-{clip}-{take}.wav`, clips 100..105 of dog, 200..205
    of cat, takes A and B of the even clips."""
    for label, base, hz in (("dog", 100, 500.0), ("cat", 200, 1500.0)):
        for k in range(6):
            for take in ("A", "B") if k % 2 == 0 else ("A",):
                _write(root / label / f"{k % 3 + 1}-{base + k}-{take}.wav", hz + 10 * k,
                       seed=base + k)
    return root


def _ids(paths):
    found = find_recordings(paths, [p.split("/")[0] for p in paths])
    return None if found is None else found.items


@pytest.mark.parametrize("paths,expected", [
    # ESC-50 {fold}-{clip}-{take}: the take and the fold go.
    (["dog/1-100038-A.ogg", "dog/1-100038-B.ogg", "dog/1-100032-A.ogg", "cat/2-100040-A.ogg",
      "cat/2-100041-A.ogg"], ["100038", "100038", "100032", "100040", "100041"]),
    # UrbanSound8K {fsID}-{classID}-{occurrence}-{slice}: the recording is the fsID.
    (["horn/100263-2-0-117.wav", "horn/100263-2-0-121.wav", "horn/100263-2-1-3.wav",
      "horn/1003-2-0-1.wav", "siren/100263-3-0-1.wav", "siren/200-3-0-1.wav"],
     ["100263", "100263", "100263", "1003", "100263", "200"]),
    # {speaker}_{n} and numbered takes.
    (["yes/alice_01.wav", "yes/alice_02.wav", "yes/bob_01.wav", "no/alice_01.wav",
      "no/bob_01.wav", "no/carol_03.wav"], ["alice", "alice", "bob", "alice", "bob", "carol"]),
    # FSDD names in class folders: the digit leads, the speaker is the recording.
    (["0/0_jackson_0.wav", "0/0_jackson_1.wav", "1/1_jackson_0.wav", "1/1_nicolas_0.wav",
      "0/0_nicolas_3.wav", "0/0_theo_3.wav"],
     ["jackson", "jackson", "jackson", "nicolas", "nicolas", "theo"]),
    # A take suffix after a speaker number: the finest level that is sound.
    (["yes/spk_1_01.wav", "yes/spk_1_02.wav", "yes/spk_2_01.wav", "no/spk_1_03.wav",
      "no/spk_3_01.wav"], ["spk_1", "spk_1", "spk_2", "spk_1", "spk_3"]),
])
def test_find_recordings_groups_the_takes_of_one_recording(paths, expected):
    assert _ids(paths) == expected


@pytest.mark.parametrize("paths", [
    ["dog/dog_01.wav", "dog/dog_02.wav", "cat/cat_01.wav", "cat/cat_02.wav"],  # class names
    ["dog/bark_01.wav", "dog/bark_02.wav", "dog/bark_03.wav", "cat/meow_01.wav",
     "cat/meow_02.wav", "cat/meow_03.wav"],  # one name per class: a class on one item
    ["dog/001.wav", "cat/001.wav", "dog/002.wav", "cat/002.wav"],  # nothing removed
    ["dog/dog01.wav", "dog/dog02.wav", "cat/cat01.wav", "cat/cat02.wav"],  # glued class names
    ["dog/id100263.wav", "dog/id100264.wav", "cat/id200.wav"],  # a long number is no take
    ["dog/a.wav", "dog/b.wav", "cat/c.wav"],  # nothing shared
])
def test_find_recordings_leaves_names_that_are_no_takes(paths):
    assert _ids(paths) is None


def test_recording_pattern_is_an_item_pattern_of_the_folder_source(tmp_path):
    """The pattern of a level is what `--item-pattern` takes: the same items."""
    root = _esc_like(tmp_path / "esc")
    rows, _ = sources.folder_source(root, item_pattern=recording_pattern(1))
    auto, _ = sources.folder_source(root)
    assert list(rows["item"]) == list(auto["item"])


def test_folder_source_makes_takes_of_one_recording_one_item(tmp_path):
    root = _esc_like(tmp_path / "esc")
    rows, skipped = sources.folder_source(root)
    assert not skipped and len(rows) == 18
    items = dict(zip(rows["clip"], rows["item"]))
    assert items["dog/1-100-A.wav"] == items["dog/1-100-B.wav"] == "100"
    assert items["cat/2-201-A.wav"] == "201"
    assert rows["item"].nunique() == 12  # 18 files, 6 of them a second take
    said = rows.attrs["recordings"]
    assert "1-100-A.wav, 1-100-B.wav -> '100'" in said and "--item-per-file" in said
    # Every file its own item, asked for.
    own, _ = sources.folder_source(root, by_recording=False)
    assert own["item"].nunique() == 18 and own.attrs["recordings"] is None


def test_regex_and_manifest_sources_group_takes_without_an_item(tmp_path):
    root = _esc_like(tmp_path / "esc")
    rows, _ = sources.regex_source(root, r"^(?P<label>[a-z]+)/")
    assert rows["item"].nunique() == 12 and rows.attrs["recordings"]
    with_item, _ = sources.regex_source(root, r"^(?P<label>[a-z]+)/(?P<item>\d)-")
    assert sorted(with_item["item"].unique()) == ["1", "2", "3"]  # a rule given: kept
    assert with_item.attrs["recordings"] is None
    table = pd.DataFrame({"path": [p.relative_to(root).as_posix()
                                   for p in sorted(root.rglob("*.wav"))]})
    table["label"] = table["path"].str.split("/").str[0]
    table.to_csv(root / "manifest.csv", index=False)
    rows, _ = sources.manifest_source(root / "manifest.csv")
    assert rows["item"].nunique() == 12 and rows.attrs["recordings"]
    rows, _ = sources.manifest_source(root / "manifest.csv", by_recording=False)
    assert rows["item"].nunique() == 18


def test_preprocess_folders_says_how_it_grouped_the_takes(tmp_path, capsys):
    from preprocessing.store import FeatureStore
    from xval.cli.preprocess import main

    root = _esc_like(tmp_path / "esc")
    code = main(["folders", str(root), "--out", str(tmp_path / "store"), "--workers", "1",
                 "--no-progress", "--sample-rate", "8000", "--segment-seconds", "0.5",
                 "--segment-hop-seconds", "0.25", "-q"])
    assert code == 0
    out = capsys.readouterr().out
    assert "12 items" in out
    store = FeatureStore(tmp_path / "store")
    assert sorted(set(store.items)) == sorted(f"{b + k}" for b in (100, 200) for k in range(6))
    code = main(["folders", str(root), "--out", str(tmp_path / "own"), "--workers", "1",
                 "--no-progress", "--sample-rate", "8000", "--item-per-file", "-q"])
    assert code == 0 and "18 items" in capsys.readouterr().out
