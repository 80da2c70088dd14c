"""The default path: `[backend] backend = auto` runs JAX, whose steps are compiled once per
instance. Each test runs the product in fresh processes with no `KERAS_BACKEND` (the suite's
own process is torch's): an experiment script, then the commands that read its results."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, write_config, write_script

pytestmark = pytest.mark.slow

SPEAKERS = ("ann", "bob", "cat", "dan")

SCRIPT = """
from xval import Ensemble, Experiment

experiment = Experiment(description="tones", dataset="tones", number=1, num_folds=4,
                        parameters={{"epochs": 4, "patience": 4, "min_epochs": 0,
                                     "batch_size": 8}}, config={config!r})
experiment[1] = {{"architecture": "audio_cnn", "reshaping_type": "conv",
                 "comment_1": "cnn", "comment_2": "package defaults", "filters": 8}}
experiment[2] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "mlp",
                 "comment_2": "", "hidden_units": 16}}
experiment[3] = Ensemble(1, 2)
experiment[4] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "mlp",
                 "comment_2": "mixed precision", "hidden_units": 16, "mixed_precision": True}}

if __name__ == "__main__":
    experiment.main()
"""


def _env():
    """The environment of a user who set no backend."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=_env(), cwd=cwd, timeout=900)


def _folds(instance):
    return {int(p.stem.split("_")[1]): json.loads(p.read_text())
            for p in sorted(instance.glob("fold_*.json"))}


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """Tones of 4 speakers (low 300 Hz, high 1200 Hz) as a store, a config.ini with the
    package's training defaults (SpecAugment, warps, mixup, warm-up and cosine) and its own
    compile cache, and the experiment script."""
    import librosa

    from preprocessing import build_store, feature_params, regex_source
    from xval.config import schema
    from xval.config.loader import load_config

    folder = tmp_path_factory.mktemp("default")
    training = {k: v for k, v in schema.defaults()["training"].items()}
    config = load_config(write_config(folder, training=training,
                                      backend={"compile_cache": str(folder / "cache")}))
    audio = folder / "audio"
    audio.mkdir()
    for s, speaker in enumerate(SPEAKERS):
        for label, freq in (("low", 300), ("high", 1200)):
            for k in range(4):
                tone = 0.5 * librosa.tone(freq * (1 + 0.03 * s + 0.01 * k), sr=8000,
                                          duration=0.6)
                sf.write(audio / f"{label}_{speaker}_{k}.wav", tone, 8000)
    rows, _ = regex_source(audio, r"(?P<label>[a-z]+)_(?P<item>[a-z]+)_\d+\.wav$")
    params = feature_params(config.features, sample_rate=8000, n_fft=256, hop_length=128,
                            n_mels=16, segment_seconds=0.25, segment_hop_seconds=0.25)
    build_store(rows, config.data_dir / "tones", params=params, workers=1, progress=False)
    script = write_script(folder, SCRIPT.format(config=str(config.path)))
    return {"folder": folder, "script": script, "audio": audio,
            "results": config.results_dir / "tones" / "experiment_1"}


def test_the_default_backend_compiles_each_instance_once(tones):
    """JAX by default, with the package's training defaults (SpecAugment, warps, mixup: a
    host read inside a step could not be traced at all); the first fold of an instance
    compiles its steps, the other folds, a second run's folds resumed in a warm worker
    process compile nothing; the saved models predict and export under another backend
    (torch, this process)."""
    from tests.conftest import python_here

    folder, script, results = tones["folder"], tones["script"], tones["results"]
    first = _run(script, cwd=folder)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Importing Keras (jax backend)" in first.stdout
    assert "all cached" in first.stdout  # the progress lines say what each fold compiled
    for k in (1, 2, 4):
        folds = _folds(results / f"instance_{k}")
        assert len(folds) == 4
        assert {f["backend"] for f in folds.values()} == {"jax"}
        assert all(f["compiled"] for f in folds.values())
        assert folds[0]["compilation"]["programs"] > 0
        assert [folds[i]["compilation"]["programs"] for i in (1, 2, 3)] == [0, 0, 0]
    ensemble = json.loads((results / "instance_3" / "summary.json").read_text())
    assert ensemble["status"] == "complete"

    # Resumed in a process of its own: instance 1's first fold and instance 2's last run
    # again, in a worker process (`--executor process`), each loading its programs.
    for fold in (results / "instance_1" / "fold_0.json", results / "instance_2" / "fold_3.json"):
        fold.unlink()
    again = _run(script, "1", "2", "--executor", "process", cwd=folder)
    assert again.returncode == 0, again.stderr[-3000:]
    ran = set(re.findall(r"instance (\d) fold (\d):", again.stdout))
    assert ran == {("1", "0"), ("2", "3")}, again.stdout
    assert _folds(results / "instance_1")[0]["compilation"]["programs"] == 0
    assert _folds(results / "instance_2")[3]["compilation"]["programs"] == 0

    wav = tones["audio"] / "high_dan_0.wav"
    predicted = python_here("-m", "xval", "predict", results / "instance_1", wav,
                            "--format", "csv", cwd=folder)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert "high" in predicted.stdout

    out = folder / "exported"
    exported = python_here("-m", "xval", "export", results / "instance_1" / "fold_0.keras",
                           "--format", "onnx", "--out", out, cwd=folder)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert any(out.glob("*.onnx"))


