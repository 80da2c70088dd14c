"""The three generic top-level packages beside their namesakes on the package index: a clash
refused in one line at import.

audio-xval installs `xval` and three packages whose names other distributions on PyPI
also use: `preprocessing` (text preprocessing), `architectures` (diagrams) and
`augmentation` (image augmentation). One interpreter has one module of each name, and pip
installs a second distribution's files over the first's without a word: the later
`__init__.py` wins, the submodules of both stay, and uninstalling either deletes the shared
`__init__.py` (measured in fresh environments: docs/installation.md). No install order
lets both work, so the clash is refused where it shows: `import xval` and the first import
of each of the three check, once per process, that the package Python finds is
audio-xval's:

1. no distribution of the same name (`{name}-*.dist-info`) sits where ours or the package
   found is installed;
2. the package found is the one beside `xval` (regular, editable or checkout: the same
   folder), with an `__init__.py` (not a namespace left by an uninstall);
3. its `__init__.py` holds our marker line (`MARKER`).

The check is the standard library only: a `find_spec` (which imports nothing) and up to two
directory listings and three small reads, a few milliseconds; nothing is downloaded. A
refusal's fixes name what this audio-xval was installed from (`xval.core.origin`: a
checkout, a wheel, an index), read only then. In a
script or a command the refusal is one `error:` line (`sys.excepthook`), not a traceback.
A namesake installed under another distribution name before audio-xval is overwritten
without a trace this can see (only every installed RECORD would show it); ours then works.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from xval.core.origin import DISTRIBUTION
from xval.core.origin import origin as installed_from

__all__ = ["DISTRIBUTION", "MARKER", "NAMES", "NamesakeError", "namesake_problem",
           "refuse_namesakes"]

NAMES = ("preprocessing", "architectures", "augmentation")
"""The top-level packages whose names other distributions also use."""
MARKER = f'__distribution__ = "{DISTRIBUTION}"'
"""The line each of the three `__init__.py` holds (a namesake's does not)."""
_HEAD = 65536
"""The bytes of an `__init__.py` read for the marker."""


def _fixes() -> tuple[str, str]:
    """The two fixes, with what this audio-xval was installed from (`xval.core.origin`: a
    checkout, a wheel, an index): its own environment, and a reinstall here."""
    target = installed_from().pip_target
    return (f"install {DISTRIBUTION} in its own virtual environment (python -m venv .venv "
            f"&& .venv/bin/pip install {target})",
            f"pip install --force-reinstall --no-deps {target}")


class NamesakeError(ImportError):
    """A top-level package of audio-xval that another distribution has taken or broken (its
    message is one line: which, and the fix)."""


def _namesake(name: str, folders: Iterable[Path]) -> tuple[Path, str] | None:
    """The `dist-info` (or `egg-info`) folder of a distribution called `name` in one of
    `folders`, and its version (`""` where the folder names none), or `None`."""
    pattern = re.compile(rf"{re.escape(name)}(?:-([^-]+))?\.(?:dist|egg)-info", re.IGNORECASE)
    for folder in dict.fromkeys(folders):
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for entry in entries:
            match = pattern.fullmatch(entry)
            if match:
                return folder / entry, match.group(1) or ""
    return None


def _marked(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return MARKER.encode() in f.read(_HEAD)
    except OSError:
        return False


def namesake_problem(name: str, home: Path, origin: str | None) -> str:
    """Why the package `name` that Python finds is not audio-xval's, as one line, or `""`.

    Args:
        name: one of `NAMES`.
        home: the folder that holds `xval` (ours: `site-packages`, or a checkout).
        origin: the file that `import name` runs (a package's `__init__.py`, or a module
            of that name that hides the package); `None` for a namespace package (no
            `__init__.py`) or none found.

    Returns:
        The message (the package, what is wrong, the fix), or `""` when it is ours.
    """
    found = Path(origin) if origin else None
    clash = _namesake(name, [home, *([found.parent.parent] if found else [])])
    own_venv, reinstall = _fixes()
    if clash is not None:
        info, version = clash
        return (f"the package {name} is shared by two distributions: {DISTRIBUTION} and "
                f"{' '.join(filter(None, (name, version)))} ({info}), and one interpreter has "
                f"one module of that name (pip let one overwrite the other's files); "
                f"{own_venv}, or here: pip uninstall {name} && {reinstall}.")
    if found is None:
        what = "has no __init__.py (a namespace package: an uninstall removed it) or is missing"
    elif found.name != "__init__.py":  # e.g. a script's folder holds NAME.py
        return (f"the package {name} of {DISTRIBUTION} is hidden by the module {found} "
                f"(the folder of the script Python runs comes first on its path); run the "
                f"script as a module (python -m PACKAGE.SCRIPT) from elsewhere, or rename "
                f"{found.name}.")
    elif os.path.realpath(found) != os.path.realpath(home / name / "__init__.py"):
        what = f"is {found}, not the one beside xval ({home / name})"
    elif not _marked(found):
        what = f"is {found}, which another distribution has overwritten (it lacks {MARKER})"
    else:
        return ""
    return f"the package {name} of {DISTRIBUTION} {what}; {own_venv}, or here: {reinstall}."


class _ErrorLine:
    """`sys.excepthook` that prints a `NamesakeError` as one `error:` line and hands any
    other exception to the hook it replaced."""

    def __init__(self, previous: Callable[..., object]) -> None:
        self.previous = previous

    def __call__(self, kind: type[BaseException], value: BaseException,
                 traceback: TracebackType | None) -> None:
        if isinstance(value, NamesakeError):
            print(f"error: {value}", file=sys.stderr)
        else:
            self.previous(kind, value, traceback)


def _origin(name: str) -> str | None:
    module = sys.modules.get(name)
    spec = module.__spec__ if module is not None else importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    return origin if origin and origin.endswith((".py", ".pyc")) else None


@functools.cache
def refuse_namesakes() -> None:
    """Checks once per process that `NAMES` are audio-xval's (see the module's docstring).

    Raises:
        NamesakeError: naming the package, the distribution that clashes with it (where
            one is installed) and the fix; a script or a command then prints it as one
            `error:` line.
    """
    home = Path(__file__).resolve().parents[2]
    for name in NAMES:
        problem = namesake_problem(name, home, _origin(name))
        if problem:
            if not isinstance(sys.excepthook, _ErrorLine):
                sys.excepthook = _ErrorLine(sys.excepthook)
            raise NamesakeError(problem)
