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

from __future__ import annotations

import argparse
import configparser
import dataclasses
import difflib
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import xval.config.embedding as embedding
from xval import tasks
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


def task_types() -> tuple[str, ...]:
    """The registered task names (`xval.tasks.names()`): the choices of `task_type`."""
    return tuple(tasks.names())


def selection_metrics() -> tuple[str, ...]:
    """`auto`, then every metric some registered task records for every split, then those
    of the embedding classifiers (`embedding_accuracy`, ...)."""
    return ("auto", *tasks.metric_names(), *embedding.metric_names())


# librosa.filters.window_bandwidth("hann"), for the CQT's Nyquist check.
_HANN_BANDWIDTH = 1.50018310546875
_KINDS = {"str": str, "int": int, "float": float, "bool": bool}
_NOUNS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}


@dataclass(frozen=True)
class Key:
    """One key of `config.ini`: its type, valid values, default and help.

    Args:
        kind: `"str"`, `"int"`, `"float"` or `"bool"`.
        help: one line saying what the key does (command-line flags show it).
        none: whether `none` (Python `None`) is allowed. Defaults to `False`.
        choices: the allowed values, a function returning them (read at every check, so
            a registry's later additions count), or `None`.
        low: the lowest allowed value, or `None`.
        high: the highest allowed value, or `None`.
        open_low: `low` itself is excluded. Defaults to `False`.
        open_high: `high` itself is excluded. Defaults to `False`.
        default: the package's default value (a user's config.ini holds only what
            differs).
        notes: the longer explanation written above the key in a config file and in the
            parameter reference; `""` when `help` says it all.
    """

    kind: str
    help: str
    none: bool = False
    choices: tuple[str, ...] | Callable[[], Sequence[str] | None] | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    default: Any = None
    notes: str = ""

    def options(self) -> tuple[str, ...] | None:
        """The allowed values as a tuple, or `None` when any value of the kind goes."""
        values = self.choices() if callable(self.choices) else self.choices
        return None if values is None else tuple(values)

    def expected(self) -> str:
        """What a valid value is, in words: `"an integer >= 1"`, `"one of db, log"`."""
        options = self.options()
        if options:
            text = "one of " + ", ".join(options)
        else:
            text = _NOUNS[self.kind]
            if self.kind in ("int", "float"):
                text += self._range()
        if self.kind == "float" and not self.choices:
            text += " (finite)"
        return text + (", or none" if self.none else "")

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            return (f" in {'(' if self.open_low else '['}{_num(self.low)}, "
                    f"{_num(self.high)}{')' if self.open_high else ']'}")
        if self.low is not None:
            return f" {'>' if self.open_low else '>='} {_num(self.low)}"
        if self.high is not None:
            return f" {'<' if self.open_high else '<='} {_num(self.high)}"
        return ""

    def text(self, value: Any) -> str:
        """`value` as config.ini writes it (`none`, `true`, `0.001`)."""
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _int(help: str, low: float | None = None, high: float | None = None, **kw: Any) -> Key:
    return Key("int", help, low=low, high=high, **kw)


def _float(help: str, low: float | None = None, high: float | None = None,
           **kw: Any) -> Key:
    return Key("float", help, low=low, high=high, **kw)


def _choice(help: str, choices: Any, **kw: Any) -> Key:
    return Key("str", help, choices=choices if callable(choices) else tuple(choices), **kw)


