"""Outputs that parse and options that are never silently dropped (issue 37, point 4 and the
silent cases): CSV through the csv module, the no-signal check on what the features see,
duplicate `--set` and `--instances` refused, a workbook that cannot be written said under
`-q`, `embed --out` a device refused, `RAY_ADDRESS` honoured, `--refit` with `--search`
refused, `--label-map` without a pattern refused."""

import argparse
import csv
import io
import os

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, python_here, tiny_store, write_config, write_script

SR = 8000
NAMES = ['take, one.wav', 'say "hi".wav', "line\nbreak.wav"]


def _args(**kwargs):
    base = {"model": "m.keras", "audio": NAMES, "format": "csv", "fold": None,
            "ensemble": False, "dataset_info": None, "embedding_classifier": False,
            "plot": None, "overwrite": False}
    return argparse.Namespace(**{**base, **kwargs})


def _rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_predict_csv_quotes_file_names(monkeypatch, capsys):
    from xval.cli import inference

    def predict_files(model, files, **kwargs):
        scores = {"a": 0.75, "b": 0.25}
        return [{"file": f, "model": "a model", "clip": {"scores": scores, "predicted": "a"},
                 "segments": [{"start": 0.0, "scores": scores}]} for f in files]

    monkeypatch.setattr(inference, "predict_files", predict_files)
    assert inference.main_predict(_args()) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[0] == ["file", "level", "start", "predicted", "a", "b"]
    assert [r[0] for r in rows[1:] if r[1] == "clip"] == NAMES
    assert all(len(r) == 6 for r in rows)


def test_detect_csv_quotes_file_names(monkeypatch, capsys):
    from xval.cli import inference

    monkeypatch.setattr(inference, "detect_files", lambda model, files, **kwargs: [
        {"file": f, "model": "a model", "events": [(0.5, 1.0, "dog, barking")]}
        for f in files])
    assert inference.main_detect(_args()) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[1:] == [[f, "0.500", "1.000", "dog, barking"] for f in NAMES]


# -- the no-signal check --------------------------------------------------------------------

@pytest.fixture(scope="module")
def params():
    from preprocessing.build import feature_params
    from xval.config.loader import load_config

    return feature_params(load_config(ROOT / "config.ini").features, sample_rate=SR,
                          n_fft=256, hop_length=128, n_mels=16, segment_seconds=0.25,
                          segment_hop_seconds=0.25, fmin=50.0, n_bins=24)


