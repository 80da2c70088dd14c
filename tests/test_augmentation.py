"""The augmentation command, its determinism and safety, and augmentation in preprocessing."""

import hashlib
import subprocess
import sys

import librosa
import numpy as np
import pytest
import soundfile as sf

from augmentation import Augmenter, augment_folder, build_pipeline
from tests.conftest import ROOT
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, DatasetError

PARAMS = dict(load_config(ROOT / "config.ini").augmentation)
SR = 16000


def only(transform, **extra):
    """Parameters with one transform always on and the others off."""
    params = {**PARAMS, "p_noise": 0.0, "p_eq": 0.0, "p_reverb": 0.0, "p_stretch": 0.0}
    params[f"p_{transform}"] = 1.0
    return {**params, **extra}


@pytest.fixture
def recordings(tmp_path):
    root = tmp_path / "in"
    for folder, freqs in (("a", (220, 330)), ("b/deep", (440,))):
        (root / folder).mkdir(parents=True)
        for f in freqs:
            y = 0.3 * librosa.tone(f, sr=SR, duration=0.5) + 0.05 * np.sin(
                np.linspace(0, 40, SR // 2))
            sf.write(root / folder / f"tone{f}.wav", y.astype(np.float32), SR)
    return root


def tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_augment_folder_writes_original_and_versions(recordings, tmp_path):
    before = tree_digest(recordings)
    summary = augment_folder(recordings, tmp_path / "out", 2, params=PARAMS, seed=1,
                             workers=1, progress=False)
    assert tree_digest(recordings) == before  # IN is never written to
    assert summary["files"] == 3 and summary["written"] == 9
    out = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.wav"))
    assert out == ["a/tone220_aug01.wav", "a/tone220_aug02.wav", "a/tone220_original.wav",
                   "a/tone330_aug01.wav", "a/tone330_aug02.wav", "a/tone330_original.wav",
                   "b/deep/tone440_aug01.wav", "b/deep/tone440_aug02.wav",
                   "b/deep/tone440_original.wav"]
    original, _ = sf.read(tmp_path / "out" / "a" / "tone220_original.wav")
    assert np.max(np.abs(original)) == pytest.approx(1.0, abs=1e-3)  # peak-normalised
    aug, _ = sf.read(tmp_path / "out" / "a" / "tone220_aug01.wav")
    assert len(aug) != len(original) or not np.allclose(aug, original, atol=1e-3)


def test_augment_same_seed_identical_bytes_across_workers(recordings, tmp_path):
    augment_folder(recordings, tmp_path / "one", 2, params=PARAMS, seed=7, workers=1,
                   progress=False)
    augment_folder(recordings, tmp_path / "two", 2, params=PARAMS, seed=7, workers=2,
                   progress=False)
    augment_folder(recordings, tmp_path / "other", 2, params=PARAMS, seed=8, workers=1,
                   progress=False)
    assert tree_digest(tmp_path / "one") == tree_digest(tmp_path / "two")
    assert tree_digest(tmp_path / "one") != tree_digest(tmp_path / "other")


@pytest.mark.parametrize("case,match", [
    ("out_inside_in", "is inside IN"),
    ("negative", "N=-1"),
    ("missing_in", "does not exist"),
    ("empty_noise", "holds no audio files"),
    ("missing_ir", "Impulse response folder .* does not exist"),
])
def test_augment_errors_before_writing(recordings, tmp_path, case, match):
    out = tmp_path / "out"
    kwargs = {"params": PARAMS, "workers": 1, "progress": False}
    args = (recordings, out, 1)
    if case == "out_inside_in":
        args = (recordings, recordings / "aug", 1)
    elif case == "negative":
        args = (recordings, out, -1)
    elif case == "missing_in":
        args = (tmp_path / "nope", out, 1)
    elif case == "empty_noise":
        (tmp_path / "noise").mkdir()
        kwargs["noise_dir"] = tmp_path / "noise"
    else:
        kwargs["ir_dir"] = tmp_path / "no_irs"
    before = tree_digest(recordings)
    with pytest.raises(ConfigurationError, match=match):
        augment_folder(*args, **kwargs)
    assert not out.exists() and not (recordings / "aug").exists()
    assert tree_digest(recordings) == before


def test_augment_unreadable_files_skipped_and_listed(recordings, tmp_path):
    (recordings / "a" / "broken.wav").write_bytes(b"RIFF nonsense")
    summary = augment_folder(recordings, tmp_path / "out", 1, params=PARAMS, workers=1,
                             progress=False)
    assert summary["files"] == 3
    assert summary["skipped"][0]["path"].endswith("broken.wav")


def test_augment_no_audio(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(DatasetError, match="No audio files"):
        augment_folder(tmp_path / "in", tmp_path / "out", 1, params=PARAMS, progress=False)


def test_each_transform_does_its_job(rng):
    y = (0.3 * librosa.tone(440, sr=SR, duration=1.0)).astype(np.float32)
    stretched = Augmenter(only("stretch"))(y, SR, 3)
    assert len(stretched) != len(y)
    for name in ("noise", "eq", "reverb"):
        out = Augmenter(only(name))(y, SR, 3)
        assert len(out) == len(y), name  # length unchanged
        assert not np.allclose(out, y, atol=1e-3), name
    silent = Augmenter(only("noise", p_noise=0.0))(y, SR, 3)
    np.testing.assert_allclose(silent, y, atol=1e-6)  # p = 0: untouched


def test_noise_and_impulse_response_folders(recordings, tmp_path, rng):
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "hum.wav", rng.normal(0, 0.3, SR).astype(np.float32), SR)
    (tmp_path / "irs").mkdir()
    ir = np.zeros(SR // 4, np.float32)
    ir[0], ir[2000] = 1.0, 0.6
    sf.write(tmp_path / "irs" / "room.wav", ir, SR)
    y = (0.3 * librosa.tone(440, sr=SR, duration=0.5)).astype(np.float32)
    noisy = Augmenter(only("noise"), noise_dir=tmp_path / "noise")(y, SR, 1)
    assert np.std(noisy - y) > 0.01
    echoed = Augmenter(only("reverb"), ir_dir=tmp_path / "irs")(y, SR, 1)
    assert len(echoed) == len(y) and not np.allclose(echoed, y, atol=1e-3)
    pipeline = build_pipeline(PARAMS, noise_dir=tmp_path / "noise", ir_dir=tmp_path / "irs")
    names = [type(t).__name__ for t in pipeline.transforms]
    assert names == ["AddBackgroundNoise", "SevenBandParametricEQ", "ApplyImpulseResponse",
                     "TimeStretch"]
    assert [type(t).__name__ for t in build_pipeline(PARAMS).transforms][::2] == \
        ["AddColorNoise", "RoomSimulator"]


def test_low_sample_rate_stays_finite():
    y = (0.3 * librosa.tone(300, sr=8000, duration=0.5)).astype(np.float32)
    for seed in range(12):
        out = Augmenter(only("eq"))(y, 8000, seed)
        assert np.all(np.isfinite(out)) and len(out) == len(y)


def test_bad_parameters():
    with pytest.raises(ConfigurationError, match="p_eq=1.5"):
        Augmenter({**PARAMS, "p_eq": 1.5})
    with pytest.raises(ConfigurationError, match="min_snr_db=40.*greater than max_snr_db"):
        Augmenter({**PARAMS, "min_snr_db": 40.0})


def test_command_line(recordings, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "augmentation", str(recordings),
                           str(tmp_path / "out"), "1", "--seed", "3", "--workers", "1",
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Wrote 6 files" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "augmentation", str(recordings),
                          str(recordings / "x"), "1"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "inside IN" in bad.stderr


def test_preprocessing_augment_option_marks_rows(recordings, tmp_path):
    from preprocessing import FeatureStore, regex_source

    proc = subprocess.run([sys.executable, "-m", "preprocessing", "regex", str(recordings),
                           "--pattern", r"(?P<item>[ab])/.*tone(?P<label>\d+)", "--out",
                           str(tmp_path / "store"), "--augment", "2", "--segment-seconds",
                           "0.25", "--segment-hop-seconds", "0.25", "--workers", "1",
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    store = FeatureStore(tmp_path / "store")
    meta = store.meta
    original = meta[~meta["augmented"]]
    augmented = meta[meta["augmented"]]
    assert len(original) == 3 * 2 and len(augmented) >= 3 * 2  # two 0.25 s windows per file
    assert set(augmented["clip"].str.rsplit("#", n=1).str[1]) == {"aug1", "aug2"}
    for clip, rows in augmented.groupby(augmented["clip"].str.split("#").str[0]):
        assert set(rows["item"]) == set(original[original["clip"] == clip]["item"])
    assert store.info["augment_versions"] == 2
    rows, _ = regex_source(recordings, r"(?P<item>[ab])/.*tone(?P<label>\d+)")
    assert len(rows) == 3


def test_preprocessing_augmented_rows_identical_across_workers(recordings, tmp_path):
    from preprocessing import build_store, feature_params, regex_source

    rows, _ = regex_source(recordings, r"(?P<item>[ab])/.*tone(?P<label>\d+)")
    params = feature_params(load_config(ROOT / "config.ini").features,
                            segment_seconds=0.25, segment_hop_seconds=0.25)
    stores = [build_store(rows, tmp_path / f"w{w}", params=params, workers=w, progress=False,
                          augmenter=Augmenter(PARAMS), augment_versions=2, augment_seed=4)[0]
              for w in (1, 2)]
    assert stores[0].augmented.sum() > 0
    assert stores[0].content_hash == stores[1].content_hash


def test_augment_non_finite_files_skipped_listed_and_nothing_written(recordings, tmp_path):
    sf.write(recordings / "a" / "nan.wav", np.full(SR // 4, np.nan, np.float32), SR,
             subtype="FLOAT")
    y = np.full(SR // 4, 0.1, np.float32)
    y[5] = np.inf
    sf.write(recordings / "b" / "inf.wav", y, SR, subtype="FLOAT")
    out = tmp_path / "out"
    summary = augment_folder(recordings, out, 2, params=PARAMS, workers=2, progress=False)
    reasons = {s["path"].rsplit("/", 1)[1]: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {"nan.wav", "inf.wav"}
    assert "4000 of its 4000 samples are not finite" in reasons["nan.wav"]
    assert "1 of its 4000 samples are not finite" in reasons["inf.wav"]
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
                     and p.name != "augmentation.json")  # the run's record (resuming)
    assert not any(name.startswith(("a/nan", "b/inf")) for name in written)
    assert len(written) == 3 * 3 and summary["written"] == 9
    assert not [p for p in out.rglob(".*")]  # no temporary files left


def test_augment_outputs_honour_the_umask(recordings, tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        augment_folder(recordings, tmp_path / "out", 1, params=PARAMS, workers=1,
                       progress=False)
    finally:
        os.umask(previous)
    for path in (tmp_path / "out").rglob("*"):
        expected = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def run_augmentation(recordings, tmp_path, *flags):
    return subprocess.run([sys.executable, "-m", "augmentation", str(recordings),
                           str(tmp_path / "out"), *flags, "--workers", "1", "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("flags,match", [
    (["-1"], "argument N: N '-1': expected the number of augmented versions"),
    (["1", "--p-noise", "1.5"], r"argument --p-noise: 1.5: expected a number in \[0, 1\]"),
    (["1", "--min-rate", "0"], "argument --min-rate: 0.0: expected a number > 0"),
    (["1", "--min-room-size", "1"], "argument --min-room-size: 1.0: expected a number > 1"),
    (["1", "--seed", "-4"], r"argument --seed: -4: expected an integer in \[0, "),
    (["1", "--p-eq", "nan"], r"argument --p-eq: nan: expected a number in \[0, 1\] "
                             r"\(finite\)"),
    (["1", "--min-rate", "1.3"], r"error: --min-rate 1.3 is greater than --max-rate 1.15; "
                                 r"swap them. \(other values from .*config.ini\)"),
])
def test_command_line_flags_validated_like_config(recordings, tmp_path, flags, match):
    import re

    proc = run_augmentation(recordings, tmp_path, *flags)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert re.search(match, proc.stderr), proc.stderr
    assert not (tmp_path / "out").exists()


def test_command_line_workers_flag_checked(recordings, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "augmentation", str(recordings),
                           str(tmp_path / "out"), "1", "--workers", "-2"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "argument --workers: -2: expected an integer in [0, 1024]" in proc.stderr


# Runs a command line with audiomentations made unimportable: nothing is uninstalled, a
# meta-path finder refuses the import in that process only.
BLOCKED = """
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "audiomentations":
            raise ModuleNotFoundError("No module named audiomentations (blocked by the test)")
        return None

sys.meta_path.insert(0, Blocker())
from MODULE.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("module", ["augmentation", "preprocessing"])
def test_missing_augment_extra_is_one_clear_line(recordings, tmp_path, module):
    if module == "augmentation":
        args = [str(recordings), str(tmp_path / "out"), "1"]
        what = "python -m augmentation"
    else:
        args = ["regex", str(recordings), "--pattern", r"(?P<item>[ab])/.*tone(?P<label>\d+)",
                "--out", str(tmp_path / "out"), "--augment", "1"]
        what = "--augment"
    proc = subprocess.run([sys.executable, "-c", BLOCKED.replace("MODULE", module), *args],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {what} needs audiomentations, not installed: pip install -e '.[augment]'"]
    assert not (tmp_path / "out").exists()
