"""The hostile probe's cases of issue 74 ("Reliability (4)"), its points 2-11 and 13-17
(`named`, counted apart; `python -m benchmarks.hostile_probe --only NAME` runs one). Each is a
case the issue's probe found silent, unclear or a traceback; what each answers now is in
docs/reliability.md. The last cases are the probe of issue 75's features (`init --encoders`,
`union_mix` in `[training]`, `benchmarks.gpu`'s numbers), found the same way.

Annotated recordings are a `synth-scenes` folder (`{W}/scenes`: four 6 s recordings at
8 kHz, one per background, `items.csv` grouping them); a transformers model is the tiny
WavLM of `benchmarks.probe_cases_64` (random weights: nothing downloaded), made wrong one way.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.probe_cases import (
    DERIVED,
    EXPERIMENT,
    NOISE,
    Case,
    Prepare,
    _all,
    _fifo,
    _members,
    _out_has,
    _run_in,
    _signal,
    _write,
)
from benchmarks.probe_cases_64 import _model, _python_call

__all__ = ["CASES"]

ITEMS = r"(?P<item>spk\d)"
ENSEMBLE = "project/results/demo/experiment_2/instance_3"
SCENES = ("xval", "init", "{W}/scenes", "--annotations")


def _scenes(root: Path) -> None:
    """`{W}/scenes`: annotated recordings (`annotations.csv`, `events.csv`, `items.csv`)."""
    from preprocessing.synth_scenes import synth_scenes  # noqa: PLC0415  (the library)

    synth_scenes(root / "scenes", files_per_type=1, seconds=6.0, events_min=2, events_max=3,
                 sample_rate=8000, types=["rain", "wind", "fire", "machine"], seed=5)


def _events_csv(rel: str, *, seconds: bool = False, blank_label: bool = False) -> Prepare:
    """A long annotation CSV of the scenes' events at `rel`: times in seconds, or one
    label blank."""
    def prepare(root: Path) -> None:
        events = pd.read_csv(root / "scenes" / "events.csv")
        scale = 8000.0 if seconds else 1
        table = pd.DataFrame({"file": events["file"], "start": events["start_sample"] / scale,
                              "end": events["end_sample"] / scale, "label": events["label"]})
        if blank_label:
            table.loc[1, "label"] = ""
        table.to_csv(root / rel, index=False)
    return prepare


def _audio_manifest(rel: str, labels: dict[str, str], *, moved: bool = False) -> Prepare:
    """A manifest of `{W}/audio` (`path,label,item`), each class folder's label replaced by
    `labels`; with `moved`, the first file moved to `{W}/elsewhere` (`../elsewhere/...`)."""
    def prepare(root: Path) -> None:
        files = sorted(p.relative_to(root / "audio").as_posix()
                       for p in (root / "audio").rglob("*.wav"))
        paths = list(files)
        if moved:
            (root / "elsewhere").mkdir()
            (root / "audio" / files[0]).rename(root / "elsewhere" / "moved.wav")
            paths[0] = "../elsewhere/moved.wav"
        pd.DataFrame({"path": paths, "label": [labels[f.split("/")[0]] for f in files],
                      "item": [f.split("/")[1].split("_")[0] for f in files]}).to_csv(
            root / rel, index=False)
    return prepare


def _fold_record_edited(root: Path) -> None:
    """A metric of the ensemble's fold 0 changed by hand (not sealed again)."""
    path = root / ENSEMBLE / "fold_0.json"
    record = json.loads(path.read_text())
    record["clip_metrics"]["test"]["accuracy"] = 1.0
    path.write_text(json.dumps(record))


