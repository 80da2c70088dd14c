"""The schema of `config.ini`: every key of every section, its type, range and help.

One description serves three readers: `xval.config.load_config` (the file),
the command lines of `python -m preprocessing` and `python -m augmentation` (their flags'
types, choices and help, and the check of the merged values), and `xval.params.resolve`
(instance parameters are the `[training]` keys). A leaf module: it imports nothing of the
project except the leaves `xval.errors` and `xval.tasks` (whose registry gives the choices
of `task_type` and `[report] selection_metric`).

Example:

```python
from xval.config import schema

schema.check("features", "n_mels", 0)          # ConfigurationError: ... expected an integer >= 1
schema.check_section("features", {"fmin": 100.0, "fmax": 50.0, ...})  # fmin >= fmax
```
"""

import argparse
import configparser
import dataclasses
import difflib
import math
from dataclasses import dataclass

from xval.core.errors import ConfigurationError

__all__ = [
    "BACKENDS",
    "COMPRESSIONS",
    "selection_metrics",
    "task_types",
    "SCHEMA",
    "Key",
    "add_arguments",
    "bind_choices",
    "check",
    "check_section",
    "label",
    "parse",
    "validate",
]

BACKENDS = ("tensorflow", "torch", "jax")
COMPRESSIONS = ("db", "log", "power", "none")


def task_types():
    """The registered task names (`xval.tasks.names()`): the choices of `task_type`."""
    from xval import tasks  # on use: the task modules import numpy

    return tuple(tasks.names())


def selection_metrics():
    """`auto`, then every metric some registered task records for every split, then those
    of the embedding classifiers (`embedding_accuracy`, ...)."""
    import xval.config.embedding as embedding
    from xval import tasks

    return ("auto", *tasks.metric_names(), *embedding.metric_names())


# librosa.filters.window_bandwidth("hann"), for the CQT's Nyquist check.
_HANN_BANDWIDTH = 1.50018310546875
_KINDS = {"str": str, "int": int, "float": float, "bool": bool}
_NOUNS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}


@dataclass(frozen=True)
class Key:
    """One key of `config.ini`.

    Args:
        kind: `"str"`, `"int"`, `"float"` or `"bool"`.
        help: one line saying what the key does.
        none: whether `none` (Python `None`) is allowed. Defaults to `False`.
        choices: the allowed values, a function returning them (read at every check, so
            a registry's later additions count), or `None`.
        low: the lowest allowed value, or `None`.
        high: the highest allowed value, or `None`.
        open_low: `low` itself is excluded. Defaults to `False`.
        open_high: `high` itself is excluded. Defaults to `False`.
    """

    kind: str
    help: str
    none: bool = False
    choices: tuple = None
    low: float = None
    high: float = None
    open_low: bool = False
    open_high: bool = False

    def options(self):
        """The allowed values as a tuple, or `None` when any value of the kind goes."""
        values = self.choices() if callable(self.choices) else self.choices
        return None if values is None else tuple(values)

    def expected(self):
        """What a valid value is, in words: `"an integer >= 1"`, `"one of db, log"`."""
        if self.options():
            text = "one of " + ", ".join(self.options())
        else:
            text = _NOUNS[self.kind]
            if self.kind in ("int", "float"):
                if self.low is not None and self.high is not None:
                    text += (f" in {'(' if self.open_low else '['}{_num(self.low)}, "
                             f"{_num(self.high)}{')' if self.open_high else ']'}")
                elif self.low is not None:
                    text += f" {'>' if self.open_low else '>='} {_num(self.low)}"
                elif self.high is not None:
                    text += f" {'<' if self.open_high else '<='} {_num(self.high)}"
        if self.kind == "float" and not self.choices:
            text += " (finite)"
        return text + (", or none" if self.none else "")


def _num(x):
    return str(int(x)) if float(x).is_integer() else str(x)


def _int(help, low=None, high=None, **kw):
    return Key("int", help, low=low, high=high, **kw)


