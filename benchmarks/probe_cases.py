"""The cases of `benchmarks.hostile_probe`: the sandbox they run in and what each one tries.

A case's command starts with `xval` (`python -m xval`), `pre` (`python -m preprocessing`),
`aug` (`python -m augmentation`) or `exp` (the sandbox's experiment script
`experiments/probe.py`); `{W}` is the case's own copy of the sandbox:

    {W}/project/config.ini            [paths] data_dir = data, results_dir = results
    {W}/project/data/demo/            the demo store
    {W}/project/experiments/probe.py  2 folds, 1 epoch, a small MLP, on the demo store
    {W}/project/results/demo/experiment_1/instance_1/   its results (fold models)
    {W}/audio/{a,b,c}/spk<i>_<k>.wav  18 tones, three classes, three speakers
    {W}/docs/                         the user's own documents

Commands run in `{W}/project`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

Prepare = Callable[[Path], None]
Check = Callable[[Path, Any], str]

RESULTS = "project/results/demo/experiment_1"
INSTANCE = f"{RESULTS}/instance_1"
DERIVED = (f"{RESULTS}/*.xlsx", f"{RESULTS}/dataset.json", f"{RESULTS}/*_description.txt",
           f"{RESULTS}/code/*", f"{INSTANCE}/summary.json", f"{INSTANCE}/plots/*",
           f"{INSTANCE}/params.json")
"""What a run rewrites in the results folder besides new folds (derived, not damage)."""
EXPERIMENT = '''from xval import Experiment

experiment = Experiment(description="probe", dataset={dataset!r}, number=1, num_folds=2,
                        parameters={{"epochs": 1, "batch_size": 64}})
experiment[1] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "a",
                 "comment_2": "b", "hidden_units": 8}}

if __name__ == "__main__":
    experiment.main()
'''


@dataclasses.dataclass
class Case:
    """One probe input.

    Attributes:
        name: a unique name, prefixed by the command it aims at.
        argv: the command (see the module docstring).
        expect: `"refuse"` (the input is wrong) or `"run"` (it is valid).
        prepare: changes the sandbox copy before the command runs.
        check: for a run that exits 0, why its output is wrong (`""`: it is right).
        may_change: globs (relative to the sandbox) of files the command may replace.
        env: environment variables to set (`{W}` is formatted).
        unset: environment variables to remove.
        stdout: a file to send stdout to (e.g. `/dev/full`) instead of a pipe.
        named: the input is one named in an issue (37, 45, 54: counted apart).
        cleanup: undoes what `prepare` did outside the sandbox's own files (`chattr`).
        timeout: seconds before the case counts as a hang.
        says: words the error line of a refusal must hold (it names the real cause: the
            path that is full, the entry that hangs); without them it is `unclear`.
    """

    name: str
    argv: Sequence[str]
    expect: str
    prepare: Prepare | None = None
    check: Check | None = None
    may_change: Sequence[str] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    unset: Sequence[str] = ()
    stdout: str | None = None
    named: bool = False
    cleanup: Prepare | None = None
    timeout: int = 180
    says: Sequence[str] = ()

    def command(self, root: Path, python: str) -> list[str]:
        """The argument vector, placeholders filled."""
        head, *rest = self.argv
        prefix = {"xval": [python, "-m", "xval"], "pre": [python, "-m", "preprocessing"],
                  "aug": [python, "-m", "augmentation"],
                  "exp": [python, "experiments/probe.py"],
                  "gpu": [python, "-m", "benchmarks.gpu"]}[head]
        return prefix + [arg.format(W=root) for arg in rest]


# -- the sandbox ---------------------------------------------------------------------------

def tone(path: Path, freq: float, *, seconds: float = 0.5, sr: int = 8000,
         seed: int = 0, amplitude: float = 0.5) -> None:
    """Writes a noisy tone as 16-bit WAV."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = amplitude * np.sin(2 * np.pi * freq * t) + 0.02 * rng.normal(size=t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y.astype(np.float32), sr, subtype="PCM_16")


def write_signal(path: Path, y: np.ndarray, sr: int = 8000, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr, subtype=subtype)


def build_base(base: Path, python: str) -> None:
    """Builds the sandbox every case copies (the demo store and a trained experiment)."""
    project = base / "project"
    (project / "experiments").mkdir(parents=True)
    (project / "config.ini").write_text("[paths]\ndata_dir = data\nresults_dir = results\n")
    (project / "experiments" / "probe.py").write_text(EXPERIMENT.format(dataset="demo"))
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    for argv in ([python, "-m", "preprocessing", "demo", "-q"],
                 [python, "experiments/probe.py", "-q"]):
        subprocess.run(argv, cwd=project, env=env, check=True)
    for c, freq in (("a", 300.0), ("b", 700.0), ("c", 1500.0)):
        for i in range(1, 4):
            for k in range(2):
                tone(base / "audio" / c / f"spk{i}_{k}.wav", freq * (1 + 0.03 * i),
                     seed=10 * i + k)
    (base / "docs").mkdir()
    (base / "docs" / "notes.txt").write_text("my notes\n")
    (base / "docs" / "thesis.docx").write_bytes(os.urandom(2048))


# -- helpers of cases ----------------------------------------------------------------------

def _write(rel: str, text: str | bytes) -> Prepare:
    def prepare(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return prepare


def _all(*steps: Prepare) -> Prepare:
    def prepare(root: Path) -> None:
        for step in steps:
            step(root)
    return prepare


def _remove(rel: str) -> Prepare:
    def prepare(root: Path) -> None:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            import shutil  # noqa: PLC0415
            shutil.rmtree(path)
        else:
            path.unlink()
    return prepare


def _symlink(rel: str, target: str) -> Prepare:
    def prepare(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.format(W=root), root / rel)
    return prepare


def _fifo(rel: str) -> Prepare:
    def prepare(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / rel)
    return prepare


def _signal(rel: str, y: np.ndarray, sr: int = 8000, subtype: str = "PCM_16") -> Prepare:
    return lambda root: write_signal(root / rel, y, sr, subtype)


def _edit_json(rel: str, change: Callable[[Any], Any]) -> Prepare:
    def prepare(root: Path) -> None:
        path = root / rel
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return prepare


def _immutable(path: Path, on: bool = True) -> None:
    """`chattr +i` (or `-i`): read-only even for root, who ignores file modes."""
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=False)


def _run_in(root: Path, *argv: str) -> None:
    """Runs this Python with `argv` in the sandbox's project (a step of a prepare)."""
    subprocess.run([sys.executable, *argv], cwd=root / "project", capture_output=True,
                   env={**os.environ, "KERAS_BACKEND": "torch"}, check=False)


def _tones(rel: str, n: int, freq: float = 440.0) -> Prepare:
    def prepare(root: Path) -> None:
        for k in range(n):
            tone(root / rel / f"spk{k % 3 + 1}_{k}.wav", freq, seed=k)
    return prepare


def _csv_rows(proc: Any, clips: int) -> str:
    """Why `proc.stdout` is not a CSV table (comments skipped) of rows of one width with
    `clips` clip rows."""
    lines = [line for line in proc.stdout.splitlines(keepends=True)
             if not line.startswith("#")]
    rows = list(csv.reader(io.StringIO("".join(lines))))
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        return "CSV rows of different widths"
    found = sum(1 for r in rows[1:] if len(r) > 1 and r[1] == "clip")
    return "" if found == clips else f"{found} clip rows, expected {clips}"


def _exists(rel: str, want: bool = True) -> Check:
    def check(root: Path, proc: Any) -> str:
        return "" if (root / rel).exists() == want else \
            f"{rel} {'missing' if want else 'was written'}"
    return check


def _out_has(text: str) -> Check:
    return lambda root, proc: "" if text in proc.stdout else f"{text!r} not in the output"


SILENCE = np.zeros(4000, np.float32)
DC = np.full(4000, 0.5, np.float32)
RNG = np.random.default_rng(0)
NOISE = (0.3 * RNG.normal(size=8000)).astype(np.float32)


# -- the cases -----------------------------------------------------------------------------

ITEMS = r"(?P<item>spk\d)"


