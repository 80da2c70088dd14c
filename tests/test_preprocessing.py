"""Preprocessing: decoding, features, segmentation, sources, the store, the command line."""

import json
import subprocess
import sys

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing import sources
from preprocessing.audio import load_audio
from preprocessing.build import build_store, feature_params
from preprocessing.features import compute_features, feature_shape, segment
from preprocessing.report import dataset_report, format_report
from preprocessing.store import FeatureStore, write_store
from tests.conftest import ROOT, SHARED, python_here
from xval.config.loader import load_config
from xval.core.errors import DatasetError

SR = 8000
# The shipped [features] defaults: preprocessing never reads config.ini itself.
DEFAULTS = load_config(ROOT / "config.ini").features


@pytest.fixture(scope="module")
def params():
    return feature_params(DEFAULTS, sample_rate=SR, n_fft=256, hop_length=128, n_mels=24,
                          segment_seconds=0.5, segment_hop_seconds=0.25, fmin=50.0,
                          n_bins=48)


def tone(freq=440.0, seconds=1.0, sr=SR, amp=0.5):
    return (amp * librosa.tone(freq, sr=sr, duration=seconds)).astype(np.float32)


def write_fsdd_like(folder, speakers=("anna", "bob", "carl"), digits=3, takes=2, sr=SR):
    folder.mkdir(parents=True, exist_ok=True)
    for s, speaker in enumerate(speakers):
        for d in range(digits):
            for k in range(takes):
                y = tone(200 + 150 * d + 20 * s, seconds=0.3 + 0.1 * k)
                sf.write(folder / f"{d}_{speaker}_{k}.wav", y, sr)
    return folder


# -- features ---------------------------------------------------------------------------

@pytest.mark.parametrize("feature,bins", [("stft", 129), ("mel", 24), ("mfcc", 20),
                                          ("cqt", 48)])
def test_compute_features_shapes(params, feature, bins):
    y = tone(seconds=0.5)
    S = compute_features(y, **{**params, "feature": feature})
    assert S.shape == (feature_shape({**params, "feature": feature})[0], bins)
    assert S.dtype == np.float32


@pytest.mark.parametrize("feature", ["stft", "mel", "cqt"])
def test_compute_features_time_first_and_in_order(params, feature):
    y = librosa.chirp(fmin=100, fmax=750, sr=SR, duration=1.0).astype(np.float32)
    S = compute_features(y, **{**params, "feature": feature, "compression": "none"})
    peaks = S.argmax(axis=1)  # loudest frequency bin of every frame
    assert peaks[-3] > peaks[2]  # a rising chirp rises along the first axis
    assert np.all(np.diff(peaks[2:-2]) >= -1)


