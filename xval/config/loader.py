"""`config.ini`: read once, at the edge, into a validated `Config` object."""

import configparser
import copy
import difflib
import os
from pathlib import Path
from typing import Any

import xval.config.schema as _schema
from xval.core.errors import ConfigurationError

# Type of every key, per section ("?" marks keys whose value may be `none`).
SCHEMA = {section: {key: spec.kind + ("?" if spec.none else "") for key, spec in keys.items()}
          for section, keys in _schema.SCHEMA.items()}


class Config:
    """Validated contents of `config.ini`.

    Attributes are the sections, each a `dict` of typed values: `config.training["epochs"]`.
    Paths in `[paths]` are absolute (resolved against the folder of the file).

    Args:
        sections: dict of section name to dict of typed values.
        path: the file the values came from, or `None`.
    """

    # The sections (set from the schema's section names in __init__), typed for readers.
    paths: dict[str, Any]
    backend: dict[str, Any]
    folds: dict[str, Any]
    training: dict[str, Any]
    features: dict[str, Any]
    augmentation: dict[str, Any]
    report: dict[str, Any]

    def __init__(self, sections, path=None):
        self.path = Path(path) if path else None
        self._sections = sections
        for name in SCHEMA:
            setattr(self, name, sections[name])

    @property
    def data_dir(self):
        return Path(self.paths["data_dir"])

    @property
    def results_dir(self):
        return Path(self.paths["results_dir"])

    def replace(self, **sections):
        """Returns a copy with some keys changed: `config.replace(paths={"data_dir": d})`.

        Args:
            **sections: section name to a dict of keys to new values (checked like the file).

        Returns:
            A new `Config`.
        """
        new = copy.deepcopy(self._sections)
        for section, values in sections.items():
            if section not in SCHEMA:
                raise ConfigurationError(_unknown("section", section, SCHEMA, "config.ini"))
            for key, value in values.items():
                if key not in SCHEMA[section]:
                    raise ConfigurationError(
                        _unknown("key", key, SCHEMA[section], f"[{section}]")
                    )
                new[section][key] = value
        _validate(new, self.path)
        return Config(new, self.path)

    def to_dict(self):
        """Returns every section as plain dicts (JSON-serialisable)."""
        return copy.deepcopy(self._sections)

    def __repr__(self):
        return f"Config(path={str(self.path)!r})"


def _unknown(kind, name, valid, where):
    close = difflib.get_close_matches(name, list(valid), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown {kind} {name!r} in {where}.{hint} Valid: {', '.join(valid)}."


def find_config(script=None):
    """Finds `config.ini` for a run.

    Order: the `XVAL_CONFIG` environment variable (which must name an existing file), the
    project root above the experiment script (`experiments/../config.ini`), the current
    directory.

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
    candidates = []
    if script:
        script = Path(script).resolve()
        candidates += [script.parent.parent / "config.ini", script.parent / "config.ini"]
    candidates.append(Path.cwd() / "config.ini")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        "No config.ini found; looked at "
        + ", ".join(str(c) for c in candidates)
        + ". Pass --config PATH or set XVAL_CONFIG."
    )


def load_config(path):
    """Reads and validates `config.ini` through the schema (`xval.schema`).

    Values are read literally: `%` has no special meaning (no interpolation).

    Args:
        path: path of the file.

    Returns:
        A `Config`.

    Raises:
        ConfigurationError: for a missing or unreadable file, a missing section or key, an
            unknown key, or a value of the wrong type or out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"Config file {str(path)!r} does not exist.")
    parser = configparser.ConfigParser(inline_comment_prefixes=None, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as e:
        raise ConfigurationError(f"Cannot parse {path}: {e}") from e
    where = f" in {path}"
    for section in parser.sections():
        if section not in SCHEMA:
            raise ConfigurationError(_unknown("section", section, SCHEMA, str(path)))
    sections = {}
    for section, keys in SCHEMA.items():
        if not parser.has_section(section):
            raise ConfigurationError(f"Section [{section}] is missing from {path}.")
        for key in parser[section]:
            if key not in keys:
                raise ConfigurationError(_unknown("key", key, keys, f"[{section}] of {path}"))
        values = {}
        for key in keys:
            if not parser.has_option(section, key) and key in \
                    _schema.ADDED_KEYS.get(section, {}):
                values[key] = _schema.ADDED_KEYS[section][key]
                continue
            if not parser.has_option(section, key):
                raise ConfigurationError(
                    f"Key {key!r} is missing from [{section}] of {path}; add it (see the "
                    "project's config.ini for its default)."
                )
            values[key] = _schema.parse(section, key, parser.get(section, key), where=where)
        sections[section] = values
    for key in ("data_dir", "results_dir"):
        p = Path(sections["paths"][key]).expanduser()
        sections["paths"][key] = str(p if p.is_absolute() else (path.parent / p).resolve())
    _validate(sections, path)
    return Config(sections, path)


def _validate(sections, path):
    """Checks every section against the schema, in place (ints of float keys become floats)."""
    checked = _schema.validate(sections, where=f" in {path}" if path else "")
    for name, values in checked.items():
        sections[name].update(values)