def _init_cases() -> list[Case]:
    init = ("xval", "init", "{W}/audio", "--item-pattern", ITEMS, "--no-progress")
    return [
        Case("init-ok", init, "run", check=_exists("project/data/audio/dataset.json")),
        Case("init-empty-folder", ("xval", "init", "{W}/empty"), "refuse",
             prepare=lambda r: (r / "empty").mkdir()),
        Case("init-only-text-files", ("xval", "init", "{W}/docs"), "refuse"),
        Case("init-missing-folder", ("xval", "init", "{W}/nowhere"), "refuse"),
        Case("init-audio-is-file", ("xval", "init", "{W}/docs/notes.txt"), "refuse"),
        Case("init-name-traversal", (*init, "--name", "../../escape"), "run",
             check=_exists("escape", want=False)),
        Case("init-name-empty", (*init, "--name", ""), "refuse"),
        Case("init-folds-0", (*init, "--folds", "0"), "refuse"),
        Case("init-folds-negative", (*init, "--folds", "-3"), "refuse"),
        Case("init-folds-huge", (*init, "--folds", "1000"), "refuse"),
        Case("init-bad-regex", ("xval", "init", "{W}/audio", "--pattern", "("), "refuse"),
        Case("init-pattern-without-label", ("xval", "init", "{W}/audio", "--pattern",
                                            r"(?P<item>spk\d)"), "refuse"),
        Case("init-manifest-is-folder", ("xval", "init", "{W}/audio", "--manifest",
                                         "{W}/docs"), "refuse"),
        Case("init-manifest-no-path-column", ("xval", "init", "{W}/audio", "--manifest",
                                              "{W}/m.csv"), "refuse",
             prepare=_write("m.csv", "file,label\na/spk1_0.wav,a\n")),
        Case("init-project-inside-audio", (*init, "--project", "{W}/audio/proj"), "refuse",
             may_change=()),
        Case("init-item-pattern-no-group", ("xval", "init", "{W}/audio", "--item-pattern",
                                            "spk"), "refuse"),
        Case("init-twice", init, "refuse", may_change=("project/*",),
             prepare=lambda r: _run_in(r, "-m", "xval", "init", str(r / "audio"),
                                       "--item-pattern", ITEMS, "--no-progress")),
        Case("init-broken-config", init, "refuse",
             prepare=_write("project/config.ini", "[paths\ndata_dir = data\n")),
        Case("init-one-speaker", ("xval", "init", "{W}/one"), "refuse",
             prepare=_all(_tones("one/a", 1), _tones("one/b", 1, 900.0))),
        Case("init-empty-class-folder", init, "refuse",
             prepare=lambda r: (r / "audio" / "d").mkdir()),
        Case("init-zero-byte-wav", init, "run", prepare=_write("audio/a/spk1_9.wav", b""),
             check=_out_has("skipped")),
        Case("init-nan-wav", init, "run",
             prepare=_signal("audio/a/spk1_8.wav", np.full(4000, np.nan, np.float32),
                             subtype="FLOAT"), check=_out_has("skipped")),
        Case("init-ten-samples", init, "run",
             prepare=_signal("audio/a/spk1_7.wav", NOISE[:10]), check=_out_has("skipped")),
        Case("init-mixed-rates-stereo", init, "run",
             prepare=_signal("audio/a/spk2_5.wav", np.stack([NOISE, NOISE], 1), sr=48000)),
        Case("init-uppercase-extension", init, "run",
             prepare=_signal("audio/b/spk3_5.WAV", NOISE)),
        Case("init-hidden-file", init, "run",
             prepare=_write("audio/a/.DS_Store", b"\x00\x01garbage")),
        Case("init-garbage-wav", init, "run",
             prepare=_write("audio/c/spk1_7.wav", b"RIFF\x00\x00garbage" * 10),
             check=_out_has("skipped")),
        Case("init-label-map-bad", ("xval", "init", "{W}/audio", "--pattern",
                                    r"(?P<label>[abc])/(?P<item>spk\d)", "--label-map",
                                    "x"), "refuse"),
        Case("init-unicode-classes", ("xval", "init", "{W}/uni", "--item-pattern", ITEMS),
             "run", prepare=_all(_tones("uni/é a", 6), _tones("uni/日本", 6, 900.0),
                                 _tones("uni/c,d", 6, 1500.0))),
        Case("init-project-readonly", (*init, "--project", "{W}/ro"), "refuse",
             prepare=lambda r: ((r / "ro").mkdir(), _immutable(r / "ro")) and None,
             cleanup=lambda r: _immutable(r / "ro", False)),
        Case("init-dangling-link-class", init, "refuse",
             prepare=_symlink("audio/d", "{W}/nowhere")),
    ]


def _preprocessing_cases() -> list[Case]:
    folders = ("pre", "folders", "{W}/audio", "--item-pattern", ITEMS, "--no-progress",
               "-q")
    return [
        Case("pre-ok", (*folders, "--out", "store"), "run",
             check=_exists("project/data/store/features.npy")),
        Case("pre-root-missing", ("pre", "folders", "{W}/nowhere", "--out", "s"), "refuse"),
        Case("pre-out-empty", (*folders, "--out", ""), "refuse"),
        Case("pre-n-mels-0", (*folders, "--out", "s", "--n-mels", "0"), "refuse"),
        Case("pre-n-mels-negative", (*folders, "--out", "s", "--n-mels", "-1"), "refuse"),
        Case("pre-fmin-above-fmax", (*folders, "--out", "s", "--fmin", "3000", "--fmax",
                                     "100"), "refuse"),
        Case("pre-sample-rate-0", (*folders, "--out", "s", "--sample-rate", "0"), "refuse"),
        Case("pre-segment-nan", (*folders, "--out", "s", "--segment-seconds", "nan"),
             "refuse"),
        Case("pre-segment-inf", (*folders, "--out", "s", "--segment-seconds", "inf"),
             "refuse"),
        Case("pre-hop-0", (*folders, "--out", "s", "--hop-length", "0"), "refuse"),
        Case("pre-unknown-feature", (*folders, "--out", "s", "--feature", "wavelets"),
             "refuse"),
        Case("pre-unknown-feature-option", (*folders, "--out", "s", "--feature-option",
                                            "foo=1"), "refuse"),
        Case("pre-workers-negative", (*folders, "--out", "s", "--workers", "-2"), "refuse"),
        Case("pre-out-under-file", (*folders, "--out", "{W}/docs/notes.txt/s"), "refuse"),
        Case("pre-out-into-docs", (*folders, "--out", "{W}/docs", "--overwrite"), "refuse"),
        Case("pre-out-existing-store", (*folders, "--out", "demo"), "refuse"),
        Case("pre-out-existing-store-overwrite", (*folders, "--out", "demo", "--overwrite"),
             "run", may_change=("project/data/demo/*",)),
        Case("pre-out-inside-input", (*folders, "--out", "{W}/audio/store"), "refuse"),
        Case("pre-manifest-bom", ("pre", "manifest", "{W}/m.csv", "--root", "{W}/audio",
                                  "--out", "s", "--item-column", "item", "-q",
                                  "--no-progress"), "run",
             prepare=_write("m.csv", "\ufeffpath,label,item\n" + "".join(
                 f"{c}/spk{i}_{k}.wav,{c},spk{i}\n" for c in "abc" for i in (1, 2, 3)
                 for k in (0, 1)))),
        Case("pre-manifest-outside-root", ("pre", "manifest", "{W}/m.csv", "--root",
                                           "{W}/audio", "--out", "s"), "refuse",
             prepare=_write("m.csv", "path,label\n../docs/notes.txt,a\na/spk1_0.wav,a\n")),
        Case("pre-manifest-empty", ("pre", "manifest", "{W}/m.csv", "--out", "s"), "refuse",
             prepare=_write("m.csv", "")),
        Case("pre-manifest-duplicate-rows", ("pre", "manifest", "{W}/m.csv", "--root",
                                             "{W}/audio", "--out", "s"), "refuse",
             prepare=_write("m.csv", "path,label\na/spk1_0.wav,a\na/spk1_0.wav,b\n")),
        Case("pre-manifest-blank-label", ("pre", "manifest", "{W}/m.csv", "--root",
                                          "{W}/audio", "--out", "s"), "refuse",
             prepare=_write("m.csv", "path,label\na/spk1_0.wav,\nb/spk1_0.wav,b\n")),
        Case("pre-report-not-store", ("pre", "report", "{W}/docs"), "refuse"),
        Case("pre-report-bad-json", ("pre", "report", "data/demo"), "refuse",
             prepare=_write("project/data/demo/dataset.json", "{not json")),
        Case("pre-report-truncated-meta", ("pre", "report", "data/demo"), "refuse",
             prepare=_write("project/data/demo/meta.csv", "row,item\n0,a\n")),
        Case("pre-report-garbage-features", ("pre", "report", "data/demo"), "refuse",
             prepare=_write("project/data/demo/features.npy", b"\x93NUMPY garbage")),
        Case("pre-demo-data-dir-file", ("pre", "demo", "--data-dir", "{W}/docs/notes.txt"),
             "refuse"),
        Case("pre-synth-events-missing", ("pre", "synth-events", "{W}/nowhere", "--out",
                                          "{W}/ev"), "refuse"),
        Case("pre-synth-events-negative-seconds", ("pre", "synth-events", "{W}/audio/a",
                                                   "--out", "{W}/ev", "--seconds", "-1"),
             "refuse"),
        Case("pre-synth-events-min-above-max", ("pre", "synth-events", "{W}/audio/a",
                                                "--out", "{W}/ev", "--events-min", "5",
                                                "--events-max", "1"), "refuse"),
        Case("pre-synth-babble-0-groups", ("pre", "synth-babble", "{W}/audio", "--out",
                                           "{W}/bb", "--groups", "0"), "refuse"),
        Case("pre-augment-negative", (*folders, "--out", "s", "--augment", "-1"), "refuse"),
        Case("pre-detection-bad-annotations", ("pre", "detection", "{W}/audio/a",
                                               "--annotations", "{W}/ann.csv", "--out", "d"),
             "refuse", prepare=_write("ann.csv", "foo,bar\n1,2\n")),
        Case("pre-silent-class", (*folders, "--out", "s"), "refuse",
             prepare=_all(*[_signal(f"audio/c/spk{i}_{k}.wav", SILENCE)
                            for i in (1, 2, 3) for k in (0, 1)])),
        Case("pre-fifo-audio", (*folders, "--out", "s"), "run",
             prepare=_fifo("audio/a/spk1_5.wav"), check=_out_has("")),
        Case("pre-regex-catastrophe", ("pre", "regex", "{W}/audio", "--pattern",
                                       r"(?P<label>[abc])/(?P<item>spk\d)_(\d)", "--out",
                                       "s", "-q", "--no-progress"), "run"),
    ]


