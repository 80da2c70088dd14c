"""Where this audio-xval was installed from, and the `pip install` lines that fit it.

audio-xval is not on PyPI: it is installed from its repository, a checkout (`pip install
-e .` while developing, `pip install .`) or a wheel built from one (`pip wheel --no-deps
-w dist .`, then `pip install dist/audio_xval-0.1.0-py3-none-any.whl`). pip records where
it installed a distribution from (`direct_url.json`, PEP 610: a folder, editable or not, a
file or a URL; no record when it came from a package index by name). Every message that
tells a user to install something takes its line from here, so that it works where their
audio-xval came from:

- an optional part (an extra of `pyproject.toml`): from a checkout installed editable,
  `pip install -e '.[search]'` (the checkout's path where the command runs elsewhere);
  otherwise the extra's own requirements, `pip install 'optuna>=4,<6'` (read from the
  installed metadata), which need neither the wheel nor the checkout again;
- audio-xval itself (a fresh environment, a reinstall): the folder, file or URL pip
  installed it from, or its name where an index served it.

Reads the installed metadata when a line is asked for, never at import.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["DISTRIBUTION", "Origin", "extra_install", "origin", "requirements_of"]

DISTRIBUTION = "audio-xval"
"""The distribution that ships `xval`, `architectures`, `preprocessing` and
`augmentation`."""



@dataclasses.dataclass(frozen=True)
class Origin:
    """Where the installed audio-xval came from.

    Attributes:
        kind: `"checkout"` (the packages are imported from a checkout: installed with
            `pip install -e`, or on `PYTHONPATH`), `"folder"` (`pip install PATH` of a
            checkout or unpacked sources), `"file"` (a wheel or a source archive), `"url"`
            (a URL or a version-control repository) or `"index"` (by name, from a package
            index).
        target: what `pip install` takes to install it again: a path, a URL,
            `git+URL@COMMIT`, or `audio-xval`.
    """

    kind: str
    target: str

    @property
    def pip_target(self) -> str:
        """`target` as `pip install` takes it (`-e PATH` for a checkout, quoted
        where the shell needs it; a folder that is the current one is `.`)."""
        target = self.target
        if self.kind in ("checkout", "folder") and _same(target, os.getcwd()):
            target = "."
        quoted = shlex.quote(target)
        return f"-e {quoted}" if self.kind == "checkout" else quoted


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _path(url: str) -> str:
    """A `file://` URL as a path; any other URL as it is."""
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else url


def _home() -> Path:
    """The folder that holds the `xval` package (a checkout, or `site-packages`)."""
    return Path(__file__).resolve().parents[2]


def _installed() -> importlib.metadata.Distribution | None:
    """The metadata of the audio-xval installed beside the imported `xval` (its
    `dist-info` in the same `site-packages`), or `None`."""
    for info in sorted(_home().glob("audio_xval-*.dist-info")):
        return importlib.metadata.Distribution.at(info)
    return None


def origin() -> Origin:
    """Where the audio-xval this process imports was installed from (pip's record).

    Returns:
        An `Origin`: `"checkout"` (with its folder) where the packages are imported from a
        checkout (installed editable, or not installed), `"index"` where pip recorded no
        direct origin.
    """
    home = _home()
    if (home / "pyproject.toml").is_file():
        return Origin("checkout", str(home))
    dist = _installed()
    try:
        record = json.loads((dist.read_text("direct_url.json") if dist else None) or "null")
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("url"), str):
        return Origin("index", DISTRIBUTION)
    url = record["url"]
    if isinstance(record.get("dir_info"), dict):
        return Origin("folder", _path(url))
    if isinstance(record.get("vcs_info"), dict):
        commit = record["vcs_info"].get("commit_id")
        vcs = record["vcs_info"].get("vcs", "git")
        return Origin("url", f"{vcs}+{url}" + (f"@{commit}" if commit else ""))
    return Origin("file" if url.startswith("file:") else "url", _path(url))


def requirements_of(extra: str) -> list[str]:
    """The requirements the installed audio-xval declares for `extra` (`"torch>=2.1,<3"`),
    in its metadata's order; `[]` when it declares none or is not installed."""
    dist = _installed()
    if dist is None:
        try:
            dist = importlib.metadata.distribution(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            return []
    declared = dist.requires or []
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    found = []
    for line in declared:
        requirement, _, condition = line.partition(";")
        if marker.search(condition):
            found.append(requirement.strip())
    return found


def extra_install(extra: str) -> str:
    """The command that installs the extra `extra` of audio-xval where it came from.

    Args:
        extra: an extra of `pyproject.toml` (`"search"`).

    Returns:
        `pip install -e '.[search]'` for a checkout (installed editable, or on `PYTHONPATH`),
        else the extra's requirements, `pip install 'optuna>=4,<6'`, which need neither
        the wheel nor the checkout it was installed from (where the metadata lists none:
        what it was installed from, with the extra, `pip install 'audio-xval[search]'`).
    """
    found = origin()
    if found.kind == "checkout":
        target = "." if _same(found.target, os.getcwd()) else found.target
        return f"pip install -e {shlex.quote(f'{target}[{extra}]')}"
    requirements = requirements_of(extra)
    if requirements:
        return "pip install " + " ".join(shlex.quote(r) for r in requirements)
    return f"pip install {shlex.quote(f'{found.target}[{extra}]')}"