def _float(help, low=None, high=None, **kw):
    return Key("float", help, low=low, high=high, **kw)


def _choice(help, choices, **kw):
    return Key("str", help, choices=choices if callable(choices) else tuple(choices), **kw)


SCHEMA = {
    "paths": {
        "data_dir": Key("str", "folder of feature stores, one sub-folder per dataset"),
        "results_dir": Key("str", "folder receiving <dataset>/experiment_<N>/ result folders"),
    },
    "backend": {
        "backend": _choice("Keras backend (KERAS_BACKEND wins)", BACKENDS),
        # The choices are the registered executors (`xval.executors.registry`), bound when
        # that registry is imported (`bind_choices`).
        "executor": Key("str", "how jobs run: in this process, a fresh process per job, or "
                        "as Ray tasks"),
        "jobs_per_gpu": _int("jobs sharing one GPU (process executor; Ray: 1/N GPU each)", 1),
    },
    "folds": {
        "val_fraction": _float("fraction of each fold's training items held out for "
                               "validation", 0, 1, open_low=True, open_high=True),
        "test_fraction": _float("with num_folds = 1: fraction of items in the test set",
                                0, 1, open_low=True, open_high=True),
        "stratify": Key("bool", "balance labels across folds where the items allow it"),
        "fold_seed": _int("seed of the fold assignment", 0, 2**32 - 1),
    },
    "training": {
        "optimizer": _choice("optimizer", ("adam", "adamw", "sgd", "rmsprop")),
        "learning_rate": _float("learning rate", 0, open_low=True),
        "lr_schedule": _choice("learning-rate schedule", ("constant", "plateau", "cosine")),
        "batch_size": _int("batch size", 1),
        "epochs": _int("maximum epochs", 1),
        "patience": _int("epochs without improvement before stopping", 0),
        "save_model_metric": Key("str", "metric picking the best epoch (e.g. val_loss)"),
        "save_model_mode": _choice("direction of save_model_metric", ("auto", "min", "max")),
        "class_weights": Key("bool", "weight classes inversely to their frequency"),
        "mixed_precision": Key("bool", "train in mixed_float16"),
        "seed": _int("seed of weights and shuffling (fold i uses seed + i)", 0, 2**31 - 1),
        "verbose": _int("Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch",
                        0, 2),
        "load_model": Key("str", "a saved .keras model to start from", none=True),
        "freeze_layers": _int("freeze the first N layers of the loaded model (-1: every "
                              "convolutional layer)", -1),
        "tensorboard": Key("bool", "write TensorBoard logs"),
        "generator_workers": _int("generator mode: worker threads of the PyDataset", 0),
        "min_epochs": _int("epochs trained before early stopping and the best-epoch choice "
                           "start", 0),
        "warmup_epochs": _int("epochs of linear learning-rate warm-up from 0", 0),
        "time_masks": _int("SpecAugment: time masks per training row", 0),
        "time_mask_fraction": _float("SpecAugment: widest time mask, as a fraction of the "
                                     "frames", 0, 1),
        "freq_masks": _int("SpecAugment: frequency masks per training row", 0),
        "freq_mask_fraction": _float("SpecAugment: widest frequency mask, as a fraction of "
                                     "the bins", 0, 1),
        "freq_warp": _float("VTLP-like random stretch of the frequency axis per training row, "
                            "at most this fraction (0: off)", 0, 0.5),
        "time_warp": _float("speed perturbation: random rate change of each training row's "
                            "frames, at most this fraction (0: off)", 0, 0.5),
        "row_normalization": _choice("normalise each row over its own sounding frames: none, mean "
                                     "(CMN) or standard (CMVN)", ("none", "mean", "standard")),
        "refit_with_val": Key("bool", "train a fresh model per fold on the training plus "
                              "validation items for the best epoch count; its test scores "
                              "and model are the fold's"),
        "mixup_alpha": _float("mixup: Beta(alpha, alpha) mixing of training rows (0: off)", 0),
        "label_smoothing": _float("label smoothing of the classification targets", 0, 1,
                                  open_high=True),
        "embedding_classifier": _choice("a scikit-learn classifier trained per fold on "
                                        "embeddings: none, svm or logreg",
                                        ("none", "svm", "logreg")),
        "embedding_models": Key("str", "saved .keras models whose embeddings the classifier "
                                "uses ({fold}: the fold number; self: the fold's own model); "
                                "none: the fold's own model", none=True),
        "embedding_layer": Key("str", "layer of the embeddings (auto: bottleneck, else the "
                               "input of the last layer)"),
        "embedding_c": _float("C of the embedding classifier; none: chosen on the "
                              "validation rows", 0, open_low=True, none=True),
        "detection_threshold": _float("detection: a frame is active at this probability",
                                      0, 1, open_low=True, open_high=True),
        "median_filter_seconds": _float("detection: median filter of the frame decisions "
                                        "(seconds; 0: none)", 0),
        "min_event_seconds": _float("detection: shorter detected events are dropped "
                                    "(seconds)", 0),
        "min_gap_seconds": _float("detection: shorter gaps between two detected events are "
                                  "bridged (seconds)", 0),
    },
    "features": {
        "sample_rate": _int("sample rate audio is resampled to (Hz)", 1),
        # The choices are the registered feature types (`preprocessing.features`), bound
        # when that registry is imported (`bind_choices`).
        "feature": Key("str", "time-frequency feature"),
        "compression": _choice("compression of stft/cqt/mel magnitudes", COMPRESSIONS),
        "power_exponent": _float("exponent of power-law compression", 0, open_low=True),
        "n_fft": _int("FFT size (samples)", 2),
        "hop_length": _int("hop between frames (samples)", 1),
        "n_mels": _int("mel bands (mel, mfcc)", 1),
        "n_mfcc": _int("MFCC coefficients (at most n_mels)", 1),
        "fmin": _float("lowest frequency of mel and cqt bins (Hz)", 0),
        "fmax": _float("highest mel frequency (Hz); none: sample_rate / 2", 0, open_low=True,
                       none=True),
        "n_bins": _int("CQT bins", 1),
        "bins_per_octave": _int("CQT bins per octave", 1),
        "segment_seconds": _float("segment length (seconds)", 0, open_low=True),
        "segment_hop_seconds": _float("hop between segments (seconds)", 0, open_low=True),
        "dtype": _choice("storage type of features.npy", ("float32", "float16")),
        "peak_normalize": Key("bool", "scale every file to a peak of 1 before extraction"),
        "silence_threshold_db": _float("files whose peak is below this level (dBFS) are "
                                       "skipped as silent", high=0),
        "workers": _int("extraction processes (0: all cores)", 0),
    },
    "augmentation": {
        "p_noise": _float("probability of added noise", 0, 1),
        "p_eq": _float("probability of a seven-band EQ", 0, 1),
        "p_reverb": _float("probability of reverb", 0, 1),
        "p_stretch": _float("probability of a time stretch", 0, 1),
        "min_snr_db": _float("lowest signal-to-noise ratio of added noise (dB)"),
        "max_snr_db": _float("highest signal-to-noise ratio of added noise (dB)"),
        "min_eq_gain_db": _float("lowest gain of each EQ band (dB)"),
        "max_eq_gain_db": _float("highest gain of each EQ band (dB)"),
        "min_rate": _float("lowest time-stretch rate", 0, open_low=True),
        "max_rate": _float("highest time-stretch rate", 0, open_low=True),
        "min_room_size": _float("smallest simulated room (metres)", 1, open_low=True),
        "max_room_size": _float("largest simulated room (metres)", 1, open_low=True),
        "seed": _int("base seed of the augmented versions", 0, 2**32 - 1),
        "workers": _int("augmentation processes (0: all cores)", 0),
    },
    "report": {
        "selection_metric": _choice("validation metric selecting the best instance",
                                    selection_metrics),
        "alpha": _float("significance level of the test against the selected instance", 0, 1,
                        open_low=True, open_high=True),
    },
}