def _augment_cases() -> list[Case]:
    return [
        Case("aug-ok", ("aug", "{W}/audio", "{W}/augmented", "1", "--no-progress"), "run",
             check=_exists("augmented/a/spk1_0_aug01.wav")),
        Case("aug-n-negative", ("aug", "{W}/audio", "{W}/o", "-1"), "refuse"),
        Case("aug-n-text", ("aug", "{W}/audio", "{W}/o", "abc"), "refuse"),
        Case("aug-in-missing", ("aug", "{W}/nowhere", "{W}/o", "1"), "refuse"),
        Case("aug-out-inside-in", ("aug", "{W}/audio", "{W}/audio/o", "1"), "refuse"),
        Case("aug-out-is-file", ("aug", "{W}/audio", "{W}/docs/notes.txt", "1"), "refuse"),
        Case("aug-twice", ("aug", "{W}/audio", "{W}/docs/../o", "0", "--no-progress"),
             "refuse", prepare=_write("o/a/spk1_0_original.wav", b"x")),
        Case("aug-no-audio", ("aug", "{W}/docs", "{W}/o", "1"), "refuse"),
        Case("aug-out-is-in", ("aug", "{W}/audio", "{W}/audio", "1", "--overwrite"),
             "refuse"),
        Case("aug-out-into-audio", ("aug", "{W}/audio/a", "{W}/audio/b", "1",
                                    "--no-progress"), "refuse"),
        Case("aug-bad-probability", ("aug", "{W}/audio", "{W}/o", "1", "--gain-p", "2"),
             "refuse"),
    ]


def _experiment_cases() -> list[Case]:
    dry = ("exp", "--dry-run")
    return [
        Case("exp-dry-ok", dry, "run", check=_out_has("Dry run")),
        Case("exp-set-unknown", (*dry, "--set", "unknown=1"), "refuse"),
        Case("exp-set-epochs-0", (*dry, "--set", "epochs=0"), "refuse"),
        Case("exp-set-epochs-negative", (*dry, "--set", "epochs=-1"), "refuse"),
        Case("exp-set-epochs-float", (*dry, "--set", "epochs=1.5"), "refuse"),
        Case("exp-set-epochs-text", (*dry, "--set", "epochs=abc"), "refuse"),
        Case("exp-set-lr-nan", (*dry, "--set", "learning_rate=nan"), "refuse"),
        Case("exp-set-lr-inf", (*dry, "--set", "learning_rate=float('inf')"), "refuse"),
        Case("exp-set-architecture-unknown", (*dry, "--set", "architecture='nope'"),
             "refuse"),
        Case("exp-set-no-name", (*dry, "--set", "=5"), "refuse"),
        Case("exp-set-no-equals", (*dry, "--set", "epochs"), "refuse"),
        Case("exp-set-batch-0", (*dry, "--set", "batch_size=0"), "refuse"),
        Case("exp-set-code", (*dry, "--set", "optimizer=__import__('os').system('touch "
                                            "{W}/pwned')"), "refuse",
             check=_exists("pwned", want=False)),
        Case("exp-instances-twice", (*dry, "--instances", "1,1"), "refuse"),
        Case("exp-instance-undeclared", (*dry, "--instances", "99"), "refuse"),
        Case("exp-first-after-last", ("exp", "--dry-run", "5", "3"), "refuse"),
        Case("exp-gpus-twice", (*dry, "--executor", "process", "--gpus", "0,0"), "refuse"),
        Case("exp-gpu-text", ("exp", "--dry-run", "1", "1", "abc"), "refuse"),
        Case("exp-config-missing", (*dry, "--config", "{W}/nowhere.ini"), "refuse"),
        Case("exp-config-folder", (*dry, "--config", "{W}/docs"), "refuse"),
        Case("exp-trials-without-search", (*dry, "--trials", "0"), "refuse"),
        Case("exp-results-dir-file", dry, "refuse",
             prepare=_write("project/config.ini", "[paths]\ndata_dir = data\n"
                                                  "results_dir = ../docs/notes.txt\n")),
        Case("exp-mlflow-bad-scheme", (*dry, "--mlflow=foo://bar"), "refuse"),
        Case("exp-dataset-traversal", dry, "refuse",
             prepare=_write("project/experiments/probe.py",
                            EXPERIMENT.format(dataset="../../docs"))),
        Case("exp-dataset-missing", dry, "refuse",
             prepare=_write("project/experiments/probe.py",
                            EXPERIMENT.format(dataset="nope"))),
        Case("exp-instance-code", dry, "refuse",
             prepare=_write("project/experiments/probe.py", EXPERIMENT.format(
                 dataset="demo").replace("\nif __name__", "experiment[2] = ['epochs=__import"
                                         "__(\"os\").getpid()', 'architecture=\"mlp\"']"
                                         "\n\nif __name__"))),
        Case("exp-lr-string", (*dry, "--set", "learning_rate='fast'"), "refuse"),
        Case("exp-resume-corrupt-fold", ("exp", "-q"), "run",
             prepare=_write(f"{INSTANCE}/fold_0.json", "{truncated"),
             may_change=(f"{INSTANCE}/*", f"{RESULTS}/*")),
        Case("exp-params-json-list", ("exp", "-q"), "refuse",
             prepare=_write(f"{INSTANCE}/params.json", "[]")),
        Case("exp-folds-json-garbage", ("exp", "-q"), "refuse",
             prepare=_write(f"{RESULTS}/folds.json", "garbage")),
        Case("exp-quiet-verbose", ("exp", "-q", "-v"), "refuse"),
        Case("exp-timeout-nan", (*dry, "--search", "--timeout", "nan"), "refuse"),
        Case("exp-results-readonly", ("exp", "-q", "--overwrite"), "refuse",
             prepare=lambda r: _immutable(r / RESULTS),
             cleanup=lambda r: _immutable(r / RESULTS, False)),
        Case("exp-lock-is-folder", ("exp", "-q", "--overwrite"), "refuse",
             prepare=lambda r: _lock_folders(r / RESULTS / ".locks")),
        Case("exp-store-features-edited", ("exp", "-q"), "refuse", named=True,
             prepare=_all(_remove(f"{INSTANCE}/fold_1.json"),
                          lambda r: _flip_byte(r / "project/data/demo/features.npy")),
             may_change=("project/data/demo/features.npy", *DERIVED)),
        Case("exp-locks-file", ("exp", "-q", "--overwrite"), "refuse", named=True,
             prepare=lambda r: (_remove(f"{RESULTS}/.locks")(r)
                                if (r / RESULTS / ".locks").exists() else None,
                                (r / RESULTS / ".locks").write_text("x")) and None),
        Case("exp-instance-file", ("exp", "-q", "--overwrite"), "refuse", named=True,
             prepare=_all(_remove(INSTANCE), _write(INSTANCE, "x"))),
    ]


