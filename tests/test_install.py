"""The project installs as a user installs it (issue 36): `pip install .` (not editable) of
the sources into a fresh virtual environment outside the repository, torch first, with the
constraints; `pip check` passes there (the environment holds the project and what it
requires, nothing installed with `--no-deps`); the installed metadata carries the licence
and the four packages their `py.typed`; and from a folder outside the repository the demo
store is built, a one-epoch experiment runs, and its saved fold model predicts a file."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("xval", "architectures", "preprocessing", "augmentation")
# What `pip install .` builds from: the project's metadata and its four packages.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", *PACKAGES)
EXPERIMENT = '''"""Install check: one instance, one split, one epoch on the demo store."""

from xval import Experiment

experiment = Experiment(description="install check", dataset="demo", number=1, num_folds=1,
                        parameters={"epochs": 1, "min_epochs": 0, "warmup_epochs": 0})
experiment[1] = {"architecture": "example_cnn", "reshaping_type": "conv",
                 "comment_1": "install", "comment_2": "check"}

if __name__ == "__main__":
    experiment.main()
'''


def _env():
    """The environment of the fresh venv's commands: nothing that points at the repository
    or at another environment."""
    # Nor PYTHONDONTWRITEBYTECODE: pip compiles a user's install; this one skips it
    # (`--no-compile`: torch's thousands of modules never imported here), so the first
    # process writes the bytecode of what it imports and the next ones read it. Kept, every
    # process compiled Keras and torch again (predict: 14.5 s -> 6.8 s).
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "XVAL_CONFIG", "PYTHONHOME",
                        "PYTHONDONTWRITEBYTECODE")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "KERAS_BACKEND": "torch"}


def _run(args, cwd, timeout=600):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv outside the repository with the project installed from a copy of its
    sources (`pip install .`, torch==2.13.0 first, the constraints of constraints.txt)."""
    base = tmp_path_factory.mktemp("install")
    assert not base.resolve().is_relative_to(ROOT)
    source = base / "audio-xval"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], base)
    # --no-compile: no bytecode for the thousands of modules never imported here (torch's).
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", "-c",
           ROOT / "constraints.txt"]
    _run([*pip, "torch==2.13.0"], base)
    _run([*pip, "."], source)
    return venv / "bin" / "python", base


@pytest.mark.slow
def test_install_fresh_venv_passes_pip_check_and_ships_licence_and_types(installed):
    python, base = installed
    check = _run([python, "-m", "pip", "check"], base)
    assert "No broken requirements found" in check.stdout
    shown = _run([python, "-c", (
        "import importlib.metadata as m, json, xval\n"
        "d = m.distribution('audio-xval')\n"
        "print(json.dumps({'file': xval.__file__, 'license': d.metadata['License-Expression'],"
        " 'files': [str(f) for f in d.files], 'python': d.metadata['Requires-Python']}))")],
        base)
    found = json.loads(shown.stdout)
    assert Path(found["file"]).is_relative_to(base / "venv")  # not the repository's copy
    assert found["license"] == "MIT" and found["python"] == ">=3.11"
    assert any(f.endswith("licenses/LICENSE") for f in found["files"])
    assert {f"{p}/py.typed" for p in PACKAGES} <= set(found["files"])


@pytest.mark.slow
def test_install_runs_the_demo_and_predicts_with_a_saved_model_outside_the_repo(installed):
    python, base = installed
    work = base / "work"
    (work / "experiments").mkdir(parents=True)
    (work / "config.ini").write_text("[paths]\ndata_dir = data\nresults_dir = results\n")
    _run([python, "-m", "preprocessing", "demo", "--no-progress", "--workers", "1"], work)
    (work / "experiments" / "install_check.py").write_text(EXPERIMENT)
    run = _run([python, "experiments/install_check.py", "-q"], work)
    instance = work / "results" / "demo" / "experiment_1" / "instance_1"
    assert (instance / "fold_0.keras").is_file(), run.stdout
    audio = sorted(work.glob("data/**/*.wav"))[0]
    predicted = _run([python, "-m", "xval", "predict", instance, audio], work)
    classes = json.loads((work / "data" / "demo" / "dataset.json").read_text())["classes"]
    assert audio.name in predicted.stdout
    assert any(name in predicted.stdout for name in classes), predicted.stdout


@pytest.mark.parametrize("declared,status,said", [
    (">=3.11", 0, "lowest 3.11"),
    (">=3.10", 1, 'should admit Python 3.11 and nothing older: set requires-python = ">=3.11"'),
    (">=3.12", 1, "should admit Python 3.11"),
])
def test_requires_python_check_compares_with_the_pins_metadata(tmp_path, declared, status,
                                                                said):
    """`make lint`'s check: the pins (numpy 2.4, pandas 3, ... need 3.11) against
    requires-python, from the installed distributions' metadata."""
    text = (ROOT / "pyproject.toml").read_text()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(text.replace('requires-python = ">=3.11"',
                                      f'requires-python = "{declared}"'))
    proc = subprocess.run([sys.executable, ROOT / ".ci" / "check_requires_python.py",
                           "--pyproject", pyproject], capture_output=True, text=True)
    assert proc.returncode == status and said in proc.stdout, proc.stdout + proc.stderr
    assert "numpy" in proc.stdout  # a pin that needs 3.11, named


def test_requires_python_check_names_a_pin_that_is_not_what_is_installed(tmp_path):
    import numpy

    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# a comment\nnumpy==1.0.0\n")
    proc = subprocess.run([sys.executable, ROOT / ".ci" / "check_requires_python.py",
                           "--constraints", constraints], capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"pins numpy==1.0.0 but {numpy.__version__} is installed" in proc.stdout


def test_install_docs_build_in_their_own_environment_never_the_runtime_venv():
    """Issue 38: `make docs` installs MkDocs and the project's base dependencies into
    `.venv-docs` (no torch, TensorFlow, Ray or transformers) and builds from there; no
    command of it touches the runtime `.venv` that experiments use."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -n: print every command (-B: all of them), run none; under `make test` the outer
    # make's MAKEFLAGS would make this one print "Entering/Leaving directory" lines.
    proc = subprocess.run(["make", "--no-print-directory", "-n", "-B", "docs"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    commands = proc.stdout.splitlines()
    assert commands[-1] == "NO_MKDOCS_2_WARNING=1 .venv-docs/bin/mkdocs build --strict"
    assert '.venv-docs/bin/pip install -e ".[docs]" -c constraints.txt' in commands
    assert not [c for c in commands if ".venv/" in c], commands
    installs = " ".join(c for c in commands if " install " in c)
    for heavy in ("torch", "tensorflow", "ray", "pretrained"):
        assert heavy not in installs
    assert ".venv-docs/" in (ROOT / ".gitignore").read_text().splitlines()