TASKS = """
import json, os, sys

from benchmarks.gpu import TASK_INSTANCES, task_store
from tests.conftest import tiny_store

os.environ.pop("KERAS_BACKEND")  # set by tests.conftest: this script is a user's, who set none
from xval import Experiment, Output
from xval.config.loader import load_config
from xval.core.layout import ExperimentLayout

config = load_config(sys.argv[1])
for task in ("tagging", "detection", "regression", "representation"):
    dataset, spec = TASK_INSTANCES[task]
    if task != "representation":
        task_store(config.data_dir, task, rows=64, shape=(16, 8))
    else:
        tiny_store(config.data_dir, dataset, shape=(16, 8))
    exp = Experiment(description=task, dataset=dataset, number=1, num_folds=2,
                     task_type=task, parameters={"epochs": 1, "patience": 1,
                                                 "min_epochs": 0})
    exp[1] = {"comment_1": task, "comment_2": "", **spec}
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    folder = ExperimentLayout.of(config.results_dir, dataset, 1).instance(1)
    records = [json.loads(p.read_text()) for p in sorted(folder.fold_files().values())]
    print(json.dumps({"task": task, "code": outcome.exit_code,
                      "status": [r["status"] for r in records],
                      "backends": sorted({r["backend"] for r in records}),
                      "compiled": [r["compiled"] for r in records],
                      "programs": [(r["compilation"] or {}).get("programs") for r in records],
                      "metrics": sorted(records[0]["metrics"]["test"])}), flush=True)
"""


def test_every_task_trains_compiled_on_the_default_backend(tmp_path):
    """Each task's default instance on JAX: compiled, its second fold compiling nothing,
    its metrics scored."""
    from xval.config import schema

    training = dict(schema.defaults()["training"])
    config = write_config(tmp_path, training=training,
                          backend={"compile_cache": str(tmp_path / "cache")})
    script = write_script(tmp_path, TASKS, name="tasks.py")
    done = _run(script, config, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [f["task"] for f in found] == ["tagging", "detection", "regression",
                                          "representation"]
    for f in found:
        assert f["code"] == 0 and f["status"] == ["ok", "ok"], f
        assert f["backends"] == ["jax"] and f["compiled"] == [True, True], f
        assert f["programs"][0] > 0 and f["programs"][1] == 0, f  # the second fold
        assert "loss" in f["metrics"], f
    assert np.all([len(f["metrics"]) > 1 for f in found[:3]])


SWITCH = """
import json, sys
from pathlib import Path

from tests.conftest import tiny_store
from tests.test_training import job
from xval.training.fold import run_fold

folder = Path(sys.argv[1])
store = tiny_store(folder / "data")
found = []
for fold, cache in ((0, None), (0, folder / "cache"), (1, folder / "cache")):
    spec = {**job(store, folder, fold=fold, epochs=1), "compile_cache": cache and str(cache)}
    for name in ("model_path", "log_dir"):
        spec.pop(name)
    result = run_fold(spec)
    found.append(result.compilation)
print(json.dumps({"found": found, "kept": sorted(p.name.split("-")[0]
                                                 for p in (folder / "cache" / "jax").iterdir())}))
"""


def test_a_job_naming_a_compile_cache_uses_it_after_one_that_named_none(tmp_path):
    """A warm worker's jobs each use their own `compile_cache`: after a job with none, a
    job with a folder keeps its programs there and the next fold loads them."""
    script = write_script(tmp_path, SWITCH, name="switch.py")
    env = {**_env(), "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    first, second, third = found["found"]
    assert first["programs"] > 0 and second["programs"] > 0  # no cache, then an empty one
    assert third["programs"] == 0 and third["cached"] > 0
    assert "jit_train_step" in found["kept"]