# Keys added after the first release, with the value that leaves training as it was before
# them: a config.ini written earlier, without them, gets these values, and results recorded
# before them count as made with these values (so they resume instead of conflicting).
ADDED_KEYS = {
    "training": {"min_epochs": 0, "warmup_epochs": 0, "time_masks": 0,
                 "time_mask_fraction": 0.1, "freq_masks": 0, "freq_mask_fraction": 0.1,
                 "mixup_alpha": 0.0, "label_smoothing": 0.0, "detection_threshold": 0.5,
                 "median_filter_seconds": 0.0, "min_event_seconds": 0.0,
                 "min_gap_seconds": 0.0, "row_normalization": "none",
                 "embedding_classifier": "none", "embedding_models": None,
                 "embedding_layer": "auto", "embedding_c": None,
                 "freq_warp": 0.0, "time_warp": 0.0, "refit_with_val": False},
}

# (low, high) pairs that must be ordered.
_RANGES = {
    "augmentation": (("min_snr_db", "max_snr_db"), ("min_eq_gain_db", "max_eq_gain_db"),
                     ("min_rate", "max_rate"), ("min_room_size", "max_room_size")),
}


def bind_choices(section, key, provider):
    """Makes a key's choices those of a registry in a higher layer.

    The schema sits below the packages whose registries name some values (executors are
    registered in `xval.executors`, above the configuration): each registry binds its names
    here when it is imported, and checks from then on accept exactly the registered names.
    Before that, any string is accepted here and the registry's own `get` refuses an unknown
    name where the value is used.

    Args:
        section: the config.ini section.
        key: the key.
        provider: a function returning the registered names (read at every check).
    """
    SCHEMA[section][key] = dataclasses.replace(SCHEMA[section][key], choices=provider)


