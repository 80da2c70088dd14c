"""`config.ini`: read once, at the edge, into a validated `Config` object."""

import configparser
import copy
import difflib
import os
from pathlib import Path

from xval.errors import ConfigurationError

# Type of every key, per section. "?" marks keys whose value may be `none`.
SCHEMA = {
    "paths": {"data_dir": "str", "results_dir": "str"},
    "backend": {"backend": "str", "executor": "str", "jobs_per_gpu": "int"},
    "folds": {
        "val_fraction": "float",
        "test_fraction": "float",
        "stratify": "bool",
        "fold_seed": "int",
    },
    "training": {
        "optimizer": "str",
        "learning_rate": "float",
        "lr_schedule": "str",
        "batch_size": "int",
        "epochs": "int",
        "patience": "int",
        "save_model_metric": "str",
        "save_model_mode": "str",
        "class_weights": "bool",
        "mixed_precision": "bool",
        "seed": "int",
        "verbose": "int",
        "load_model": "str?",
        "freeze_layers": "int",
        "tensorboard": "bool",
        "generator_workers": "int",
    },
    "features": {
        "sample_rate": "int",
        "feature": "str",
        "compression": "str",
        "power_exponent": "float",
        "n_fft": "int",
        "hop_length": "int",
        "n_mels": "int",
        "n_mfcc": "int",
        "fmin": "float",
        "fmax": "float?",
        "n_bins": "int",
        "bins_per_octave": "int",
        "segment_seconds": "float",
        "segment_hop_seconds": "float",
        "dtype": "str",
        "peak_normalize": "bool",
        "silence_threshold_db": "float",
        "workers": "int",
    },
    "augmentation": {
        "p_noise": "float",
        "p_eq": "float",
        "p_reverb": "float",
        "p_stretch": "float",
        "min_snr_db": "float",
        "max_snr_db": "float",
        "min_eq_gain_db": "float",
        "max_eq_gain_db": "float",
        "min_rate": "float",
        "max_rate": "float",
        "min_room_size": "float",
        "max_room_size": "float",
        "seed": "int",
        "workers": "int",
    },
    "report": {"selection_metric": "str", "alpha": "float"},
}

BACKENDS = ("tensorflow", "torch", "jax")
EXECUTORS = ("inline", "process", "ray")

_GETTERS = {"str": "get", "int": "getint", "float": "getfloat", "bool": "getboolean"}


class Config:
    """Validated contents of `config.ini`.

    Attributes are the sections, each a `dict` of typed values: `config.training["epochs"]`.
    Paths in `[paths]` are absolute (resolved against the folder of the file).

    Args:
        sections: dict of section name to dict of typed values.
        path: the file the values came from, or `None`.
    """

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

    Order: the `XVAL_CONFIG` environment variable, the project root above the experiment
    script (`experiments/../config.ini`), the current directory.

    Args:
        script: path of the experiment script, or `None`.

    Returns:
        The path of the file.

    Raises:
        ConfigurationError: when none is found.
    """
    candidates = []
    if os.environ.get("XVAL_CONFIG"):
        candidates.append(Path(os.environ["XVAL_CONFIG"]))
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
    """Reads and validates `config.ini` with configparser's typed getters.

    Args:
        path: path of the file.

    Returns:
        A `Config`.

    Raises:
        ConfigurationError: for a missing file, section or key, an unknown key, or a value
            of the wrong type or out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"Config file {str(path)!r} does not exist.")
    parser = configparser.ConfigParser(inline_comment_prefixes=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as e:
        raise ConfigurationError(f"Cannot parse {path}: {e}") from e
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
        for key, kind in keys.items():
            if not parser.has_option(section, key):
                raise ConfigurationError(
                    f"Key {key!r} is missing from [{section}] of {path}; add it (see the "
                    "project's config.ini for its default)."
                )
            optional = kind.endswith("?")
            kind = kind.rstrip("?")
            raw = parser.get(section, key).strip()
            if optional and raw.lower() == "none":
                values[key] = None
                continue
            try:
                values[key] = getattr(parser, _GETTERS[kind])(section, key)
            except ValueError as e:
                raise ConfigurationError(
                    f"[{section}] {key} = {raw!r} in {path}: expected {kind}. ({e})"
                ) from e
        sections[section] = values
    for key in ("data_dir", "results_dir"):
        p = Path(sections["paths"][key]).expanduser()
        sections["paths"][key] = str(p if p.is_absolute() else (path.parent / p).resolve())
    _validate(sections, path)
    return Config(sections, path)


def _validate(s, path):
    where = f" in {path}" if path else ""

    def choice(section, key, allowed):
        value = s[section][key]
        if value not in allowed:
            raise ConfigurationError(
                f"[{section}] {key} = {value!r}{where}: expected one of {', '.join(allowed)}."
            )

    def fraction(section, key):
        value = s[section][key]
        if not 0 < value < 1:
            raise ConfigurationError(
                f"[{section}] {key} = {value}{where}: expected a fraction between 0 and 1."
            )

    choice("backend", "backend", BACKENDS)
    choice("backend", "executor", EXECUTORS)
    fraction("folds", "val_fraction")
    fraction("folds", "test_fraction")
    choice("features", "feature", ("stft", "mel", "mfcc", "cqt"))
    choice("features", "compression", ("db", "log", "power", "none"))
    choice("features", "dtype", ("float32", "float16"))
    if s["backend"]["jobs_per_gpu"] < 1:
        raise ConfigurationError(f"[backend] jobs_per_gpu must be at least 1{where}.")
    for key in ("segment_seconds", "segment_hop_seconds"):
        if s["features"][key] <= 0:
            raise ConfigurationError(
                f"[features] {key} = {s['features'][key]}{where}: expected seconds > 0."
            )
    for key in ("p_noise", "p_eq", "p_reverb", "p_stretch"):
        if not 0 <= s["augmentation"][key] <= 1:
            raise ConfigurationError(
                f"[augmentation] {key} = {s['augmentation'][key]}{where}: expected a "
                "probability between 0 and 1."
            )
    for low, high in (("min_snr_db", "max_snr_db"), ("min_eq_gain_db", "max_eq_gain_db"),
                      ("min_rate", "max_rate"), ("min_room_size", "max_room_size")):
        if s["augmentation"][low] > s["augmentation"][high]:
            raise ConfigurationError(
                f"[augmentation] {low} = {s['augmentation'][low]} is greater than {high} = "
                f"{s['augmentation'][high]}{where}; swap them."
            )
