"""The typed parameters: of an instance, `TrainingParams` (the `[training]` keys every task
reads) and `InstanceParams` (those, the mandatory names, the architecture's keywords and the
task's own parameters); of the
augmentation pipeline, `AugmentationParams`; of a feature store, `FeatureParams` (the
`[features]` keys but `workers`, and the options of the store's feature type).

Each field is the one declaration of its key (`xval.core.settings.setting`): its type (the
annotation), package default, valid values, help and notes. The configuration schema
(`xval.config.schema.SCHEMA`), its validators, the command-line flags, `config.ini`'s
comments and the parameter reference are derived from these fields, so a new `[training]`
parameter is one field here (then read it where it acts: `params.name`). Code reads
`params.epochs`, never `params["epochs"]`. A parameter one task reads is that task's, declared
in its package the same way (`xval.tasks.Task.parameters`) and composed into the schema.

A field's default is the package default. A key added after release 0.1.0 declares with
`absent=` the value that trains as before it existed (`schema.ADDED_KEYS`), so that a
config.ini and results of 0.1.0 keep their meaning. Resolved parameters always hold every
key; the defaults serve tests that hold some.

Example:

```python
from xval.core.parameters import InstanceParams

params = job.params   # what `xval.config.params.resolve` returns, carried by the Job
params.epochs, params.architecture, params.keywords["filters"]
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from xval.core.settings import OpenSettings, Settings, setting, setting_names

__all__ = ["COMPRESSIONS", "DATASET", "MANDATORY", "AugmentationParams", "FeatureParams",
           "InstanceParams", "TrainingParams"]

MANDATORY = ("architecture", "reshaping_type", "comment_1", "comment_2")
"""The names every instance gives besides its `[training]` overrides."""
COMPRESSIONS = ("db", "log", "power", "pcen", "none")
"""The choices of `[features] compression`: the stores'; the in-model front end's but
`pcen` (a recursive filter over time, computed by a store)."""
DATASET = "dataset"
"""The optional instance name of another feature store (on the same items) than the
experiment's: the planner sets it, resolution only checks that it is a store name."""


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingParams(Settings):
    """The `[training]` keys every task reads: every instance parameter but the mandatory
    names, the architecture's keywords and the task's own parameters (the parameter
    reference lists them with their notes)."""

    optimizer: str = setting(
        "adam", "optimizer", choices=("adam", "adamw", "sgd", "rmsprop"),
        notes="Optimizer: adam | adamw | sgd | rmsprop.")
    learning_rate: float = setting(
        0.001, "learning rate", low=0, open_low=True)
    lr_schedule: str = setting(
        "cosine", "learning-rate schedule", choices=("constant", "plateau", "cosine"),
        off="constant", notes="Learning-rate schedule: constant | plateau (reduce on plateau) | cosine.")
    batch_size: int = setting(
        32, "batch size", low=1, high=65_536)
    epochs: int = setting(
        60, "maximum epochs", low=1, high=100_000,
        notes="Maximum epochs; early stopping usually ends training sooner.")
    patience: int = setting(
        10, "epochs without improvement before stopping", low=0, high=100_000,
        notes="Epochs without improvement of save_model_metric before stopping.")
    save_model_metric: str = setting(
        "val_loss", "metric picking the best epoch (e.g. val_loss)",
        notes=("Metric that picks the best epoch (kept as fold_<i>.keras) and drives early "
               "stopping."))
    save_model_mode: str = setting(
        "auto", "direction of save_model_metric", choices=("auto", "min", "max"),
        notes=("Direction of save_model_metric: auto | min | max (auto: max for accuracy-like "
               "names)."))
    class_weights: bool = setting(
        False, "weight classes inversely to their frequency",
        notes="Weight classes inversely to their frequency in each fold's training rows.")
    mixed_precision: bool = setting(
        False, "train in mixed_float16",
        notes="Train in mixed_float16 (GPU) instead of float32.")
    seed: int = setting(
        1, "seed of weights and shuffling (fold i uses seed + i)", low=0, high=2**31 - 1,
        notes="Seed of weights and shuffling (>= 0); fold i uses seed + i.")
    verbose: int = setting(
        0, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch", low=0, high=2,
        notes="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")
    load_model: str | None = setting(
        None, "a saved .keras model to start from",
        notes=("Transfer learning: a saved .keras model to start from (none: train from scratch); "
               "a relative path is resolved against the current directory when the instance is "
               "resolved."))
    freeze_layers: int = setting(
        0, "freeze the first N layers of the loaded model (-1: every convolutional layer)", low=-1,
        notes=("Transfer learning: freeze the first N layers of the loaded model; -1 freezes all "
               "conv layers."))
    tensorboard: bool = setting(
        False, "write TensorBoard logs",
        notes="Write TensorBoard logs under instance_<k>/logs/fold_<i>.")
    generator_workers: int = setting(
        0, "generator mode: worker threads of the PyDataset", low=0, high=256,
        notes=("Generator mode only: worker threads of the keras.utils.PyDataset (0 = the main "
               "thread on the CPU, 2 prefetching threads on a GPU)."))
    min_epochs: int = setting(
        15, "epochs trained before early stopping and the best-epoch choice start", low=0,
        high=100_000, off=0,
        notes=("Epochs always trained before early stopping may end training; the best epoch is "
               "chosen among the later ones."))
    warmup_epochs: int = setting(
        2, "epochs of linear learning-rate warm-up from 0", low=0, high=100_000,
        off=0,
        notes=("Epochs of linear learning-rate warm-up from 0 to learning_rate (lr_schedule "
               "constant or cosine; cosine then decays over the remaining epochs)."))
    time_masks: int = setting(
        2, "SpecAugment: time masks per training row", low=0, high=100, off=0,
        regulariser=True,
        notes=("SpecAugment (training only, saved with the model, inactive at inference): masks "
               "per row over time and over frequency, each at most this fraction of the frames or "
               "bins wide."))
    time_mask_fraction: float = setting(
        0.1, "SpecAugment: widest time mask, as a fraction of the frames", low=0, high=1)
    freq_masks: int = setting(
        2, "SpecAugment: frequency masks per training row", low=0, high=100, off=0,
        regulariser=True)
    freq_mask_fraction: float = setting(
        0.1, "SpecAugment: widest frequency mask, as a fraction of the bins", low=0, high=1)
    freq_warp: float = setting(
        0.1, ("VTLP-like random stretch of the frequency axis per training row, at most this "
              "fraction (0: off)"), low=0, high=0.5, off=0.0, regulariser=True,
        notes=("Vocal tract length perturbation (VTLP-like, training only, saved with the model, "
               "inactive at inference): each row's frequency axis is warped by a random factor "
               "within 1 +- freq_warp on the store's frequency scale (0 = off; at most 0.5). Not "
               "for MFCC stores."))
    time_warp: float = setting(
        0.1, ("speed perturbation: random rate change of each training row's frames, at most this "
              "fraction (0: off)"), low=0, high=0.5, off=0.0, regulariser=True,
        notes=("Speed perturbation (training only, saved with the model, inactive at inference): "
               "each row's frames are replayed at a random rate within 1 +- time_warp (0 = off; "
               "at most 0.5); pitch is kept. Classification and regression only (frame and "
               "reconstruction targets would move)."))
    row_normalization: str = setting(
        "none", ("normalise each row over its own sounding frames: none, mean (CMN) or standard "
                 "(CMVN)"), choices=("none", "mean", "standard"),
        notes=("Normalise each row over its own sounding frames (its padding left out), per "
               "frequency bin, inside the model: none | mean (cepstral mean normalisation) | "
               "standard (mean and variance). Removes what is constant over a recording "
               "(microphone, channel, level), which differs between speakers and sites."))
    # The choices are `none` and the feature types a model computes itself
    # (`preprocessing.features.front_ends`), bound when that registry is imported.
    front_end: str = setting(
        "none", "features computed inside the model from a waveform store",
        notes=("Front end (a store of feature = waveform only): the features the model computes "
               "from the audio rows, with the settings of the store's [features] values, so that "
               "a saved model takes audio: {choices} (none: the rows as they are; the others as "
               "the librosa feature of that name; hf:NAME a transformers model on this disk, a "
               "save_pretrained folder or a cached hub id, its last layer's states, torch backend "
               "only; a path or ORG/NAME hub id, with a /, names one without hf: too). The per-fold normalisation is computed through it from the training rows."))
    encoder_trainable_blocks: int = setting(
        0, ("with a pretrained encoder inside the model (front_end = aisfx or hf:NAME): its last "
            "blocks that train"), low=0, high=64,
        notes=("Fine-tuning (front_end = aisfx or hf:NAME, on a waveform store at the encoder's "
               "rate): how many of the encoder's last blocks train (0 = the encoder frozen; aisfx "
               "has 4 convolution blocks, its batch norms keep their pretrained statistics; a "
               "transformers model its transformer layers, CLAP its Swin stages and projection; "
               "the frozen part stays in inference mode). Costs the encoder's forward pass every "
               "epoch: a GPU job."))
    encoder_lr_scale: float = setting(
        0.1, "learning rate of the encoder's trained blocks, as a fraction of learning_rate", low=0,
        high=1, open_low=True,
        notes=("The learning rate of the encoder's trained blocks is learning_rate times this "
               "(the head trains at learning_rate): pretrained weights move slowly."))
    random_crop_seconds: float = setting(
        0.0, ("train on a random window of this length of every training row (seconds; 0: the "
              "whole row)"), low=0,
        notes=("Random crops: every epoch, each training row is cut to a window of this length at "
               "a random offset (0 = off); validation, test and prediction read whole rows, so "
               "the model takes any length (an architecture that pools over time, e.g. "
               "audio_cnn). Shorter than the store's segment_seconds."))
    refit_with_val: bool = setting(
        False, ("train a fresh model per fold on the training plus validation items for the best "
                "epoch count; its test scores and model are the fold's"),
        notes=("After early stopping has chosen the best epoch on the validation items, train a "
               "fresh model on the training plus validation items for that many epochs: its test "
               "scores, predictions and fold_<i>.keras are the fold's (training and validation "
               "scores stay the first model's, so instances are still selected on held-out "
               "items). More data per model for a little more than twice the training time. Not "
               "with embedding_classifier."))
    rank_split: float = setting(
        0.0, "share of each fold's validation items that rank instances and pick no epoch (0: off)",
        low=0, high=0.9,
        notes=("Share of each fold's validation items kept out of the epoch choice (early "
               "stopping, the best checkpoint) and only scored (the split `rank`): instances "
               "are then ranked on items their epoch was not chosen on, when every complete "
               "instance has them. 0 (the default): every validation item picks the epoch "
               "and ranks; the script `init` writes sets 0.5 where every fold has two "
               "validation items or more (measured: docs/results.md). The pick "
               "depends on the fold only, so every instance gets the same two sets. The cut "
               "is in whole items, at least one on each side (a fold with one validation "
               "item is refused): where rounding moves the share by 0.05 or more (0.5 of 3 "
               "items ranks 2), the dry run and the run say the share that results."))
    mixup_alpha: float = setting(
        0.2, "mixup: Beta(alpha, alpha) mixing of training rows (0: off)", low=0,
        off=0.0, regulariser=True,
        notes=("Mixup: train on Beta(alpha, alpha) mixtures of pairs of rows and of their targets "
               "(0 = off)."))
    label_smoothing: float = setting(
        0.1, "label smoothing of the classification targets", low=0, high=1, open_high=True,
        off=0.0, regulariser=True,
        notes="Label smoothing of classification targets (0 = off; 0.1 is usual).")
    embedding_classifier: str = setting(
        "none", "a scikit-learn classifier trained per fold on embeddings: none, svm or logreg",
        choices=("none", "svm", "logreg"),
        notes=("Embedding classifier (classification and representation): after the network, fit "
               "a scikit-learn classifier per fold on embeddings of the training rows: none | svm "
               "(RBF, with standardisation) | logreg. Its metrics join the fold's as "
               "embedding_<metric>; it is saved as fold_<i>.skops."))
    embedding_models: str | list[str] | None = setting(
        None, ("saved .keras models whose embeddings the classifier uses ({fold}: the fold "
               "number; self: the fold's own model); none: the fold's own model"),
        notes=("Models whose embeddings it uses: none (the fold's own model), or in an instance a "
               "list of .keras paths ({fold} becomes the fold number) and \"self\" (the fold's own "
               "model), concatenated."))
    embedding_layer: str = setting(
        "auto", "layer of the embeddings (auto: bottleneck, else the input of the last layer)",
        notes=("Layer of the embeddings: auto (a layer named bottleneck, else the input of the "
               "last layer)."))
    embedding_c: float | None = setting(
        None, "C of the embedding classifier; none: chosen on the validation rows", low=0,
        open_low=True,
        notes=("C of the classifier; none chooses it on the validation rows (macro recall) among "
               "0.01, 0.1, 1, 10, 100, 1000."))
    @property
    def embeds(self) -> bool:
        """Whether an embedding classifier is trained (`embedding_classifier` set)."""
        return self.embedding_classifier not in (None, "none")


