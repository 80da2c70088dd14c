"""The hostile inputs `tests/test_hostile_cases.py` runs: the sandbox they run in and what
each one tries.

Each case is an odd, wrong or dangerous input to a command line, found by the hostile probe
of issue 37 (its code: `git show 4619a5e:benchmarks/hostile_probe.py`): those whose
behaviour no other test asserts. (The cases later issues named each came with a test of
their own: docs/results.md, "Probes of hostile inputs", names it.) A case's command starts
with `xval` (`python -m xval`), `pre` (`python -m preprocessing`), `aug` (`python -m
augmentation`) or `exp` (the sandbox's experiment script `experiments/probe.py`); `{W}` is
the case's own copy of the sandbox:

    {W}/project/config.ini            [paths] data_dir = data, results_dir = results
    {W}/project/data/demo/            a store of the audio below, named demo
    {W}/project/experiments/probe.py  2 folds, 1 epoch, a small MLP, on that store
    {W}/project/results/demo/experiment_1/instance_1/   its results (fold models)
    {W}/audio/{a,b,c}/spk<i>_<k>.wav  24 tones, three classes, four speakers
    {W}/docs/                         the user's own documents

Commands run in `{W}/project`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

Prepare = Callable[[Path], None]
Check = Callable[[Path, Any], str]

ITEMS = r"(?P<item>spk\d)"
RESULTS = "project/results/demo/experiment_1"
INSTANCE = f"{RESULTS}/instance_1"
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
    """One hostile input.

    Attributes:
        name: a unique name, prefixed by the command it aims at.
        argv: the command (see the module docstring).
        expect: `"refuse"` (the input is wrong) or `"run"` (it is valid).
        prepare: changes the sandbox copy before the command runs.
        check: for a run that exits 0, why its output is wrong (`""`: it is right).
        may_change: globs (relative to the sandbox) of files the command may replace.
        env: environment variables to set (`{W}` is formatted).
        cleanup: undoes what `prepare` did outside the sandbox's own files (`chattr`).
    """

    name: str
    argv: Sequence[str]
    expect: str
    prepare: Prepare | None = None
    check: Check | None = None
    may_change: Sequence[str] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    cleanup: Prepare | None = None

    def command(self, root: Path) -> list[str]:
        """`python ARGS` as `tests.conftest.python_here` takes them, placeholders filled
        (`exp`: the sandbox's script, relative to the project)."""
        head, *rest = self.argv
        prefix = {"xval": ["-m", "xval"], "pre": ["-m", "preprocessing"],
                  "aug": ["-m", "augmentation"], "exp": ["experiments/probe.py"]}[head]
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


def build_base(base: Path) -> None:
    """Builds the sandbox every case copies (a store of its audio, named demo, and an
    experiment trained on it), in this process."""
    from tests.conftest import python_here

    project = base / "project"
    (project / "experiments").mkdir(parents=True)
    (project / "config.ini").write_text("[paths]\ndata_dir = data\nresults_dir = results\n")
    (project / "experiments" / "probe.py").write_text(EXPERIMENT.format(dataset="demo"))
    for c, freq in (("a", 300.0), ("b", 700.0), ("c", 1500.0)):
        for i in range(1, 5):
            for k in range(2):
                tone(base / "audio" / c / f"spk{i}_{k}.wav", freq * (1 + 0.03 * i),
                     seed=10 * i + k)
    for argv in (("-m", "preprocessing", "folders", base / "audio", "--item-pattern", ITEMS,
                  "--out", "demo", "--workers", "1", "--no-progress", "-q"),
                 ("experiments/probe.py", "-q")):
        done = python_here(*argv, cwd=project)
        assert done.returncode == 0, done.stderr
    # The run's snapshot of the code (most of the sandbox's files): no case reads it, and
    # every case copies the sandbox and hashes its files twice.
    shutil.rmtree(base / RESULTS / "code")
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


def _edit_json(rel: str, change: Callable[[Any], Any]) -> Prepare:
    def prepare(root: Path) -> None:
        path = root / rel
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return prepare


def _immutable(path: Path, on: bool = True) -> None:
    """`chattr +i` (or `-i`): read-only even for root, who ignores file modes; a user
    other than root gets the folder's write permission taken (or given back)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=False,
                       capture_output=True)
    else:
        path.chmod(0o555 if on else 0o755)


def _signal(rel: str, y: np.ndarray, sr: int = 8000, subtype: str = "PCM_16") -> Prepare:
    def prepare(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, y, sr, subtype=subtype)
    return prepare


def _copy(rel: str, to: str) -> Prepare:
    def prepare(root: Path) -> None:
        shutil.copytree(root / rel, root / to)
    return prepare


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


NOISE = (0.3 * np.random.default_rng(0).normal(size=8000)).astype(np.float32)


# -- the cases -----------------------------------------------------------------------------


def _init_cases() -> list[Case]:
    init = ("xval", "init", "{W}/audio", "--item-pattern", ITEMS, "--encoders", "none",
            "--no-progress")
    return [
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
        Case("init-manifest-is-folder", ("xval", "init", "{W}/audio", "--manifest",
                                         "{W}/docs"), "refuse"),
        Case("init-manifest-no-path-column", ("xval", "init", "{W}/audio", "--manifest",
                                              "{W}/m.csv"), "refuse",
             prepare=_write("m.csv", "file,label\na/spk1_0.wav,a\n")),
        Case("init-project-inside-audio", (*init, "--project", "{W}/audio/proj"), "refuse",
             may_change=()),
        Case("init-twice", init, "refuse",  # the store an earlier init wrote is kept
             prepare=_copy("project/data/demo", "project/data/audio")),
        Case("init-one-speaker", ("xval", "init", "{W}/one"), "refuse",
             prepare=_all(_tones("one/a", 1), _tones("one/b", 1, 900.0))),
        Case("init-label-map-bad", ("xval", "init", "{W}/audio", "--pattern",
                                    r"(?P<label>[abc])/(?P<item>spk\d)", "--label-map",
                                    "x"), "refuse"),
        Case("init-project-readonly", (*init, "--project", "{W}/ro"), "refuse",
             prepare=lambda r: ((r / "ro").mkdir(), _immutable(r / "ro")) and None,
             cleanup=lambda r: _immutable(r / "ro", False)),
    ]


def _preprocessing_cases() -> list[Case]:
    folders = ("pre", "folders", "{W}/audio", "--item-pattern", ITEMS, "--no-progress",
               "-q")
    return [
        Case("pre-out-empty", (*folders, "--out", ""), "refuse"),
        Case("pre-segment-nan", (*folders, "--out", "s", "--segment-seconds", "nan"),
             "refuse"),
        Case("pre-segment-inf", (*folders, "--out", "s", "--segment-seconds", "inf"),
             "refuse"),
        Case("pre-unknown-feature", (*folders, "--out", "s", "--feature", "wavelets"),
             "refuse"),
        Case("pre-unknown-feature-option", (*folders, "--out", "s", "--feature-option",
                                            "foo=1"), "refuse"),
        Case("pre-out-under-file", (*folders, "--out", "{W}/docs/notes.txt/s"), "refuse"),
        Case("pre-out-existing-store", (*folders, "--out", "demo"), "refuse"),
        Case("pre-out-existing-store-overwrite", (*folders, "--out", "demo", "--overwrite",
                                                  "--workers", "1"), "run",
             may_change=("project/data/demo/*",)),
        Case("pre-manifest-bom", ("pre", "manifest", "{W}/m.csv", "--root", "{W}/audio",
                                  "--out", "s", "--item-column", "item", "--workers", "1",
                                  "-q", "--no-progress"), "run",
             prepare=_write("m.csv", "\ufeffpath,label,item\n" + "".join(
                 f"{c}/spk{i}_{k}.wav,{c},spk{i}\n" for c in "abc" for i in (1, 2, 3)
                 for k in (0, 1))), check=_exists("project/data/s/features.npy")),
        Case("pre-regex-catastrophe", ("pre", "regex", "{W}/audio", "--pattern",
                                       r"(?P<label>[abc])/(?P<item>spk\d)_(\d)", "--out",
                                       "s", "--workers", "1", "-q", "--no-progress"), "run"),
        Case("pre-manifest-empty", ("pre", "manifest", "{W}/m.csv", "--out", "s"), "refuse",
             prepare=_write("m.csv", "")),
        Case("pre-manifest-duplicate-rows", ("pre", "manifest", "{W}/m.csv", "--root",
                                             "{W}/audio", "--out", "s"), "refuse",
             prepare=_write("m.csv", "path,label\na/spk1_0.wav,a\na/spk1_0.wav,b\n")),
        Case("pre-manifest-blank-label", ("pre", "manifest", "{W}/m.csv", "--root",
                                          "{W}/audio", "--out", "s"), "refuse",
             prepare=_write("m.csv", "path,label\na/spk1_0.wav,\nb/spk1_0.wav,b\n")),
        Case("pre-report-truncated-meta", ("pre", "report", "data/demo"), "refuse",
             prepare=_write("project/data/demo/meta.csv", "row,item\n0,a\n")),
        Case("pre-demo-data-dir-file", ("pre", "demo", "--data-dir", "{W}/docs/notes.txt"),
             "refuse"),
        Case("pre-synth-events-negative-seconds", ("pre", "synth-events", "{W}/audio/a",
                                                   "--out", "{W}/ev", "--seconds", "-1"),
             "refuse"),
        Case("pre-synth-babble-0-groups", ("pre", "synth-babble", "{W}/audio", "--out",
                                           "{W}/bb", "--groups", "0"), "refuse"),
        Case("pre-detection-bad-annotations", ("pre", "detection", "{W}/audio/a",
                                               "--annotations", "{W}/ann.csv", "--out", "d"),
             "refuse", prepare=_write("ann.csv", "foo,bar\n1,2\n")),
    ]


def _augment_cases() -> list[Case]:
    return [
        Case("aug-n-negative", ("aug", "{W}/audio", "{W}/o", "-1"), "refuse"),
        Case("aug-n-text", ("aug", "{W}/audio", "{W}/o", "abc"), "refuse"),
        Case("aug-in-missing", ("aug", "{W}/nowhere", "{W}/o", "1"), "refuse"),
        Case("aug-out-inside-in", ("aug", "{W}/audio", "{W}/audio/o", "1"), "refuse"),
        Case("aug-out-is-file", ("aug", "{W}/audio", "{W}/docs/notes.txt", "1"), "refuse"),
        Case("aug-twice", ("aug", "{W}/audio", "{W}/docs/../o", "0", "--no-progress"),
             "refuse", prepare=_write("o/a/spk1_0_original.wav", b"x")),
        Case("aug-out-is-in", ("aug", "{W}/audio", "{W}/audio", "1", "--overwrite"),
             "refuse"),
        Case("aug-bad-probability", ("aug", "{W}/audio", "{W}/o", "1", "--gain-p", "2"),
             "refuse"),
    ]


def _experiment_cases() -> list[Case]:
    dry = ("exp", "--dry-run")
    return [
        Case("exp-dry-ok", dry, "run", check=_out_has("Dry run")),
        Case("exp-set-unknown", (*dry, "--set", "unknown=1"), "refuse"),
        Case("exp-set-epochs-float", (*dry, "--set", "epochs=1.5"), "refuse"),
        Case("exp-set-epochs-text", (*dry, "--set", "epochs=abc"), "refuse"),
        Case("exp-set-lr-nan", (*dry, "--set", "learning_rate=nan"), "refuse"),
        Case("exp-set-lr-inf", (*dry, "--set", "learning_rate=float('inf')"), "refuse"),
        Case("exp-set-no-name", (*dry, "--set", "=5"), "refuse"),
        Case("exp-set-no-equals", (*dry, "--set", "epochs"), "refuse"),
        Case("exp-set-code", (*dry, "--set", "optimizer=__import__('os').system('touch "
                                            "{W}/pwned')"), "refuse",
             check=_exists("pwned", want=False)),
        Case("exp-instances-twice", (*dry, "--instances", "1,1"), "refuse"),
        Case("exp-instance-undeclared", (*dry, "--instances", "99"), "refuse"),
        Case("exp-first-after-last", ("exp", "--dry-run", "5", "3"), "refuse"),
        Case("exp-gpus-twice", (*dry, "--executor", "process", "--gpus", "0,0"), "refuse"),
        Case("exp-config-folder", (*dry, "--config", "{W}/docs"), "refuse"),
        Case("exp-results-dir-file", dry, "refuse",
             prepare=_write("project/config.ini", "[paths]\ndata_dir = data\n"
                                                  "results_dir = ../docs/notes.txt\n")),
        Case("exp-instance-code", dry, "refuse",
             prepare=_write("project/experiments/probe.py", EXPERIMENT.format(
                 dataset="demo").replace("\nif __name__", "experiment[2] = ['epochs=__import"
                                         "__(\"os\").getpid()', 'architecture=\"mlp\"']"
                                         "\n\nif __name__"))),
        Case("exp-lr-string", (*dry, "--set", "learning_rate='fast'"), "refuse"),
        Case("exp-params-json-list", ("exp", "-q"), "refuse",
             prepare=_write(f"{INSTANCE}/params.json", "[]")),
        Case("exp-quiet-verbose", ("exp", "-q", "-v"), "refuse"),
        Case("exp-lock-is-folder", ("exp", "-q", "--overwrite"), "refuse",
             prepare=lambda r: _lock_folders(r / RESULTS / ".locks")),
    ]


def _lock_folders(locks: Path) -> None:
    """Folders where the lock files of the experiment and instance 1 belong."""
    locks.mkdir(exist_ok=True)
    for name in ("instance_1.lock", "experiment.lock"):
        if (locks / name).is_file():
            (locks / name).unlink()
        (locks / name).mkdir(exist_ok=True)


def _report_cases() -> list[Case]:
    report = ("xval", "report", "results/demo/experiment_1")
    xlsx = (f"{RESULTS}/*.xlsx",)
    return [
        Case("report-ok", report, "run", may_change=xlsx, check=_out_has("instance")),
        Case("report-missing", ("xval", "report", "results/nope"), "refuse"),
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
    ]


def _model_cases() -> list[Case]:
    model = "results/demo/experiment_1/instance_1"
    wav = "{W}/audio/a/spk1_0.wav"
    return [
        Case("predict-ok", ("xval", "predict", model, wav, "--format", "csv"), "run",
             check=lambda r, p: _csv_rows(p, 1)),
        Case("predict-model-missing", ("xval", "predict", "nope.keras", wav), "refuse"),
        Case("predict-audio-folder", ("xval", "predict", model, "{W}/audio"), "refuse"),
        Case("predict-text-as-wav", ("xval", "predict", model, "{W}/t.wav"), "refuse",
             prepare=_write("t.wav", "hello")),
        Case("predict-zero-byte", ("xval", "predict", model, "{W}/z.wav"), "refuse",
             prepare=_write("z.wav", b"")),
        Case("predict-dataset-info-text", ("xval", "predict", model, wav, "--dataset-info",
                                           "{W}/docs/notes.txt"), "refuse"),
        Case("predict-keras-missing", ("xval", "predict", model, wav), "refuse",
             prepare=_remove(f"{INSTANCE}/fold_0.keras")),
        Case("embed-unknown-layer", ("xval", "embed", model, wav, "--layer", "nope",
                                     "--out", "{W}/e.npy"), "refuse"),
        Case("config-undeclared-instance", ("xval", "config", "experiments/probe.py",
                                            "--instance", "99"), "refuse"),
        Case("config-missing-script", ("xval", "config", "nope.py"), "refuse"),
        Case("config-script-syntax", ("xval", "config", "{W}/bad.py"), "refuse",
             prepare=_write("bad.py", "experiment = (\n")),
        Case("xval-no-command", ("xval",), "refuse"),
        Case("config-percent", ("xval", "config"), "run",
             prepare=_write("project/config.ini", "[paths]\ndata_dir = da%ta\n"),
             check=_out_has("da%ta")),
        Case("config-section-twice", ("xval", "config"), "refuse",
             prepare=_write("project/config.ini", "[paths]\ndata_dir = a\n[paths]\n"
                                                  "results_dir = b\n")),
        Case("config-bool-yes", ("xval", "config"), "run",
             prepare=_write("project/config.ini", "[folds]\nstratify = yes\n")),
        Case("config-binary", ("xval", "config"), "refuse",
             prepare=_write("project/config.ini", os.urandom(64))),
        Case("config-env-missing", ("xval", "config"), "refuse",
             env={"XVAL_CONFIG": "{W}/nowhere.ini"}),
    ]


def _odd_files_cases() -> list[Case]:
    """Odd files among a store's audio (the probe ran them through `init`, which builds its
    store the same way): each unreadable one is skipped and said, the others read."""
    folders = ("pre", "folders", "{W}/audio", "--item-pattern", ITEMS, "--workers", "1",
               "--no-progress", "--out", "s")
    built = _exists("project/data/s/features.npy")

    def skipped(root: Path, proc: Any) -> str:
        return built(root, proc) or _out_has("skipped")(root, proc)

    return [
        Case("pre-zero-byte-wav", folders, "run", prepare=_write("audio/a/spk1_9.wav", b""),
             check=skipped),
        Case("pre-nan-wav", folders, "run", check=skipped,
             prepare=_signal("audio/a/spk1_8.wav", np.full(4000, np.nan, np.float32),
                             subtype="FLOAT")),
        Case("pre-ten-samples", folders, "run", check=skipped,
             prepare=_signal("audio/a/spk1_7.wav", NOISE[:10])),
        Case("pre-garbage-wav", folders, "run", check=skipped,
             prepare=_write("audio/c/spk1_7.wav", b"RIFF\x00\x00garbage" * 10)),
        Case("pre-mixed-rates-stereo", folders, "run", check=built,
             prepare=_signal("audio/a/spk2_5.wav", np.stack([NOISE, NOISE], 1), sr=48000)),
        Case("pre-uppercase-extension", folders, "run", check=built,
             prepare=_signal("audio/b/spk3_5.WAV", NOISE)),
        Case("pre-hidden-file", folders, "run", check=built,
             prepare=_write("audio/a/.DS_Store", b"\x00\x01garbage")),
        Case("pre-unicode-classes", ("pre", "folders", "{W}/uni", "--item-pattern", ITEMS,
                                     "--workers", "1", "--no-progress", "--out", "s"), "run",
             check=built, prepare=_all(_tones("uni/é a", 6), _tones("uni/日本", 6, 900.0),
                                       _tones("uni/c,d", 6, 1500.0))),
    ]


CASES: list[Case] = [*_init_cases(), *_preprocessing_cases(), *_augment_cases(),
                     *_experiment_cases(), *_report_cases(), *_model_cases(),
                     *_odd_files_cases()]