SCHEMA = {
    "paths": {
        "data_dir": Key("str", "folder of feature stores, one sub-folder per dataset",
            default='data',
            notes=('Folder of feature stores, one sub-folder per dataset (features.npy, meta.csv, '
                   'dataset.json).')),
        "results_dir": Key("str", "folder receiving <dataset>/experiment_<N>/ result folders",
            default='results',
            notes='Folder receiving <dataset>/experiment_<N>/ result folders.'),
    },
    "backend": {
        "backend": _choice("Keras backend (KERAS_BACKEND wins)", BACKENDS,
            default='torch',
            notes=('Keras backend: tensorflow | torch | jax. The KERAS_BACKEND environment variable '
                   'wins.')),
        # The choices are the registered executors (`xval.executors.registry`), bound when
        # that registry is imported (`bind_choices`).
        "executor": Key("str", "how jobs run: in this process, a fresh process per job, or "
                        "as Ray tasks",
            default='inline',
            notes=('How jobs run: inline (in this process, one after the other) | process (a fresh '
                   'process per (instance, fold) job; memory held by the framework is returned when '
                   'each job ends) | ray (each job a Ray task, on this machine or a cluster: see the '
                   'README).')),
        "jobs_per_gpu": _int("jobs sharing one GPU (process executor; Ray: 1/N GPU each)", 1, 64,
            default=1,
            notes=('How many jobs share one GPU at the same time (process executor; Ray: 1/N of a '
                   'GPU each).')),
    },
    "folds": {
        "val_fraction": _float("fraction of each fold's training items held out for "
                               "validation", 0, 1, open_low=True, open_high=True,
            default=0.2,
            notes="Fraction of each fold's training items held out as validation items."),
        "test_fraction": _float("with num_folds = 1: fraction of items in the test set",
                                0, 1, open_low=True, open_high=True,
            default=0.2,
            notes='With num_folds = 1 only: fraction of the items used as the single test set.'),
        "stratify": Key("bool", "balance labels across folds where the items allow it",
            default=True,
            notes=('Balance the label proportions of the rows across folds (StratifiedGroupKFold '
                   'over items).')),
        "fold_seed": _int("seed of the fold assignment", 0, 2**32 - 1,
            default=0,
            notes=('Seed of the fold assignment (>= 0). The same folds are used by every instance of '
                   'an experiment.')),
    },
    "training": {
        "optimizer": _choice("optimizer", ("adam", "adamw", "sgd", "rmsprop"),
            default='adam',
            notes='Optimizer: adam | adamw | sgd | rmsprop.'),
        "learning_rate": _float("learning rate", 0, open_low=True,
            default=0.001),
        "lr_schedule": _choice("learning-rate schedule", ("constant", "plateau", "cosine"),
            default='cosine',
            notes='Learning-rate schedule: constant | plateau (reduce on plateau) | cosine.'),
        "batch_size": _int("batch size", 1, 65536,
            default=32),
        "epochs": _int("maximum epochs", 1, 100_000,
            default=60,
            notes='Maximum epochs; early stopping usually ends training sooner.'),
        "patience": _int("epochs without improvement before stopping", 0, 100_000,
            default=10,
            notes='Epochs without improvement of save_model_metric before stopping.'),
        "save_model_metric": Key("str", "metric picking the best epoch (e.g. val_loss)",
            default='val_loss',
            notes=('Metric that picks the best epoch (kept as fold_<i>.keras) and drives early '
                   'stopping.')),
        "save_model_mode": _choice("direction of save_model_metric", ("auto", "min", "max"),
            default='auto',
            notes=('Direction of save_model_metric: auto | min | max (auto: max for accuracy-like '
                   'names).')),
        "class_weights": Key("bool", "weight classes inversely to their frequency",
            default=False,
            notes="Weight classes inversely to their frequency in each fold's training rows."),
        "mixed_precision": Key("bool", "train in mixed_float16",
            default=False,
            notes='Train in mixed_float16 (GPU) instead of float32.'),
        "seed": _int("seed of weights and shuffling (fold i uses seed + i)", 0, 2**31 - 1,
            default=1,
            notes='Seed of weights and shuffling (>= 0); fold i uses seed + i.'),
        "verbose": _int("Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch",
                        0, 2,
            default=0,
            notes='Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.'),
        "load_model": Key("str", "a saved .keras model to start from", none=True,
            default=None,
            notes=('Transfer learning: a saved .keras model to start from (none: train from '
                   'scratch); a relative path is resolved against the current directory when the '
                   'instance is resolved.')),
        "freeze_layers": _int("freeze the first N layers of the loaded model (-1: every "
                              "convolutional layer)", -1,
            default=0,
            notes=('Transfer learning: freeze the first N layers of the loaded model; -1 freezes all '
                   'conv layers.')),
        "tensorboard": Key("bool", "write TensorBoard logs",
            default=False,
            notes='Write TensorBoard logs under instance_<k>/logs/fold_<i>.'),
        "generator_workers": _int("generator mode: worker threads of the PyDataset", 0, 256,
            default=0,
            notes=('Generator mode only: worker threads of the keras.utils.PyDataset (0 = main '
                   'thread).')),
        "min_epochs": _int("epochs trained before early stopping and the best-epoch choice "
                           "start", 0, 100_000,
            default=15,
            notes=('Epochs always trained before early stopping may end training; the best epoch is '
                   'chosen among the later ones.')),
        "warmup_epochs": _int("epochs of linear learning-rate warm-up from 0", 0, 100_000,
            default=2,
            notes=('Epochs of linear learning-rate warm-up from 0 to learning_rate (lr_schedule '
                   'constant or cosine; cosine then decays over the remaining epochs).')),
        "time_masks": _int("SpecAugment: time masks per training row", 0, 100,
            default=2,
            notes=('SpecAugment (training only, saved with the model, inactive at inference): masks '
                   'per row over time and over frequency, each at most this fraction of the frames '
                   'or bins wide.')),
        "time_mask_fraction": _float("SpecAugment: widest time mask, as a fraction of the "
                                     "frames", 0, 1,
            default=0.1),
        "freq_masks": _int("SpecAugment: frequency masks per training row", 0, 100,
            default=2),
        "freq_mask_fraction": _float("SpecAugment: widest frequency mask, as a fraction of "
                                     "the bins", 0, 1,
            default=0.1),
        "freq_warp": _float("VTLP-like random stretch of the frequency axis per training row, "
                            "at most this fraction (0: off)", 0, 0.5,
            default=0.1,
            notes=('Vocal tract length perturbation (VTLP-like, training only, saved with the model, '
                   "inactive at inference): each row's frequency axis is warped by a random factor "
                   "within 1 +- freq_warp on the store's frequency scale (0 = off; at most 0.5). Not "
                   'for MFCC stores.')),
        "time_warp": _float("speed perturbation: random rate change of each training row's "
                            "frames, at most this fraction (0: off)", 0, 0.5,
            default=0.1,
            notes=('Speed perturbation (training only, saved with the model, inactive at inference): '
                   "each row's frames are replayed at a random rate within 1 +- time_warp (0 = off; "
                   'at most 0.5); pitch is kept. Classification and regression only (frame and '
                   'reconstruction targets would move).')),
        "row_normalization": _choice("normalise each row over its own sounding frames: none, mean "
                                     "(CMN) or standard (CMVN)", ("none", "mean", "standard"),
            default='none',
            notes=('Normalise each row over its own sounding frames (its padding left out), per '
                   'frequency bin, inside the model: none | mean (cepstral mean normalisation) | '
                   'standard (mean and variance). Removes what is constant over a recording '
                   '(microphone, channel, level), which differs between speakers and sites.')),
        "front_end": _choice("features computed inside the model from a waveform store: "
                             "none, mel, stft or mfcc", ("none", "mel", "stft", "mfcc"),
            default='none',
            notes=('Front end (a store of feature = waveform only): the features the model '
                   'computes from the audio rows, with the settings of the store\'s [features] '
                   'values, so that a saved model takes audio: none (the rows as they are) | '
                   'mel | stft | mfcc (as the librosa feature of that name). The per-fold '
                   'normalisation is computed through it from the training rows.')),
        "random_crop_seconds": _float("train on a random window of this length of every "
                                      "training row (seconds; 0: the whole row)", 0,
            default=0.0,
            notes=('Random crops: every epoch, each training row is cut to a window of this '
                   'length at a random offset (0 = off); validation, test and prediction read '
                   'whole rows, so the model takes any length (an architecture that pools over '
                   'time, e.g. audio_cnn). Shorter than the store\'s segment_seconds.')),
        "refit_with_val": Key("bool", "train a fresh model per fold on the training plus "
                              "validation items for the best epoch count; its test scores "
                              "and model are the fold's",
            default=False,
            notes=('After early stopping has chosen the best epoch on the validation items, train a '
                   'fresh model on the training plus validation items for that many epochs: its test '
                   "scores, predictions and fold_<i>.keras are the fold's (training and validation "
                   "scores stay the first model's, so instances are still selected on held-out "
                   'items). More data per model for a little more than twice the training time. Not '
                   'with embedding_classifier.')),
        "mixup_alpha": _float("mixup: Beta(alpha, alpha) mixing of training rows (0: off)", 0,
            default=0.2,
            notes=('Mixup: train on Beta(alpha, alpha) mixtures of pairs of rows and of their '
                   'targets (0 = off).')),
        "label_smoothing": _float("label smoothing of the classification targets", 0, 1,
                                  open_high=True,
            default=0.1,
            notes='Label smoothing of classification targets (0 = off; 0.1 is usual).'),
        "embedding_classifier": _choice("a scikit-learn classifier trained per fold on "
                                        "embeddings: none, svm or logreg",
                                        ("none", "svm", "logreg"),
            default='none',
            notes=('Embedding classifier (classification and representation): after the network, fit '
                   'a scikit-learn classifier per fold on embeddings of the training rows: none | '
                   "svm (RBF, with standardisation) | logreg. Its metrics join the fold's as "
                   'embedding_<metric>; it is saved as fold_<i>.skops.')),
        "embedding_models": Key("str", "saved .keras models whose embeddings the classifier "
                                "uses ({fold}: the fold number; self: the fold's own model); "
                                "none: the fold's own model", none=True,
            default=None,
            notes=("Models whose embeddings it uses: none (the fold's own model), or in an instance "
                   'a list of .keras paths ({fold} becomes the fold number) and "self" (the fold\'s '
                   'own model), concatenated.')),
        "embedding_layer": Key("str", "layer of the embeddings (auto: bottleneck, else the "
                               "input of the last layer)",
            default='auto',
            notes=('Layer of the embeddings: auto (a layer named bottleneck, else the input of the '
                   'last layer).')),
        "embedding_c": _float("C of the embedding classifier; none: chosen on the "
                              "validation rows", 0, open_low=True, none=True,
            default=None,
            notes=('C of the classifier; none chooses it on the validation rows (macro recall) among '
                   '0.01, 0.1, 1, 10, 100, 1000.')),
        "detection_threshold": _float("detection: a frame is active at this probability; "
                                      "none: chosen per class and fold on the validation "
                                      "recordings",
                                      0, 1, open_low=True, open_high=True, none=True,
            default=0.5,
            notes=('Detection only: post-processing of the frame probabilities into events. A frame '
                   'is active at detection_threshold; decisions are median-filtered over '
                   'median_filter_seconds (0: no filter); gaps shorter than min_gap_seconds are '
                   'bridged, then events shorter than min_event_seconds dropped. A detection '
                   'instance that does not name detection_threshold or median_filter_seconds '
                   '(or names none) has them chosen per fold on its validation recordings.')),
        "median_filter_seconds": _float("detection: median filter of the frame decisions "
                                        "(seconds; 0: none; none: chosen per fold on the "
                                        "validation recordings)", 0, none=True,
            default=0.0),
        "min_event_seconds": _float("detection: shorter detected events are dropped "
                                    "(seconds)", 0,
            default=0.0),
        "min_gap_seconds": _float("detection: shorter gaps between two detected events are "
                                  "bridged (seconds)", 0,
            default=0.0),
    },
    "features": {
        "sample_rate": _int("sample rate audio is resampled to (Hz)", 1, 768_000,
            default=16000,
            notes='Sample rate audio is resampled to (Hz).'),
        # The choices are the registered feature types (`preprocessing.features`), bound
        # when that registry is imported (`bind_choices`).
        "feature": Key("str", "time-frequency feature",
            default='mel',
            notes=('Feature: stft (magnitude) | mel | mfcc | cqt | waveform (the samples: '
                   'the model computes its features, front_end) | pretrained.')),
        "compression": _choice("compression of stft/cqt/mel magnitudes", COMPRESSIONS,
            default='db',
            notes=('Compression of stft/cqt/mel magnitudes: db | log | power | none (mfcc ignores '
                   'it).')),
        "power_exponent": _float("exponent of power-law compression", 0, open_low=True,
            default=0.3,
            notes='Exponent of power-law compression (compression = power).'),
        "n_fft": _int("FFT size (samples)", 2, 65536,
            default=512),
        "hop_length": _int("hop between frames (samples; a block encoder: between blocks)", 1,
                           1 << 20,
            default=160),
        "n_mels": _int("mel bands (mel, mfcc)", 1, 2048,
            default=64),
        "n_mfcc": _int("MFCC coefficients (at most n_mels)", 1, 2048,
            default=20),
        "fmin": _float("lowest frequency of mel and cqt bins (Hz)", 0,
            default=32.7,
            notes=('Lowest frequency of mel and cqt bins (Hz); fmax none = sample_rate / 2 (fmin < '
                   'fmax <= sample_rate / 2).')),
        "fmax": _float("highest mel frequency (Hz); none: sample_rate / 2", 0, open_low=True,
                       none=True,
            default=None),
        "n_bins": _int("CQT bins", 1, 2048,
            default=84,
            notes=("CQT: number of bins and bins per octave (the top bin's filter must stay below "
                   'sample_rate / 2).')),
        "bins_per_octave": _int("CQT bins per octave", 1, 384,
            default=12),
        "segment_seconds": _float("segment length (seconds)", 0, 3600, open_low=True,
            default=1.0,
            notes=('Fixed segment length and hop (seconds); shorter files are zero-padded to one '
                   'segment.')),
        "segment_hop_seconds": _float("hop between segments (seconds)", 0, 3600, open_low=True,
            default=0.5),
        "dtype": _choice("storage type of features.npy",
                         ("auto", "float32", "float16", "int16"),
            default='auto',
            notes=('Storage type of features.npy: auto (the feature type\'s own: float32 for '
                   'the spectral types, float16 for pretrained and waveform) | float32 | '
                   'float16 | int16 (waveform only: 16-bit PCM).')),
        "peak_normalize": Key("bool", "scale every file to a peak of 1 before extraction",
            default=True,
            notes='Scale every file to a peak of 1 before feature extraction.'),
        "silence_threshold_db": _float("files whose loudest frame in the feature band is at "
                                       "or below this level (dBFS) are skipped as holding no "
                                       "signal", high=0,
            default=-90.0,
            notes=('Files whose loudest frame, in the band the features see (never 0 Hz), is at '
                   'or below this level (dBFS, <= 0) are skipped as holding no signal: digital '
                   'silence, a constant offset. -90 keeps a call 5 dB above 16-bit dither '
                   '(benchmarks/no_signal.py: the quietest FSDD and RAVDESS files read -45 and '
                   '-51).')),
        "workers": _int("extraction processes (0: all cores)", 0, 1024,
            default=0,
            notes='Extraction processes (0 = all cores).'),
    },
    "augmentation": {
        "p_noise": _float("probability of added noise", 0, 1,
            default=0.5,
            notes='Probability that each transform is part of one augmented version.'),
        "p_eq": _float("probability of a seven-band EQ", 0, 1,
            default=0.5),
        "p_reverb": _float("probability of reverb", 0, 1,
            default=0.5),
        "p_stretch": _float("probability of a time stretch", 0, 1,
            default=0.5),
        "min_snr_db": _float("lowest signal-to-noise ratio of added noise (dB)",
            default=5.0,
            notes='Signal-to-noise ratio range of added noise (dB).'),
        "max_snr_db": _float("highest signal-to-noise ratio of added noise (dB)",
            default=30.0),
        "min_eq_gain_db": _float("lowest gain of each EQ band (dB)",
            default=-6.0,
            notes='Gain range of each EQ band (dB).'),
        "max_eq_gain_db": _float("highest gain of each EQ band (dB)",
            default=6.0),
        "min_rate": _float("lowest time-stretch rate", 0, open_low=True,
            default=0.85,
            notes='Time-stretch rate range.'),
        "max_rate": _float("highest time-stretch rate", 0, open_low=True,
            default=1.15),
        "min_room_size": _float("smallest simulated room (metres)", 1, open_low=True,
            default=3.0,
            notes=('Room size range (metres, > 1) of simulated reverb when no impulse responses are '
                   'given.')),
        "max_room_size": _float("largest simulated room (metres)", 1, open_low=True,
            default=8.0),
        "seed": _int("base seed of the augmented versions", 0, 2**32 - 1,
            default=0),
        "workers": _int("augmentation processes (0: all cores)", 0, 1024,
            default=0,
            notes='Augmentation processes (0 = all cores).'),
    },
    "report": {
        "selection_metric": _choice("validation metric selecting the best instance",
                                    selection_metrics,
            default='auto',
            notes=('Validation metric selecting the best instance in the workbook (its test score is '
                   'reported): auto (accuracy for classification, rmse for regression) | loss | '
                   'accuracy | f1 | precision | recall | rmse | mae | r2.')),
        "alpha": _float("significance level of the test against the selected instance", 0, 1,
                        open_low=True, open_high=True,
            default=0.05,
            notes=('Significance level (0 < alpha < 1) of the corrected resampled t-test against the '
                   'selected instance.')),
        "rope": _float("region of practical equivalence of the Bayesian comparisons", 0,
                       open_low=True,
            default=0.01,
            notes=('Half-width of the region of practical equivalence (ROPE, > 0) of the Bayesian '
                   'correlated t-test on the Statistics sheet and of `python -m xval compare`, in '
                   "the units of the selection metric: 0.01 is one point of accuracy or F1.")),
    },
}