def _signal(kind, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    if kind == "silence":
        return np.zeros_like(t)
    if kind == "dc":
        return np.full_like(t, 0.5)
    if kind == "dc+tone":
        return 0.5 + 0.1 * np.sin(2 * np.pi * 440 * t)
    if kind == "quiet call":  # a 50 ms call at -70 dBFS in a second of silence
        y = np.zeros_like(t)
        y[4000:4400] = 10 ** (-70 / 20) * np.sin(2 * np.pi * 2000 * t[4000:4400])
        return y
    return 0.3 * rng.normal(size=t.size)


@pytest.mark.parametrize(("kind", "silent"), [("silence", True), ("dc", True),
                                              ("dc+tone", False), ("quiet call", False),
                                              ("noise", False)])
def test_no_signal_check_reads_the_feature_band(tmp_path, params, kind, silent):
    from preprocessing.build import extract_file

    path = tmp_path / f"{kind}.wav"
    sf.write(path, _signal(kind).astype(np.float32), SR, subtype="FLOAT")
    result = extract_file(path, params)
    if silent:
        assert "no signal" in result.get("error", ""), result.get("error")
    else:  # kept: a quiet call is a recording, whatever its peak
        assert "error" not in result, result["error"]


def test_predict_refuses_a_constant_signal(tmp_path, params):
    """A DC file got a confident class; it has no signal for the features to read."""
    from xval.core.errors import DatasetError
    from xval.inference.models import extract_features

    path = tmp_path / "dc.wav"
    sf.write(path, _signal("dc").astype(np.float32), SR)
    with pytest.raises(DatasetError, match="dc.wav: no signal"):
        extract_features([path], params)


# -- options given twice, or that do not apply -----------------------------------------------

@pytest.fixture
def project(tmp_path):
    config = write_config(tmp_path)
    tiny_store(tmp_path / "data")
    script = write_script(tmp_path, f"""
        from xval import Experiment
        experiment = Experiment(description="silent", dataset="tiny", number=1, num_folds=2,
                                config={str(config)!r})
        experiment[1] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                         "comment_2": "", "epochs": 1, "hidden_units": 4}}
        if __name__ == "__main__":
            experiment.main()
        """)
    return tmp_path, script


def _run(cwd, *args):
    """`python ARGS` in `cwd`, run in this process (`python_here`): what is checked is the
    commands' refusals and exit codes; their processes are tested in their own files."""
    return python_here(*args, cwd=cwd)


def test_set_twice_is_refused_like_a_key_twice_in_an_instance(project):
    folder, script = project
    proc = _run(folder, script, "--dry-run", "--set", "epochs=2", "--set", "epochs=5")
    assert proc.returncode == 2 and "--set epochs is given twice" in proc.stderr, proc.stderr
    proc = _run(folder, "-m", "xval", "config", script, "--set", "epochs=2", "--set",
                "epochs=5")
    assert proc.returncode == 2 and "--set epochs is given twice" in proc.stderr, proc.stderr


def test_instances_twice_is_refused(project):
    folder, script = project
    proc = _run(folder, script, "--dry-run", "--instances", "1,1")
    assert proc.returncode == 2 and "instance 1 is given twice" in proc.stderr, proc.stderr


def test_refit_with_search_is_refused(config_path):
    """A refit takes no search, from the command line (`--refit 1 --search`) or Python
    (`RunOptions(search=True).for_refit()`, `experiment.refit(1, search=True)`)."""
    from xval import Experiment
    from xval.core.errors import ConfigurationError
    from xval.running.options import RunOptions

    with pytest.raises(ConfigurationError, match="--refit K takes no .*--search"):
        RunOptions(search=True).for_refit()
    experiment = Experiment(description="d", dataset="tiny", number=1, config=str(config_path))
    experiment[1] = {"architecture": "mlp"}
    with pytest.raises(ConfigurationError, match="--refit K takes no .*--search"):
        experiment.refit(1, search=True)


def test_ray_address_from_the_environment(monkeypatch):
    from xval.executors.base import Execution
    from xval.executors.ray import RayExecutor

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")
    assert RayExecutor.create(Execution()).address == "10.0.0.7:6379"
    assert RayExecutor.create(Execution(ray_address="auto")).address == "auto"
    monkeypatch.delenv("RAY_ADDRESS")
    assert RayExecutor.create(Execution()).address is None


def test_evaluate_label_map_without_a_pattern_is_refused(tmp_path):
    from xval.core.errors import ConfigurationError
    from xval.inference.evaluate import source_rows

    with pytest.raises(ConfigurationError, match="--label-map goes with the regex source"):
        source_rows([tmp_path], source="folders", label_map="01=neutral")


def test_embed_out_naming_a_device_is_refused(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    wav = tmp_path / "a.wav"
    sf.write(wav, _signal("noise").astype(np.float32), SR)
    proc = _run(tmp_path, "-m", "xval", "embed", tmp_path / "m.keras", wav, "--out",
                "/dev/full")
    assert proc.returncode == 2 and "'/dev/full' exists and is not a plain file" in \
        proc.stderr, proc.stderr
    assert not os.path.exists("/dev/full.npy")


# -- a workbook that cannot be written, under -q ---------------------------------------------

def test_quiet_run_says_the_workbook_was_not_written(project):
    folder, script = project
    book = folder / "results" / "tiny" / "experiment_1" / "experiment_1.xlsx"
    book.mkdir(parents=True)  # a folder where the workbook belongs
    proc = _run(folder, script, "-q")
    assert proc.returncode == 4, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and "workbook" in errors[-1] and "results are kept" in errors[-1]
    assert (folder / "results" / "tiny" / "experiment_1" / "instance_1" /
            "summary.json").is_file()


def test_nul_in_a_comment_still_writes_the_workbook(project):
    import openpyxl

    folder, script = project
    script.write_text(script.read_text().replace('"comment_1": ""', '"comment_1": "a\\x00b"'))
    proc = _run(folder, script, "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    book = openpyxl.load_workbook(folder / "results" / "tiny" / "experiment_1" /
                                  "experiment_1.xlsx")
    cells = [c.value for sheet in book for row in sheet.iter_rows() for c in row]
    assert "a?b" in cells or any(isinstance(v, str) and "a?b" in v for v in cells)


def _band_level(y, params):
    """The no-signal check's level of `y` (dBFS): its loudest frame in the feature band."""
    from preprocessing.level import band_level_db, feature_band

    return band_level_db(y, sample_rate=params.sample_rate, n_fft=params.n_fft,
                         hop_length=params.hop_length, band=feature_band(params))


def test_no_signal_threshold_sits_between_dither_and_a_quiet_call():
    """The signals that bound `silence_threshold_db` near the quiet end (docs/preprocessing.md;
    silence and a constant offset: `test_no_signal_check_reads_the_feature_band`): a 50 ms
    call at -85 dBFS peak in a second of silence reads -85.5 and is kept; 16-bit dither alone
    reads about -89."""
    from preprocessing.build import feature_params
    from xval.config.loader import load_config

    params = feature_params(load_config(None).features)
    sr, lsb = params.sample_rate, 1 / 32768
    rng = np.random.default_rng(0)
    call = np.zeros(sr)
    t = np.arange(sr // 20) / sr
    call[sr // 2:sr // 2 + sr // 20] = 10 ** (-85 / 20) * np.sin(2 * np.pi * 2000 * t)
    dither = rng.uniform(-lsb, lsb, sr) + rng.uniform(-lsb, lsb, sr)
    level = _band_level(np.round(call / lsb) * lsb, params)
    assert level == pytest.approx(-85.5, abs=0.5) and level > params.silence_threshold_db
    assert _band_level(dither, params) == pytest.approx(-89, abs=1)


@pytest.mark.realdata
def test_no_signal_check_drops_no_real_recording():
    """FSDD and RAVDESS (every 10th file; the study, `git show
    4619a5e:benchmarks/no_signal.py`, read all 4,440): the default threshold keeps every
    recording, with a wide margin."""
    from preprocessing.audio import load_audio
    from preprocessing.build import feature_params
    from tests.conftest import SHARED
    from xval.config.loader import load_config

    files = sorted((SHARED / "fsdd" / "recordings").glob("*.wav"))[::10] + \
        sorted((SHARED / "ravdess" / "audio").rglob("*.flac"))[::10]
    if not files:
        pytest.skip(f"the real recordings are not in {SHARED}")
    params = feature_params(load_config(None).features)
    levels = np.array([_band_level(load_audio(path, sample_rate=params.sample_rate)[0], params)
                       for path in files])
    assert levels.min() > params["silence_threshold_db"] + 30, levels.min()
