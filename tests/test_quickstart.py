"""The quickstart (docs/quickstart.md, README) as a new user runs it: from a folder of
recordings named as FSDD names them, `python -m xval init` writes the config, the script and
the store and runs the dry run, saying what the README's sample output shows; the command it
prints trains and writes the workbook; `python -m xval config` and `python -m xval report`
work on what it wrote. Real audio files; `init` in a real process (what the README shows),
the rest in this one (`python_here`)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from openpyxl import load_workbook

from tests.conftest import ROOT, python_here

SAMPLE_RATE = 8000


def _fsdd_like(folder):
    """4 speakers x 2 digits x 3 takes: `{digit}_{speaker}_{take}.wav`, each digit a tone."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    for speaker in ("george", "jackson", "lucas", "nicolas"):
        for digit, hz in ((0, 400.0), (1, 1800.0)):
            for take in range(3):
                y = 0.4 * np.sin(2 * np.pi * hz * (1 + 0.02 * take) * t)
                y += 0.02 * rng.standard_normal(len(t))
                sf.write(folder / f"{digit}_{speaker}_{take}.wav", y.astype(np.float32),
                         SAMPLE_RATE)


def readme_sample():
    """The lines of the README's sample output (`<!-- output: tests/test_quickstart.py -->`),
    `...` marking lines left out."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- output: tests/test_quickstart.py -->\n```text\n(.*?)```", text,
                      re.DOTALL)
    assert block, "the README shows no sample output of the quickstart"
    return [line for line in block.group(1).splitlines() if line.strip() not in ("", "...")]


def _run(args, cwd, timeout=600):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # Bytes decoded as they are: text=True would turn a bar's carriage returns into newlines.
    proc = subprocess.run([sys.executable, *args], capture_output=True, cwd=cwd, env=env,
                          timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(errors="replace"),
                                       proc.stderr.decode(errors="replace"))


@pytest.mark.slow
def test_quickstart_from_a_folder_of_audio_to_a_workbook(tmp_path):
    """`init` runs as a real process, as the README shows it: its output (no bar redraws in a
    pipe, no traceback) is the README's sample. It compares no encoder (`--encoders none`:
    the comparison is tests/test_encoder_comparison.py's, the encoder instance
    test_init_puts_the_installed_encoder_first_and_keeps_the_cnn's; the README's lines are
    the same with them). `config`, the printed command (shortened: 2 epochs) and `report`
    run in this process (`python_here`): the printed command as a fresh process is
    tests/test_init.py's, the backend a fresh process trains on tests/test_default_backend.py's."""
    audio = tmp_path / "wavs"
    audio.mkdir()
    _fsdd_like(audio)
    project = tmp_path / "project"
    project.mkdir()

    init = _run(["-m", "xval", "init", str(audio), "--encoders", "none"], project)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "Traceback" not in init.stderr
    assert "\r" not in init.stdout + init.stderr  # no bar redraws in a pipe or a log file
    assert "Found 24 files" in init.stdout and "2 classes, 4 items" in init.stdout
    assert "Data: " in init.stdout and "Folds: 4 requested" in init.stdout  # data checks
    command = re.search(r"Run the experiment with:\s+(\S+) (experiments/wavs\.py)",
                        init.stdout)
    assert command, init.stdout
    # The README's sample output is this run's, the paths as a reader's would be.
    said = init.stdout.replace(str(audio), "/home/me/path/to/wavs") \
        .replace(f"{command.group(1)} experiments/", ".venv/bin/python experiments/")
    assert [line for line in readme_sample() if line not in said.splitlines()] == []
    config = (project / "config.ini").read_text()
    assert "[paths]" in config and "[training]" not in config  # only what differs
    assert (project / "data" / "wavs" / "dataset.json").exists()

    shown = python_here("-m", "xval", "config", "experiments/wavs.py", "1", cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"epochs\s*=\s*60\s+.*package default", shown.stdout), shown.stdout

    # The printed command, shortened for a test (the defaults train 60 epochs).
    run = python_here(command.group(2), "--set", "epochs=2", "--set", "min_epochs=0",
                      "--set", "warmup_epochs=0", "--set", "patience=2", cwd=project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    workbook = project / "results" / "wavs" / "experiment_1" / "experiment_1.xlsx"
    assert load_workbook(workbook).sheetnames[0] == "Summary"
    assert "instance 1 fold 3:" in run.stdout and "* selected" in run.stdout

    report = python_here("-m", "xval", "report", "results/wavs/experiment_1",
                         "--no-workbook", cwd=project)
    assert report.returncode == 0, report.stderr
    assert "complete" in report.stdout


@pytest.mark.parametrize("items,wanted,expected", [(3, None, 3), (4, None, 4), (9, None, 5),
                                                   (4, 2, 2), (3, 2, None), (4, 5, None),
                                                   (4, 0, None)])
def test_init_folds_follow_the_splitter(items, wanted, expected):
    """`init --folds` accepts exactly what the splitter can make of the items found (3 items
    cannot make 2 folds), so no store is built for a split that is then refused."""
    import pandas as pd

    from xval.cli.init_data import folds_for as _folds
    from xval.core.errors import ConfigurationError

    rows = pd.DataFrame({"item": [f"s{i}" for i in range(items)]})
    if expected is None:
        with pytest.raises(ConfigurationError, match=f"--folds {wanted}: {items} items allow"):
            _folds(rows, wanted)
    else:
        assert _folds(rows, wanted) == expected


def test_init_puts_the_installed_encoder_first_and_keeps_the_cnn(tmp_path):
    """With aisfx alone (`--encoders aisfx`: what `init` did before it compared every
    installed encoder, tests/test_encoder_comparison.py), instance 1 reads the aisfx store
    on the same items and instance 2 is the audio CNN; `--encoders none` writes the CNN
    script; an unknown encoder is one line, before anything is written. (The commands run in this
    process, `python_here`: test_quickstart_from_a_folder_of_audio_to_a_workbook runs `init`
    and the script it writes as real processes; the model is loaded in a fresh one.)"""
    from preprocessing.features import encoders

    if not encoders.installed("aisfx"):
        if os.environ.get("XVAL_REQUIRE_ENCODERS"):
            pytest.fail("aisfx is not installed but XVAL_REQUIRE_ENCODERS is set")
        pytest.skip("aisfx is not installed")
    audio = tmp_path / "recordings"
    audio.mkdir()
    _fsdd_like(audio)
    project = tmp_path / "project"
    project.mkdir()
    bad = python_here("-m", "xval", "init", audio, "--encoders", "aisfxx", cwd=project)
    assert bad.returncode == 2 and "--encoders aisfxx: expected one of aisfx" in bad.stderr
    assert not (project / "experiments").exists() and not (project / "data").exists()

    init = python_here("-m", "xval", "init", audio, "--name", "wavs", "--encoders", "aisfx",
                       cwd=project)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "aisfx embeddings, CC BY 4.0" in init.stdout and "Ready." in init.stdout
    script = (project / "experiments" / "wavs.py").read_text()
    first = script.index("experiment[1]")
    assert '"dataset": "wavs_aisfx"' in script[first:script.index("experiment[2]")]
    # The small-data protocol (issue 42 point 5): a row holds every block of its clip (these
    # clips are shorter than one block: one block per row) and the head is refit.
    assert '"refit_with_val": True' in script[first:script.index("experiment[2]")]
    assert "The aisfx store: segments of 2.3 s every 1.15 s" in init.stdout
    assert "one block of the encoder per row" in " ".join(init.stdout.split())  # wrapped
    assert '"architecture": "audio_cnn"' in script[script.index("experiment[2]"):]
    # Instance 3 fuses them (issue 58) with equal weights, chosen on nothing (issue 68); 4
    # speakers leave one validation item per fold, too few to rank on items that chose no
    # epoch: no rank_split.
    assert "from xval import Ensemble, Experiment" in script
    assert "experiment[3] = Ensemble(1, 2)" in script
    assert "Instance 3: ensemble of instances 1 + 2 (equal weights)" in init.stdout
    assert "rank_split" not in script
    assert (project / "data" / "wavs_aisfx" / "dataset.json").exists()
    # Instance 1's fold models take audio (issue 42): predict needs no encoder store.
    run = python_here("experiments/wavs.py", "1", "1", "--set", "epochs=2", "--set",
                      "patience=2", cwd=project)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    instance = project / "results" / "wavs" / "experiment_1" / "instance_1"
    (project / "data" / "wavs_aisfx").rename(project / "moved_store")
    wav = sorted(audio.glob("1_*.wav"))[0]
    predicted = python_here("-m", "xval", "predict", instance, wav, cwd=project)
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert wav.name in predicted.stdout
    import json

    head = json.loads((instance / "fold_0.json").read_text())
    assert head["status"] == "ok"
    probe = _run(["-c", "import keras, architectures; m = keras.saving.load_model("
                  f"{str(instance / 'fold_0.keras')!r}, compile=False); "
                  "print(m.inputs[0].name, tuple(m.inputs[0].shape))"], project)
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.split()[0] == "audio"
    (project / "moved_store").rename(project / "data" / "wavs_aisfx")

    plain = python_here("-m", "xval", "init", audio, "--name", "plain", "--encoders", "none",
                        cwd=project)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    script = (project / "experiments" / "plain.py").read_text()
    assert "aisfx" not in script and '"architecture": "audio_cnn"' in script
    assert "Ensemble" not in script  # the CNN and its MLP baseline: no fusion written