@dataclasses.dataclass(frozen=True, eq=False)
class AugmentationParams(Settings):
    """The probabilities and ranges of the augmentation pipeline: the `[augmentation]` keys
    but `seed` and `workers` (`xval.config.sections.AugmentationSettings` adds them).
    The `[min_x, max_x]` pairs are checked in order by `xval.config.schema.check_section`."""

    p_noise: float = setting(
        0.5, "probability of added noise", low=0, high=1,
        notes="Probability that each transform is part of one augmented version.")
    p_eq: float = setting(
        0.5, "probability of a seven-band EQ", low=0, high=1)
    p_reverb: float = setting(
        0.5, "probability of reverb", low=0, high=1)
    p_stretch: float = setting(
        0.5, "probability of a time stretch", low=0, high=1)
    min_snr_db: float = setting(
        5.0, "lowest signal-to-noise ratio of added noise (dB)",
        notes="Signal-to-noise ratio range of added noise (dB).")
    max_snr_db: float = setting(
        30.0, "highest signal-to-noise ratio of added noise (dB)")
    min_eq_gain_db: float = setting(
        -6.0, "lowest gain of each EQ band (dB)",
        notes="Gain range of each EQ band (dB).")
    max_eq_gain_db: float = setting(
        6.0, "highest gain of each EQ band (dB)")
    min_rate: float = setting(
        0.85, "lowest time-stretch rate", low=0, open_low=True,
        notes="Time-stretch rate range.")
    max_rate: float = setting(
        1.15, "highest time-stretch rate", low=0, open_low=True)
    min_room_size: float = setting(
        3.0, "smallest simulated room (metres)", low=1, open_low=True,
        notes=("Room size range (metres, > 1) of simulated reverb when no impulse responses are "
               "given."))
    max_room_size: float = setting(
        8.0, "largest simulated room (metres)", low=1, open_low=True)