SECTION_NOTES = {
    "training": (
        "Every key of this section is an instance parameter: instances and --set may override "
        "it. The defaults are the best configuration measured on FSDD leave-one-speaker-out "
        "(docs, results): cosine learning rate after a 2-epoch warm-up, at least 15 epochs, "
        "SpecAugment, mixup, label smoothing, and the two classic speaker augmentations at "
        "their usual 10 % (VTLP, speed perturbation). Set them to 0 (and lr_schedule = "
        "constant) for plain training. A default min_epochs or warmup_epochs that does not fit "
        "an instance's epochs is scaled down (epochs // 2, epochs // 5); label smoothing and "
        "the warps are dropped for tasks without classes, SpecAugment, mixup and the warps for "
        "detection and representation; values an instance names are checked as given."),
}
"""Section name -> the explanation written under its header."""


def defaults() -> dict[str, dict[str, Any]]:
    """The package's defaults: section -> key -> value (`Key.default`)."""
    return {section: {key: spec.default for key, spec in keys.items()}
            for section, keys in SCHEMA.items()}


def render(values: dict[str, dict[str, Any]] | None = None, *, header: str = "") -> str:
    """A config.ini text: every key of `values` (default: every key, at its default) under
    its section, each with its help from the schema as a comment.

    Args:
        values: section -> key -> value to write; `None` writes the package defaults.
        header: comment lines for the top of the file (without `#`).

    Returns:
        The text (`python -m xval config --defaults` prints it).
    """
    values = defaults() if values is None else values
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for section, keys in SCHEMA.items():
        given = values.get(section) or {}
        if not given:
            continue
        lines += ([""] if lines else []) + [f"[{section}]"]
        if section in SECTION_NOTES and len(given) == len(keys):
            lines += _comment(SECTION_NOTES[section])
        for key, spec in keys.items():
            if key in given:
                lines += _comment(spec.notes or spec.help[:1].upper() + spec.help[1:] + ".")
                lines.append(f"{key} = {spec.text(given[key])}")
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, width=92, break_long_words=False,
                                                  break_on_hyphens=False)]


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
                 "freq_warp": 0.0, "time_warp": 0.0, "refit_with_val": False,
                 "front_end": "none", "random_crop_seconds": 0.0},
}