def test_compute_features_compressions_differ(params):
    y = tone(seconds=0.5)
    out = {c: compute_features(y, **{**params, "feature": "stft", "compression": c})
           for c in ("db", "log", "power", "none")}
    np.testing.assert_allclose(out["log"], np.log1p(out["none"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["power"], out["none"] ** 0.3, rtol=1e-3, atol=1e-4)
    assert out["db"].max() <= 60 and out["db"].min() < 0


@pytest.mark.parametrize("feature", ["mel", "mfcc"])
def test_compute_features_match_librosa(params, feature, rng):
    y = rng.normal(0, 0.1, SR // 2).astype(np.float32)
    kw = {"sr": SR, "n_fft": 256, "hop_length": 128, "n_mels": 24, "fmin": 50.0}
    if feature == "mel":
        expected = librosa.power_to_db(librosa.feature.melspectrogram(y=y, **kw), ref=1.0,
                                       top_db=None, amin=1e-10)
    else:
        expected = librosa.feature.mfcc(y=y, n_mfcc=20, **kw)
    got = compute_features(y, **{**params, "feature": feature})
    np.testing.assert_allclose(got, expected.T, rtol=1e-4, atol=1e-3)


def test_compute_features_float16(params):
    assert compute_features(tone(seconds=0.5), **{**params, "dtype": "float16"}).dtype \
        == np.float16


def test_compute_features_bad_values(params):
    with pytest.raises(ValueError, match="feature='chroma'"):
        compute_features(tone(), **{**params, "feature": "chroma"})
    with pytest.raises(ValueError, match="compression='sqrt'"):
        compute_features(tone(), **{**params, "compression": "sqrt"})


def test_segment_pads_short_signal():
    segs, starts = segment(np.ones(100, np.float32), sample_rate=1000, segment_seconds=0.5,
                           hop_seconds=0.25)
    assert segs.shape == (1, 500) and segs[0, :100].sum() == 100 and segs[0, 100:].sum() == 0
    assert starts.tolist() == [0.0]


def test_segment_hops_and_tail_without_duplicates():
    y = np.arange(1100, dtype=np.float32)
    segs, starts = segment(y, sample_rate=1000, segment_seconds=0.5, hop_seconds=0.25)
    assert starts.tolist() == [0.0, 0.25, 0.5, 0.6]  # the tail aligned to the end
    assert segs[-1][-1] == 1099
    segs, starts = segment(np.arange(1000, dtype=np.float32), sample_rate=1000,
                           segment_seconds=0.5, hop_seconds=0.25)
    assert starts.tolist() == [0.0, 0.25, 0.5]  # the end is covered: no extra tail
    assert len({tuple(s) for s in segs}) == len(segs)


def test_extract_file_slices_frames_like_per_segment_features(tmp_path, params, rng):
    from preprocessing.build import extract_file

    y = (0.3 * rng.normal(size=int(1.3 * SR))).astype(np.float32)
    sf.write(tmp_path / "x.wav", y, SR, subtype="FLOAT")
    p = {**params, "peak_normalize": False}
    result = extract_file(tmp_path / "x.wav", p)
    segments, starts = segment(y, sample_rate=SR, segment_seconds=0.5, hop_seconds=0.25,
                               grid=128)
    assert len(segments) == 5 and all(round(s * SR) % 128 == 0 for s in starts)
    assert result["starts"] == starts.tolist() and len(result["features"]) == len(segments)
    for feats, seg in zip(result["features"], segments):
        alone = compute_features(seg, **p)
        assert feats.shape == alone.shape == feature_shape(p)
        # Away from the segment's edges (centre padding), the frames are the same.
        np.testing.assert_allclose(feats[3:-3], alone[3:-3], rtol=1e-4, atol=1e-3)


def test_segment_starts_on_grid_and_tail_close_to_end():
    y = np.arange(1100, dtype=np.float32)
    segs, starts = segment(y, sample_rate=1000, segment_seconds=0.5, hop_seconds=0.25, grid=64)
    samples = [round(s * 1000) for s in starts]
    assert samples == [0, 256, 512, 576] and all(s % 64 == 0 for s in samples)
    assert 1100 - (samples[-1] + 500) < 64  # the tail ends within one grid step of the end
    assert len(set(samples)) == len(samples)


def test_segment_bad_values():
    with pytest.raises(ValueError, match="must be > 0"):
        segment(np.ones(10), sample_rate=10, segment_seconds=0, hop_seconds=1)


# -- decoding -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"),
                                     ("MP3", "mp3")])
def test_load_audio_formats_resampled_mono(tmp_path, fmt, ext):
    stereo = np.stack([tone(440, sr=16000), tone(440, sr=16000)], axis=1)
    path = tmp_path / f"x.{ext}"
    sf.write(path, stereo, 16000, format=fmt)
    y, orig = load_audio(path, sample_rate=SR, peak_normalize=True)
    assert orig == 16000 and y.ndim == 1 and y.dtype == np.float32
    assert abs(len(y) - SR) < 1200  # mp3 adds encoder padding
    assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-6)
    spectrum = np.abs(np.fft.rfft(y[:4096]))
    assert abs(np.fft.rfftfreq(4096, 1 / SR)[spectrum.argmax()] - 440) < 5


def test_load_audio_corrupt_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF....not audio at all")
    with pytest.raises(DatasetError, match="Cannot decode .*broken.wav"):
        load_audio(path, sample_rate=SR)


def test_load_audio_m4a_names_what_to_install(tmp_path):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(200))
    with pytest.raises(DatasetError, match=r"Cannot decode .*song.m4a.*(ffmpeg|audioread)"):
        load_audio(path, sample_rate=SR)


# -- sources ----------------------------------------------------------------------------

