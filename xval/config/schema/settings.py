"""The sections of the schema other than `[training]`: paths, backend, folds, features,
augmentation and report."""

from __future__ import annotations

from xval.config.schema.choices import BACKENDS, COMPRESSIONS, _describe_metric, selection_metrics
from xval.config.schema.key import Key, choice_key, float_key, int_key
from xval.core.records.job import DEVICE_DATA_MB

PATHS: dict[str, Key] = {
    "data_dir": Key("str", "folder of feature stores, one sub-folder per dataset",
        default='data',
        notes=('Folder of feature stores, one sub-folder per dataset (features.npy, meta.csv, '
               'dataset.json).')),
    "results_dir": Key("str", "folder receiving <dataset>/experiment_<N>/ result folders",
        default='results',
        notes='Folder receiving <dataset>/experiment_<N>/ result folders.'),
}

BACKEND: dict[str, Key] = {
    "backend": choice_key("Keras backend (KERAS_BACKEND wins)", BACKENDS,
        default='torch',
        notes=('Keras backend: tensorflow | torch | jax. The KERAS_BACKEND environment variable '
               'wins.')),
    # The choices are the registered executors (`xval.executors.registry`), bound when
    # that registry is imported (`bind_choices`).
    "executor": Key("str", "how jobs run: in this process, in worker processes, or "
                    "as Ray tasks",
        default='inline',
        notes='How jobs run: {choices}.'),
    "jobs_per_gpu": int_key("jobs sharing one GPU (process executor; Ray: 1/N GPU each)", 1, 64,
        default=1,
        notes=('How many jobs share one GPU at the same time (process executor; Ray: 1/N of a '
               'GPU each).')),
    "device_data_mb": int_key("most of a fold's training and validation rows copied to the "
                              "device once (MiB; 0: never)", 0, 1 << 24,
        default=DEVICE_DATA_MB,
        notes=("In memory mode on the torch and JAX backends: a fold whose training and "
               "validation rows take at most this many MiB is copied to the device (the GPU; "
               "the host on a CPU) once, and every batch, its crops and mixup are gathered "
               "there, so a step never waits for a copy. A larger fold, or 0, gathers batches "
               "in numpy and (on a GPU) copies them from pinned memory in prefetching "
               "threads. Per job: with jobs_per_gpu = N, N folds share the GPU's memory.")),
}

FOLDS: dict[str, Key] = {
    "val_fraction": float_key("fraction of each fold's training items held out for "
                           "validation", 0, 1, open_low=True, open_high=True,
        default=0.2,
        notes="Fraction of each fold's training items held out as validation items."),
    "test_fraction": float_key("with num_folds = 1: fraction of items in the test set",
                            0, 1, open_low=True, open_high=True,
        default=0.2,
        notes='With num_folds = 1 only: fraction of the items used as the single test set.'),
    "stratify": Key("bool", "balance labels across folds where the items allow it",
        default=True,
        notes=('Balance the label proportions of the rows across folds (StratifiedGroupKFold '
               'over items).')),
    "fold_seed": int_key("seed of the fold assignment", 0, 2**32 - 1,
        default=0,
        notes=('Seed of the fold assignment (>= 0). The same folds are used by every instance of '
               'an experiment.')),
}

