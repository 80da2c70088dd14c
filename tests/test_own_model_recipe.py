"""The recipe of docs/training.md, "A model of your own": a builder defined in an experiment
script, outside the library, cross-validated in the script's process, in worker processes
(`--executor process`) and in Ray tasks (`--executor ray`), its saved models answering
`python -m xval predict` in a process that never imports the script. The script is taken from
the page as it stands, written into a fresh project folder whose store is built from real
audio files. The runs through the executors and `predict` are real processes (the script run
as `__main__`, its workers importing it by its path); the inline run is the script's command
line in this process."""

import json
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, run_here, write_config

PAGE = ROOT / "docs" / "training.md"
SCRIPT = "experiments/exp_own.py"
RATE = 8000


def recipe() -> str:
    """The page's Python block that starts with `# experiments/exp_own.py`."""
    blocks = re.findall(rf"```python\n(# {re.escape(SCRIPT)}\n.*?)```", PAGE.read_text(),
                        re.DOTALL)
    assert len(blocks) == 1, f"{PAGE} holds {len(blocks)} blocks of {SCRIPT}"
    return blocks[0]


def _tones(folder):
    """2 classes (a low and a high tone) x 6 speakers x 2 takes: `{class}/{speaker}_{take}.wav`."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.5 * RATE)) / RATE
    for label, hz in (("low", 300.0), ("high", 1500.0)):
        (folder / label).mkdir(parents=True)
        for speaker in range(6):
            for take in range(2):
                y = 0.4 * np.sin(2 * np.pi * hz * (1 + 0.03 * speaker + 0.01 * take) * t)
                y += 0.02 * rng.standard_normal(len(t))
                sf.write(folder / label / f"s{speaker}_{take}.wav", y.astype(np.float32), RATE)


def _python(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder: config.ini, the store `tones` built from audio, the recipe's script."""
    from xval.cli.preprocess import main as preprocess

    root = tmp_path_factory.mktemp("own_model")
    write_config(root, training={"epochs": 2, "patience": 2, "min_epochs": 0})
    _tones(root / "audio")
    built = run_here(preprocess, "folders", root / "audio", "--out", "tones", "--data-dir",
                     root / "data", "--sample-rate", RATE, "--n-mels", 16, "--workers", 1,
                     "-q")
    assert built.returncode == 0, built.stdout + built.stderr
    (root / "experiments").mkdir()
    (root / SCRIPT).write_text(recipe())
    return root


def _test_scores(project):
    """Each fold's test accuracy, per instance, as the run recorded it."""
    exp = project / "results" / "tones" / "experiment_9"
    return {(k, i): json.loads((exp / f"instance_{k}" / f"fold_{i}.json").read_text())
            ["metrics"]["test"]["accuracy"] for k in (1, 2) for i in range(3)}


def test_recipe_touches_no_library_file():
    """The builder is the experiment's: no module of the library names it."""
    spelt = [str(path.relative_to(ROOT)) for package in ("xval", "architectures",
                                                         "preprocessing", "augmentation")
             for path in (ROOT / package).rglob("*.py")
             if re.search(r"\btiny_conv\b", path.read_text())]
    assert spelt == []