def _lhotse_supervisions(root: Path) -> None:
    """`{W}/lh/`: a RecordingSet of `{W}/audio` and a SupervisionSet of two supervisions per
    recording (its class and the next), speakers from the file names."""
    import lhotse  # noqa: PLC0415  (the [corpora] extra)

    files = sorted((root / "audio").rglob("*.wav"))
    recordings = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(f, recording_id=f"r{k}") for k, f in enumerate(files))
    following = {"a": "b", "b": "c", "c": "a"}
    supervisions = lhotse.SupervisionSet.from_segments(
        lhotse.SupervisionSegment(id=f"s{k}{j}", recording_id=f"r{k}", start=0.1 * j,
                                  duration=0.3, speaker=f.name.split("_")[0],
                                  custom={"sound": tag})
        for k, f in enumerate(files)
        for j, tag in enumerate((f.parent.name, following[f.parent.name])))
    (root / "lh").mkdir()
    recordings.to_file(root / "lh" / "recordings.jsonl.gz")
    supervisions.to_file(root / "lh" / "supervisions.jsonl.gz")


def _hf_empty_labels(root: Path) -> None:
    """`{W}/ds`: a saved Hugging Face dataset of `{W}/audio` whose `tags` (a `Sequence` of
    `ClassLabel`) is an empty list for one example."""
    import datasets  # noqa: PLC0415  (the [corpora] extra)

    files = sorted((root / "audio").rglob("*.wav"))
    names = ["a", "b", "c"]
    tags = [[names.index(f.parent.name)] for f in files]
    tags[4] = []
    data = datasets.Dataset.from_dict({"audio": [str(f) for f in files], "tags": tags,
                                       "speaker_id": [f.name.split("_")[0] for f in files]})
    data = data.cast_column("audio", datasets.Audio()).cast_column(
        "tags", datasets.Sequence(datasets.ClassLabel(names=names)))
    data.save_to_disk(str(root / "ds"))


def _crafted(rel: str, change: dict[str, Any] | None = None) -> Prepare:
    """The tiny WavLM at `rel` with its `config.json` changed, or (no change) random bytes
    for its `model.safetensors`."""
    def prepare(root: Path) -> None:
        _model(rel, "type")(root)  # the model, its model_type set wrong: set right below
        config = json.loads((root / rel / "config.json").read_text())
        (root / rel / "config.json").write_text(json.dumps({**config, "model_type": "wavlm",
                                                            **(change or {})}))
        if change is None:
            (root / rel / "model.safetensors").write_bytes(os.urandom(4096))
    return prepare


PIPED = '''"""`xval init ... | head -3`, as a shell runs it: the reader takes three lines and goes."""
import subprocess
import sys

proc = subprocess.Popen([sys.executable, "-m", "xval", "init", {audio!r}, "--item-pattern",
                         {items!r}, "--no-progress", "--encoders", "none"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
for _ in range(3):
    print(proc.stdout.readline(), end="")
proc.stdout.close()
sys.stderr.write(proc.stderr.read())
sys.exit(proc.wait())
'''


def _piped(root: Path) -> None:
    (root / "project" / "experiments" / "probe.py").write_text(
        PIPED.format(audio=str(root / "audio"), items=ITEMS))


def _no_project(root: Path, proc: Any) -> str:
    made = [p for p in ("project/experiments/audio.py", "project/data/audio")
            if (root / p).exists()]
    return f"{made[0]} left behind" if made else ""