@dataclasses.dataclass(frozen=True, eq=False)
class InstanceParams(OpenSettings, TrainingParams):
    """An instance's resolved parameters: the `[training]` keys, the mandatory names, the
    store it trains on when not the experiment's (`dataset`), and every other name in
    `keywords`: the architecture's keyword arguments and the task's own parameters (which
    the task reads as its record, `Task.parameters.of(params)`).

    As a mapping it is the flat dict the planner resolves and `params.json` records.
    """

    architecture: str = ""
    reshaping_type: str = "none"
    comment_1: Any = ""
    comment_2: Any = ""
    dataset: str | None = None
    keywords: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    EXTRA: ClassVar[str] = "keywords"

    def to_dict(self) -> dict[str, Any]:
        """The flat dict of every parameter (what `params.json` records)."""
        out = {name: getattr(self, name) for name in setting_names(TrainingParams)}
        out.update({name: getattr(self, name) for name in MANDATORY})
        if self.dataset is not None:
            out[DATASET] = self.dataset
        out.update(self.keywords)
        return out

    def __getitem__(self, name: str) -> Any:
        if name == DATASET and self.dataset is None:  # as `to_dict` leaves it out
            raise KeyError(name)
        return super().__getitem__(name)


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureParams(OpenSettings):
    """A feature store's parameters (`dataset.json` `feature_params`): the `[features]` keys
    but `workers`, in the schema's order, and the options of the store's feature type
    (`options`: the keywords of its function that are not `[features]` keys, e.g. a
    pretrained encoder's `encoder` and `layers`; see `preprocessing.features.register`).

    `preprocessing.feature_params` makes one, checked; `DatasetInfo.feature_params` reads
    one. Code reads `params.hop_length`; the type's own options are read by the type
    (`params.options`). As a mapping it is the flat dict `dataset.json` records: the
    `[features]` keys, then the options (`compute_features(y, **params)` takes it so).
    A field's default is its package default: what a record without the key means.
    `xval.config.sections.FeatureSettings` adds `workers`: the `[features]` section.
    """

    sample_rate: int = setting(
        16_000, "sample rate audio is resampled to (Hz)", low=1, high=768_000,
        notes="Sample rate audio is resampled to (Hz).")
    # The choices are the registered feature types (`preprocessing.features`), bound when
    # that registry is imported (`xval.config.schema.bind_choices`).
    feature: str = setting(
        "mel", "time-frequency feature",
        notes="Feature: {choices}.")
    compression: str = setting(
        "db", "compression of stft/cqt/mel magnitudes", choices=COMPRESSIONS,
        notes="Compression of stft/cqt/mel magnitudes: db | log | power | pcen | none (mfcc "
              "ignores it; pcen: per-channel energy normalisation, stores only).")
    power_exponent: float = setting(
        0.3, "exponent of power-law compression", low=0, open_low=True,
        notes="Exponent of power-law compression (compression = power).")
    n_fft: int = setting(
        512, "FFT size (samples)", low=2, high=65_536)
    hop_length: int = setting(
        160, "hop between frames (samples; a block encoder: between blocks)", low=1, high=1 << 20)
    n_mels: int = setting(
        64, "mel bands (mel, mfcc)", low=1, high=2048)
    n_mfcc: int = setting(
        20, "MFCC coefficients (at most n_mels)", low=1, high=2048)
    fmin: float = setting(
        32.7, "lowest frequency of mel and cqt bins (Hz)", low=0,
        notes=("Lowest frequency of mel and cqt bins (Hz); fmax none = sample_rate / 2 (fmin < "
               "fmax <= sample_rate / 2)."))
    fmax: float | None = setting(
        None, "highest mel frequency (Hz); none: sample_rate / 2", low=0, open_low=True)
    n_bins: int = setting(
        84, "CQT bins", low=1, high=2048,
        notes=("CQT: number of bins and bins per octave (the top bin's filter must stay below "
               "sample_rate / 2)."))
    bins_per_octave: int = setting(
        12, "CQT bins per octave", low=1, high=384)
    segment_seconds: float = setting(
        1.0, "segment length (seconds)", low=0, high=3600, open_low=True,
        notes=("Fixed segment length and hop (seconds); shorter files are zero-padded to one "
               "segment."))
    segment_hop_seconds: float = setting(
        0.5, "hop between segments (seconds)", low=0, high=3600, open_low=True)
    dtype: str = setting(
        "auto", "storage type of features.npy", choices=("auto", "float32", "float16", "int16"),
        notes=("Storage type of features.npy: auto (the feature type's own: float32 for the "
               "spectral types, float16 for pretrained and waveform) | float32 | float16 | int16 "
               "(waveform only: 16-bit PCM)."))
    peak_normalize: bool = setting(
        True, "scale every file to a peak of 1 before extraction",
        notes="Scale every file to a peak of 1 before feature extraction.")
    silence_threshold_db: float = setting(
        -90.0, ("files whose loudest frame in the feature band is at or below this level (dBFS) "
                "are skipped as holding no signal"), high=0,
        notes=("Files whose loudest frame, in the band the features see (never 0 Hz), is at or "
               "below this level (dBFS, <= 0) are skipped as holding no signal: digital silence, "
               "a constant offset. -90 keeps a call 5 dB above 16-bit dither "
               "(measured: the quietest FSDD and RAVDESS files read -45 and -51)."))
    keep_silent_segments: bool = setting(
        False, ("keep segments whose loudest frame is at or below silence_threshold_db (silence, "
                "padding) as rows"),
        notes=("Segments whose loudest frame in the feature band is at or below "
               "silence_threshold_db (digital silence, the padding of a clip) are dropped and "
               "listed in dataset.json (silent_segments); true keeps them as rows. Prediction "
               "drops them too, so a clip score averages real segments."))
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    EXTRA: ClassVar[str] = "options"

    @property
    def seconds_per_frame(self) -> float:
        """The hop between feature frames in seconds (`hop_length / sample_rate`)."""
        return self.hop_length / self.sample_rate

    @property
    def segment_samples(self) -> int:
        """Samples in one segment (`segment_seconds * sample_rate`, rounded, at least 1)."""
        return max(1, int(round(self.segment_seconds * self.sample_rate)))