def _lock_folders(locks: Path) -> None:
    """Folders where the lock files of the experiment and instance 1 belong."""
    locks.mkdir(exist_ok=True)
    for name in ("instance_1.lock", "experiment.lock"):
        if (locks / name).is_file():
            (locks / name).unlink()
        (locks / name).mkdir(exist_ok=True)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x55
    path.write_bytes(bytes(data))


def _report_cases() -> list[Case]:
    report = ("xval", "report", "results/demo/experiment_1")
    xlsx = (f"{RESULTS}/*.xlsx",)
    return [
        Case("report-ok", report, "run", may_change=xlsx, check=_out_has("instance")),
        Case("report-missing", ("xval", "report", "results/nope"), "refuse"),
        Case("report-not-experiment", ("xval", "report", "{W}/docs"), "refuse"),
        Case("report-fold-not-json", (*report, "--format", "csv"), "run", may_change=xlsx,
             prepare=_write(f"{INSTANCE}/fold_1.json", "{"), check=_out_has("invalid")),
        Case("report-fold-nan", report, "run", may_change=xlsx,
             prepare=_edit_json(f"{INSTANCE}/fold_0.json", lambda d: {
                 **d, "metrics": {**d["metrics"], "test": {
                     **d["metrics"]["test"], "accuracy": float("nan")}}})),
        Case("report-summary-folder", report, "run", may_change=xlsx + (f"{INSTANCE}/*",),
             prepare=lambda r: ((r / INSTANCE / "summary.json").unlink(),
                                (r / INSTANCE / "summary.json").mkdir()) and None),
        Case("report-folds-missing", report, "run", may_change=xlsx,
             prepare=_remove(f"{RESULTS}/folds.json")),
        Case("report-params-list", report, "run", may_change=xlsx,
             prepare=_write(f"{INSTANCE}/params.json", "[1, 2]"),
             check=_out_has("params.json")),
        Case("report-bad-format", (*report, "--format", "xml"), "refuse"),
        Case("report-instance-is-file", report, "run", may_change=xlsx,
             prepare=_write(f"{RESULTS}/instance_7", "not a folder")),
        Case("report-full-disk-stdout", (*report, "--no-workbook"), "refuse",
             stdout="/dev/full", named=True),
        Case("report-ascii-terminal", (*report, "--no-workbook"), "run",
             env={"PYTHONIOENCODING": "ascii"}, named=True),
    ]


def _model_cases() -> list[Case]:
    model = "results/demo/experiment_1/instance_1"
    wav = "{W}/audio/a/spk1_0.wav"
    return [
        Case("predict-ok", ("xval", "predict", model, wav, "--format", "csv"), "run",
             check=lambda r, p: _csv_rows(p, 1)),
        Case("predict-model-missing", ("xval", "predict", "nope.keras", wav), "refuse"),
        Case("predict-model-garbage", ("xval", "predict", "{W}/bad.keras", wav), "refuse",
             prepare=_write("bad.keras", b"PK\x03\x04garbage")),
        Case("predict-audio-missing", ("xval", "predict", model, "{W}/nope.wav"), "refuse"),
        Case("predict-audio-folder", ("xval", "predict", model, "{W}/audio"), "refuse"),
        Case("predict-text-as-wav", ("xval", "predict", model, "{W}/t.wav"), "refuse",
             prepare=_write("t.wav", "hello")),
        Case("predict-zero-byte", ("xval", "predict", model, "{W}/z.wav"), "refuse",
             prepare=_write("z.wav", b"")),
        Case("predict-fold-99", ("xval", "predict", model, wav, "--fold", "99"), "refuse"),
        Case("predict-fold-negative", ("xval", "predict", model, wav, "--fold", "-1"),
             "refuse"),
        Case("predict-dataset-info-text", ("xval", "predict", model, wav, "--dataset-info",
                                           "{W}/docs/notes.txt"), "refuse"),
        Case("predict-silent", ("xval", "predict", model, "{W}/s.wav"), "refuse",
             prepare=_signal("s.wav", SILENCE)),
        Case("predict-nan", ("xval", "predict", model, "{W}/n.wav"), "refuse",
             prepare=_signal("n.wav", np.full(4000, np.nan, np.float32), subtype="FLOAT")),
        Case("predict-model-swapped", ("xval", "predict", model, wav), "refuse",
             prepare=lambda r: _flip_byte(r / INSTANCE / "fold_1.keras")),
        Case("predict-keras-missing", ("xval", "predict", model, wav), "refuse",
             prepare=_remove(f"{INSTANCE}/fold_0.keras")),
        Case("predict-model-is-fifo", ("xval", "predict", "{W}/m.keras", wav), "refuse",
             prepare=_fifo("m.keras")),
        Case("predict-dash-file", ("xval", "predict", model, "-x.wav"), "refuse",
             prepare=_all(_signal("project/-x.wav", NOISE)), named=True),
        Case("embed-unknown-layer", ("xval", "embed", model, wav, "--layer", "nope",
                                     "--out", "{W}/e.npy"), "refuse"),
        Case("embed-out-folder", ("xval", "embed", model, wav, "--out", "{W}/docs"),
             "refuse"),
        Case("evaluate-unknown-classes", ("xval", "evaluate", model, "{W}/audio"), "refuse"),
        Case("detect-classifier", ("xval", "detect", model, wav), "refuse"),
        Case("config-undeclared-instance", ("xval", "config", "experiments/probe.py",
                                            "--instance", "99"), "refuse"),
        Case("config-set-twice", ("xval", "config", "experiments/probe.py", "--set",
                                  "epochs=2", "--set", "epochs=5"), "refuse", named=True),
        Case("config-missing-script", ("xval", "config", "nope.py"), "refuse"),
        Case("config-script-raises", ("xval", "config", "{W}/bad.py"), "refuse",
             prepare=_write("bad.py", "raise SystemExit('boom')\n")),
        Case("config-script-syntax", ("xval", "config", "{W}/bad.py"), "refuse",
             prepare=_write("bad.py", "experiment = (\n")),
        Case("xval-no-command", ("xval",), "refuse"),
        Case("config-bom-crlf", ("xval", "config"), "run", named=True,
             prepare=_write("project/config.ini", b"\xef\xbb\xbf[paths]\r\ndata_dir = data"
                                                  b"\r\n")),
        Case("config-percent", ("xval", "config"), "run",
             prepare=_write("project/config.ini", "[paths]\ndata_dir = da%ta\n"),
             check=_out_has("da%ta")),
        Case("config-section-twice", ("xval", "config"), "refuse",
             prepare=_write("project/config.ini", "[paths]\ndata_dir = a\n[paths]\n"
                                                  "results_dir = b\n")),
        Case("config-key-twice", ("xval", "config"), "refuse",
             prepare=_write("project/config.ini", "[training]\nepochs = 2\nepochs = 3\n")),
        Case("config-bool-yes", ("xval", "config"), "run",
             prepare=_write("project/config.ini", "[folds]\nstratify = yes\n")),
        Case("config-utf16", ("xval", "config"), "refuse",
             prepare=_write("project/config.ini", "[paths]\ndata_dir = d\n".encode(
                 "utf-16"))),
        Case("config-binary", ("xval", "config"), "refuse",
             prepare=_write("project/config.ini", os.urandom(64))),
        Case("config-env-unparsable", ("xval", "config"), "refuse", named=True,
             env={"XVAL_CONFIG": "{W}/docs/thesis.docx"}),
        Case("config-env-missing", ("xval", "config"), "refuse",
             env={"XVAL_CONFIG": "{W}/nowhere.ini"}),
        Case("config-backend-absent", ("xval", "predict", model, wav), "refuse",
             env={"KERAS_BACKEND": "theano"}, named=True),
    ]


