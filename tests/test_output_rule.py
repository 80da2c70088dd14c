"""Nothing a command did not create is ever deleted or replaced (xval.core.outputs, issue 37
point 1). Every command that can replace a folder is run, with `--overwrite`, against a
folder of the user's audio and a folder of the user's documents: each refuses with one
`error:` line naming the folder, and every file in it is still there, unchanged."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import python_here, tiny_store, write_config, write_script

SR = 8000


def _tone(path, hz=440.0, seconds=0.4, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.4 * np.sin(2 * np.pi * hz * t) + 0.01 * rng.normal(size=t.size))
             .astype(np.float32), SR)


def _user_audio(folder):
    """The user's recordings: class folders of speakers' takes."""
    for c, hz in (("a", 300.0), ("b", 900.0)):
        for s in range(3):
            _tone(folder / c / f"spk{s}_{c}.wav", hz * (1 + 0.05 * s), seed=s)
    return folder


def _user_documents(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "thesis.docx").write_bytes(os.urandom(1024))
    return folder


def _fsdd_like(folder):
    for d in range(3):
        for speaker in ("anna", "bob", "carl"):
            _tone(folder / f"{d}_{speaker}_0.wav", 200.0 + 150 * d, seed=d)
    return folder


def _contents(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(cwd, *args):
    """`python ARGS` in `cwd`, run in this process (`python_here`): the rule is the
    commands' own; each command line's process is tested in its own test file."""
    return python_here(*args, cwd=cwd)


# Each command: (name, how to run it against TARGET, reading SRC). `W` is the test folder
# (with a config.ini whose data_dir is W/data), `src` the audio it reads.

def _init_store(w, src, target):
    """`xval init SRC --name NAME`: the store data/NAME is the target."""
    (w / "data").mkdir(exist_ok=True)
    target.rename(w / "data" / "mine")
    target.mkdir()  # (a placeholder: the real target is data/mine, returned below)
    return ["-m", "xval", "init", src, "--name", "mine", "--overwrite", "--no-progress",
            "--item-pattern", r"(?P<item>spk\d)"], w / "data" / "mine"


def _init_audio_is_store(w, src, target):
    """`xval init data/wavs`: the audio folder is the store path itself (the issue's case:
    every recording was deleted)."""
    (w / "data").mkdir(exist_ok=True)
    target.rename(w / "data" / "wavs")
    target.mkdir()
    return ["-m", "xval", "init", w / "data" / "wavs", "--overwrite", "--no-progress",
            "--item-pattern", r"(?P<item>spk\d)"], w / "data" / "wavs"


def _folders(w, src, target):
    return ["-m", "preprocessing", "folders", src, "--out", target, "--overwrite",
            "--no-progress", "--workers", "1", "--item-pattern", r"(?P<item>spk\d)"], target


def _folders_out_is_input(w, src, target):
    return ["-m", "preprocessing", "folders", target, "--out", target, "--overwrite",
            "--no-progress", "--workers", "1"], target


def _manifest(w, src, target):
    rows = "".join(f"{p.relative_to(src)},{p.parent.name},{p.stem[:4]}\n"
                   for p in sorted(src.rglob("*.wav")))
    (w / "m.csv").write_text("path,label,item\n" + rows)
    return ["-m", "preprocessing", "manifest", w / "m.csv", "--root", src, "--out", target,
            "--item-column", "item", "--overwrite", "--no-progress", "--workers", "1"], target


def _demo(w, src, target):
    (w / "data").mkdir(exist_ok=True)
    target.rename(w / "data" / "demo")
    target.mkdir()
    return ["-m", "preprocessing", "demo", "--data-dir", w / "data", "--overwrite",
            "--no-progress", "--workers", "1"], w / "data" / "demo"


def _detection(w, src, target):
    (w / "ann.csv").write_text("file,start,end,label\n" + "".join(
        f"{p.relative_to(src)},0.05,0.2,beep\n" for p in sorted(src.rglob("*.wav"))))
    return ["-m", "preprocessing", "detection", src, "--annotations", w / "ann.csv",
            "--annotation-units", "seconds", "--out", target, "--overwrite",
            "--no-progress"], target


def _synth_events(w, src, target):
    return ["-m", "preprocessing", "synth-events", _fsdd_like(w / "fsdd"), "--out", target,
            "--overwrite", "--files-per-speaker", "1", "--seconds", "2"], target


def _synth_babble(w, src, target):
    return ["-m", "preprocessing", "synth-babble", src, "--out", target, "--overwrite",
            "--groups", "1", "--files-per-group", "1", "--seconds", "1", "--no-reverb"], target


def _augment(w, src, target):
    return ["-m", "augmentation", src, target, "0", "--overwrite", "--no-progress",
            "--workers", "1"], target


def _embed(w, src, target):
    return ["-m", "xval", "embed", w / "model.keras", next(src.rglob("*.wav")), "--out",
            target, "--overwrite"], target


COMMANDS = [("init", _init_store), ("init-audio-is-store", _init_audio_is_store),
            ("preprocessing-folders", _folders),
            ("preprocessing-out-is-input", _folders_out_is_input),
            ("preprocessing-manifest", _manifest), ("preprocessing-demo", _demo),
            ("preprocessing-detection", _detection),
            ("preprocessing-synth-events", _synth_events),
            ("preprocessing-synth-babble", _synth_babble), ("augmentation", _augment),
            ("embed", _embed)]
TARGETS = [("audio", _user_audio), ("documents", _user_documents)]


@pytest.mark.parametrize("target_kind, make_target", TARGETS, ids=[t for t, _ in TARGETS])
@pytest.mark.parametrize("command, arguments", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_no_command_replaces_a_folder_it_did_not_write(tmp_path, command, arguments,
                                                       target_kind, make_target):
    if command.startswith("init-audio") and target_kind == "documents":
        pytest.skip("the audio folder is the store path: only audio")
    if command == "preprocessing-out-is-input" and target_kind == "documents":
        pytest.skip("the input is a folder of audio")
    write_config(tmp_path)
    src = _user_audio(tmp_path / "src")
    target = make_target(tmp_path / "target")
    argv, target = arguments(tmp_path, src, target)
    before = _contents(target)
    src_before = _contents(src)
    proc = _run(tmp_path, *argv)
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert target.name in errors[0], errors[0]
    assert _contents(target) == before  # every file of the user's is there, unchanged
    assert _contents(src) == src_before


def test_init_refused_leaves_no_half_made_project(tmp_path):
    """A refused init writes nothing: no config.ini, no experiments/, no data/."""
    src = _user_audio(tmp_path / "wavs")
    _user_documents(tmp_path / "project" / "data" / "wavs")  # the store path: not a store
    project = tmp_path / "project"
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    proc = _run(tmp_path, "-m", "xval", "init", src, "--project", project, "--overwrite",
                "--no-progress", "--item-pattern", r"(?P<item>spk\d)")
    assert proc.returncode == 2 and "was not written by" in proc.stderr, proc.stderr
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before
    fresh = tmp_path / "fresh"
    proc = _run(tmp_path, "-m", "xval", "init", src, "--project", fresh, "--folds", "7",
                "--no-progress", "--item-pattern", r"(?P<item>spk\d)")
    assert proc.returncode == 2 and "--folds 7" in proc.stderr, proc.stderr
    assert not fresh.exists()


def test_init_audio_folder_named_as_the_store_is_never_called_a_store(tmp_path):
    """Without --overwrite, the message names the audio folder as such and does not
    suggest --overwrite (the flag that destroyed it)."""
    write_config(tmp_path)
    src = _user_audio(tmp_path / "data" / "wavs")
    proc = _run(tmp_path, "-m", "xval", "init", src, "--no-progress",
                "--item-pattern", r"(?P<item>spk\d)")
    assert proc.returncode == 2
    assert "--overwrite" not in proc.stderr and "already exists" not in proc.stderr
    assert "inside the audio folder" in proc.stderr or "AUDIO_DIR" in proc.stderr


@pytest.mark.parametrize("target_kind, make_target", TARGETS, ids=[t for t, _ in TARGETS])
def test_experiment_overwrite_never_replaces_an_instance_folder_holding_user_files(
        tmp_path, target_kind, make_target):
    config = write_config(tmp_path)
    tiny_store(tmp_path / "data")
    instance = tmp_path / "results" / "tiny" / "experiment_1" / "instance_1"
    make_target(instance)
    (instance / "params.json").write_text(json.dumps({"instance": 1}))
    before = _contents(instance)
    script = write_script(tmp_path, f"""
        from xval import Experiment
        experiment = Experiment(description="rule", dataset="tiny", number=1, num_folds=2,
                                config={str(config)!r})
        experiment[1] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
                         "comment_2": "", "epochs": 1, "hidden_units": 4}}
        if __name__ == "__main__":
            experiment.main()
        """)
    proc = _run(tmp_path, script, "--overwrite", "-q")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "instance 1's folder" in proc.stderr and "never replaced" in proc.stderr
    assert _contents(instance) == before
    assert not Path(str(instance) + ".previous").exists()
