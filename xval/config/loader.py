"""`config.ini`: read once, at the edge, into a validated `Config` object.

The configuration is layered: the package's defaults (`xval.config.schema`, every key with
its default and help) under the user's `config.ini`, which holds only what differs from them.
Every key the file names is validated (an unknown section or key is an error naming the
closest valid ones), and the merged result is checked as a whole (e.g. `fmin < fmax`).
`Config.source(section, key)` says where each value came from.

The file is read by `xval.config.inifile` (UTF-8 with or without a byte-order mark, any
line endings, every parse error with its line). In `[paths]`, `~` and environment variables
(`$HOME`, `${DATA}`) are expanded; a variable that is not set is an error naming it.
Relative paths are resolved against the folder of the file that names them; the default
`data` and `results` folders against the folder of the config file (the current directory
when there is none).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import xval.config.schema as _schema
from xval.config.inifile import parse_ini, read_ini
from xval.config.sections import (
    SECTIONS,
    AugmentationSettings,
    BackendSettings,
    DataSettings,
    FeatureSettings,
    FoldSettings,
    PathSettings,
    ReportSettings,
    TrainingSettings,
)
from xval.core.errors import ConfigurationError

PACKAGE_DEFAULT = "package default"
"""The source of a value no config file sets (see `Config.source`)."""

PATH_KEYS = ("data_dir", "results_dir")


class Config:
    """Validated configuration: the package defaults with a config file's values over them.

    Attributes are the sections, each a typed record (`xval.config.sections`):
    `config.training.epochs`, `config.report.selection_metric`; a record also reads as a
    mapping (`config.training["epochs"]`). Paths in `[paths]` are absolute.

    Args:
        sections: dict of section name to dict of typed values (every key).
        path: the file the values came from, or `None` (package defaults only).
        sources: `(section, key)` -> where the value came from (`PACKAGE_DEFAULT` or the
            file's path); keys not listed are package defaults.
    """

    paths: PathSettings
    backend: BackendSettings
    folds: FoldSettings
    data: DataSettings
    training: TrainingSettings
    features: FeatureSettings
    augmentation: AugmentationSettings
    report: ReportSettings

    def __init__(self, sections: dict[str, dict[str, Any]], path: str | Path | None = None,
                 sources: dict[tuple[str, str], str] | None = None) -> None:
        self.path = Path(path) if path else None
        self._sections = sections
        self._sources = dict(sources or {})
        for name, record in SECTIONS.items():
            setattr(self, name, record.of(sections[name]))

    @property
    def data_dir(self) -> Path:
        """The folder of feature stores (`[paths] data_dir`), absolute."""
        return Path(self.paths.data_dir)

    @property
    def results_dir(self) -> Path:
        """The folder of experiment results (`[paths] results_dir`), absolute."""
        return Path(self.paths.results_dir)

    def source(self, section: str, key: str) -> str:
        """Where a value came from: `"package default"`, or the config file's path."""
        return self._sources.get((section, key), PACKAGE_DEFAULT)

    def replace(self, **sections: dict[str, Any]) -> Config:
        """Returns a copy with some keys changed: `config.replace(paths={"data_dir": d})`.

        Args:
            **sections: section name to a dict of keys to new values (checked like the file).

        Returns:
            A new `Config`.
        """
        new = copy.deepcopy(self._sections)
        sources = dict(self._sources)
        for section, values in sections.items():
            _check_names(section, values, "")
            for key, value in values.items():
                new[section][key] = value
                sources[(section, key)] = "Config.replace"
        return Config(_validate(new, self.path), self.path, sources)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Returns every section as plain dicts (JSON-serialisable)."""
        return copy.deepcopy(self._sections)

    def __repr__(self) -> str:
        return f"Config(path={str(self.path)!r})"


def find_config(script: str | Path | None = None) -> Path:
    """Finds `config.ini` for a run.

    Order: the `XVAL_CONFIG` environment variable (which must name an existing file), the
    project root above the experiment script (`experiments/../config.ini`), the script's
    folder, the current directory.

    Args:
        script: path of the experiment script, or `None`.

    Returns:
        The path of the file.

    Raises:
        ConfigurationError: when `XVAL_CONFIG` names a missing file, or none is found.
    """
    env = os.environ.get("XVAL_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"XVAL_CONFIG={env!r} is not a file. Point it at a config.ini, or unset it "
                "to use the project's config.ini."
            )
        return path
    if env is not None:
        raise ConfigurationError("XVAL_CONFIG is set but empty; point it at a config.ini, or "
                                 "unset it.")
    candidates = []
    if script:
        resolved = Path(script).resolve()
        candidates += [resolved.parent.parent / "config.ini", resolved.parent / "config.ini"]
    candidates.append(Path.cwd() / "config.ini")
    for candidate in candidates:
        if candidate.exists() or candidate.is_symlink():  # the reader says what is wrong
            return candidate
    raise ConfigurationError(
        "No config.ini found; looked at "
        + ", ".join(str(c) for c in candidates)
        + ". Pass --config PATH, set XVAL_CONFIG, or write one with `python -m xval init` "
        "(a config.ini holds only what differs from the package defaults: `[paths]` is "
        "enough)."
    )


def load_config(path: str | Path | None, *, text: str | None = None) -> Config:
    """Reads a `config.ini` over the package defaults and validates the result.

    Values are read literally: `%` has no special meaning (no interpolation).

    Args:
        path: path of the file; `None` gives the package defaults (paths relative to the
            current directory).
        text: the file's content, when it is not (yet) on disk: `path` then only names it
            and gives the folder relative paths start from. Defaults to `None` (read
            `path`).

    Returns:
        A `Config`.

    Raises:
        ConfigurationError: for a missing, unreadable or unparsable file, an unknown section
            or key (naming the closest valid ones), or a value of the wrong type or out of
            range, naming the key, the value, the file and what was expected.
    """
    sections = _schema.defaults()
    if path is None:
        _resolve_paths(sections, Path.cwd())
        return Config(_validate(sections, None), None)
    path = Path(path)
    given = _read_file(path, text)
    sources = {}
    for section, values in given.items():
        sections[section].update(values)
        sources.update({(section, key): str(path) for key in values})
    _old_training_defaults(sections, given.get("training", {}))
    _resolve_paths(sections, path.parent)
    return Config(_validate(sections, path), path, sources)


def _read_file(path: Path, text: str | None = None) -> dict[str, dict[str, Any]]:
    """The typed values a config file sets, checked key by key (errors name the line)."""
    raw = read_ini(path) if text is None else parse_ini(text, f"Config file {str(path)!r}")
    given = {}
    for section, values in raw.items():
        for key, (_, line) in values.items():
            _check_names(section, {key: None}, f" of {path}, line {line}")
        given[section] = {key: _schema.parse(section, key, value,
                                             where=f" in {path}, line {line}")
                          for key, (value, line) in values.items()}
    return given


def _check_names(section: str, values: dict[str, Any], where: str) -> None:
    if section not in _schema.SCHEMA:
        raise ConfigurationError(_schema.unknown_name("section", section, _schema.SCHEMA,
                                                      f"config.ini{where}"))
    for key in values:
        if key not in _schema.SCHEMA[section]:
            raise ConfigurationError(_schema.unknown_name(
                "key", key, _schema.SCHEMA[section], f"[{section}]{where}"))


def _old_training_defaults(sections: dict[str, dict[str, Any]],
                           training: dict[str, Any]) -> None:
    """A `[training]` section that names every key of release 0.1.0 is a complete file of that
    release: the keys added since (`schema.ADDED_KEYS`) take the values that train as before
    them, not today's defaults, so its results reproduce and resume."""
    added = _schema.ADDED_KEYS["training"]
    original = set(_schema.SCHEMA["training"]) - set(added)
    if original <= set(training):
        for key, value in added.items():
            if key not in training:
                sections["training"][key] = value


def _resolve_paths(sections: dict[str, dict[str, Any]], folder: Path) -> None:
    """Makes `[paths]` and `[backend] compile_cache` absolute, relative to `folder` (the
    config file's, or the current directory); a path of `[paths]` that exists and is not a
    folder (a file, a FIFO) is an error, and so is an empty `compile_cache` or one that
    reads "off" (`_check_cache`)."""
    for key in PATH_KEYS:
        raw = sections["paths"][key]
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigurationError(
                f"[paths] {key} = {raw!r}: expected a folder (e.g. "
                f"{_schema.SCHEMA['paths'][key].default!r}, relative to the config file).")
        p = _expand_user(raw, expand(raw, f"[paths] {key}"), f"[paths] {key}")
        p = p if p.is_absolute() else (folder / p).resolve()
        if p.exists() and not p.is_dir():
            raise ConfigurationError(
                f"[paths] {key} = {raw!r}: {p} is a file, not a folder; give a folder.")
        sections["paths"][key] = str(p)
    cache = sections.get("backend", {}).get("compile_cache")
    if isinstance(cache, str):
        _check_cache(cache)
        p = _expand_user(cache, expand(cache, "[backend] compile_cache"),
                         "[backend] compile_cache")
        sections["backend"]["compile_cache"] = str(p if p.is_absolute()
                                                   else (folder / p).resolve())


def _expand_user(raw: str, text: str, what: str) -> Path:
    """`text` as a path with a leading `~` or `~user` expanded.

    Args:
        raw: the value as written in config.ini (for the message).
        text: the value with its environment variables expanded.
        what: how the message names it (`"[paths] data_dir"`).

    Returns:
        The path, `~` expanded.

    Raises:
        ConfigurationError: for a `~user` naming no user (or a `~` with no home directory
            to expand it to).
    """
    try:
        return Path(text).expanduser()
    except RuntimeError:
        head = Path(text).parts[0] if Path(text).parts else text
        if head == "~":
            raise ConfigurationError(
                f"{what} = {raw!r}: no home directory to expand ~ for (HOME is not set); "
                "set HOME, or write the path itself.") from None
        raise ConfigurationError(
            f"{what} = {raw!r}: no user {head[1:]!r} to expand {head} for; write the path "
            "itself.") from None


_CACHE_OFF = ("off", "false", "no", "0", "disabled")
"""What a user may write for "no cache" instead of `none`: refused, `none` suggested."""


def _check_cache(cache: str) -> None:
    """Refuses a `[backend] compile_cache` that would name a folder by accident: an empty
    value (the current directory's `jax`), or a word meant as "off" (a folder named so)."""
    expected = ("expected a folder (e.g. '~/.cache/xval', relative to the config file), or "
                "none to keep no compiled programs")
    if not cache.strip():
        raise ConfigurationError(
            f"[backend] compile_cache = {cache!r}: {expected}; write compile_cache = none, "
            "or a folder, or remove the line for the default.")
    if cache.strip().lower() in _CACHE_OFF:
        raise ConfigurationError(
            f"[backend] compile_cache = {cache!r}: {expected}; write compile_cache = none "
            f"to keep none (or ./{cache.strip()} for a folder of that name).")


_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def expand(text: str, what: str) -> str:
    """`text` with environment variables (`$NAME`, `${NAME}`) replaced by their values.

    Args:
        text: a path as written in config.ini.
        what: how the message names it (`"[paths] data_dir"`).

    Returns:
        The expanded text (`~` is left for `Path.expanduser`).

    Raises:
        ConfigurationError: for a variable that is not set, or a `${` without a name.
    """
    def value(match: re.Match[str]) -> str:
        name = match["braced"] if match["braced"] is not None else match["plain"]
        if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigurationError(f"{what} = {text!r}: {match[0]!r} is not a variable "
                                     "name; write $NAME or ${NAME}.")
        if name not in os.environ:
            raise ConfigurationError(
                f"{what} = {text!r}: environment variable {name} is not set; set it, or "
                "write the path itself.")
        return os.environ[name]

    return _VARIABLE.sub(value, text)


def _validate(sections: dict[str, dict[str, Any]],
              path: Path | None) -> dict[str, dict[str, Any]]:
    """Checks every section against the schema; returns the checked values (ints of float
    keys become floats)."""
    return _schema.validate(sections, where=f" in {path}" if path else "")
