"""The three generic top-level packages beside their namesakes on the package index (issue
67): `preprocessing`, `architectures` and `augmentation` are names other distributions use,
and pip installs one over the other without a word. A clash is refused in one line at
import (`xval.core.namesakes`): the rules on real folders, a copy of the packages beside a
namesake's `dist-info` in a subprocess, and (slow) fresh virtual environments holding the
real namesake wheels from the package index with ours, in every install order."""

import ast
import hashlib
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_install import SOURCES, _env
from xval.core import namesakes, origin
from xval.core.namesakes import MARKER, NAMES, NamesakeError, namesake_problem

OURS = ("xval", *NAMES)


def _tree(root, marked=True):
    """A folder holding our four packages as an install does (each `__init__.py` with the
    marker line where `marked`)."""
    for name in OURS:
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text(f'"""{name}."""\n\n'
                                                 + (f"{MARKER}\n" if marked else ""))
    return root


def test_namesakes_ours_alone_pass(tmp_path):
    home = _tree(tmp_path / "site-packages")
    (home / "audio_xval-0.1.0.dist-info").mkdir()
    for name in NAMES:
        assert namesake_problem(name, home, str(home / name / "__init__.py")) == ""


def test_namesakes_a_namesake_distribution_is_refused_naming_it_and_the_fixes(tmp_path):
    home = _tree(tmp_path / "site-packages")
    (home / "preprocessing-0.1.13.dist-info").mkdir()
    said = namesake_problem("preprocessing", home, str(home / "preprocessing" / "__init__.py"))
    assert "\n" not in said
    assert said.startswith("the package preprocessing is shared by two distributions: "
                           f"audio-xval and preprocessing 0.1.13 ({home}/preprocessing-0.1.13"
                           ".dist-info)")
    # The fixes name what this audio-xval was installed from: here, this checkout.
    target = origin.origin().pip_target
    assert target in ("-e .", f"-e {ROOT}")
    assert "install audio-xval in its own virtual environment (python -m venv .venv && " \
           f".venv/bin/pip install {target})" in said
    assert said.endswith("or here: pip uninstall preprocessing && pip install "
                         f"--force-reinstall --no-deps {target}.")
    assert namesake_problem("augmentation", home, str(home / "augmentation" / "__init__.py")) \
        == ""  # the other two are ours
    (home / "Augmentation.egg-info").mkdir()  # a develop install: no version, any case
    assert "audio-xval and augmentation (" in namesake_problem(
        "augmentation", home, str(home / "augmentation" / "__init__.py"))


def test_namesakes_a_namesake_that_shadows_ours_from_another_folder_is_named(tmp_path):
    """Ours editable (a checkout), the namesake installed regularly: Python finds theirs,
    in `site-packages`, where its `dist-info` is."""
    checkout = _tree(tmp_path / "checkout")
    site = tmp_path / "venv" / "site-packages"
    (site / "augmentation").mkdir(parents=True)
    (site / "augmentation" / "__init__.py").write_text("")
    (site / "augmentation-0.7.dist-info").mkdir()
    said = namesake_problem("augmentation", checkout, str(site / "augmentation" / "__init__.py"))
    assert "audio-xval and augmentation 0.7" in said and "pip uninstall augmentation" in said


@pytest.mark.parametrize("case, said", [
    ("elsewhere", "is {other}, not the one beside xval ({home}/preprocessing)"),
    ("namespace", "has no __init__.py (a namespace package: an uninstall removed it)"),
    ("unmarked", "is {home}/preprocessing/__init__.py, which another distribution has "
                 'overwritten (it lacks __distribution__ = "audio-xval")'),
])
def test_namesakes_a_package_that_is_not_ours_is_refused(case, said, tmp_path):
    home = _tree(tmp_path / "site-packages", marked=case != "unmarked")
    other = tmp_path / "elsewhere" / "preprocessing" / "__init__.py"
    other.parent.mkdir(parents=True)
    other.write_text(MARKER)
    where = {"elsewhere": str(other), "namespace": None,
             "unmarked": str(home / "preprocessing" / "__init__.py")}[case]
    found = namesake_problem("preprocessing", home, where)
    assert found.startswith("the package preprocessing of audio-xval ")
    assert said.format(home=home, other=other) in found and "\n" not in found
    assert found.endswith("or here: pip install --force-reinstall --no-deps "
                          f"{origin.origin().pip_target}.")


