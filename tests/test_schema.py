"""The config schema: one description for config.ini, command-line flags and parameters."""

import argparse
import configparser
import math
import re
import subprocess
import sys

import pytest

import preprocessing.features  # noqa: F401  (binds the feature types' rules to the schema)
from tests.conftest import ROOT, write_config
from xval.config import schema
from xval.core.errors import ConfigurationError


def test_every_key_has_help_and_a_default_that_passes_its_own_check():
    for section, keys in schema.SCHEMA.items():
        for key, spec in keys.items():
            assert spec.help and spec.kind in ("str", "int", "float", "bool"), key
            assert schema.check(section, key, spec.default) == spec.default, key
            # the default as config.ini writes it reads back as itself
            assert schema.parse(section, key, spec.text(spec.default)) == spec.default, key


def test_config_files_are_the_schema_rendered():
    """The comments of the project's config.ini are the schema's help (they cannot drift),
    and the rendering of the defaults reads back as the defaults."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "config.ini")
    given = {s: {k: schema.parse(s, k, v) for k, v in parser[s].items()}
             for s in parser.sections()}
    text = (ROOT / "config.ini").read_text()
    header = "\n".join(line[2:] for line in text.splitlines()[:4])
    assert text == schema.render(given, header=header)
    full = configparser.ConfigParser(interpolation=None)
    full.read_string(schema.render())
    assert {s: {k: schema.parse(s, k, v) for k, v in full[s].items()}
            for s in full.sections()} == schema.defaults()


@pytest.mark.parametrize("section,key,value,match", [
    ("features", "n_mels", True, r"n_mels=True: expected an integer in \[1, 2048\]; got bool"),
    ("features", "n_mels", 2.0, r"n_mels=2.0: expected an integer in \[1, 2048\]; got float"),
    ("features", "fmin", "10", "fmin='10': expected a number >= 0 .finite.; got str"),
    ("features", "fmin", float("nan"), r"fmin=nan: expected a number >= 0 \(finite\)"),
    ("features", "fmax", None, None),
    ("features", "dtype", None, "dtype=None: expected one of auto, float32, float16"),
    ("training", "load_model", 3, "load_model=3: expected a string, or none; got int"),
    ("report", "alpha", 1, r"alpha=1.0: expected a number in \(0, 1\)"),
])
def test_check_types_and_ranges(section, key, value, match):
    if match is None:
        assert schema.check(section, key, value, style="param") is value
        return
    with pytest.raises(ConfigurationError, match=match):
        schema.check(section, key, value, style="param")


def test_check_int_for_float_key_becomes_float():
    assert schema.check("features", "fmin", 50) == 50.0
    assert isinstance(schema.check("features", "fmin", 50), float)


def test_check_unknown_key_suggests():
    with pytest.raises(ConfigurationError, match="Unknown key 'n_mel'.*Did you mean 'n_mels'"):
        schema.check("features", "n_mel", 3)


@pytest.mark.parametrize("values,match", [
    ({"sample_rate": 8000, "fmin": 100.0, "fmax": 5000.0},
     r"--fmax 5000.0: expected at most sample_rate / 2 = 4000"),
    ({"sample_rate": 8000, "fmin": 4000.0, "fmax": None},
     r"--fmin 4000.0: expected less than fmax = 4000 \(sample_rate / 2\)"),
    ({"sample_rate": 8000, "fmin": 300.0, "fmax": 200.0}, "--fmin 300.0: expected less than"),
    ({"feature": "mfcc", "n_mfcc": 40, "n_mels": 32}, "--n-mfcc 40: expected at most n_mels"),
    ({"feature": "cqt", "sample_rate": 8000, "fmin": 32.7, "n_bins": 84,
      "bins_per_octave": 12}, "--n-bins 84: the top CQT bin .3951 Hz.* not below"),
    ({"feature": "cqt", "sample_rate": 8000, "fmin": 0.0, "n_bins": 12,
      "bins_per_octave": 12}, "--fmin 0.0: the CQT needs fmin > 0"),
])
def test_check_section_rules_between_keys(values, match):
    with pytest.raises(ConfigurationError, match=match):
        schema.check_section("features", values, style="flag")


def test_check_section_swapped_range_names_both():
    with pytest.raises(ConfigurationError, match="min_rate=2.0 is greater than max_rate=1.5"):
        schema.check_section("augmentation", {"min_rate": 2.0, "max_rate": 1.5}, style="param")


def test_add_arguments_types_help_and_errors(capsys):
    parser = argparse.ArgumentParser(prog="p")
    schema.add_arguments(parser, "features", defaults={"n_mels": 64})
    args = parser.parse_args(["--n-mels", "32", "--fmax", "none", "--no-peak-normalize"])
    assert args.n_mels == 32 and args.fmax is None and args.peak_normalize is False
    assert args.hop_length is None  # not given: config.ini's value is used
    help_text = parser.format_help()
    assert "mel bands (mel, mfcc): an integer in [1, 2048] (config.ini: 64)" in " ".join(
        help_text.split())
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["--dtype", "int8"])
    assert e.value.code == 2
    assert "argument --dtype: 'int8': expected one of auto, float32, float16" in capsys.readouterr().err


def run_preprocessing(tmp_path, *flags):
    """Runs the preprocessing command line in this process; returns (code, stderr)."""
    from xval.cli.preprocess import main

    root = tmp_path / "rec"
    root.mkdir(exist_ok=True)
    config = write_config(tmp_path)
    argv = ["folders", str(root), "--out", str(tmp_path / "store"), "--config", str(config),
            "--no-progress", *flags]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code


@pytest.mark.parametrize("flags,match", [
    (["--n-mels", "0"], r"argument --n-mels: 0: expected an integer in \[1, 2048\]"),
    (["--dtype", "int8"], "argument --dtype: 'int8': expected one of auto, float32, float16"),
    (["--feature", "foo"], "argument --feature: 'foo': expected one of stft, mel, mfcc, cqt"),
    (["--sample-rate", "0"], r"argument --sample-rate: 0: expected an integer in \[1, 768000\]"),
    (["--hop-length", "0"], r"argument --hop-length: 0: expected an integer in \[1, 1048576\]"),
    (["--segment-seconds", "-1"], r"argument --segment-seconds: -1.0: expected a number in \(0, 3600\]"),
    (["--segment-hop-seconds", "0"], r"argument --segment-hop-seconds: 0.0: expected"),
    (["--workers", "-2"], r"argument --workers: -2: expected an integer in \[0, 1024\]"),
    (["--n-fft", "1"], r"argument --n-fft: 1: expected an integer in \[2, 65536\]"),
    (["--n-mfcc", "0"], r"argument --n-mfcc: 0: expected an integer in \[1, 2048\]"),
    (["--n-bins", "0"], r"argument --n-bins: 0: expected an integer in \[1, 2048\]"),
    (["--bins-per-octave", "0"], r"argument --bins-per-octave: 0: expected an integer in \[1, 384\]"),
    (["--power-exponent", "0"], "argument --power-exponent: 0.0: expected a number > 0"),
    (["--power-exponent", "inf"], r"argument --power-exponent: inf: .*\(finite\)"),
    (["--silence-threshold-db", "5"], "argument --silence-threshold-db: 5.0: expected a "
                                      "number <= 0"),
    (["--compression", "sqrt"], "argument --compression: 'sqrt': expected one of db"),
    (["--fmin", "-3"], "argument --fmin: -3.0: expected a number >= 0"),
    (["--fmax", "0"], "argument --fmax: 0.0: expected a number > 0 .finite., or none"),
    (["--n-mels", "ten"], "argument --n-mels: 'ten': expected int"),
    (["--augment", "-1"], "argument --augment: --augment '-1': expected the number"),
    (["--fmin", "5000", "--fmax", "4000"], r"error: --fmin 5000.0: expected less than fmax"),
    (["--fmax", "9000"], r"error: --fmax 9000.0: expected at most sample_rate / 2 = 8000"),
    (["--feature", "mfcc", "--n-mfcc", "80"], r"error: --n-mfcc 80: expected at most n_mels"),
    (["--feature", "cqt", "--n-bins", "200"], r"error: --n-bins 200: the top CQT bin"),
])
def test_preprocessing_flags_validated_like_config(tmp_path, capsys, flags, match):
    assert run_preprocessing(tmp_path, *flags) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()[-1]) > 0
    assert re.search(match, err), err
    assert not (tmp_path / "store").exists()


def test_preprocessing_demo_refuses_feature_flags(tmp_path, capsys):
    from xval.cli.preprocess import main

    config = write_config(tmp_path)
    assert main(["demo", "--config", str(config), "--n-mels", "16", "--no-progress"]) == 2
    assert "fixed feature parameters; --n-mels cannot be used" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_preprocessing_bad_flag_exit_code_in_a_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "preprocessing", "folders", str(tmp_path),
                           "--out", str(tmp_path / "s"), "--n-mels", "0"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "argument --n-mels: 0: expected an integer in [1, 2048]" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sample_rate,fmin,bins_per_octave", [(8000, 32.7, 12),
                                                               (16000, 50.0, 24)])
def test_cqt_rule_agrees_with_librosa(sample_rate, fmin, bins_per_octave, rng):
    import librosa

    y = rng.standard_normal(sample_rate // 2).astype("float32")
    octaves = math.log2(sample_rate / 2 / fmin)
    edge = int(octaves * bins_per_octave)
    for n_bins in range(edge - 3, edge + 2):
        values = {"feature": "cqt", "sample_rate": sample_rate, "fmin": fmin,
                  "n_bins": n_bins, "bins_per_octave": bins_per_octave}
        try:
            librosa.cqt(y, sr=sample_rate, fmin=fmin, n_bins=n_bins,
                        bins_per_octave=bins_per_octave, hop_length=256)
            librosa_ok = True
        except librosa.util.exceptions.ParameterError:
            librosa_ok = False
        try:
            schema.check_section("features", values)
            schema_ok = True
        except ConfigurationError:
            schema_ok = False
        assert schema_ok == librosa_ok, n_bins