def test_regex_source_fsdd_pattern(tmp_path):
    root = write_fsdd_like(tmp_path / "rec")
    (root / "notes.wav").write_bytes(b"")  # does not match: listed as skipped
    rows, skipped = sources.regex_source(root, sources.FSDD_PATTERN)
    assert len(rows) == 18 and sorted(set(rows["item"])) == ["anna", "bob", "carl"]
    assert sorted(set(rows["label"])) == ["0", "1", "2"]
    assert skipped[0]["path"].endswith("notes.wav") and "does not match" in skipped[0]["reason"]


def test_regex_source_label_map_and_errors(tmp_path):
    root = tmp_path / "rav" / "Actor_01"
    root.mkdir(parents=True)
    for emotion in ("01", "05", "09"):
        sf.write(root / f"03-01-{emotion}-01-01-01-01.wav", tone(), SR)
    rows, skipped = sources.regex_source(root.parent, sources.RAVDESS_PATTERN,
                                         label_map=sources.RAVDESS_EMOTIONS)
    assert sorted(rows["label"]) == ["angry", "neutral"] and set(rows["item"]) == {"01"}
    assert "label code '09' is not in the label map" in skipped[0]["reason"]
    with pytest.raises(DatasetError, match="needs a named group"):
        sources.regex_source(root, r"(?P<item>\d+)")
    with pytest.raises(DatasetError, match="not a valid regular expression"):
        sources.regex_source(root, r"(?P<label>")
    with pytest.raises(DatasetError, match="does not exist"):
        sources.regex_source(tmp_path / "missing", sources.FSDD_PATTERN)


def test_folder_source(tmp_path):
    for label in ("dog", "cat"):
        (tmp_path / label).mkdir()
        for k in range(2):
            sf.write(tmp_path / label / f"rec{k}_take.wav", tone(), SR)
    rows, _ = sources.folder_source(tmp_path, item_pattern=r"(?P<item>rec\d)")
    assert sorted(rows["label"]) == ["cat", "cat", "dog", "dog"]
    assert sorted(set(rows["item"])) == ["rec0", "rec1"]
    rows, _ = sources.folder_source(tmp_path)
    assert rows["item"].nunique() == 4  # each file its own item


def test_manifest_source_with_split(tmp_path):
    for k in range(4):
        sf.write(tmp_path / f"{k}.wav", tone(), SR)
    pd.DataFrame({"filename": [f"{k}.wav" for k in range(5)], "category": list("aabba"),
                  "fold": ["1", "1", "2", "3", "3"],
                  "set": ["train", "train", "validation", "test", "test"]}).to_csv(
        tmp_path / "meta.csv", index=False)
    rows, skipped = sources.manifest_source(tmp_path / "meta.csv", path_column="filename",
                                            label_column="category", item_column="fold",
                                            split_column="set")
    assert len(rows) == 4 and list(rows["split"]) == ["train", "train", "validation", "test"]
    assert skipped == [{"path": str(tmp_path / "4.wav"), "reason": "file not found",
                        "label": "a"}]  # its class, named if the class loses every file
    with pytest.raises(DatasetError, match="label_column='label' is not a column"):
        sources.manifest_source(tmp_path / "meta.csv", path_column="filename")


# -- building stores ----------------------------------------------------------------------

def test_build_store_skips_bad_files_and_lists_them(tmp_path, params):
    root = write_fsdd_like(tmp_path / "rec")
    (root / "0_anna_9.wav").write_bytes(b"RIFFjunk")
    sf.write(root / "1_bob_9.wav", np.zeros(SR, np.float32), SR)
    rows, skipped = sources.regex_source(root, sources.FSDD_PATTERN)
    store, summary = build_store(rows, tmp_path / "store", params=params, workers=1,
                                 skipped=skipped, progress=False)
    reasons = {s["path"].rsplit("/", 1)[1]: s["reason"] for s in store.info["skipped"]}
    assert "Cannot decode" in reasons["0_anna_9.wav"] and "no signal" in reasons["1_bob_9.wav"]
    assert summary["files"] == 18 and len(summary["skipped"]) == 2
    assert store.features.shape[1:] == feature_shape(params)
    assert isinstance(store.features, np.memmap)
    items = store.items
    assert all(items[i] <= items[i + 1] for i in range(len(items) - 1))  # grouped by item
    assert store.info["feature_params"]["n_mels"] == 24
    assert len(store.info["content_hash"]) == 64