def test_namesakes_the_error_line_replaces_the_traceback_of_this_error_only(capsys):
    seen = []
    hook = namesakes._ErrorLine(lambda *exc: seen.append(exc[1]))
    hook(NamesakeError, NamesakeError("the package x is shared"), None)
    assert capsys.readouterr().err == "error: the package x is shared\n"
    other = ValueError("not ours")
    hook(ValueError, other, None)
    assert seen == [other] and capsys.readouterr().err == ""
    assert issubclass(NamesakeError, ImportError)


def test_namesakes_our_packages_carry_the_marker_and_pass_here():
    for name in NAMES:
        source = (ROOT / name / "__init__.py").read_text()
        assert MARKER in source.splitlines(), name
        imports = [node for node in ast.parse(source).body
                   if isinstance(node, (ast.Import, ast.ImportFrom))
                   and getattr(node, "module", None) not in ("typing", "__future__")]
        assert ast.unparse(imports[0]) == "import xval", name  # the check runs first
    namesakes.refuse_namesakes.__wrapped__()  # this checkout and its editable install


def _site_copy(root):
    """Our four packages copied into `root` (a folder on `PYTHONPATH`, as site-packages)."""
    for name in OURS:
        shutil.copytree(ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def _python(*args, path, cwd):
    env = {**_env(), "PYTHONPATH": str(path)}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_namesakes_a_process_prints_one_line_and_exits_before_the_engine(tmp_path):
    """Real processes on a copy of the packages: `import xval`, `import architectures` and
    `python -m preprocessing` beside a namesake's `dist-info` print one `error:` line (no
    traceback; before the engine is imported); after the namesake's uninstall left a
    namespace package, the same."""
    site = _site_copy(tmp_path / "site")
    (site / "preprocessing-0.1.13.dist-info").mkdir()
    for args in (["-c", "import xval"], ["-c", "import architectures"],
                 ["-m", "preprocessing", "--help"]):
        proc = _python(*args, path=site, cwd=tmp_path)
        assert proc.returncode == 1 and proc.stdout == "", proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith("error: the package preprocessing is shared by two "
                               "distributions: audio-xval and preprocessing 0.1.13"), line
    (site / "preprocessing-0.1.13.dist-info").rmdir()
    scripts = tmp_path / "scripts"  # a script beside a module named as one of ours
    scripts.mkdir()
    (scripts / "augmentation.py").write_text("")
    (scripts / "run.py").write_text("import xval\n")
    proc = _python(scripts / "run.py", path=site, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr
    [line] = proc.stderr.splitlines()
    assert line == (f"error: the package augmentation of audio-xval is hidden by the module "
                    f"{scripts / 'augmentation.py'} (the folder of the script Python runs "
                    "comes first on its path); run the script as a module (python -m "
                    "PACKAGE.SCRIPT) from elsewhere, or rename augmentation.py."), line
    (site / "preprocessing" / "__init__.py").unlink()
    proc = _python("-c", "import xval", path=site, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith(
        "error: the package preprocessing of audio-xval has no __init__.py"), proc.stderr


# -- Fresh virtual environments with the real namesakes --------------------------------------

NAMESAKE_WHEELS = {  # as the package index serves them (sha256 checked)
    "preprocessing==0.1.13": ("preprocessing-0.1.13-py3-none-any.whl",
                              "7323b9bd514f676019b3bd5d97360df0cc7262a58fb7eee6e80e87a1894c7f15"),
    "augmentation==0.7": ("augmentation-0.7-py3-none-any.whl",
                          "545549788fa05dae1f0de724a3bc0008ede9d7f119ed43d697c0c55dd4f70dc8"),
    "architectures==0.2.7": ("architectures-0.2.7-py3-none-any.whl",
                             "aebb0fb90b6cd414eba48bf647fcca72fee5165f21eb385adaabcec9dd58ac90"),
}


def _run(args, cwd, code=0):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=300)
    assert code is None or proc.returncode == code, \
        f"{' '.join(map(str, args))}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """The namesakes' wheels (downloaded here, at test time: the product downloads
    nothing), ours built from a copy of the sources, and the copy."""
    base = tmp_path_factory.mktemp("namesakes")
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
          "-d", base / "index", *NAMESAKE_WHEELS], base)
    found = {}
    for spec, (file, sha256) in NAMESAKE_WHEELS.items():
        assert hashlib.sha256((base / "index" / file).read_bytes()).hexdigest() == sha256
        found[spec.split("==")[0]] = base / "index" / file
    source = base / "audio-xval"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", base / "ours", source], base)
    [ours] = (base / "ours").glob("audio_xval-*.whl")
    return base, found, ours, source


def _venv(base, name, *installs):
    """A fresh venv without pip, filled by this interpreter's pip (`--no-deps`), one
    `pip install` per item of `installs`."""
    venv = base / name
    _run([sys.executable, "-m", "venv", "--without-pip", venv], base)
    for install in installs:
        _pip(venv, "install", *install)
    return venv


def _pip(venv, command, *args):
    extra = ["--no-deps", "--no-compile"] if command == "install" else ["-y"]
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", command, "-q",
          *extra, *args], venv.parent)


def _refused(python, cwd, *args, namesake=None):
    """The one `error:` line a command prints (exit 1), naming the namesake's distribution
    where one is installed."""
    proc = _run([python, *args], cwd, code=1)
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: the package "), line
    if namesake:
        assert f"audio-xval and {namesake} (" in line, line
    return line


@pytest.mark.slow
def test_namesakes_refused_in_a_fresh_venv(wheels, tmp_path):
    """Each install order in fresh venvs (`--no-deps`: `import xval` needs no other
    package, so the check is reached without the engine's): ours alone works; a namesake after
    ours, all three before ours, ours editable under one: `import xval`, the namesake's
    own import and `python -m preprocessing`/`augmentation` are refused in one line naming
    the distribution; its uninstall leaves a namespace package, refused too, until ours is
    reinstalled."""
    base, found, ours, source = wheels
    work = tmp_path / "work"
    work.mkdir()
    # A, B, E: ours; then the preprocessing namesake; then its uninstall; then ours again.
    venv = _venv(base, "b", [ours])
    python = venv / "bin" / "python"
    origins = _run([python, "-c", "import importlib.util as u, xval; print(*(u.find_spec(n)"
                                  ".origin for n in ('preprocessing', 'architectures', "
                                  "'augmentation')))"], work).stdout.split()
    assert len(origins) == 3 and all(o.startswith(str(venv)) for o in origins), origins
    assert _run([python, "-m", "xval", "--version"], work).stdout.startswith("audio-xval ")
    _pip(venv, "install", found["preprocessing"])
    line = _refused(python, work, "-c", "import xval", namesake="preprocessing 0.1.13")
    assert line.endswith(f"pip install --force-reinstall --no-deps {ours}.")  # its wheel
    _refused(python, work, "-m", "preprocessing", "--help", namesake="preprocessing 0.1.13")
    _pip(venv, "uninstall", "preprocessing")
    assert "has no __init__.py" in _refused(python, work, "-c", "import xval")
    _pip(venv, "install", "--force-reinstall", ours)
    _run([python, "-c", "import xval"], work)
    # C: the three namesakes, then ours over them: their users are told too.
    python = _venv(base, "c", list(found.values()), [ours]) / "bin" / "python"
    for name in ("xval", *NAMES):
        _refused(python, work, "-c", f"import {name}", namesake="preprocessing 0.1.13")
    # D: ours editable (a copy of the sources), then the augmentation namesake, which
    # Python finds first (setuptools' editable finder comes after site-packages).
    python = _venv(base, "d", ["-e", source],
                   [found["augmentation"]]) / "bin" / "python"
    _refused(python, work, "-m", "augmentation", "--help", namesake="augmentation 0.7")
    _refused(python, work, "-c", "import xval", namesake="augmentation 0.7")
