"""-q/--quiet and -v/--verbose on every command."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_preprocessing_quiet_prints_one_line(tmp_path):
    proc = run("preprocessing", "demo", "--data-dir", str(tmp_path / "data"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("Wrote ") and len(proc.stdout.splitlines()) == 1
    assert proc.stderr == ""  # no progress bar


def test_preprocessing_says_before_the_slow_first_extraction(tmp_path):
    import numpy as np
    import soundfile as sf

    audio = tmp_path / "audio"
    for label in ("a", "b"):
        for item in ("x", "y", "z"):
            (audio / label).mkdir(parents=True, exist_ok=True)
            sf.write(audio / label / f"{item}_0.wav",
                     0.3 * np.sin(np.linspace(0, 200, 8000)).astype("float32"), 8000)
    proc = run("preprocessing", "folders", str(audio), "--out", str(tmp_path / "store"),
               "--item-pattern", r"(?P<item>[a-z])_\d+\.wav$", "--sample-rate", "8000",
               "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Extracting features of 6 files into")
    assert "numba" in proc.stdout.splitlines()[0]


@pytest.mark.parametrize("command", [
    ["preprocessing", "demo"], ["augmentation", "in", "out", "1"],
    ["xval", "report", "somewhere"], ["xval", "predict", "m.keras", "a.wav"]])
def test_quiet_and_verbose_together_are_an_error(command, tmp_path):
    proc = run(*command, "-q", "-v", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: Give -q/--quiet or -v/--verbose, not both."