@pytest.mark.slow
def test_own_builder_runs_inline_and_in_worker_processes_and_predicts(project):
    from architectures.registry import ARCHITECTURES
    from tests.conftest import run_script_here

    # Inline: the script's command line in this process, which registers the builder as the
    # script is read; it leaves with the run.
    try:
        inline = run_script_here(project / SCRIPT, cwd=project)
    finally:
        ARCHITECTURES.unregister("tiny_conv", missing_ok=True)
        sys.modules.pop("_xval_script_exp_own", None)
    assert inline.returncode == 0, inline.stdout[-3000:] + inline.stderr[-3000:]
    assert "* selected" in inline.stdout
    first = _test_scores(project)
    assert all(0.0 <= v <= 1.0 for v in first.values())

    # Worker processes: the script run as a user runs it (its builder in `__main__`), each
    # worker importing the script by its path. Instance 2 alone: the same seeds and folds.
    workers = _python(SCRIPT, "2", "2", "--executor", "process", "--overwrite", cwd=project)
    assert workers.returncode == 0, workers.stdout[-3000:] + workers.stderr[-3000:]
    again = _test_scores(project)
    assert {key: again[key] for key in again if key[0] == 2} == pytest.approx(
        {key: first[key] for key in first if key[0] == 2}, abs=0.1)

    # The saved models answer in a process that never imports the script.
    wav = project / "audio" / "high" / "s0_0.wav"
    predicted = _python("-m", "xval", "predict", "results/tones/experiment_9/instance_2",
                        wav, "--format", "csv", cwd=project)
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert "s0_0.wav" in predicted.stdout and "tiny_conv" not in predicted.stderr
    # Plain Keras loads one with the builder unknown here: the builder's model, wrapped.
    import keras

    import architectures

    assert "tiny_conv" not in architectures.names()
    model = project / "results" / "tones" / "experiment_9" / "instance_2" / "fold_0.keras"
    assert keras.saving.load_model(model).name == "xval_tiny_conv"


@pytest.mark.slow
@pytest.mark.ray
def test_own_builder_runs_in_ray_tasks(project, local_ray):
    run = _python(SCRIPT, "2", "2", "--executor", "ray", "--ray-address", local_ray,
                  "--overwrite", cwd=project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "instance 2 fold 2:" in run.stdout and "FAILED" not in run.stdout


def test_a_builder_of_an_interactive_session_is_refused_for_worker_processes():
    """A builder defined where no file holds it (a notebook's `__main__`) cannot be imported by
    a worker: the process and Ray executors refuse the run before anything trains; the
    inline executor, which runs in that session, takes it."""
    import architectures
    from architectures.registry import ARCHITECTURES
    from xval.core.errors import ConfigurationError
    from xval.running.declaration import ExperimentDeclaration
    from xval.running.own_code import check_own_code, own_script

    def session_net(input_shape, num_outputs, task_type):
        raise AssertionError("never built")

    session_net.__module__ = "__main__"
    architectures.register("session_net", reshaping=("none",))(session_net)
    try:
        experiment = ExperimentDeclaration(description="d", dataset="tones", number=1)
        experiment.script = None
        resolved = {1: types.SimpleNamespace(architecture="session_net")}
        for executor in ("process", "ray"):
            with pytest.raises(ConfigurationError, match=(
                    r"^architecture 'session_net' is defined in this session \(no file\), "
                    f"which the {executor} executor's worker processes cannot import")):
                check_own_code(experiment, resolved, executor)
        check_own_code(experiment, resolved, "inline")
        assert own_script(experiment, resolved) is None
        builtin = {1: types.SimpleNamespace(architecture="mlp")}
        check_own_code(experiment, builtin, "process")  # an installed builder: any executor
    finally:
        ARCHITECTURES.unregister("session_net")


def test_a_job_imports_the_script_of_its_own_builder(tmp_path):
    """What a worker does before a job whose architecture it does not know: import the
    script named by the job (once), which registers the builder."""
    import architectures
    from architectures.registry import ARCHITECTURES
    from xval.core.records import Job
    from xval.executors.job_process import import_own_code

    script = tmp_path / "exp_elsewhere.py"
    script.write_text(recipe().replace('"tiny_conv"', '"tiny_conv_elsewhere"'))
    job = Job(instance=1, fold=0, params={"architecture": "tiny_conv_elsewhere"},
              items={"train": [], "val": [], "test": []}, task_type="classification",
              generator=False, store=str(tmp_path / "store"), script=str(script))
    assert "tiny_conv_elsewhere" not in architectures.names()
    try:
        import_own_code(job)
        assert "tiny_conv_elsewhere" in architectures.names()
        import_own_code(job)  # known now: not imported twice (a second register would fail)
        assert Job.from_dict(job.to_dict()).script == str(script)
    finally:
        ARCHITECTURES.unregister("tiny_conv_elsewhere", missing_ok=True)
        sys.modules.pop("_xval_script_exp_elsewhere", None)