# (low, high) pairs that must be ordered.
_RANGES = {
    "augmentation": (("min_snr_db", "max_snr_db"), ("min_eq_gain_db", "max_eq_gain_db"),
                     ("min_rate", "max_rate"), ("min_room_size", "max_room_size")),
}


def bind_choices(section: str, key: str, provider: Callable[[], Sequence[str]]) -> None:
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


def label(section: str, key: str, value: Any, style: str = "ini") -> str:
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


def _spec(section: str, key: str, error: type[Exception]) -> Key:
    if section not in SCHEMA:
        raise error(unknown_name("section", section, SCHEMA, "config.ini"))
    if key not in SCHEMA[section]:
        raise error(unknown_name("key", key, SCHEMA[section], f"[{section}]"))
    return SCHEMA[section][key]


def unknown_name(kind: str, name: str, valid: Any, where: str) -> str:
    """The error text for an unknown section or key, with the closest valid names."""
    close = difflib.get_close_matches(str(name), list(valid), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown {kind} {name!r} in {where}.{hint} Valid: {', '.join(valid)}."


def parse(section: str, key: str, text: str, *, style: str = "ini", where: str = "",
          error: type[Exception] = ConfigurationError) -> Any:
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
    value: Any
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


def check(section: str, key: str, value: Any, *, style: str = "ini", where: str = "",
          prefix: str = "", error: type[Exception] = ConfigurationError) -> Any:
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

    def fail(extra: str = "") -> NoReturn:
        raise error(f"{prefix}{label(section, key, value, style)}{where}: expected "
                    f"{spec.expected()}{extra}.")

    if value is None:
        if spec.none:
            return None
        fail()
    if not _of_kind(spec.kind, value):
        fail(f"; got {type(value).__name__}")
    if spec.kind == "bool":
        return value
    if spec.kind == "float":
        value = float(value)
        if not math.isfinite(value):
            fail()
    options = spec.options()
    if (options and value not in options) or not _in_range(spec, value):
        fail()
    return value


def _of_kind(kind: str, value: Any) -> bool:
    """Whether `value` has the key's type (a bool is no number; an int is a float)."""
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind == "float" or isinstance(value, int)


def _in_range(spec: Key, value: Any) -> bool:
    if spec.low is not None and (value < spec.low or (spec.open_low and value == spec.low)):
        return False
    return not (spec.high is not None
                and (value > spec.high or (spec.open_high and value == spec.high)))


def check_section(section: str, values: Mapping[str, Any], *, style: str = "ini",
                  where: str = "", error: type[Exception] = ConfigurationError) -> dict[str, Any]:
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
    rules = _Rules(section, out, style, where, error)
    rules.ordered_ranges()
    if section == "features":
        rules.mel_band_limits()
        rules.mfcc_within_mels()
        rules.cqt_below_nyquist()
    return out


@dataclass
class _Rules:
    """The rules between the keys of one section (see `check_section`)."""

    section: str
    out: dict[str, Any]
    style: str
    where: str
    error: type[Exception]

    def name(self, key: str) -> str:
        return label(self.section, key, self.out[key], self.style)

    def has(self, *keys: str) -> bool:
        return all(k in self.out for k in keys)

    def ordered_ranges(self) -> None:
        for low, high in _RANGES.get(self.section, ()):
            if self.has(low, high) and self.out[low] > self.out[high]:
                other = f"{high} = {self.out[high]!r}" if self.style == "ini" \
                    else self.name(high)
                raise self.error(f"{self.name(low)} is greater than {other}{self.where}; "
                                 "swap them.")

    def mel_band_limits(self) -> None:
        out = self.out
        if not self.has("sample_rate", "fmin", "fmax"):
            return
        nyquist = out["sample_rate"] / 2
        if out["fmax"] is not None and out["fmax"] > nyquist:
            raise self.error(f"{self.name('fmax')}{self.where}: expected at most sample_rate / 2 "
                             f"= {_num(nyquist)} (sample_rate={out['sample_rate']}); lower it "
                             "or set it to none.")
        top = nyquist if out["fmax"] is None else out["fmax"]
        if out["fmin"] >= top:
            raise self.error(f"{self.name('fmin')}{self.where}: expected less than fmax = "
                             f"{_num(top)}{' (sample_rate / 2)' if out['fmax'] is None else ''}.")

    def mfcc_within_mels(self) -> None:
        out = self.out
        if self.has("feature", "n_mfcc", "n_mels") and out["feature"] == "mfcc" \
                and out["n_mfcc"] > out["n_mels"]:
            raise self.error(f"{self.name('n_mfcc')}{self.where}: expected at most n_mels = "
                             f"{out['n_mels']} (MFCCs are computed from the mel bands).")

    def cqt_below_nyquist(self) -> None:
        out = self.out
        if not (self.has("feature", "fmin", "n_bins", "bins_per_octave", "sample_rate")
                and out["feature"] == "cqt"):
            return
        if out["fmin"] <= 0:
            raise self.error(f"{self.name('fmin')}{self.where}: the CQT needs fmin > 0.")
        top = out["fmin"] * 2 ** ((out["n_bins"] - 1) / out["bins_per_octave"])
        # librosa.cqt's own limit: the top bin's Hann filter must end below Nyquist.
        ratio = 2 ** (2 / out["bins_per_octave"])
        cutoff = top * (1 + 0.5 * _HANN_BANDWIDTH * (ratio - 1) / (ratio + 1))
        if cutoff >= out["sample_rate"] / 2:
            raise self.error(
                f"{self.name('n_bins')}{self.where}: the top CQT bin ({top:.0f} Hz, from fmin="
                f"{_num(out['fmin'])} and bins_per_octave={out['bins_per_octave']}) has "
                f"a filter reaching {cutoff:.0f} Hz, not below sample_rate / 2 = "
                f"{_num(out['sample_rate'] / 2)}; lower n_bins or fmin."
            )


def validate(sections: Mapping[str, Mapping[str, Any]], *, where: str = "",
             error: type[Exception] = ConfigurationError) -> dict[str, dict[str, Any]]:
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
            raise error(unknown_name("section", section, SCHEMA, "config.ini"))
    out = {}
    for section, keys in SCHEMA.items():
        if section not in sections:
            raise error(f"Section [{section}] is missing{where}.")
        values = sections[section]
        for key in values:
            if key not in keys:
                raise error(unknown_name("key", key, keys, f"[{section}]{where}"))
        missing = [k for k in keys if k not in values]
        if missing:
            raise error(f"Key {missing[0]!r} is missing from [{section}]{where}; add it (see "
                        "the project's config.ini for its default).")
        out[section] = check_section(section, values, where=where, error=error)
    return out


def _argparse_type(section: str, key: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(section, key, text, style="value")
        except ConfigurationError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = SCHEMA[section][key].kind
    return convert


def augmented_versions(name: str) -> Callable[[str], int]:
    """An argparse type for a number of augmented versions per file (an integer >= 0).

    Args:
        name: how the value is named in errors (`"N"`, `"--augment"`).
    """
    def convert(text: str) -> int:
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


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, section: str,
                  keys: Sequence[str] | None = None, *,
                  defaults: Mapping[str, Any] | None = None) -> None:
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
