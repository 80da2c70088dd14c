"""`python -m xval init` is right by default (issue 38): on class folders with take-suffixed
names it makes the takes of one recording one item, with no extra flag, and says so; it
chooses the segment length from the clip durations and says so. Real WAV files, a real
subprocess."""

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing.segment_length import choose_segment, clip_durations, encoder_segment
from tests.conftest import ROOT
from xval.cli.init_data import segment_for
from xval.config.loader import load_config

SAMPLE_RATE = 8000


def _takes(root, seconds=0.6):
    """Class folders of `{fold}-{clip}-{take}.wav`: 3 classes x 4 clips, two takes of each."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    for c, (label, hz) in enumerate((("bark", 400.0), ("horn", 1200.0), ("bird", 3000.0))):
        (root / label).mkdir(parents=True)
        for k in range(4):
            for take in "AB":
                y = 0.3 * np.sin(2 * np.pi * hz * (1 + 0.03 * k) * t)
                y += 0.01 * rng.standard_normal(len(t))
                sf.write(root / label / f"{k % 2 + 1}-{100 * c + k}-{take}.wav",
                         y.astype(np.float32), SAMPLE_RATE)
    return root


def _init(cwd, *args):
    return subprocess.run([sys.executable, "-m", "xval", "init", *map(str, args),
                           "--no-progress", "--encoders", "none"], capture_output=True,
                          text=True, cwd=cwd, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"})


@pytest.mark.slow
def test_init_makes_takes_of_one_recording_one_item_and_says_why(tmp_path):
    audio = _takes(tmp_path / "sounds")
    project = tmp_path / "project"
    project.mkdir()
    proc = _init(project, audio)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = " ".join(proc.stdout.split())  # the sentences are wrapped
    assert "Found 24 files" in out and "3 classes, 12 items" in out, out
    assert "Items: the recording ids in the file names" in out and "12 items for 24" in out
    assert "1-0-A.wav, 1-0-B.wav -> '0'" in out and "--item-per-file" in out
    assert "Segments: 0.6 s every 0.3 s (the clips last 0.60-0.60 s, median 0.60" in out
    store = project / "data" / "sounds"
    meta = pd.read_csv(store / "meta.csv", dtype=str)
    takes = meta.groupby("item")["clip"].nunique()
    assert (takes == 2).all() and len(takes) == 12  # both takes of a clip: one item
    params = json.loads((store / "dataset.json").read_text())["feature_params"]
    assert params["segment_seconds"] == 0.6 and params["segment_hop_seconds"] == 0.3


def test_init_refuses_item_per_file_with_an_item_pattern(tmp_path, capsys):
    from xval.cli.main import main

    audio = _takes(tmp_path / "sounds")
    code = main(["init", str(audio), "--item-per-file", "--item-pattern", "(?P<item>.+)",
                 "--project", str(tmp_path / "project")])
    assert code == 2
    assert "--item-per-file and --item-pattern '(?P<item>.+)' contradict" in \
        capsys.readouterr().err
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize("durations,seconds,hop", [
    ([5.0] * 10, 1.0, 0.5),                 # ESC-50: longer clips are cut into 1 s segments
    ([0.3, 0.4, 0.43, 0.5, 0.9], 0.45, 0.225),  # FSDD-like: the median clip, rounded up
    ([0.05, 0.1, 0.12], 0.25, 0.125),       # very short: the shortest segment
    ([np.nan, np.nan], 1.0, 0.5),           # no header to read: the default
])
def test_choose_segment_follows_the_clip_durations(durations, seconds, hop):
    choice = choose_segment(np.array(durations))
    assert (choice.seconds, choice.hop) == (pytest.approx(seconds), pytest.approx(hop))
    assert choice.reason


@pytest.mark.parametrize("durations,seconds,says", [
    # ESC-50: a clip is one row of 3 aisfx blocks
    ([5.0] * 10, 5.0, "the clips last 5.00 s: a row holds every block of every clip"),
    ([0.3, 0.4, 0.43, 0.5, 0.9], 2.3, "one block of the encoder per row"),  # FSDD-like
    ([2.9, 3.3, 3.6, 3.7, 4.1, 5.3], 4.0,    # RAVDESS-like: 3 clips in 4 whole
     "2.90-5.30 s, 3 in 4 at most 4.00 s: a row holds every block of 3 clips in 4"),
    ([30.0] * 4, 10.0, "cut into 10 s segments"),  # music excerpts: 10 s rows, averaged
    ([np.nan], 2.5, "the encoder's default"),      # no header to read
])
def test_encoder_segment_holds_three_clips_in_four_whole(durations, seconds, says):
    choice = encoder_segment(np.array(durations), block_seconds=101376 / 44100, default=2.5)
    assert (choice.seconds, choice.hop) == (pytest.approx(seconds), pytest.approx(seconds / 2))
    assert says in choice.reason


def test_segment_for_reads_the_durations_and_keeps_a_configured_length(tmp_path):
    audio = _takes(tmp_path / "sounds", seconds=0.35)
    rows = pd.DataFrame({"path": [str(p) for p in sorted(audio.rglob("*.wav"))]})
    assert clip_durations(rows) == pytest.approx(np.full(24, 0.35))
    choice = segment_for(rows, load_config(None))
    assert (choice.seconds, choice.hop) == (0.35, 0.175) and "median 0.35 s" in choice.reason
    config = tmp_path / "config.ini"
    config.write_text("[features]\nsegment_seconds = 2.0\n")
    chosen = segment_for(rows, load_config(config))
    assert (chosen.seconds, chosen.hop) == (2.0, 0.5) and "config.ini" in chosen.reason


@pytest.mark.slow
def test_init_with_project_elsewhere_prints_a_command_that_runs_here(tmp_path):
    audio = _takes(tmp_path / "sounds")
    here = tmp_path / "here"
    here.mkdir()
    proc = _init(here, audio, "--project", tmp_path / "project", "--name", "Door sounds")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    command = shlex.split(proc.stdout.split("Run the experiment with:")[1].strip()
                          .splitlines()[0])
    assert command[1] == str(tmp_path / "project" / "experiments" / "door_sounds.py")
    # As printed: a bare `python` is whatever PATH finds, which may lack this project.
    dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True,
                         cwd=here, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"})
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    script = (tmp_path / "project" / "experiments" / "door_sounds.py").read_text()
    assert "Door sounds" not in script.split('"""')[1]  # the data's name: only a literal
    # 12 items in 5 folds leave two validation items or more in every fold: half of them
    # choose no epoch and select the row to report (issue 68), and the dry run took it.
    assert '    parameters={"rank_split": 0.5},  # validation items that choose no epoch ' \
        "select\n)" in script
    assert "rank_split = 0.5: in every fold, 50% of the validation items choose no" in \
        " ".join(script.split())
    assert 'description="Door sounds: first models"' in script and "of sounds on" not in script