def _lhotse(rel: str, source: str, start: float = 0.0) -> Prepare:
    """A RecordingSet and a SupervisionSet under `rel` over `{W}/audio/a/spk<i>_0.wav` (as
    `source`, formatted with `i`), the first supervision starting at `start`."""
    def prepare(root: Path) -> None:
        folder = root / rel
        folder.mkdir(parents=True, exist_ok=True)
        recordings, supervisions = [], []
        for i in range(1, 4):
            recordings.append({"id": f"r{i}", "sources": [{
                "type": "file", "channels": [0], "source": source.format(i=i, W=root)}],
                "sampling_rate": 8000, "num_samples": 4000, "duration": 0.5,
                "channel_ids": [0]})
            supervisions.append({"id": f"s{i}", "recording_id": f"r{i}",
                                 "start": start if i == 1 else 0.0, "duration": 0.4,
                                 "channel": 0, "speaker": f"spk{i}",
                                 "language": "en" if i < 3 else "fr"})
        for name, lines in (("recordings.jsonl", recordings), ("sups.jsonl", supervisions)):
            (folder / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return prepare


def _issue45_cases() -> list[Case]:
    """Issue 45: results edited by hand, counts and addresses past what the data allows,
    bad input that was "a bug", the silent and unclear cases (`named`: counted apart)."""
    report = ("xval", "report", "results/demo/experiment_1")
    xlsx = (f"{RESULTS}/*.xlsx",)
    lhotse = ("pre", "lhotse", "{W}/corpus/recordings.jsonl", "{W}/corpus/sups.jsonl",
              "--label-field", "language", "--root", "{W}/corpus", "--out", "lh", "-q")
    return [
        Case("report-metric-edited", report, "run", may_change=xlsx, named=True,
             prepare=_edit_json(f"{INSTANCE}/fold_1.json", lambda d: {
                 **d, "metrics": {**d["metrics"], "test": {
                     **d["metrics"]["test"], "accuracy": 0.999}}}),
             check=_out_has("fold_1.json was edited after it was written")),
        Case("report-params-edited", report, "run", may_change=xlsx, named=True,
             prepare=_edit_json(f"{INSTANCE}/params.json", lambda d: {
                 **d, "task_type": "regression"}),
             check=_out_has("params.json was edited after it was written")),
        Case("export-model-edited", ("xval", "export", "results/demo/experiment_1/instance_1",
                                     "--format", "keras", "--out", "{W}/exported"),
             "refuse", named=True, prepare=lambda r: _flip_byte(r / INSTANCE / "fold_0.keras")),
        Case("compare-one-instance", ("xval", "compare", "results/demo/experiment_1:1",
                                      "--no-workbook"), "refuse", named=True),
        Case("exp-repeats-billion", ("exp", "--set", "num_repeats=1000000000", "--dry-run"),
             "refuse", named=True, timeout=90),
        Case("exp-ray-port-range", ("exp", "--executor", "ray", "--ray-address",
                                    "127.0.0.1:70000", "--dry-run"), "refuse", named=True,
             timeout=60),
        Case("pre-hf-garbage-info", ("pre", "hf", "{W}/hf", "--out", "hf", "-q"), "refuse",
             named=True, prepare=_all(_write("hf/dataset_info.json", "garbage{"),
                                      _write("hf/state.json", "{}"))),
        Case("pre-encoder-unknown", ("pre", "folders", "{W}/audio", "--out", "enc",
                                     "--encoders", "nosuch", "-q"), "refuse", named=True),
        Case("pre-encoder-etc", ("pre", "folders", "{W}/audio", "--out", "enc",
                                 "--encoders", "/etc", "-q"), "refuse", named=True),
        Case("pre-lhotse-outside-root", lhotse, "refuse", named=True,
             prepare=_lhotse("corpus", "../audio/a/spk{i}_0.wav")),
        Case("pre-lhotse-negative-start", lhotse, "refuse", named=True,
             prepare=_lhotse("corpus", "{W}/audio/a/spk{i}_0.wav", start=-0.5)),
    ]


SEARCH_EXPERIMENT = EXPERIMENT.replace("from xval import Experiment", "import numpy as np\n"
                                       "from xval import Categorical, Experiment, Float, "
                                       "Int, Search").replace(
    "\nif __name__", "experiment.search = Search(base={{'architecture': 'mlp', "
    "'reshaping_type': 'none', 'hidden_units': 8}}, space={space}, n_trials=3)\n"
    "\nif __name__")
"""The sandbox's experiment with a search of `space` (formatted with `dataset`, `space`)."""
PROBE_PORT = 6391
"""The local port where a case starts a web server (a wrong Ray address)."""


def _search(space: str) -> Prepare:
    return _write("project/experiments/probe.py",
                  SEARCH_EXPERIMENT.format(dataset="demo", space=space))


def _web_server(root: Path) -> None:
    """A real HTTP/1 server on `PROBE_PORT` for the case's life (`_stop_server` ends it)."""
    import time  # noqa: PLC0415

    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(PROBE_PORT), "--bind",
                             "127.0.0.1"], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    (root / "server.pid").write_text(str(proc.pid))
    time.sleep(1.5)