def _printed_command_runs(root: Path, proc: Any) -> str:
    """Why the command init printed to run its experiment does not run its dry run."""
    import shlex  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    lines = proc.stdout.split("Run the experiment with:")[-1].strip().splitlines()
    if "Run the experiment with:" not in proc.stdout or not lines:
        return "no command printed"
    ran = subprocess.run([*shlex.split(lines[0]), "--dry-run", "-q"], cwd=root / "project",
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": "torch"})
    last = (ran.stderr.strip().splitlines() or [""])[-1]
    return "" if ran.returncode == 0 else f"its dry run failed: {last[:200]}"


DETECTION = '''from xval import Experiment

experiment = Experiment(description="probe", dataset="sed", number=1, num_folds=2,
                        task_type="detection", parameters={"epochs": 1})
experiment[1] = {"architecture": "fast_detector", "reshaping_type": "conv", "event_mix": 0.5,
                 "comment_1": "a", "comment_2": "b"}

if __name__ == "__main__":
    experiment.main()
'''
TAGGING = EXPERIMENT.format(dataset="tags").replace(
    'number=1, num_folds=2,', 'number=1, num_folds=3, task_type="tagging",')


def _plots_written(root: Path, proc: Any) -> str:
    plots = root / "project/results/tags/experiment_1/instance_1/plots"
    if "disabled for the rest of this run" in proc.stderr:
        return "a plot failed and the plots were turned off"
    return "" if (plots / "per_label_ap.png").is_file() else "per_label_ap.png not written"


def _cases() -> list[Case]:
    hf = ("pre", "folders", "{W}/audio", "--item-pattern", ITEMS, "--out", "enc", "-q",
          "--no-progress", "--encoders", "hf:{W}/model")
    init_manifest = ("xval", "init", "{W}/audio", "--manifest", "{W}/m.csv", "--encoders",
                     "none", "--dry-run")
    wav = "{W}/audio/a/spk1_0.wav"
    encoders = ("xval", "init", "{W}/audio", "--item-pattern", ITEMS, "--dry-run",
                "--encoders")
    return [
        # 2. an ensemble whose fold record was edited by hand
        Case("predict-ensemble-fold-record-edited", ("xval", "predict", ENSEMBLE[8:], wav),
             "refuse", named=True, timeout=300,
             prepare=_all(_members(("-m", "xval", "ensemble", "results/demo/experiment_2",
                                    "1", "2", "--as", "3")), _fold_record_edited),
             says=("fold_0.json was edited after it was written",)),
        # 3. items that leave a recording out and name a file that is none
        Case("init-annotations-items-typo", (*SCENES, "{W}/scenes/annotations.csv", "--items",
                                             "{W}/items.csv", "--dry-run"), "refuse",
             named=True, prepare=_all(_scenes, _write(
                 "items.csv", "file,item\nrain_000.wav,a\nwind_000.wav,a\nfire_000.wav,b\n"
                              "machin_000.wav,b\n")),
             says=("have no item in it, e.g. 'machine_000.wav'",
                   "name no recording of the folder, e.g. 'machin_000.wav'")),
        # 4. a blank label in an annotation CSV
        Case("init-annotations-blank-label", (*SCENES, "{W}/events.csv", "--dry-run"),
             "refuse", named=True, prepare=_all(_scenes, _events_csv("events.csv",
                                                                     blank_label=True)),
             says=("the label (label) is blank",)),
        # 5. Lhotse recordings and supervisions read as label sets
        Case("init-lhotse-multi-label-supervisions",
             ("xval", "init", "{W}/lh/recordings.jsonl.gz", "{W}/lh/supervisions.jsonl.gz",
              "--corpus", "lhotse", "--label-field", "sound", "--multi-label", "--root",
              "{W}/audio", "--encoders", "none", "--dry-run"), "run", named=True,
             prepare=_lhotse_supervisions,
             check=_out_has("3 classes (several per clip: a tagging experiment)")),
        # 6. a Hugging Face example with an empty label list
        Case("pre-hf-empty-label-list", ("pre", "hf", "{W}/ds", "--label-column", "tags",
                                         "--out", "s", "--no-progress"), "refuse",
             named=True, prepare=_hf_empty_labels, says=("tags=[] holds no label",)),
        # 7. init | head -3
        Case("init-stdout-closed-by-head", ("exp",), "refuse", named=True, prepare=_piped,
             check=_no_project, timeout=300, says=("stdout was closed by its reader",)),
        # 8. --empty-label that is a class, or on a manifest of one label per clip
        Case("init-empty-label-is-a-class", (*init_manifest, "--empty-label", "b"), "refuse",
             named=True, prepare=_audio_manifest("m.csv", {"a": "a;b", "b": "b", "c": ""}),
             says=("--empty-label 'b' is already a class",)),
        Case("init-empty-label-single-label", (*init_manifest, "--empty-label", "none"),
             "refuse", named=True,
             prepare=_audio_manifest("m.csv", {"a": "a", "b": "b", "c": "c"}),
             says=("--empty-label 'none' goes with several labels per clip",)),
        # 9. a file whose header declares 1 Hz
        Case("predict-1-hz-file", ("xval", "predict", "results/demo/experiment_1/instance_1",
                                   "{W}/one_hz.wav"), "refuse", named=True,
             prepare=_signal("one_hz.wav", NOISE, sr=1),
             says=("declares a sample rate of 1 Hz",)),
        # 10. a folder named xval
        Case("init-folder-named-xval", ("xval", "init", "{W}/xval", "--item-pattern", ITEMS,
                                        "--no-progress", "--encoders", "none"), "run",
             named=True, timeout=600,
             prepare=lambda r: shutil.copytree(r / "audio", r / "xval") and None,
             check=_printed_command_runs),
        # 11. run(overrides="epochs=2")
        Case("run-overrides-a-string", ("exp",), "refuse", named=True,
             prepare=_python_call('overrides="epochs=2", dry_run=True'),
             says=("overrides='epochs=2': expected a dict of parameter names to values",)),
        # 13. flags the refusals name, which the command now takes
        Case("init-annotations-seconds", (*SCENES, "{W}/seconds.csv", "--annotation-units",
                                          "seconds", "--dry-run"), "run", named=True,
             prepare=_all(_scenes, _events_csv("seconds.csv", seconds=True)),
             check=_out_has("Found 4 annotated recordings")),
        Case("init-manifest-outside-root-allowed", (*init_manifest, "--allow-outside-root"),
             "run", named=True,
             prepare=_audio_manifest("m.csv", {"a": "a", "b": "b", "c": "c"}, moved=True),
             check=_out_has("Found 18 files")),
        # 14. transformers folders whose config and weights disagree
        Case("pre-hf-4096-layers", hf, "refuse", named=True, timeout=300,
             prepare=_crafted("model", {"num_hidden_layers": 4096}),
             says=("num_hidden_layers=4096", "hold 2 layers")),
        Case("pre-hf-conv-dim-empty", hf, "refuse", named=True,
             prepare=_crafted("model", {"conv_dim": []}), says=("config.json", "conv_dim")),
        Case("pre-hf-garbage-safetensors", hf, "refuse", named=True, prepare=_crafted("model"),
             says=("model.safetensors is no safetensors file",)),
        Case("pre-hf-shapes-not-the-configs", hf, "refuse", named=True,
             prepare=_crafted("model", {"hidden_size": 48, "intermediate_size": 96}),
             says=("model.safetensors holds", "hidden_size=48")),
        # 15. event_mix on a PCEN store
        Case("exp-event-mix-pcen-dry-run", ("exp", "--dry-run"), "refuse", named=True,
             timeout=300,
             prepare=_all(_scenes, lambda r: _run_in(
                 r, "-m", "preprocessing", "detection", str(r / "scenes"), "--annotations",
                 str(r / "scenes" / "annotations.csv"), "--items",
                 str(r / "scenes" / "items.csv"), "--out", "sed", "--compression", "pcen",
                 "--no-progress", "-q"),
                 _write("project/experiments/probe.py", DETECTION)),
             says=("instance 1: event_mix=0.5", "compression='pcen'")),
        # 16. a tagging label that is matplotlib mathtext
        Case("exp-tagging-mathtext-label", ("exp", "-q"), "run", named=True, timeout=400,
             prepare=_all(_audio_manifest("m.csv", {"a": "$x^$;a", "b": "a", "c": "$x^$"}),
                          lambda r: _run_in(r, "-m", "preprocessing", "manifest",
                                            str(r / "m.csv"), "--root", str(r / "audio"),
                                            "--item-column", "item", "--label-separator",
                                            ";", "--out", "tags", "--no-progress", "-q"),
                          _write("project/experiments/probe.py", TAGGING)),
             may_change=DERIVED, check=_plots_written),
        # 17. --annotations given a FIFO
        Case("init-annotations-fifo", ("xval", "init", "{W}/audio", "--annotations",
                                       "{W}/pipe.csv", "--dry-run"), "refuse", named=True,
             prepare=_fifo("pipe.csv"), timeout=60, says=("is not a regular file (FIFO",)),
        # 1 and 12. the GPU benchmark: print-only never writes; folders it did not make
        Case("gpu-project-keeps-a-summary", ("gpu", "--project", "--out-dir", "{W}/out"),
             "run", named=True, env=GPU_BENCHMARK, timeout=60,
             prepare=_write("out/summary.json", "mine"), check=_kept("out/summary.json")),
        Case("gpu-out-dir-a-file", ("gpu", "--dry-run", "--only", "sync", "--out-dir",
                                    "{W}/outfile"), "refuse", named=True, env=GPU_BENCHMARK,
             timeout=60, prepare=_write("outfile", "mine"), says=("is a file",)),
        Case("gpu-out-dir-holds-figures", ("gpu", "--dry-run", "--only", "sync", "--out-dir",
                                           "{W}/out"), "refuse", named=True,
             env=GPU_BENCHMARK, timeout=60, prepare=_write("out/sync.json", "mine"),
             says=("already holds sync.json",)),
        Case("gpu-data-a-user-folder", ("gpu", "--dry-run", "--only", "sync", "--data",
                                        "{W}/mine", "--out-dir", "{W}/o"), "refuse",
             named=True, env=GPU_BENCHMARK, timeout=60,
             prepare=_write("mine/recording.wav", b"RIFF"),
             says=("holds files this benchmark did not make",)),
        # The probe of issue 75's features (init --encoders, union_mix, benchmarks.gpu).
        Case("init-encoders-and-encoder", (*encoders, "aisfx", "--encoders", "birdnet"),
             "refuse", named=True, says=("--encoders birdnet given after aisfx",)),
        Case("init-encoders-capitals", (*encoders, "AISFX"), "refuse", named=True,
             says=("did you mean aisfx?",)),
        Case("init-encoders-empty-entry", (*encoders, "aisfx,,birdnet"), "refuse",
             named=True, says=("an empty name",)),
        Case("init-encoders-hf-nothing", (*encoders, "hf:"), "refuse", named=True,
             says=("hf: names no model",)),
        Case("exp-union-mix-in-config-classification", ("exp", "--dry-run", "-q"), "run",
             named=True, prepare=_all(
                 _write("project/experiments/probe.py", EXPERIMENT.format(dataset="demo")),
                 _write("project/config.ini", "[paths]\ndata_dir = data\nresults_dir = "
                                              "results\n[training]\nunion_mix = 0.3\n"))),
        Case("gpu-budget-negative", ("gpu", "--project", "--budget", "-5"), "refuse",
             named=True, env=GPU_BENCHMARK, timeout=60,
             says=("--budget: '-5': expected a finite number > 0",)),
        Case("gpu-repeats-zero", ("gpu", "--cpu-proxies", "--repeats", "0"), "refuse",
             named=True, env=GPU_BENCHMARK, timeout=60,
             says=("--repeats: '0': expected an integer >= 1",)),
        Case("gpu-only-a-phase-twice", ("gpu", "--project", "--only", "sync,sync"), "refuse",
             named=True, env=GPU_BENCHMARK, timeout=60, says=("sync named twice",)),
        Case("gpu-out-dir-under-a-file", ("gpu", "--dry-run", "--only", "sync", "--out-dir",
                                          "{W}/afile/out"), "refuse", named=True,
             env=GPU_BENCHMARK, timeout=60, prepare=_write("afile", "mine"),
             says=("afile/out: cannot be written",)),
    ]


GPU_BENCHMARK = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
"""`benchmarks.gpu` runs from the repository (the sandbox is a project folder)."""


def _kept(rel: str) -> Any:
    """A check: the file the user kept at `rel` is as it was (`mine`)."""
    return lambda root, proc: "" if (root / rel).read_text() == "mine" else \
        f"{rel} was written over"


CASES: list[Case] = _cases()
