"""Detection sets with no speech (issue 66): synthetic environmental backgrounds
(`preprocessing.ambience`) and synthetic events on them (`preprocessing.synth_scenes`)."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing.ambience import TYPES, ambience, ambience_backgrounds
from preprocessing.mixing import background_groups
from preprocessing.synth_scenes import EVENTS, synth_scenes
from xval.cli.preprocess import main as preprocessing_main
from xval.core.errors import DatasetError
from xval.tasks.detection import annotation_source

SR = 8000


def _power_db(y):
    return 10 * np.log10(np.mean(np.asarray(y, dtype=np.float64) ** 2))


@pytest.mark.parametrize("kind", list(TYPES))
def test_ambience_is_unit_rms_seeded_and_unlike_another_draw(kind):
    a = ambience(kind, 2 * SR, rng=np.random.default_rng(0), sample_rate=SR)
    again = ambience(kind, 2 * SR, rng=np.random.default_rng(0), sample_rate=SR)
    other = ambience(kind, 2 * SR, rng=np.random.default_rng(1), sample_rate=SR)
    assert a.shape == (2 * SR,) and np.isfinite(a).all()
    assert np.sqrt(np.mean(a ** 2)) == pytest.approx(1.0) and abs(a.mean()) < 1e-9
    np.testing.assert_array_equal(a, again)
    assert abs(np.corrcoef(a, other)[0, 1]) < 0.5  # a fresh draw, not the same stretch


def test_ambience_backgrounds_one_folder_per_type_for_background_groups(tmp_path):
    out = tmp_path / "amb"
    summary = ambience_backgrounds(out, types=["rain", "engine"], files_per_type=2,
                                   seconds=1.0, sample_rate=SR, seed=2)
    assert summary == {"out": str(out), "files": 4, "types": ["rain", "engine"]}
    groups = background_groups(out)  # what synth-events --background-groups reads
    assert [name for name, _ in groups] == ["00_rain", "01_engine"]
    y, rate = sf.read(groups[1][1][0])
    assert rate == SR and len(y) == SR and 0.6 < np.max(np.abs(y)) < 0.75
    assert json.loads((out / "recipe.json").read_text())["types"] == ["rain", "engine"]
    with pytest.raises(DatasetError, match=r"types=\['snow'\]: expected distinct names"):
        ambience_backgrounds(tmp_path / "b", types=["snow"])
    with pytest.raises(DatasetError, match="exists"):
        ambience_backgrounds(out, types=["rain"], files_per_type=1, seconds=1.0)


def test_synth_scenes_events_where_annotated_at_their_snr_items_per_type(tmp_path):
    out = tmp_path / "scenes"
    summary = synth_scenes(out, files_per_type=2, seconds=6.0, events_min=2, events_max=3,
                           snr_min=10, snr_max=15, sample_rate=SR, types=["waves", "machine"],
                           seed=4)
    assert summary["files"] == 4 and summary["items"] == ["machine", "waves"]
    events = pd.read_csv(out / "events.csv")
    assert summary["events"] == len(events) and set(events["label"]) <= set(EVENTS)
    assert events["snr_db"].between(10, 15).all()
    items = pd.read_csv(out / "items.csv")
    assert (items["file"].str.rsplit("_", n=1).str[0] == items["item"]).all()
    for name, mine in events.groupby("file"):
        y, rate = sf.read(out / name)
        assert rate == SR and len(y) == 6 * SR
        inside = np.zeros(len(y), bool)
        for e in mine.itertuples():
            inside[e.start_sample:e.end_sample] = True
        background = _power_db(y[~inside])
        for e in mine.itertuples():  # louder than the background by about its SNR
            assert _power_db(y[e.start_sample:e.end_sample]) > background + 6
        for _, lane in mine.groupby("label"):  # one class's events never overlap
            starts, ends = lane["start_sample"].to_numpy(), lane["end_sample"].to_numpy()
            assert (starts[1:] >= ends[:-1]).all()
    recordings, read, skipped = annotation_source(out / "annotations.csv", out)
    assert skipped == [] and len(recordings) == 4 and len(read) == len(events)
    np.testing.assert_allclose(read["onset_s"], events["start_sample"] / SR)


def test_synth_scenes_same_seed_same_folder_and_bad_parameters(tmp_path):
    settings = {"files_per_type": 1, "seconds": 3.0, "sample_rate": SR, "types": ["fire"],
                "seed": 7}
    synth_scenes(tmp_path / "a", **settings)
    synth_scenes(tmp_path / "b", **settings)
    for name in ("annotations.csv", "events.csv", "items.csv", "fire_000.wav"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with pytest.raises(DatasetError, match=r"events_min=5, events_max=2: expected 0 <= "
                                           r"events_min <= events_max"):
        synth_scenes(tmp_path / "c", events_min=5, events_max=2)
    with pytest.raises(DatasetError, match=r"snr_min=9.0 > snr_max=3.0"):
        synth_scenes(tmp_path / "c", snr_min=9.0, snr_max=3.0)
    assert not (tmp_path / "c").exists()


def test_synth_scenes_and_ambience_from_the_command_line(tmp_path, capsys):
    code = preprocessing_main(["synth-scenes", "--out", str(tmp_path / "s"), "--types",
                               "rain,wind", "--files-per-type", "1", "--seconds", "3",
                               "--sample-rate", str(SR)])
    assert code == 0 and "2 recordings on 2 background types" in capsys.readouterr().out
    code = preprocessing_main(["synth-ambience", "--out", str(tmp_path / "a"), "--types",
                               "fire", "--files-per-type", "1", "--seconds", "1"])
    assert code == 0 and "1 backgrounds of 1 types (fire)" in capsys.readouterr().out