def _stop_server(root: Path) -> None:
    import signal  # noqa: PLC0415

    try:
        os.kill(int((root / "server.pid").read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


def _copy(rel: str, to: str) -> Prepare:
    def prepare(root: Path) -> None:
        import shutil  # noqa: PLC0415

        (shutil.copytree if (root / rel).is_dir() else shutil.copy2)(root / rel, root / to)
    return prepare


def _workbook_has(text: str) -> Check:
    def check(root: Path, proc: Any) -> str:
        import openpyxl  # noqa: PLC0415

        book = openpyxl.load_workbook(next((root / RESULTS).glob("*.xlsx")), read_only=True)
        cells = " ".join(str(c) for sheet in book for row in sheet.iter_rows(values_only=True)
                         for c in row if c is not None)
        return "" if text in cells else f"{text!r} not in the workbook"
    return check


def _issue45_more_cases() -> list[Case]:
    """Issue 45's classes beyond its named inputs: each place an edit must be named
    (workbook, compare, a resumed run, a fold model given alone), counts and addresses a
    search or a cluster is given, and the silent and unclear cases in other forms."""
    edit_metric = _edit_json(f"{INSTANCE}/fold_1.json", lambda d: {
        **d, "metrics": {**d["metrics"], "test": {**d["metrics"]["test"], "accuracy": 0.999}}})
    swap = _copy(f"{INSTANCE}/fold_1.keras", f"{INSTANCE}/fold_0.keras")
    model = "results/demo/experiment_1/instance_1"
    dry = ("exp", "--search", "--dry-run")
    rel_lhotse = ("pre", "lhotse", "{W}/audio/recordings.jsonl", "{W}/audio/sups.jsonl",
                  "--label-field", "language", "--out", "lh", "-q")
    return [
        Case("report-workbook-names-edit", ("xval", "report", "results/demo/experiment_1"),
             "run", may_change=(f"{RESULTS}/*.xlsx",), named=True, prepare=edit_metric,
             check=_workbook_has("fold_1.json was edited after it was written")),
        Case("compare-metric-edited", ("xval", "compare", "results/demo/experiment_1:1",
                                       "results/demo/experiment_2:1", "--no-workbook"),
             "run", named=True, prepare=_all(
                 _copy(RESULTS, "project/results/demo/experiment_2"), edit_metric),
             check=_out_has("fold 1 left out: fold_1.json was edited")),
        Case("exp-resume-metric-edited", ("exp",), "run", named=True, prepare=edit_metric,
             may_change=(f"{INSTANCE}/*", *DERIVED),
             check=_out_has("fold_1.json was edited after it was written")),
        Case("exp-resume-params-edited", ("exp", "-q"), "refuse", named=True,
             prepare=_all(_remove(f"{INSTANCE}/fold_1.json"), _edit_json(
                 f"{INSTANCE}/params.json", lambda d: {**d, "task_type": "regression"}))),
        Case("export-fold-model-swapped", ("xval", "export", f"{model}/fold_0.keras",
                                           "--format", "keras", "--out", "{W}/exported"),
             "refuse", named=True, prepare=swap),
        Case("predict-fold-model-swapped", ("xval", "predict", f"{model}/fold_0.keras",
                                            "{W}/audio/a/spk1_0.wav"), "refuse", named=True,
             prepare=swap),
        Case("predict-etc-passwd", ("xval", "predict", model, "/etc/passwd"), "refuse",
             named=True),
        Case("exp-ray-web-server", ("exp", "--executor", "ray", "--ray-address",
                                    f"127.0.0.1:{PROBE_PORT}"), "refuse", named=True,
             prepare=_web_server, cleanup=_stop_server, timeout=120),
        Case("exp-search-trials-billion", (*dry, "--trials", "1000000000"), "refuse",
             named=True, prepare=_search("{'learning_rate': Float(1e-4, 1e-2, log=True)}"),
             timeout=90),
        Case("exp-search-dry-run-trials", (*dry, "--trials", "7"), "run", named=True,
             prepare=_search("{'learning_rate': Float(1e-4, 1e-2, log=True)}"),
             check=_out_has("Search: 7 trial(s)")),
        Case("exp-search-when-never", dry, "refuse", named=True,
             prepare=_search("{'num_layers': Int(1, 2, when={'architecture': 'mlpp'})}")),
        Case("exp-class-weights-numpy", ("exp", "--dry-run", "--overwrite"), "run",
             named=True, check=_out_has("class_weights = True"),
             prepare=_write("project/experiments/probe.py", EXPERIMENT.format(
                 dataset="demo").replace("from xval import Experiment",
                                         "import numpy as np\nfrom xval import Experiment")
                 .replace('"hidden_units": 8}', '"hidden_units": 8, '
                          '"class_weights": np.True_}'))),
        Case("pre-lhotse-relative-no-root", rel_lhotse, "refuse", named=True,
             prepare=_lhotse("audio", "a/spk{i}_0.wav")),
        Case("pre-lhotse-relative-root", (*rel_lhotse[:-3], "--root", "{W}/audio",
                                          "--out", "lh", "-q"), "run", named=True,
             prepare=_lhotse("audio", "a/spk{i}_0.wav"), check=_exists("project/data/lh")),
        Case("pre-segment-hours", ("pre", "folders", "{W}/audio", "--out", "seg",
                                   "--segment-seconds", "3600", "-q"), "refuse",
             named=True, timeout=120),
    ]


# == Issue 59 (helper rel2): corpus files as their tools write them, pipes that hang,
# messages that name the real cause. Every case of the issue but the `.keras` zip bomb
# (issue 54's block). ==========================================================================

AUDIO_FILES = [f"{c}/spk{i}_{k}.wav" for c in "abc" for i in (1, 2, 3) for k in (0, 1)]
"""The sandbox's 18 tones, relative to `{W}/audio`."""


def _kaldi_dir(rel: str, entry: Callable[[Path, str], str] = lambda root, f: str(
        root / "audio" / f), *, extra: str = "", bom: bool = False, crlf: bool = False,
               encoding: str = "utf-8") -> Prepare:
    """A Kaldi data directory under `rel` over the 18 tones: wav.scp (`entry(root, file)`
    per recording, then the `extra` lines), utt2spk (the speakers) and utt2lang (the
    classes), written with CRLF line ends or another encoding, and wav.scp alone with a
    byte-order mark (as the issue's: its first utterance was lost)."""
    def prepare(root: Path) -> None:
        folder = root / rel
        folder.mkdir(parents=True, exist_ok=True)
        ids = [f.replace("/", "_")[:-4] for f in AUDIO_FILES]
        extra_ids = [line.split()[0] for line in extra.splitlines() if line.strip()]
        tables = {
            "wav.scp": [f"{i} {entry(root, f)}" for i, f in zip(ids, AUDIO_FILES)]
            + extra.splitlines(),
            "utt2spk": [f"{i} {f.split('/')[1][:4]}" for i, f in zip(ids, AUDIO_FILES)]
            + [f"{i} spk1" for i in extra_ids],
            "utt2lang": [f"{i} {f[0]}" for i, f in zip(ids, AUDIO_FILES)]
            + [f"{i} a" for i in extra_ids]}
        end = "\r\n" if crlf else "\n"
        for name, lines in tables.items():
            mark = "\ufeff" if bom and name == "wav.scp" else ""
            text = mark + "".join(line + end for line in lines)
            (folder / name).write_bytes(text.encode(encoding))
    return prepare


def _edit_first_line(rel: str, **changes: Any) -> Prepare:
    """Changes fields of the first JSON line of a manifest (NaN written as JSON's NaN)."""
    def prepare(root: Path) -> None:
        path = root / rel
        lines = path.read_text().splitlines()
        lines[0] = json.dumps({**json.loads(lines[0]), **changes})
        path.write_text("\n".join(lines) + "\n")
    return prepare


def _mount_full(rel: str) -> Prepare:
    """A real 64 KiB file system (tmpfs) at `rel`: a write past it fails with ENOSPC."""
    def prepare(root: Path) -> None:
        (root / rel).mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(root / rel)],
                       check=True, capture_output=True)
    return prepare


def _umount(rel: str) -> Prepare:
    def cleanup(root: Path) -> None:
        subprocess.run(["umount", str(root / rel)], check=False, capture_output=True)
    return cleanup


def _append(rel: str, text: str) -> Prepare:
    def prepare(root: Path) -> None:
        with open(root / rel, "a") as f:
            f.write(text)
    return prepare


def _resealed_metric(root: Path) -> None:
    """fold_1.json's test accuracy edited to 0.999 and sealed again, as a hand that knows
    the seal would (`xval.core.hashing.seal`): the seal's documented limit."""
    from xval.core.hashing import seal  # noqa: PLC0415  (the project's own rule)

    path = root / INSTANCE / "fold_1.json"
    data = json.loads(path.read_text())
    data["metrics"]["test"]["accuracy"] = 0.999
    path.write_text(json.dumps(seal(data)))


def _out_all(*texts: str, absent: str = "") -> Check:
    def check(root: Path, proc: Any) -> str:
        missing = [t for t in texts if t not in proc.stdout]
        if missing:
            return f"{missing[0]!r} not in the output"
        return f"{absent!r} in the output" if absent and absent in proc.stdout else ""
    return check