@pytest.mark.parametrize(("items", "folds", "share"), [(12, 5, 0.5), (6, 5, 0.0), (4, 2, 0.0)])
def test_init_rank_split_when_every_fold_has_two_validation_items(tmp_path, items, folds,
                                                                   share):
    """`init` writes `rank_split = 0.5` (the row to report selected on validation items that
    chose no epoch, issue 68) only where every fold, cut as the run cuts it, has two
    validation items or more; FSDD's 6 speakers in 5 folds leave one."""
    from tests.conftest import tiny_store, write_config
    from xval.cli.init import _rank_split

    config = load_config(write_config(tmp_path))
    store = tiny_store(config.data_dir, n_items=items, clips_per_class=1, segments=1)
    assert _rank_split(store, folds, config) == share


def test_init_manifest_takes_allow_outside_root(tmp_path, capsys):
    """A manifest path outside AUDIO_DIR is refused with the fix `--allow-outside-root`,
    which `init --manifest` takes (it refused it as an option of --corpus lhotse, issue 74)."""
    from xval.cli.main import main

    audio = _takes(tmp_path / "sounds")
    files = sorted(p.relative_to(audio).as_posix() for p in audio.rglob("*.wav"))
    (tmp_path / "elsewhere").mkdir()
    (audio / files[0]).rename(tmp_path / "elsewhere" / "moved.wav")
    paths = ["../elsewhere/moved.wav", *files[1:]]
    pd.DataFrame({"path": paths, "label": [p.split("/")[-2] if "/" in p[3:] else "bark"
                                           for p in paths]}).to_csv(audio / "m.csv", index=False)
    args = ["init", str(audio), "--manifest", str(audio / "m.csv"), "--project",
            str(tmp_path / "project"), "--dry-run", "--encoders", "none"]
    assert main(args) == 2
    assert "pass --allow-outside-root" in capsys.readouterr().err
    assert main([*args, "--allow-outside-root"]) == 0, capsys.readouterr().err
    assert "Found 24 files" in capsys.readouterr().out


@pytest.mark.parametrize("name,script", [("xval", "xval_experiment.py"),
                                         ("json", "json_experiment.py"),
                                         ("sounds", "sounds.py")])