def test_build_store_strict_fails_and_writes_nothing(tmp_path, params):
    root = write_fsdd_like(tmp_path / "rec")
    (root / "2_carl_9.wav").write_bytes(b"RIFFjunk")
    rows, _ = sources.regex_source(root, sources.FSDD_PATTERN)
    with pytest.raises(DatasetError, match="2_carl_9.wav.*strict mode"):
        build_store(rows, tmp_path / "store", params=params, workers=1, strict=True,
                    progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]  # no store, no temp files


def test_build_store_deterministic_across_workers(tmp_path, params):
    rows, _ = sources.regex_source(write_fsdd_like(tmp_path / "rec"), sources.FSDD_PATTERN)
    a, _ = build_store(rows, tmp_path / "a", params=params, workers=1, progress=False)
    b, _ = build_store(rows.sample(frac=1, random_state=3), tmp_path / "b", params=params,
                       workers=2, progress=False)
    assert (tmp_path / "a" / "features.npy").read_bytes() == \
        (tmp_path / "b" / "features.npy").read_bytes()
    assert (tmp_path / "a" / "meta.csv").read_text() == (tmp_path / "b" / "meta.csv").read_text()
    assert a.content_hash == b.content_hash


def test_auto_workers_start_processes_only_for_a_folder_that_pays_for_them(monkeypatch):
    """`workers=0` ("all cores"): this process alone for a small folder, a worker per
    `POOL_FILES` files forked from a warm process (per `POOL_FILES_FRESH` where workers start
    fresh and import the audio stack), never more than the cores."""
    from preprocessing import parallel

    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(parallel, "fork_is_safe", lambda: True)
    assert [parallel.auto_workers(n) for n in (0, 1, 31, 32, 100, 10_000)] == [1, 1, 1, 2, 6, 8]
    monkeypatch.setattr(parallel, "fork_is_safe", lambda: False)
    assert [parallel.auto_workers(n) for n in (24, 255, 256, 10_000)] == [1, 1, 2, 8]


def test_build_store_refuses_existing_without_overwrite(tmp_path, params):
    rows, _ = sources.regex_source(write_fsdd_like(tmp_path / "rec"), sources.FSDD_PATTERN)
    build_store(rows, tmp_path / "s", params=params, workers=1, progress=False)
    with pytest.raises(DatasetError, match="already exists.*--overwrite"):
        build_store(rows, tmp_path / "s", params=params, workers=1, progress=False)
    store, _ = build_store(rows, tmp_path / "s", params=params, workers=1, overwrite=True,
                           progress=False)
    assert len(store) > 0


def test_write_store_groups_rows_by_item(tmp_path):
    x = np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3)
    meta = pd.DataFrame({"item": list("abcabc"), "label": list("xyxyxy")})
    store = write_store(tmp_path / "s", x, meta)
    assert list(store.items) == list("aabbcc")
    np.testing.assert_array_equal(store.features[1], x[3])  # the second 'a' row
    assert list(store.meta["row"]) == list(range(6))
    assert store.classes == ["x", "y"] and list(store.targets) == [0, 1, 1, 0, 0, 1]


def test_store_missing_files_clear_error(tmp_path):
    (tmp_path / "s").mkdir()
    with pytest.raises(DatasetError, match="not a feature store: missing features.npy"):
        FeatureStore(tmp_path / "s")


def test_dataset_report_counts_and_warnings(tmp_path):
    x = np.zeros((7, 2, 2), np.float32)
    meta = pd.DataFrame({"item": ["a"] * 4 + ["b"] * 3, "label": list("xyxy") + list("xxx"),
                         "clip": list("1234567"), "duration": 1.5, "orig_sr": 16000})
    store = write_store(tmp_path / "s", x, meta)
    report = dataset_report(store, plot_path=tmp_path / "rates.png")
    assert report["counts"] == {"a": {"x": 2, "y": 2}, "b": {"x": 3, "y": 0}}
    assert any("'b' has a single class" in w for w in report["warnings"])
    assert any("'a' has only 4 row(s)" in w for w in report["warnings"])
    assert report["sample_rates"] == {16000: 7}
    assert (tmp_path / "rates.png").read_bytes()[:4] == b"\x89PNG"
    assert "warning:" in format_report(report)