def _issue59_cases() -> list[Case]:
    kaldi = ("pre", "kaldi", "{W}/kaldi", "--label-file", "utt2lang", "--out", "kd", "-q",
             "--no-progress")
    piped = (*kaldi, "--run-wav-scp-commands")
    cat = lambda root, f: f"cat {root / 'audio' / f} |"  # noqa: E731
    lhotse = ("pre", "lhotse", "{W}/corpus/recordings.jsonl", "{W}/corpus/sups.jsonl",
              "--label-field", "language", "--out", "lh", "-q")
    all_18 = _out_all("18 rows from 18 utterances", absent="Skipped")
    diverging = EXPERIMENT.format(dataset="demo").replace(
        "\nif __name__", "experiment[2] = {'architecture': 'mlp', 'reshaping_type': 'none', "
        "'comment_1': 'a', 'comment_2': 'b', 'hidden_units': 8, 'learning_rate': 1e6, "
        "'optimizer': 'sgd', 'save_model_metric': 'val_accuracy'}\n\nif __name__")
    return [
        # 1. commands that hang, fail, or write no audio
        Case("pre-kaldi-pipe-hang", piped, "refuse", named=True, timeout=200,
             prepare=_kaldi_dir("kaldi", cat, extra="hang sleep 100000 |"),
             says=("recording 'hang'", "ran past the time limit of 60 s",
                   "--command-timeout")),
        Case("pre-kaldi-pipe-hang-limit", (*piped, "--command-timeout", "2"), "refuse",
             named=True, prepare=_kaldi_dir("kaldi", cat, extra="hang sleep 100000 |"),
             says=("recording 'hang'", "time limit of 2 s")),
        Case("init-kaldi-pipe-hang", ("xval", "init", "{W}/kaldi", "--corpus", "kaldi",
                                      "--label-file", "utt2lang", "--run-wav-scp-commands",
                                      "--command-timeout", "2", "--no-progress"), "refuse",
             named=True, prepare=_kaldi_dir("kaldi", cat, extra="hang sleep 100000 |"),
             may_change=("project/*",), says=("recording 'hang'", "time limit of 2 s")),
        Case("pre-kaldi-pipe-fails", piped, "run", named=True,
             prepare=_kaldi_dir("kaldi", cat, extra="bad false |"),
             check=_out_all("18 rows from 18 utterances", "Skipped 1 of the utterances")),
        Case("pre-kaldi-pipe-no-audio", piped, "refuse", named=True,
             prepare=_kaldi_dir("kaldi", lambda root, f: "true |"), says=("wrote no audio",)),
        Case("pre-kaldi-pipe-text", piped, "refuse", named=True,
             prepare=_kaldi_dir("kaldi", lambda root, f: f"echo {f} |"),
             says=("are not audio",)),
        Case("pre-kaldi-timeout-0", (*piped, "--command-timeout", "0"), "refuse", named=True,
             prepare=_kaldi_dir("kaldi", cat), says=("--command-timeout",)),
        Case("pre-kaldi-timeout-without-run", (*kaldi, "--command-timeout", "5"), "refuse",
             named=True, prepare=_kaldi_dir("kaldi"), says=("--run-wav-scp-commands",)),
        # 2. corpus files as their tools write them
        Case("pre-kaldi-bom", kaldi, "run", named=True, prepare=_kaldi_dir("kaldi", bom=True),
             check=all_18),
        Case("pre-kaldi-crlf", kaldi, "run", named=True,
             prepare=_kaldi_dir("kaldi", crlf=True), check=all_18),
        Case("pre-kaldi-bom-crlf-piped", piped, "run", named=True,
             prepare=_kaldi_dir("kaldi", cat, bom=True, crlf=True), check=all_18),
        Case("pre-kaldi-utf16", kaldi, "refuse", named=True,
             prepare=_kaldi_dir("kaldi", encoding="utf-16"), says=("UTF-16",)),
        Case("pre-kaldi-empty-wav-scp", kaldi, "refuse", named=True,
             prepare=_all(_kaldi_dir("kaldi"), _write("kaldi/wav.scp", "")),
             says=("wav.scp is empty",)),
        Case("pre-lhotse-empty-manifest", lhotse, "refuse", named=True,
             prepare=_all(_lhotse("corpus", "{W}/audio/a/spk{i}_0.wav"),
                          _write("corpus/sups.jsonl", "")), says=("is empty",)),
        Case("pre-lhotse-bad-line", lhotse, "refuse", named=True,
             prepare=_all(_lhotse("corpus", "{W}/audio/a/spk{i}_0.wav"),
                          _append("corpus/sups.jsonl", "{garbage\n")),
             says=("line 4 is not JSON",)),
        Case("pre-lhotse-rate-0", lhotse, "refuse", named=True,
             prepare=_all(_lhotse("corpus", "{W}/audio/a/spk{i}_0.wav"),
                          _edit_first_line("corpus/recordings.jsonl", sampling_rate=0)),
             says=("Recording 'r1'", "sampling_rate 0")),
        Case("pre-lhotse-negative-duration", lhotse, "refuse", named=True,
             prepare=_all(_lhotse("corpus", "{W}/audio/a/spk{i}_0.wav"),
                          _edit_first_line("corpus/recordings.jsonl", duration=-1.0)),
             says=("Recording 'r1'", "duration -1")),
        Case("pre-lhotse-nan-start", lhotse, "refuse", named=True,
             prepare=_all(_lhotse("corpus", "{W}/audio/a/spk{i}_0.wav"),
                          _edit_first_line("corpus/sups.jsonl", start=float("nan"))),
             says=("Supervision 's1'", "start nan")),
        Case("pre-hf-empty-info", ("pre", "hf", "{W}/hf", "--out", "hf", "-q"), "refuse",
             named=True, prepare=_all(_write("hf/dataset_info.json", ""),
                                      _write("hf/state.json", "{}")),
             says=("dataset_info.json is empty",)),
        # 3. messages that name the real cause
        Case("export-out-full-disk", ("xval", "export", "results/demo/experiment_1/instance_1",
                                      "--format", "keras", "--out", "{W}/full/exported"),
             "refuse", named=True, prepare=_mount_full("full"),
             cleanup=_umount("full"),
             says=("full/exported", "No space left on device", "--out")),
        Case("config-inline-comment", ("exp", "--dry-run"), "run", named=True,
             prepare=_write("project/config.ini", "[paths]\ndata_dir = data ; my data\n"
                                                  "results_dir = results  # mine\n"),
             check=_out_has("Dry run")),
        Case("exp-quiet-failed-instance", ("exp", "-q", "2", "2"), "refuse", named=True,
             prepare=_write("project/experiments/probe.py", diverging),
             may_change=DERIVED, says=("instance(s) failed: [2]", "instance 2: ")),
        Case("exp-set-list-3000-deep", ("exp", "--dry-run", "--set",
                                        "hidden_units=" + "[" * 3000 + "]" * 3000),
             "refuse", named=True, says=("a list nested 3000 levels deep",)),
        Case("exp-set-list-150-deep", ("exp", "--dry-run", "--set",
                                       "hidden_units=" + "[" * 150 + "]" * 150),
             "refuse", named=True, says=("is a list",)),
        # The seal's documented limit (docs/reliability.md): a record edited and sealed
        # again by a hand that knows the seal is believed on resume; it runs.
        Case("exp-resume-metric-resealed", ("exp", "-q"), "run", named=True,
             prepare=_resealed_metric, may_change=(f"{INSTANCE}/*", *DERIVED)),
    ]


# -- issue 54, helper rel1: begin ----------------------------------------------------------
# Packages missing as on the runtime install (`make install`), seals removed, culprits, long
# recordings and `.keras` archives. A package is "missing" through a `sitecustomize.py` in
# the case's copy that sets `sys.modules[name] = None` (the import fails as it would).

ROOT = Path(__file__).resolve().parent.parent


def _without(*modules: str) -> tuple[Prepare, dict[str, str]]:
    """A prepare that writes the blocker, and the environment that loads it."""
    code = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return _write("blocker/sitecustomize.py", code), \
        {"PYTHONPATH": f"{{W}}/blocker{os.pathsep}{ROOT}"}


def _unseal(rel: str, change: Callable[[Any], Any] = lambda d: d) -> Prepare:
    def without_seal(data: Any) -> Any:
        data = change(data)
        data.pop("content_sha256", None)
        return data
    return _edit_json(rel, without_seal)


def _reseal(rel: str, change: Callable[[Any], Any]) -> Prepare:
    """An edit sealed again (a record that is consistent, but not what this folder ran)."""
    def sealed(data: Any) -> Any:
        from xval.core.hashing import seal  # noqa: PLC0415  (the project: run from its root)

        return seal(change(data))
    return _edit_json(rel, sealed)


def _keras_with(rel: str, members: dict[str, bytes | int]) -> Prepare:
    """A `.keras` archive of the sandbox's fold 0 model plus `members` (bytes, or a number
    of zero MiB written deflated: a zip bomb)."""
    def prepare(root: Path) -> None:
        import zipfile  # noqa: PLC0415

        with zipfile.ZipFile(root / INSTANCE / "fold_0.keras") as good, \
                zipfile.ZipFile(root / rel, "w", zipfile.ZIP_DEFLATED) as bad:
            for member in good.infolist():
                bad.writestr(member, good.read(member))
            for name, data in members.items():
                if isinstance(data, int):
                    with bad.open(name, "w", force_zip64=True) as f:
                        for _ in range(data):
                            f.write(bytes(1 << 20))
                else:
                    bad.writestr(name, data)
    return prepare