def label(section, key, value, style="ini"):
    """How a setting is named in messages.

    Args:
        section: the config.ini section.
        key: the key.
        value: its value.
        style: `"ini"` (`[features] n_mels = 0`), `"flag"` (`--n-mels 0`), `"param"`
            (`n_mels=0`) or `"value"` (`0`, where the caller names the setting). Defaults
            to `"ini"`.

    Returns:
        The text.
    """
    if style == "flag":
        return f"--{key.replace('_', '-')} {value!r}"
    if style == "param":
        return f"{key}={value!r}"
    if style == "value":
        return repr(value)
    return f"[{section}] {key} = {value!r}"


def _spec(section, key, error):
    if section not in SCHEMA:
        raise error(_unknown("section", section, SCHEMA, "config.ini"))
    if key not in SCHEMA[section]:
        raise error(_unknown("key", key, SCHEMA[section], f"[{section}]"))
    return SCHEMA[section][key]


def _unknown(kind, name, valid, where):
    close = difflib.get_close_matches(str(name), list(valid), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown {kind} {name!r} in {where}.{hint} Valid: {', '.join(valid)}."


def parse(section, key, text, *, style="ini", where="", error=ConfigurationError):
    """Parses the text of a value (a config.ini line, a command-line flag) and checks it.

    Args:
        section: the config.ini section.
        key: the key.
        text: the value as written (`"none"` for `None` where allowed).
        style: how to name the setting in errors (see `label`). Defaults to `"ini"`.
        where: appended to the name in errors, e.g. `" in config.ini"`.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        The typed, checked value.

    Raises:
        ConfigurationError: when the text is not of the key's type or out of range.
    """
    spec = _spec(section, key, error)
    raw = text.strip()
    if spec.none and raw.lower() == "none":
        return None
    try:
        if spec.kind == "bool":
            states = configparser.ConfigParser.BOOLEAN_STATES
            if raw.lower() not in states:
                raise ValueError(raw)
            value = states[raw.lower()]
        elif spec.kind == "str":
            value = raw
        else:
            value = _KINDS[spec.kind](raw)
    except ValueError:
        raise error(
            f"{label(section, key, raw, style)}{where}: expected {spec.kind} "
            f"({spec.expected()})."
        ) from None
    return check(section, key, value, style=style, where=where, error=error)


def check(section, key, value, *, style="ini", where="", prefix="", error=ConfigurationError):
    """Checks a typed value against the schema (an int is accepted for a float key).

    Args:
        section: the config.ini section.
        key: the key.
        value: the value.
        style: how to name the setting in errors (see `label`). Defaults to `"ini"`.
        where: appended to the name in errors.
        prefix: put before the name in errors, e.g. `"instance 3: "`.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        The value (an int converted to float for a float key).

    Raises:
        ConfigurationError: naming the setting, the value and what was expected.
    """
    spec = _spec(section, key, error)

    def fail(extra=""):
        raise error(f"{prefix}{label(section, key, value, style)}{where}: expected "
                    f"{spec.expected()}{extra}.")

    if value is None:
        if spec.none:
            return None
        fail()
    if spec.kind == "bool":
        if not isinstance(value, bool):
            fail(f"; got {type(value).__name__}")
        return value
    if spec.kind == "str":
        if not isinstance(value, str):
            fail(f"; got {type(value).__name__}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (spec.kind == "int" and not isinstance(value, int)):
        fail(f"; got {type(value).__name__}")
    if spec.kind == "float":
        value = float(value)
        if not math.isfinite(value):
            fail()
    if spec.options() and value not in spec.options():
        fail()
    if spec.low is not None and (value < spec.low or (spec.open_low and value == spec.low)):
        fail()
    if spec.high is not None and (value > spec.high or (spec.open_high and value == spec.high)):
        fail()
    return value


def check_section(section, values, *, style="ini", where="", error=ConfigurationError):
    """Checks the keys given of one section, then the rules between them.

    Rules between keys: `[features]` fmin < fmax (none: sample_rate / 2), fmax at most
    sample_rate / 2, n_mfcc at most n_mels, the top CQT bin below sample_rate / 2;
    `[augmentation]` every min_x at most its max_x. A rule is checked when all of its keys
    are given.

    Args:
        section: the config.ini section.
        values: dict of key to typed value (some or all keys of the section).
        style: how to name settings in errors (see `label`). Defaults to `"ini"`.
        where: appended to names in errors.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        A new dict of checked values.

    Raises:
        ConfigurationError: naming the first bad setting, its value and what was expected.
    """
    out = {key: check(section, key, value, style=style, where=where, error=error)
           for key, value in values.items()}

    def name(key):
        return label(section, key, out[key], style)

    def has(*keys):
        return all(k in out for k in keys)

    for low, high in _RANGES.get(section, ()):
        if has(low, high) and out[low] > out[high]:
            other = f"{high} = {out[high]!r}" if style == "ini" else name(high)
            raise error(f"{name(low)} is greater than {other}{where}; swap them.")
    if section == "features":
        if has("sample_rate", "fmin", "fmax"):
            nyquist = out["sample_rate"] / 2
            if out["fmax"] is not None and out["fmax"] > nyquist:
                raise error(f"{name('fmax')}{where}: expected at most sample_rate / 2 = "
                            f"{_num(nyquist)} (sample_rate={out['sample_rate']}); lower it "
                            "or set it to none.")
            top = nyquist if out["fmax"] is None else out["fmax"]
            if out["fmin"] >= top:
                raise error(f"{name('fmin')}{where}: expected less than fmax = {_num(top)}"
                            f"{' (sample_rate / 2)' if out['fmax'] is None else ''}.")
        if has("feature", "n_mfcc", "n_mels") and out["feature"] == "mfcc" \
                and out["n_mfcc"] > out["n_mels"]:
            raise error(f"{name('n_mfcc')}{where}: expected at most n_mels = {out['n_mels']} "
                        "(MFCCs are computed from the mel bands).")
        if has("feature", "fmin", "n_bins", "bins_per_octave", "sample_rate") \
                and out["feature"] == "cqt":
            if out["fmin"] <= 0:
                raise error(f"{name('fmin')}{where}: the CQT needs fmin > 0.")
            top = out["fmin"] * 2 ** ((out["n_bins"] - 1) / out["bins_per_octave"])
            # librosa.cqt's own limit: the top bin's Hann filter must end below Nyquist.
            ratio = 2 ** (2 / out["bins_per_octave"])
            cutoff = top * (1 + 0.5 * _HANN_BANDWIDTH * (ratio - 1) / (ratio + 1))
            if cutoff >= out["sample_rate"] / 2:
                raise error(
                    f"{name('n_bins')}{where}: the top CQT bin ({top:.0f} Hz, from fmin="
                    f"{_num(out['fmin'])} and bins_per_octave={out['bins_per_octave']}) has "
                    f"a filter reaching {cutoff:.0f} Hz, not below sample_rate / 2 = "
                    f"{_num(out['sample_rate'] / 2)}; lower n_bins or fmin."
                )
    return out


def validate(sections, *, where="", error=ConfigurationError):
    """Checks a whole configuration: every section and key present and valid.

    Args:
        sections: dict of section name to dict of typed values.
        where: appended to names in errors, e.g. `" in /path/config.ini"`.
        error: the exception class to raise. Defaults to `ConfigurationError`.

    Returns:
        A new dict of checked sections.

    Raises:
        ConfigurationError: for an unknown or missing section or key, or a bad value.
    """
    for section in sections:
        if section not in SCHEMA:
            raise error(_unknown("section", section, SCHEMA, "config.ini"))
    out = {}
    for section, keys in SCHEMA.items():
        if section not in sections:
            raise error(f"Section [{section}] is missing{where}.")
        values = sections[section]
        for key in values:
            if key not in keys:
                raise error(_unknown("key", key, keys, f"[{section}]{where}"))
        missing = [k for k in keys if k not in values]
        if missing:
            raise error(f"Key {missing[0]!r} is missing from [{section}]{where}; add it (see "
                        "the project's config.ini for its default).")
        out[section] = check_section(section, values, where=where, error=error)
    return out


def _argparse_type(section, key):
    def convert(text):
        try:
            return parse(section, key, text, style="value")
        except ConfigurationError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = SCHEMA[section][key].kind
    return convert


def augmented_versions(name):
    """An argparse type for a number of augmented versions per file (an integer >= 0).

    Args:
        name: how the value is named in errors (`"N"`, `"--augment"`).
    """
    def convert(text):
        try:
            n = int(text)
        except ValueError:
            n = -1
        if n < 0:
            raise argparse.ArgumentTypeError(
                f"{name} {text!r}: expected the number of augmented versions per file, an "
                "integer >= 0")
        return n

    convert.__name__ = "int"
    return convert


def add_arguments(parser, section, keys=None, *, defaults=None):
    """Adds one flag per key (`--n-mels`), typed, checked and described by the schema.

    Each flag defaults to `None` (not given), so the caller merges the given flags over
    config.ini and checks the result with `check_section(..., style="flag")`. A bool key
    becomes `--key/--no-key`. A bad value stops argparse with the flag, the value and what
    is expected (exit status 2).

    Args:
        parser: an `argparse.ArgumentParser`.
        section: the config.ini section.
        keys: the keys to add. Defaults to every key of the section.
        defaults: dict of key to the default shown in the help (from config.ini), or `None`.
    """
    for key in keys or SCHEMA[section]:
        spec = SCHEMA[section][key]
        flag = "--" + key.replace("_", "-")
        text = f"{spec.help}: {spec.expected()}"
        if defaults and key in defaults:
            text += f" (config.ini: {defaults[key]})"
        text = text.replace("%", "%%")
        if spec.kind == "bool":
            parser.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(flag, dest=key, type=_argparse_type(section, key),
                                default=None, metavar=key.upper(), help=text)
