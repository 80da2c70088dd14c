"""The commands that neither train nor predict import no deep-learning backend (issue 44).

Each command runs in a fresh process under `python -X importtime`, which lists every module
the process imported; keras, tensorflow, torch and jax must not be among them. Timings are
measured by `benchmarks/startup.py`, never asserted here.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tiny_store, write_config
from tests.manifests import manifest_text, record_text

BACKENDS = {"keras", "tensorflow", "torch", "jax"}
SCRIPT = '''"""Startup test."""

from xval import Experiment

experiment = Experiment(description="startup", dataset="tiny", number=2, num_folds=3)
experiment[1] = {"architecture": "mlp", "reshaping_type": "none"}

if __name__ == "__main__":
    experiment.main()
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A config.ini, a store, a finished experiment's result files (written by hand), an
    experiment script and a folder of audio in class folders."""
    folder = tmp_path_factory.mktemp("startup")
    config = write_config(folder)
    tiny_store(folder / "data")
    exp_dir = folder / "results" / "tiny" / "experiment_1"
    for instance, accuracy in ((1, 0.6), (2, 0.8)):
        (exp_dir / f"instance_{instance}").mkdir(parents=True)
        for i, delta in enumerate((-0.05, 0.0, 0.05)):
            fold = {"instance": instance, "fold": i, "status": "ok",
                    "n_rows": {"train": 40, "val": 20, "test": 20},
                    "items": {"train": ["a", "b"], "val": ["c"], "test": ["d"]},
                    "metrics": {s: {"accuracy": accuracy + delta}
                                for s in ("train", "val", "test")}}
            (exp_dir / f"instance_{instance}" / f"fold_{i}.json").write_text(record_text(fold))
    folds = [{"train": ["a", "b"], "val": ["c"], "test": ["d"]}] * 3
    (exp_dir / "folds.json").write_text(manifest_text(folds))
    (folder / "experiments").mkdir()
    (folder / "experiments" / "startup.py").write_text(SCRIPT)
    tone = np.sin(np.linspace(0, 400 * np.pi, 8000)).astype(np.float32) * 0.5
    for label in ("a", "b"):
        for speaker in range(3):
            path = folder / "audio" / label / f"spk{speaker}_{label}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone * (1 + speaker) / 4, 8000)
    return folder, config


def imported_backends(command, cwd, among=BACKENDS):
    """The packages of `among` (the backends by default) among the modules `command`
    (arguments of `python`) imported, and the completed process."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *command], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0]
             for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return names & among, proc


LIGHT = {
    "version": ["-m", "xval", "--version"],
    "help": ["-m", "xval", "--help"],
    "config": ["-m", "xval", "config", "--config", "config.ini"],
    "report": ["-m", "xval", "report", "results/tiny/experiment_1", "--config", "config.ini"],
    "report text": ["-m", "xval", "report", "results/tiny/experiment_1", "--no-workbook",
                    "--config", "config.ini"],
    "compare": ["-m", "xval", "compare", "results/tiny/experiment_1", "--no-workbook",
                "--config", "config.ini"],
    "init plan": ["-m", "xval", "init", "audio", "--dry-run", "--encoders", "none",
                  "--item-pattern", r"(?P<item>spk\d+)_"],
    "preprocessing report": ["-m", "preprocessing", "report", "data/tiny"],
    "preprocessing help": ["-m", "preprocessing", "--help"],
}


@pytest.mark.parametrize("name", list(LIGHT))
def test_light_command_imports_no_backend(project, name):
    folder, _ = project
    found, proc = imported_backends(LIGHT[name], folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert not found, f"{name} imported {sorted(found)}"
    if name == "init plan":  # a plan writes nothing
        assert "Nothing was written" in proc.stdout
        assert not (folder / "experiments" / "audio.py").exists()
        assert not (folder / "data" / "audio").exists()


SCORING = {"sklearn", "matplotlib", "pandas", "librosa"}
"""What the read-only commands of issue 44 do without (issue 43 point 4: the configuration
names the tasks and their metrics without importing their scoring or figures)."""
READ_ONLY = {
    "config": (LIGHT["config"], set()),
    "report": (LIGHT["report"], set()),
    "report text": (LIGHT["report text"], {"openpyxl"}),  # no workbook: no openpyxl
}


@pytest.mark.parametrize("name", list(READ_ONLY))
def test_read_only_command_imports_no_scoring_library(project, name):
    folder, _ = project
    command, also = READ_ONLY[name]
    found, proc = imported_backends(command, folder, among=SCORING | also)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert not found, f"{name} imported {sorted(found)}"
    if name.startswith("report"):  # the table, read from the files as ever
        assert "selected on validation accuracy (segment level): instance 2" in proc.stdout, \
            proc.stdout


def test_dry_run_imports_no_backend(project):
    folder, _ = project
    found, proc = imported_backends(["experiments/startup.py", "--dry-run"], folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert not found, f"the dry run imported {sorted(found)}"


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_keras_is_imported_without_what_it_leaves_unused(backend):
    # Keras 3.15 imports JAX whatever its backend, and matplotlib's pyplot (about 0.5 s and
    # 0.3 s a process): the engine's import keeps them out, and later imports still work.
    # On JAX, random bits come from threefry's quick-to-compile form (`_quick_random_programs`).
    code = ("import sys\n"
            "from xval.core.backend import import_paused\n"
            "import_paused('keras')\n"
            "print('jax' in sys.modules, 'matplotlib' in sys.modules)\n"
            "import jax\n"
            "import matplotlib.pyplot as plt\n"
            "print(jax.numpy.ones(2).sum(), plt.figure().number)\n"
            "print(jax.config.jax_threefry_partitionable)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend, "MPLBACKEND": "Agg"},
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jax_in, matplotlib_in, total, figure, partitionable = proc.stdout.split()
    assert (jax_in, matplotlib_in) == (str(backend == "jax"), "False")
    assert float(total) == 2.0 and figure == "1"
    assert partitionable == str(backend != "jax")  # JAX's own default elsewhere


def test_a_backend_that_fails_to_import_is_a_configuration_error(monkeypatch):
    """JAX installed but broken (its import raises ImportError while Keras imports it): a
    ConfigurationError naming the backend, the import's message and the fix, not an
    `unexpected ImportError` (checked in-process: Keras's import is simulated)."""
    import importlib

    from xval.core.errors import ConfigurationError
    from xval.core.optional import EXTRAS
    from xval.running.environment import import_keras

    real = importlib.import_module

    def broken(name, *args, **kwargs):
        if name == "keras":
            raise ImportError("simulated: no jax here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", broken)
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    said = []
    with pytest.raises(ConfigurationError) as raised:
        import_keras(said.append, "jax")
    assert said == ["Importing Keras (jax backend)..."]
    assert str(raised.value) == (
        "Keras backend 'jax' is installed but Keras could not import it (ImportError: "
        f"simulated: no jax here): reinstall it (`{EXTRAS['jax'].install}`), or choose "
        "another backend with --backend, [backend] backend in config.ini or KERAS_BACKEND.")