def test_init_script_never_shadows_a_module(tmp_path, name, script):
    """The script's folder comes first on `sys.path` when it runs: `experiments/xval.py`
    would be imported for `from xval import Experiment` (a circular ImportError, issue 74),
    so a data name that is a module Python finds names its script `<name>_experiment.py`."""
    from xval.cli.scripts import script_path

    assert script_path(tmp_path, name) == tmp_path / "experiments" / script


def test_init_of_a_folder_named_xval_writes_a_script_that_runs(tmp_path, capsys):
    from xval.cli.main import main

    audio = _takes(tmp_path / "xval")
    assert main(["init", str(audio), "--project", str(tmp_path / "project"), "--dry-run",
                 "--encoders", "none"]) == 0
    assert "experiments/xval_experiment.py" in " ".join(capsys.readouterr().out.split())


def test_init_names_the_files_it_skips(tmp_path, capsys):
    """A manifest row that is no audio file (`/dev/zero`, allowed outside the folder) was
    dropped without a word by the dry run, and the real init said "1 file(s) skipped"
    naming none: both name it now, with why."""
    from xval.cli.main import main

    audio = _takes(tmp_path / "sounds", seconds=0.3)
    files = sorted(p.relative_to(audio).as_posix() for p in audio.rglob("*.wav"))
    pd.DataFrame({"path": [*files, "/dev/zero"],
                  "label": [f.split("/")[0] for f in files] + ["bark"]}).to_csv(
        audio / "m.csv", index=False)
    args = ["init", str(audio), "--manifest", str(audio / "m.csv"), "--allow-outside-root",
            "--project", str(tmp_path / "project"), "--encoders", "none", "--no-progress"]
    for extra in (["--dry-run"], []):
        assert main([*args, *extra]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "Found 24 files" in out, out
        assert "Skipped 1 of the files:\n  /dev/zero: not a regular file" in out, out


def test_init_overwrite_keeps_the_script_the_user_edited(tmp_path, capsys):
    """`init --overwrite` replaced the script the user had edited (config.ini was kept):
    the earlier script, when it differs from the new one, is kept as `<name>.py.bak`
    (then `.bak2`, ...), and an unchanged one is replaced without a copy."""
    from xval.cli.main import main

    audio = _takes(tmp_path / "sounds", seconds=0.3)
    args = ["init", str(audio), "--project", str(tmp_path / "project"), "--encoders", "none",
            "--no-progress"]
    assert main(args) == 0, capsys.readouterr().err
    script = tmp_path / "project" / "experiments" / "sounds.py"
    written = script.read_text()
    assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err
    assert "kept as" not in capsys.readouterr().out and not list(script.parent.glob("*.bak*"))
    edited = written.replace('"comment_2": "package defaults"', '"comment_2": "mine"')
    for k, backup in enumerate(("sounds.py.bak", "sounds.py.bak2")):
        script.write_text(edited + f"# my note {k}\n")
        assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err
        assert f"kept as {script.parent / backup}" in " ".join(capsys.readouterr().out.split())
        assert (script.parent / backup).read_text() == edited + f"# my note {k}\n"
        assert script.read_text() == written


def test_init_names_the_default_encoders_it_cannot_compare_with_their_commands(monkeypatch,
                                                                              capsys):
    """Issue 89: the default encoders that are not installed are named, each with the one
    command that installs it and its weights' licence, whether or not another one is."""
    from preprocessing.features import encoders
    from xval.cli import init

    monkeypatch.setattr(encoders, "installed", lambda name: name == encoders.AISFX)
    assert init._encoders(None) == [encoders.AISFX]
    said = capsys.readouterr().out.strip()
    birdnet = encoders.BUILT_IN[encoders.BIRDNET]
    assert said == (f"init would also compare the pretrained encoder birdnet, not installed "
                    f"here, so the experiment compares the others. To add it: birdnet "
                    f"({birdnet.licence}): {birdnet.install}; then rerun init with --overwrite.")
    monkeypatch.setattr(encoders, "installed", lambda name: False)
    assert init._encoders(None) == []
    said = capsys.readouterr().out
    assert "encoders aisfx and birdnet, not installed here, so the experiment compares a CNN " \
           "trained from scratch" in said and encoders.BUILT_IN[encoders.AISFX].install in said
    monkeypatch.setattr(encoders, "installed", lambda name: True)
    assert init._encoders(None) == list(init.DEFAULT_ENCODERS)
    assert capsys.readouterr().out == ""