def _long_wav(rel: str, seconds: float) -> Prepare:
    def prepare(root: Path) -> None:
        t = np.arange(int(8000 * seconds)) / 8000
        write_signal(root / rel, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    return prepare


def _loop(rel_a: str, rel_b: str) -> Prepare:
    def prepare(root: Path) -> None:
        os.symlink(root / rel_b, root / rel_a)
        os.symlink(root / rel_a, root / rel_b)
    return prepare


def _issue54_cases() -> list[Case]:
    """Issue 54: every task on the default install or refused before training, seals that
    mean what they say, the right culprit, long recordings, `.keras` archives."""
    model = "results/demo/experiment_1/instance_1"
    wav = "{W}/audio/a/spk1_0.wav"
    report = ("xval", "report", "results/demo/experiment_1")
    xlsx = (f"{RESULTS}/*.xlsx",)
    no_hf, no_hf_env = _without("transformers", "huggingface_hub")
    no_extras, no_extras_env = _without("optuna", "ray", "mlflow")
    no_mlflow, no_mlflow_env = _without("mlflow")
    other_params = _reseal(f"{INSTANCE}/fold_0.json", lambda d: {**d, "params_hash": "0" * 64})
    return [
        Case("pre-encoder-unknown-runtime-install", ("pre", "folders", "{W}/audio", "--out",
                                                     "enc", "--encoders", "nosuch"), "refuse",
             named=True, prepare=no_hf, env=no_hf_env),
        Case("pre-encoder-etc-runtime-install", ("pre", "folders", "{W}/audio", "--out", "enc",
                                                 "--encoders", "/etc"), "refuse", named=True,
             prepare=no_hf, env=no_hf_env),
        Case("exp-dry-run-missing-packages", ("exp", "--dry-run", "--search", "--executor",
                                              "ray", "--mlflow", "{W}/runs"), "refuse",
             named=True, prepare=_all(no_extras, _search(
                 "{'learning_rate': Float(1e-4, 1e-2, log=True)}")), env=no_extras_env),
        Case("exp-mlflow-missing", ("exp", "--mlflow", "{W}/runs"), "refuse",
             named=True, prepare=no_mlflow, env=no_mlflow_env),
        Case("report-seal-removed", report, "run", may_change=xlsx, named=True,
             prepare=_unseal(f"{INSTANCE}/fold_1.json", lambda d: {
                 **d, "metrics": {**d["metrics"], "test": {**d["metrics"]["test"],
                                                           "accuracy": 0.999}}}),
             check=_out_has("fold_1.json lost its content_sha256")),
        Case("compare-seal-removed", ("xval", "compare", "results/demo/experiment_1:1",
                                      "results/demo/experiment_2:1", "--no-workbook"), "run",
             named=True, prepare=_all(_copy(RESULTS, "project/results/demo/experiment_2"),
                                      _unseal(f"{INSTANCE}/fold_1.json")),
             check=_out_has("fold 1 left out: fold_1.json lost its content_sha256")),
        Case("exp-resume-params-seal-removed", ("exp", "-q"), "refuse", named=True,
             prepare=_all(_remove(f"{INSTANCE}/fold_1.json"),
                          _unseal(f"{INSTANCE}/params.json"))),
        Case("predict-foreign-fold", ("xval", "predict", model, wav), "refuse", named=True,
             prepare=other_params),
        Case("export-foreign-fold", ("xval", "export", model, "--format", "keras", "--out",
                                     "{W}/exported"), "refuse", named=True,
             prepare=other_params),
        Case("report-orphaned-model", report, "run", may_change=xlsx, named=True,
             prepare=_remove(f"{INSTANCE}/fold_1.json"),
             check=_out_has("fold_1.keras has no fold record beside it")),
        Case("predict-orphaned-model", ("xval", "predict", model, wav), "refuse", named=True,
             prepare=_remove(f"{INSTANCE}/fold_1.json")),
        Case("predict-one-sample", ("xval", "predict", model, "{W}/one.wav"), "refuse",
             named=True, prepare=_signal("one.wav", np.array([0.5], np.float32))),
        Case("pre-symlink-loop", ("pre", "folders", "{W}/audio", "--out", "loop"), "run",
             named=True, prepare=_loop("audio/a/x.wav", "audio/a/y.wav"),
             check=_out_has("a loop of symbolic links")),
        Case("predict-symlink-loop", ("xval", "predict", model, "{W}/x.wav"), "refuse",
             named=True, prepare=_loop("x.wav", "y.wav")),
        Case("predict-keras-zip-slip", ("xval", "predict", "{W}/slip.keras", wav), "refuse",
             named=True, prepare=_keras_with("slip.keras", {"assets/../../evil.txt": b"x"})),
        Case("predict-keras-zip-bomb", ("xval", "predict", "{W}/bomb.keras", wav), "refuse",
             named=True, prepare=_keras_with("bomb.keras", {"assets/zeros.bin": 80})),
        Case("predict-long-recording", ("xval", "predict", model, "{W}/long.wav", "--format",
                                        "csv"), "run", named=True,
             prepare=_long_wav("long.wav", 150.0), check=lambda r, p: _csv_rows(p, 1),
             timeout=300),
    ]
# -- issue 54, helper rel1: end ------------------------------------------------------------


# -- issue 64 (points 1 and 6), helper select: ensembles ------------------------------------
ENSEMBLED = "project/results/demo/experiment_2"
ENSEMBLE_SCRIPT = EXPERIMENT.replace("number=1", "number=2").replace(
    "\n\nif __name__", '''
experiment[2] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "c",
                 "comment_2": "d", "hidden_units": 4}}

if __name__''', 1)
"""The sandbox's experiment as experiment 2, with a second instance to fuse."""


def _members(*then: Sequence[str]) -> Prepare:
    """Trains the two members of experiment 2, then runs each command of `then` (argument
    vectors of this Python, in the project)."""
    def prepare(root: Path) -> None:
        script = root / "project" / "experiments" / "ensemble.py"
        script.write_text(ENSEMBLE_SCRIPT.format(dataset="demo"))
        for argv in (("experiments/ensemble.py", "-q"), *then):
            _run_in(root, *argv)
    return prepare


def _true_class_sure(rel: str) -> Prepare:
    """Every row's true class set to 0.98 in a predictions file: an edit by hand."""
    def prepare(root: Path) -> None:
        path = root / rel
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        columns = [c for c in rows[0] if c.startswith("p_")]
        for row in rows:
            for k, column in enumerate(columns):
                row[column] = "0.98" if str(k) == row["target"] else \
                    f"{0.02 / (len(columns) - 1):.6f}"
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(out.getvalue())
    return prepare


def _issue64_ensemble_cases() -> list[Case]:
    """Issue 64, points 1 and 6: an ensemble of a member's predictions edited by hand, and
    one made from a member trained again since (with the same parameters)."""
    ensemble = ("xval", "ensemble", "results/demo/experiment_2", "1", "2")
    made = ("-m", "xval", "ensemble", "results/demo/experiment_2", "1", "2", "--as", "3")
    retrained = _members(made, ("experiments/ensemble.py", "2", "2", "--overwrite", "-q"))
    wav = "{W}/audio/a/spk1_0.wav"
    return [
        Case("ensemble-predictions-edited", ensemble, "refuse", named=True, timeout=240,
             prepare=_all(_members(), _true_class_sure(
                 f"{ENSEMBLED}/instance_1/predictions_fold_0.csv")),
             says=("predictions_fold_0.csv was changed after fold 0 wrote it",)),
        Case("ensemble-val-predictions-edited", ensemble, "refuse", named=True, timeout=240,
             prepare=_all(_members(), _true_class_sure(
                 f"{ENSEMBLED}/instance_2/val_predictions_fold_1.csv")),
             says=("val_predictions_fold_1.csv was changed after fold 1 wrote it",)),
        Case("predict-ensemble-member-retrained", ("xval", "predict",
                                                   "results/demo/experiment_2/instance_3", wav),
             "refuse", named=True, timeout=300, prepare=retrained,
             says=("was trained again since the ensemble was made from it",)),
        Case("export-ensemble-member-retrained", ("xval", "export",
                                                  "results/demo/experiment_2/instance_3",
                                                  "--format", "keras", "--out", "{W}/exported"),
             "refuse", named=True, timeout=300, prepare=retrained,
             says=("was trained again since the ensemble was made from it",)),
        Case("report-ensemble-member-retrained", ("xval", "report", "results/demo/experiment_2"),
             "run", named=True, timeout=300, prepare=retrained,
             may_change=(f"{ENSEMBLED}/*.xlsx", f"{ENSEMBLED}/*/summary.json",
                         f"{ENSEMBLED}/*/plots/*"),
             check=_out_has("Instance(s) 2 were trained again since (instance 2: other models "
                            "in fold(s) 0, 1)")),
    ]
# -- issue 64 (points 1 and 6), helper select: end ------------------------------------------


CASES: list[Case] = [*_init_cases(), *_preprocessing_cases(), *_augment_cases(),
                     *_experiment_cases(), *_report_cases(), *_model_cases(),
                     *_issue45_cases(), *_issue45_more_cases(), *_issue59_cases(),
                     *_issue54_cases(), *_issue64_ensemble_cases()]
