"""Code and environment snapshot of a run: what produced these results."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from xval.core.files import make_temp_dir

PACKAGES = ("xval", "architectures", "preprocessing", "augmentation")
_BACKEND_DISTS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "torch": ("torch",),
                  "jax": ("jax", "jaxlib")}


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def environment(backend: str | None) -> dict[str, Any]:
    """Python, Keras and backend versions, and the visible devices."""
    devices = None
    if shutil.which("nvidia-smi"):
        try:
            devices = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                     timeout=20).stdout.strip().splitlines()
        except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
            devices = None  # none, or garbage (a broken tool): no devices recorded
    return {
        "python": sys.version,
        "platform": platform.platform(),
        "keras": _version("keras"),
        "backend": backend,
        "backend_versions": {d: _version(d) for d in _BACKEND_DISTS.get(backend or "", ())
                             if _version(d)},
        "numpy": _version("numpy"),
        "librosa": _version("librosa"),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "CUDA_DEVICE_ORDER": os.environ.get("CUDA_DEVICE_ORDER"),
        "gpus": devices or [],
        "cpu_count": os.cpu_count(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _copy_tree(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        if path.suffix not in (".py", ".ini", ".md", ".txt", ".json"):
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _tree_hash(folder: Path) -> str:
    """Hash of a snapshot's files, without the environment files, the runs' command lines
    (`commands.json`) and earlier `runs/`."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if relative.parts[0] == "runs" or not path.is_file() \
                or path.name in ("environment.json", "pip_freeze.txt", "commands.json"):
            continue
        digest.update(str(relative).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _latest(code_dir: Path) -> Path:
    """The most recent snapshot folder: the newest `runs/<time>`, else `code_dir` itself."""
    runs = sorted((p for p in (code_dir / "runs").glob("*") if p.is_dir()),
                  key=lambda p: (p.stat().st_mtime, p.name)) if (code_dir / "runs").is_dir() \
        else []
    return runs[-1] if runs else code_dir


def package_folder(name: str) -> Path:
    """The folder of an installed package of the project, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _stage(stage: Path, script: str | Path | None, config_path: str | Path | None,
           backend: str | None) -> None:
    """Copies the script, config and packages into `stage`, with git and environment."""
    if script and Path(script).is_file():
        shutil.copy2(script, stage / Path(script).name)
    if config_path and Path(config_path).is_file():
        shutil.copy2(config_path, stage / "config.ini")
    for name in PACKAGES:
        _copy_tree(package_folder(name), stage / name)
    root = Path(script).resolve().parent if script else Path.cwd()
    commit = _git(root, "rev-parse", "HEAD")
    if commit:
        toplevel = (_git(root, "rev-parse", "--show-toplevel") or "").strip()
        status = _git(root, "status", "--porcelain") or ""
        (stage / "git.json").write_text(json.dumps(
            {"commit": commit.strip(), "toplevel": toplevel, "dirty": bool(status.strip())},
            indent=2))
        (stage / "git_diff.patch").write_text(_git(root, "diff", "HEAD") or "")
    freeze = sorted(f"{d.metadata['Name']}=={d.version}" for d in md.distributions()
                    if d.metadata["Name"])
    (stage / "pip_freeze.txt").write_text("\n".join(freeze) + "\n")
    (stage / "environment.json").write_text(json.dumps(environment(backend), indent=2))


def _place(stage: Path, code_dir: Path) -> Path:
    """Moves the staged snapshot into place: `code_dir` the first time, then a new
    `runs/<time>` folder when the code differs from the latest snapshot (else nothing)."""
    if not code_dir.exists():
        os.replace(stage, code_dir)
        return code_dir
    if _tree_hash(stage) == _tree_hash(_latest(code_dir)):
        shutil.rmtree(stage)
        return code_dir
    target = code_dir / "runs" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = 0
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name.split('_')[0]}_{suffix}")
    os.replace(stage, target)
    return target


def write_snapshot(code_dir: str | Path, *, script: str | Path | None,
                   config_path: str | Path | None, backend: str | None) -> Path:
    """Writes the snapshot into `code_dir` (a new `runs/<time>` sub-folder if the code changed).

    Contents: the experiment script, the four packages, config.ini, `git.json` (commit) and
    `git_diff.patch` when the project is a git checkout, `pip_freeze.txt`, and
    `environment.json`.

    Args:
        code_dir: the experiment's `code/` folder.
        script: the experiment script, or `None`.
        config_path: the config.ini used, or `None`.
        backend: the Keras backend name.

    Returns:
        The folder the snapshot is in.
    """
    code_dir = Path(code_dir)
    code_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = make_temp_dir(code_dir.parent, prefix=".code.")
    try:
        _stage(stage, script, config_path, backend)
        return _place(stage, code_dir)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