def test_cli_regex_and_report(tmp_path):
    root = write_fsdd_like(tmp_path / "rec")
    cmd = [sys.executable, "-m", "preprocessing", "regex", str(root), "--pattern", "fsdd",
           "--out", str(tmp_path / "store"), "--sample-rate", "8000", "--n-mels", "16",
           "--workers", "1", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "18 files, 3 items, 3 classes" in proc.stdout
    info = json.loads((tmp_path / "store" / "dataset.json").read_text())
    assert info["feature_params"]["n_mels"] == 16 and info["sample_rate"] == 8000
    # The refusal and the report in this process (python_here); the build above is the
    # command line's real process.
    again = python_here(*cmd[1:], cwd=ROOT)
    assert again.returncode == 2 and "already exists" in again.stderr
    report = python_here("-m", "preprocessing", "report", tmp_path / "store", cwd=ROOT)
    assert "clips per item" in report.stdout and "anna" in report.stdout


def test_demo_is_deterministic(tmp_path):
    from preprocessing.demo import build_demo

    a, _ = build_demo(tmp_path / "one", workers=1, progress=False)
    b, _ = build_demo(tmp_path / "two", workers=1, progress=False)
    assert a.content_hash == b.content_hash
    assert a.info["n_items"] == 8 and a.classes == ["fall", "flat", "rise", "vibrato"]
    assert len(a) == 8 * 4 * 10 * 3  # three half-second segments per one-second clip


def test_demo_task_type(tmp_path):
    """`demo --task-type` builds a store of that task, or says why it cannot."""
    from preprocessing.demo import build_demo

    store, _ = build_demo(tmp_path / "data", workers=1, progress=False,
                          task_type="representation")
    assert store.task_type == "representation"
    proc = python_here("-m", "preprocessing", "demo", "--task-type", "regression",
                       "--data-dir", tmp_path / "other", cwd=ROOT)
    assert proc.returncode != 0
    assert "--task-type regression cannot be used with `demo`" in proc.stderr
    assert not (tmp_path / "other").exists()  # refused before anything is written


# -- real recordings (README recipes) -----------------------------------------------------

def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "preprocessing", *args, "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _linked(rows, folder, root, per):
    """Links the first file of every group of `rows` (grouped by the columns `per`) under
    `folder`, at its path relative to `root` (the patterns read relative paths)."""
    from pathlib import Path

    for path in rows.sort_values("path").groupby(per)["path"].first():
        link = folder / Path(path).relative_to(root)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return folder


@pytest.mark.realdata
def test_realdata_fsdd_recipe(tmp_path):
    """The `fsdd` preset reads every recording's digit and speaker (the whole folder); the
    command builds a store from one real recording of each digit and speaker."""
    root = SHARED / "fsdd" / "recordings"
    if not root.is_dir():
        pytest.skip(f"FSDD recordings not found at {SHARED / 'fsdd'}")
    rows, skipped = sources.regex_source(root, sources.PRESETS["fsdd"])
    assert len(rows) == 3000 and skipped == [] and rows["clip"].nunique() == 3000
    assert sorted(set(rows["item"])) == ["george", "jackson", "lucas", "nicolas", "theo",
                                         "yweweler"]
    audio = _linked(rows, tmp_path / "fsdd_audio", root, ["label", "item"])
    _cli("regex", str(audio), "--pattern", "fsdd", "--out", str(tmp_path / "fsdd"),
         "--sample-rate", "8000", "--n-mels", "40")
    store = FeatureStore(tmp_path / "fsdd")
    assert store.info["n_files"] == 60 and store.info["skipped"] == []
    assert store.classes == [str(d) for d in range(10)] and len(set(store.items)) == 6


@pytest.mark.realdata
def test_realdata_ravdess_recipe(tmp_path):
    """The `ravdess` preset and label map read every file's emotion and actor (the whole
    folder); the command builds a store from one real recording of each emotion of four
    actors, FLAC decoded, cut into the recipe's segments."""
    root = SHARED / "ravdess" / "audio"
    if not root.is_dir():
        pytest.skip(f"RAVDESS audio not found at {SHARED / 'ravdess'}")
    rows, skipped = sources.regex_source(root, sources.PRESETS["ravdess"],
                                         label_map=sources.label_map("ravdess"))
    assert len(rows) == 1440 and skipped == []
    assert sorted(set(rows["item"])) == [f"{a:02d}" for a in range(1, 25)]
    assert sorted(set(rows["label"])) == sorted(sources.RAVDESS_EMOTIONS.values())
    assert (rows["label"] == "neutral").sum() == 96  # 4 neutral clips per actor
    assert rows.groupby("item").size().eq(60).all()
    four = rows[rows["item"].isin(["01", "02", "13", "24"])]
    audio = _linked(four, tmp_path / "ravdess_audio", root, ["label", "item"])
    _cli("regex", str(audio), "--pattern", "ravdess", "--label-map", "ravdess", "--out",
         str(tmp_path / "ravdess"), "--segment-seconds", "3", "--segment-hop-seconds", "1")
    store = FeatureStore(tmp_path / "ravdess")
    assert store.info["n_files"] == 32 and store.info["skipped"] == []
    assert store.classes == sorted(sources.RAVDESS_EMOTIONS.values())
    assert store.meta.drop_duplicates("clip").groupby("item").size().eq(8).all()
    assert (store.meta.groupby("clip").size() >= 1).all() and len(store) > 32  # segments


def test_recipe_speaker_id_layout(tmp_path):
    root = tmp_path / "voxceleb" / "wav"
    for speaker in ("id001", "id002"):
        for context in ("ctxA", "ctxB"):
            folder = root / speaker / f"{speaker}_{context}"
            folder.mkdir(parents=True)
            for k in range(2):
                sf.write(folder / f"{k:05d}.wav", tone(200 + 100 * k), SR)
    _cli("regex", str(root), "--pattern", "speaker-id", "--out", str(tmp_path / "vox"),
         "--sample-rate", "8000")
    store = FeatureStore(tmp_path / "vox")
    assert store.classes == ["id001", "id002"]  # labels are speakers
    assert sorted(set(store.items)) == ["id001_ctxA", "id001_ctxB", "id002_ctxA", "id002_ctxB"]


def test_recipe_esc50_manifest(tmp_path):
    audio = tmp_path / "ESC-50" / "audio"
    audio.mkdir(parents=True)
    records = []
    for k in range(6):
        name = f"{k % 3 + 1}-{100 + k}-A-{k}.wav"
        sf.write(audio / name, tone(300 + 50 * k), SR)
        records.append({"filename": name, "fold": str(k % 3 + 1), "target": str(k % 2),
                        "category": ["dog", "rain"][k % 2], "src_file": str(100 + k)})
    (tmp_path / "ESC-50" / "meta").mkdir()
    pd.DataFrame(records).to_csv(tmp_path / "ESC-50" / "meta" / "esc50.csv", index=False)
    _cli("manifest", str(tmp_path / "ESC-50" / "meta" / "esc50.csv"), "--root",
         str(audio), "--path-column", "filename", "--label-column", "category",
         "--item-column", "fold", "--out", str(tmp_path / "esc50"), "--sample-rate", "8000")
    store = FeatureStore(tmp_path / "esc50")
    assert store.classes == ["dog", "rain"] and sorted(set(store.items)) == ["1", "2", "3"]


# -- robustness: non-finite audio, manifests, parameters, file modes ----------------------

def write_non_finite(folder):
    """A wav of NaNs and a wav with one +inf sample (32-bit float files)."""
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "nan.wav", np.full(SR // 2, np.nan, np.float32), SR, subtype="FLOAT")
    y = tone(300, seconds=0.5)
    y[100] = np.inf
    sf.write(folder / "inf.wav", y, SR, subtype="FLOAT")
    return folder / "nan.wav", folder / "inf.wav"


def test_load_audio_non_finite_is_a_dataset_error(tmp_path):
    nan, inf = write_non_finite(tmp_path)
    with pytest.raises(DatasetError, match=r"nan.wav: 4000 of its 4000 samples are not finite"):
        load_audio(nan, sample_rate=SR)
    with pytest.raises(DatasetError, match=r"inf.wav: 1 of its 4000 samples are not finite"):
        load_audio(inf, sample_rate=16000)  # checked before resampling


def test_extract_file_non_finite_gives_the_reason(tmp_path, params):
    # xval.predict turns this reason into a DatasetError naming the file.
    from preprocessing.build import extract_file

    nan, inf = write_non_finite(tmp_path)
    for path in (nan, inf):
        result = extract_file(path, params)
        assert set(result) == {"error"} and "not finite (NaN or infinity)" in result["error"]


def test_build_store_skips_non_finite_files_and_strict_names_them(tmp_path, params):
    root = write_fsdd_like(tmp_path / "rec")
    y = tone(300)
    y[7] = np.nan
    sf.write(root / "0_anna_8.wav", y, SR, subtype="FLOAT")
    sf.write(root / "1_bob_8.wav", np.full(SR, np.inf, np.float32), SR, subtype="FLOAT")
    rows, skipped = sources.regex_source(root, sources.FSDD_PATTERN)
    store, summary = build_store(rows, tmp_path / "store", params=params, workers=2,
                                 skipped=skipped, progress=False)
    reasons = {s["path"].rsplit("/", 1)[1]: s["reason"] for s in store.info["skipped"]}
    assert set(reasons) == {"0_anna_8.wav", "1_bob_8.wav"}
    assert all("not finite" in r for r in reasons.values())
    assert summary["files"] == 18 and np.isfinite(store.features).all()
    with pytest.raises(DatasetError, match=r"0_anna_8.wav: .*not finite.*\(strict mode\)"):
        build_store(rows, tmp_path / "strict", params=params, workers=1, strict=True,
                    progress=False)
    assert not (tmp_path / "strict").exists()


def test_cli_non_finite_file_skipped_and_listed(tmp_path):
    root = write_fsdd_like(tmp_path / "rec", speakers=("anna", "bob"))
    sf.write(root / "2_anna_7.wav", np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
    proc = python_here("-m", "preprocessing", "regex", root, "--pattern", "fsdd", "--out",
                       tmp_path / "s", "--sample-rate", "8000", "--workers", "1",
                       "--no-progress", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Skipped 1 of the files:" in proc.stdout and "2_anna_7.wav" in proc.stdout
    assert "Traceback" not in proc.stderr
    strict = python_here("-m", "preprocessing", "regex", root, "--pattern", "fsdd", "--out",
                         tmp_path / "t", "--sample-rate", "8000", "--workers", "1",
                         "--no-progress", "--strict", cwd=ROOT)
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert strict.stderr.startswith("error: ") and "not finite" in strict.stderr
    assert "strict mode" in strict.stderr and not (tmp_path / "t").exists()


def write_manifest(tmp_path, text, files=("1.wav", "2.wav", "3.wav")):
    for name in files:
        sf.write(tmp_path / name, tone(), SR)
    (tmp_path / "meta.csv").write_text(text)
    return tmp_path / "meta.csv"


def test_manifest_split_value_not_a_set_names_value_and_row(tmp_path):
    csv = write_manifest(tmp_path, "path,label,set\n1.wav,a,train\n2.wav,b,banana\n")
    with pytest.raises(DatasetError, match=r"row 2 of .*meta.csv: set='banana' is not a set "
                                           r"name; expected one of train, training, val"):
        sources.manifest_source(csv, split_column="set")
    ok = write_manifest(tmp_path, "path,label,set\n1.wav,a,Train\n2.wav,b, validation\n"
                                  "3.wav,a,TEST\n")
    rows, _ = sources.manifest_source(ok, split_column="set")
    assert len(rows) == 3


@pytest.mark.parametrize("content,match", [
    (b"", "meta.csv is empty; expected a CSV with a header row"),
    (b"path,label\n", "meta.csv has a header but no rows"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd", "not a readable UTF-8 CSV file"),
])
def test_manifest_empty_or_binary_is_clear(tmp_path, content, match):
    (tmp_path / "meta.csv").write_bytes(content)
    with pytest.raises(DatasetError, match=match):
        sources.manifest_source(tmp_path / "meta.csv")


@pytest.mark.parametrize("entry", ["../outside.wav", "sub/../../outside.wav", "/etc/hostname"])
def test_manifest_path_outside_root_is_an_error_unless_allowed(tmp_path, entry):
    root = tmp_path / "root"
    root.mkdir()
    sf.write(tmp_path / "outside.wav", tone(), SR)
    csv = write_manifest(root, f"path,label\n1.wav,a\n{entry},b\n", files=("1.wav",))
    with pytest.raises(DatasetError, match=r"row 2 of .*: path='(.*outside.wav|/etc/hostname)' leads "
                                           r"outside the root folder .*--allow-outside-root"):
        sources.manifest_source(csv)
    rows, skipped = sources.manifest_source(csv, allow_outside_root=True)
    assert len(rows) + len(skipped) == 2


def test_cli_manifest_outside_root_and_flag(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(root / name, tone(), SR)
    sf.write(tmp_path / "c.wav", tone(500), SR)
    (root / "m.csv").write_text("path,label\na.wav,x\nb.wav,y\n../c.wav,x\n")
    cmd = ["-m", "preprocessing", "manifest", root / "m.csv", "--out", tmp_path / "s",
           "--sample-rate", "8000", "--workers", "1", "--no-progress"]
    proc = python_here(*cmd, cwd=ROOT)
    assert proc.returncode == 2 and "leads outside the root folder" in proc.stderr
    assert not (tmp_path / "s").exists()
    proc = python_here(*cmd, "--allow-outside-root", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert FeatureStore(tmp_path / "s").info["n_files"] == 3


def test_feature_params_checks_values_and_never_reads_config(tmp_path, monkeypatch, params):
    from xval.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"n_mels=0: expected an integer in \[1, 2048\]"):
        feature_params(None, **{**params, "n_mels": 0})
    with pytest.raises(ConfigurationError, match="--dtype 'int8': expected one of"):
        feature_params(None, style="flag", **{**params, "dtype": "int8"})
    # dtype auto (the default) is the type's own, recorded resolved; a given one is kept.
    assert feature_params(DEFAULTS)["dtype"] == "float32"
    assert feature_params(DEFAULTS, feature="pretrained")["dtype"] == "float16"
    assert feature_params(DEFAULTS, feature="pretrained", dtype="float32")["dtype"] == "float32"
    with pytest.raises(DatasetError, match="Unknown feature parameter 'n_mel'"):
        feature_params(DEFAULTS, n_mel=3)
    with pytest.raises(ConfigurationError, match="--feature 'chroma': expected one of stft, "
                                                 "mel, mfcc, cqt"):
        feature_params(DEFAULTS, style="flag", feature="chroma")
    # config.ini is never looked for (XVAL_CONFIG would be an error): a missing key is one
    monkeypatch.setenv("XVAL_CONFIG", str(tmp_path / "missing.ini"))
    with pytest.raises(ConfigurationError, match="Feature parameters n_fft, n_mels are "
                                                 "missing; pass the \\[features\\] section"):
        feature_params(None, **{k: v for k, v in params.items() if k not in ("n_fft", "n_mels")})
    assert feature_params(None, **params) == params
    assert feature_params({**DEFAULTS, "n_mels": 7}, n_mels=24)["n_mels"] == 24  # workers ignored


def test_build_store_checks_parameters_before_writing(tmp_path, params):
    from xval.core.errors import ConfigurationError

    rows, _ = sources.regex_source(write_fsdd_like(tmp_path / "rec"), sources.FSDD_PATTERN)
    with pytest.raises(ConfigurationError, match=r"hop_length=0: expected an integer in \[1, 1048576\]"):
        build_store(rows, tmp_path / "s", params={**params, "hop_length": 0}, progress=False)
    with pytest.raises(ConfigurationError, match=r"workers=-2: expected an integer in \[0, 1024\]"):
        build_store(rows, tmp_path / "s", params=params, workers=-2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755),
                                                      (0o077, 0o600, 0o700)])
def test_store_files_honour_the_umask(tmp_path, params, mask, file_mode, dir_mode):
    import os
    import stat

    rows, _ = sources.regex_source(write_fsdd_like(tmp_path / "rec"), sources.FSDD_PATTERN)
    previous = os.umask(mask)
    try:
        for overwrite in (False, True):
            build_store(rows, tmp_path / "data" / "s", params=params, workers=1,
                        overwrite=overwrite, progress=False)
    finally:
        os.umask(previous)
    folder = tmp_path / "data" / "s"
    assert stat.S_IMODE(folder.stat().st_mode) == dir_mode
    for name in ("features.npy", "meta.csv", "dataset.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == file_mode, name
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["s"]