FEATURES: dict[str, Key] = {
    "sample_rate": int_key("sample rate audio is resampled to (Hz)", 1, 768_000,
        default=16000,
        notes='Sample rate audio is resampled to (Hz).'),
    # The choices are the registered feature types (`preprocessing.features`), bound
    # when that registry is imported (`bind_choices`).
    "feature": Key("str", "time-frequency feature",
        default='mel',
        notes='Feature: {choices}.'),
    "compression": choice_key("compression of stft/cqt/mel magnitudes", COMPRESSIONS,
        default='db',
        notes=('Compression of stft/cqt/mel magnitudes: db | log | power | none (mfcc ignores '
               'it).')),
    "power_exponent": float_key("exponent of power-law compression", 0, open_low=True,
        default=0.3,
        notes='Exponent of power-law compression (compression = power).'),
    "n_fft": int_key("FFT size (samples)", 2, 65536,
        default=512),
    "hop_length": int_key("hop between frames (samples; a block encoder: between blocks)", 1,
                          1 << 20,
        default=160),
    "n_mels": int_key("mel bands (mel, mfcc)", 1, 2048,
        default=64),
    "n_mfcc": int_key("MFCC coefficients (at most n_mels)", 1, 2048,
        default=20),
    "fmin": float_key("lowest frequency of mel and cqt bins (Hz)", 0,
        default=32.7,
        notes=('Lowest frequency of mel and cqt bins (Hz); fmax none = sample_rate / 2 (fmin < '
               'fmax <= sample_rate / 2).')),
    "fmax": float_key("highest mel frequency (Hz); none: sample_rate / 2", 0, open_low=True,
                   none=True,
        default=None),
    "n_bins": int_key("CQT bins", 1, 2048,
        default=84,
        notes=("CQT: number of bins and bins per octave (the top bin's filter must stay below "
               'sample_rate / 2).')),
    "bins_per_octave": int_key("CQT bins per octave", 1, 384,
        default=12),
    "segment_seconds": float_key("segment length (seconds)", 0, 3600, open_low=True,
        default=1.0,
        notes=('Fixed segment length and hop (seconds); shorter files are zero-padded to one '
               'segment.')),
    "segment_hop_seconds": float_key("hop between segments (seconds)", 0, 3600, open_low=True,
        default=0.5),
    "dtype": choice_key("storage type of features.npy",
                        ("auto", "float32", "float16", "int16"),
        default='auto',
        notes=('Storage type of features.npy: auto (the feature type\'s own: float32 for '
               'the spectral types, float16 for pretrained and waveform) | float32 | '
               'float16 | int16 (waveform only: 16-bit PCM).')),
    "peak_normalize": Key("bool", "scale every file to a peak of 1 before extraction",
        default=True,
        notes='Scale every file to a peak of 1 before feature extraction.'),
    "silence_threshold_db": float_key("files whose loudest frame in the feature band is at "
                                      "or below this level (dBFS) are skipped as holding no "
                                      "signal", high=0,
        default=-90.0,
        notes=('Files whose loudest frame, in the band the features see (never 0 Hz), is at '
               'or below this level (dBFS, <= 0) are skipped as holding no signal: digital '
               'silence, a constant offset. -90 keeps a call 5 dB above 16-bit dither '
               '(benchmarks/no_signal.py: the quietest FSDD and RAVDESS files read -45 and '
               '-51).')),
    "keep_silent_segments": Key("bool", "keep segments whose loudest frame is at or below "
                                        "silence_threshold_db (silence, padding) as rows",
        default=False,
        notes=('Segments whose loudest frame in the feature band is at or below '
               'silence_threshold_db (digital silence, the padding of a clip) are dropped '
               'and listed in dataset.json (silent_segments); true keeps them as rows. '
               'Prediction drops them too, so a clip score averages real segments.')),
    "workers": int_key("extraction processes (0: all cores)", 0, 1024,
        default=0,
        notes='Extraction processes (0 = all cores).'),
}

AUGMENTATION: dict[str, Key] = {
    "p_noise": float_key("probability of added noise", 0, 1,
        default=0.5,
        notes='Probability that each transform is part of one augmented version.'),
    "p_eq": float_key("probability of a seven-band EQ", 0, 1,
        default=0.5),
    "p_reverb": float_key("probability of reverb", 0, 1,
        default=0.5),
    "p_stretch": float_key("probability of a time stretch", 0, 1,
        default=0.5),
    "min_snr_db": float_key("lowest signal-to-noise ratio of added noise (dB)",
        default=5.0,
        notes='Signal-to-noise ratio range of added noise (dB).'),
    "max_snr_db": float_key("highest signal-to-noise ratio of added noise (dB)",
        default=30.0),
    "min_eq_gain_db": float_key("lowest gain of each EQ band (dB)",
        default=-6.0,
        notes='Gain range of each EQ band (dB).'),
    "max_eq_gain_db": float_key("highest gain of each EQ band (dB)",
        default=6.0),
    "min_rate": float_key("lowest time-stretch rate", 0, open_low=True,
        default=0.85,
        notes='Time-stretch rate range.'),
    "max_rate": float_key("highest time-stretch rate", 0, open_low=True,
        default=1.15),
    "min_room_size": float_key("smallest simulated room (metres)", 1, open_low=True,
        default=3.0,
        notes=('Room size range (metres, > 1) of simulated reverb when no impulse responses are '
               'given.')),
    "max_room_size": float_key("largest simulated room (metres)", 1, open_low=True,
        default=8.0),
    "seed": int_key("base seed of the augmented versions", 0, 2**32 - 1,
        default=0),
    "workers": int_key("augmentation processes (0: all cores)", 0, 1024,
        default=0,
        notes='Augmentation processes (0 = all cores).'),
}

REPORT: dict[str, Key] = {
    "selection_metric": choice_key("validation metric selecting the best instance",
                                selection_metrics,
        default='auto',
        notes=('Validation metric selecting the best instance in the workbook (its test score is '
               'reported): {choices}.'),
        describe=_describe_metric),
    "alpha": float_key("significance level of the test against the selected instance", 0, 1,
                    open_low=True, open_high=True,
        default=0.05,
        notes=('Significance level (0 < alpha < 1) of the corrected resampled t-test against the '
               'selected instance.')),
    "rope": float_key("region of practical equivalence of the Bayesian comparisons", 0,
                      open_low=True,
        default=0.01,
        notes=('Half-width of the region of practical equivalence (ROPE, > 0) of the Bayesian '
               'correlated t-test on the Statistics sheet and of `python -m xval compare`, in '
               "the units of the selection metric: 0.01 is one point of accuracy or F1.")),
    "plots": Key("bool", "write each instance's figures",
        default=True,
        notes=("Write each instance's figures after its last fold (plots/: learning curves and "
               "the task's figures, shown on the workbook's Plots sheet). false skips them: "
               "about 1 s of CPU per instance, which counts in searches of many trials and "
               "quick runs.")),
}
