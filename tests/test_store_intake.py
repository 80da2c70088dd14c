"""Stores refuse what would change results: each rule is a table of bad inputs written as
real files (soundfile), read through the real sources, `build_store` and the command line.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing import sources
from preprocessing.audio import load_audio
from preprocessing.build import build_store, check_rows, feature_params
from tests.conftest import ROOT, python_here
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, DatasetError
from xval.tasks.detection import read_annotations

SR = 8000


@pytest.fixture(scope="module")
def params():
    return feature_params(load_config(ROOT / "config.ini").features, sample_rate=SR,
                          n_fft=256, hop_length=128, n_mels=16, segment_seconds=0.25,
                          segment_hop_seconds=0.25, fmin=50.0, n_bins=24)


def _wav(path, samples=SR // 2, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, (0.2 * rng.normal(size=samples)).astype(np.float32), SR)
    return path


def _class_folders(root):
    for label in ("a", "b"):
        for k in range(2):
            _wav(root / label / f"{label}{k}.wav", seed=k + (label == "b") * 10)
    return root


# -- paths that are not regular files: listed as skipped, never opened --------------------

def _fifo(path):
    os.mkfifo(path)


def _dangling(path):
    path.symlink_to(path.parent / "gone.wav")


def _truncated(path):
    _wav(path, samples=SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _too_short(path):
    _wav(path, samples=10)


SKIPPED = [
    ("fifo.wav", _fifo, "not a regular file"),
    ("dangling.wav", _dangling, "dangling link"),
    ("cut.wav", _truncated, "truncated"),
    ("short.wav", _too_short, "fewer than one analysis frame"),
]


@pytest.mark.parametrize(("name", "make", "reason"), SKIPPED)
def test_unusable_inputs_are_listed_as_skipped(tmp_path, params, name, make, reason):
    root = _class_folders(tmp_path / "rec")
    make(root / "a" / name)
    rows, skipped = sources.folder_source(root)
    done = threading.Event()
    result = {}

    def build():  # a FIFO opened by mistake would block forever: run with a deadline
        result["store"], result["summary"] = build_store(
            rows, tmp_path / "store", params=params, workers=1, skipped=skipped,
            progress=False)
        done.set()

    threading.Thread(target=build, daemon=True).start()
    assert done.wait(120), "the build blocked"
    listed = {os.path.basename(s["path"]): s["reason"] for s in result["summary"]["skipped"]}
    assert reason in listed[name]
    assert result["summary"]["files"] == 4
    with pytest.raises(DatasetError, match="strict mode"):
        build_store(rows, tmp_path / "strict", params=params, workers=1, skipped=skipped,
                    strict=True, progress=False)


@pytest.mark.parametrize(("name", "make", "reason"), SKIPPED[:3])
def test_load_audio_never_opens_a_bad_path(tmp_path, name, make, reason):
    (tmp_path / "x").mkdir()
    make(tmp_path / "x" / name)
    with pytest.raises(DatasetError, match=reason):
        load_audio(tmp_path / "x" / name, sample_rate=SR)


# -- rows that would change results: refused, naming the rows --------------------------

def _rows(tmp_path, **changes):
    paths = [str(_wav(tmp_path / "audio" / f"f{k}.wav", seed=k)) for k in range(4)]
    table = pd.DataFrame({"path": paths, "label": ["a", "a", "b", "b"],
                          "item": ["i0", "i1", "i2", "i3"], "clip": ["c0", "c1", "c2", "c3"]})
    for column, (row, value) in changes.items():
        table.loc[row, column] = value
    return table


ROWS = [
    ({"label": (1, "")}, "blank label"),
    ({"label": (1, "   ")}, "blank label"),
    ({"label": (1, None)}, "blank label"),
    ({"item": (2, "")}, "blank item"),
    ({"item": (2, np.nan)}, "blank item"),
    ({"path": (3, "SAME")}, "same audio file more than once"),
]


@pytest.mark.parametrize(("changes", "match"), ROWS)
def test_rows_that_change_results_are_refused(tmp_path, params, changes, match):
    if "path" in changes:
        rows = _rows(tmp_path)
        rows.loc[3, "path"] = rows.loc[0, "path"]  # the same file under items i0 and i3
    else:
        rows = _rows(tmp_path, **changes)
    with pytest.raises(DatasetError, match=match):
        check_rows(rows)
    with pytest.raises(DatasetError, match=match):
        build_store(rows, tmp_path / "store", params=params, workers=1, progress=False)
    assert not (tmp_path / "store").exists()


def test_the_same_file_through_a_link_is_the_same_file(tmp_path):
    rows = _rows(tmp_path)
    os.symlink(rows.loc[0, "path"], tmp_path / "audio" / "alias.wav")
    rows.loc[3, "path"] = str(tmp_path / "audio" / "alias.wav")
    with pytest.raises(DatasetError, match="item 'i3'"):
        check_rows(rows)


# -- impossible annotations --------------------------------------------------------------

ANNOTATIONS = [
    ("x,100,100\n", "samples", "no length"),
    ("x,1.5,2.5\n", "samples", "not whole sample positions.*look like seconds"),
    ("x,100.25,400\n", "samples", "not whole sample positions"),
    ("x,1,3\n", "samples", "event of 2 sample.*look like seconds"),
    ("x,0.5,0.5\n", "seconds", "no length"),
    ("x,0.5,0.5002\n", "seconds", "shorter than 1 ms"),
]


@pytest.mark.parametrize(("line", "units", "match"), ANNOTATIONS)
def test_impossible_annotations_are_refused(tmp_path, line, units, match):
    path = tmp_path / "ann.csv"
    path.write_text("file,start,end\n" + line)
    with pytest.raises(DatasetError, match=match):
        read_annotations(path, units=units,
                         **({"annotation_sample_rate": SR} if units == "samples" else {}))


# -- the command line: one error line, the store not written ------------------------------

@pytest.mark.parametrize("case", ["out_is_a_file", "out_parent_is_a_file"])
def test_preprocessing_out_that_is_not_a_folder(tmp_path, case):
    root = _class_folders(tmp_path / "rec")
    (tmp_path / "f").write_text("precious\n")
    out = tmp_path / "f" if case == "out_is_a_file" else tmp_path / "f" / "store"
    (tmp_path / "config.ini").write_text(f"[paths]\ndata_dir = {tmp_path}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "preprocessing", "folders", str(root), "--out", str(out),
         "--no-progress", "--workers", "1", "--config", str(tmp_path / "config.ini")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error:"), proc.stderr
    assert "not a" in proc.stderr
    assert (tmp_path / "f").read_text() == "precious\n"


def test_check_output_folder_is_a_configuration_error(tmp_path, params):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        build_store(_rows(tmp_path), tmp_path / "f" / "store", params=params, workers=1,
                    progress=False)


# -- a store that cannot train: refused at the door (preprocessing.intake) -----------------

def _three_classes(root, n=3):
    for label in ("a", "b", "c"):
        for k in range(n):
            _wav(root / label / f"s{k}_{label}.wav", seed=k + 10 * ord(label))
    return root


def _silence(path):
    sf.write(path, np.zeros(SR // 2, np.float32), SR)


def _dc(path):
    sf.write(path, np.full(SR // 2, 0.5, np.float32), SR)


@pytest.mark.parametrize("make", [_silence, _dc], ids=["digital silence", "constant (DC)"])
def test_class_that_loses_every_file_is_refused_naming_it(tmp_path, params, make):
    root = _three_classes(tmp_path / "rec")
    for path in (root / "c").iterdir():
        make(path)
    rows, skipped = sources.folder_source(root)
    with pytest.raises(DatasetError, match=r"class 'c' lost every file \(3 skipped: .*no "
                                           r"signal"):
        build_store(rows, tmp_path / "store", params=params, workers=1, skipped=skipped,
                    progress=False)
    assert not (tmp_path / "store").exists()


def test_store_left_with_one_class_or_one_item_is_refused(tmp_path, params):
    rows = _rows(tmp_path)
    with pytest.raises(DatasetError, match="1 class"):
        build_store(rows.assign(label="a"), tmp_path / "s1", params=params, workers=1,
                    progress=False)
    with pytest.raises(DatasetError, match="1 item"):
        build_store(rows.assign(item="same"), tmp_path / "s2", params=params, workers=1,
                    progress=False)
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s2").exists()


def test_class_folder_that_is_a_link_is_followed(tmp_path, params):
    root = _three_classes(tmp_path / "rec")
    elsewhere = tmp_path / "kept_elsewhere"
    (root / "c").rename(elsewhere)
    (root / "c").symlink_to(elsewhere, target_is_directory=True)
    rows, skipped = sources.folder_source(root)
    assert sorted(rows["label"].unique()) == ["a", "b", "c"] and not skipped
    store, _ = build_store(rows, tmp_path / "store", params=params, workers=1,
                           skipped=skipped, progress=False)
    assert store.classes == ["a", "b", "c"]


def test_link_loop_in_the_dataset_is_refused_naming_the_link(tmp_path):
    root = _three_classes(tmp_path / "rec")
    (root / "a" / "again").symlink_to(root, target_is_directory=True)
    with pytest.raises(DatasetError, match=r"again is a symbolic link to .*: a loop"):
        sources.folder_source(root)


@pytest.mark.skipif(not os.path.isdir("/dev/shm") or
                    os.stat("/dev/shm").st_dev == os.stat("/tmp").st_dev,
                    reason="needs a second file system (/dev/shm)")
def test_class_folder_link_to_another_file_system_is_refused(tmp_path):
    import tempfile

    root = _three_classes(tmp_path / "rec")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        (root / "d").symlink_to(other, target_is_directory=True)
        with pytest.raises(DatasetError, match="another file system"):
            sources.folder_source(root)


def test_empty_or_dangling_class_folders_are_named(tmp_path, params):
    root = _three_classes(tmp_path / "rec")
    (root / "d").mkdir()
    rows, skipped = sources.folder_source(root)
    with pytest.raises(DatasetError, match="class 'd' lost every file.*no audio file"):
        build_store(rows, tmp_path / "store", params=params, workers=1, skipped=skipped,
                    progress=False)
    (root / "d").rmdir()
    (root / "d").symlink_to(tmp_path / "gone", target_is_directory=True)
    rows, skipped = sources.folder_source(root)
    with pytest.raises(DatasetError, match="class 'd' lost every file.*dangling link"):
        build_store(rows, tmp_path / "store", params=params, workers=1, skipped=skipped,
                    progress=False)


def _init(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "xval", "init", *map(str, args),
                           "--no-progress"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"})


def test_init_refuses_a_silent_class_and_writes_nothing(tmp_path):
    """(In this process: `init` builds the stores first, the encoder's with Keras.)"""
    root = _three_classes(tmp_path / "rec", n=3)
    for path in (root / "c").iterdir():
        _silence(path)
    project = tmp_path / "project"
    proc = python_here("-m", "xval", "init", root, "--item-pattern", r"(?P<item>s\d)_",
                       "--project", project, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "class 'c' lost every file" in proc.stderr and "Ready" not in proc.stdout
    assert not project.exists()


def test_init_label_map_needs_a_pattern(tmp_path):
    root = _three_classes(tmp_path / "rec")
    proc = _init(tmp_path, root, "--label-map", "a=alpha", "--project", tmp_path / "p")
    assert proc.returncode == 2 and "--label-map 'a=alpha' goes with --pattern" in \
        proc.stderr, proc.stderr
    assert not (tmp_path / "p").exists()


def test_load_audio_refuses_a_rate_no_recording_has(tmp_path, params):
    """A file whose header declares 1 Hz was resampled to the model's rate and answered a
    class (issue 74): rates below 1000 Hz (unless the target is that low) and above 768 kHz
    are refused, naming the rate and the file."""
    y = np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32)
    for rate in (1, 999, 1_000_000):
        sf.write(tmp_path / f"r{rate}.wav", y, rate)
        with pytest.raises(DatasetError, match=rf"r{rate}.wav: its header declares a sample "
                                               rf"rate of {rate} Hz.*1000 to 768000 Hz"):
            load_audio(tmp_path / f"r{rate}.wav", sample_rate=16000)
    assert load_audio(tmp_path / "r999.wav", sample_rate=500)[1] == 999  # a low-rate store
    sf.write(tmp_path / "ok.wav", y, 1000)
    assert load_audio(tmp_path / "ok.wav", sample_rate=16000)[1] == 1000
    # 4000 samples at 1 Hz last 4000 s: such a file is read window by window, checked alike.
    from preprocessing.streaming import is_long, stream_features

    assert is_long(tmp_path / "r1.wav")
    with pytest.raises(DatasetError, match=r"declares a sample rate of 1 Hz"):
        next(stream_features(tmp_path / "r1.wav", params))
