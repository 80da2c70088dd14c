"""The `[training]` section of the schema: every instance parameter, and the values of the
keys added since the first release that train as before they existed (`ADDED_TRAINING`)."""

from __future__ import annotations

from xval.config.schema.key import Key, choice_key, float_key, int_key

TRAINING: dict[str, Key] = {
    "optimizer": choice_key("optimizer", ("adam", "adamw", "sgd", "rmsprop"),
        default='adam',
        notes='Optimizer: adam | adamw | sgd | rmsprop.'),
    "learning_rate": float_key("learning rate", 0, open_low=True,
        default=0.001),
    "lr_schedule": choice_key("learning-rate schedule", ("constant", "plateau", "cosine"),
        default='cosine',
        notes='Learning-rate schedule: constant | plateau (reduce on plateau) | cosine.'),
    "batch_size": int_key("batch size", 1, 65536,
        default=32),
    "epochs": int_key("maximum epochs", 1, 100_000,
        default=60,
        notes='Maximum epochs; early stopping usually ends training sooner.'),
    "patience": int_key("epochs without improvement before stopping", 0, 100_000,
        default=10,
        notes='Epochs without improvement of save_model_metric before stopping.'),
    "save_model_metric": Key("str", "metric picking the best epoch (e.g. val_loss)",
        default='val_loss',
        notes=('Metric that picks the best epoch (kept as fold_<i>.keras) and drives early '
               'stopping.')),
    "save_model_mode": choice_key("direction of save_model_metric", ("auto", "min", "max"),
        default='auto',
        notes=('Direction of save_model_metric: auto | min | max (auto: max for accuracy-like '
               'names).')),
    "class_weights": Key("bool", "weight classes inversely to their frequency",
        default=False,
        notes="Weight classes inversely to their frequency in each fold's training rows."),
    "mixed_precision": Key("bool", "train in mixed_float16",
        default=False,
        notes='Train in mixed_float16 (GPU) instead of float32.'),
    "seed": int_key("seed of weights and shuffling (fold i uses seed + i)", 0, 2**31 - 1,
        default=1,
        notes='Seed of weights and shuffling (>= 0); fold i uses seed + i.'),
    "verbose": int_key("Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch",
                    0, 2,
        default=0,
        notes='Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.'),
    "load_model": Key("str", "a saved .keras model to start from", none=True,
        default=None,
        notes=('Transfer learning: a saved .keras model to start from (none: train from '
               'scratch); a relative path is resolved against the current directory when the '
               'instance is resolved.')),
    "freeze_layers": int_key("freeze the first N layers of the loaded model (-1: every "
                          "convolutional layer)", -1,
        default=0,
        notes=('Transfer learning: freeze the first N layers of the loaded model; -1 freezes all '
               'conv layers.')),
    "tensorboard": Key("bool", "write TensorBoard logs",
        default=False,
        notes='Write TensorBoard logs under instance_<k>/logs/fold_<i>.'),
    "generator_workers": int_key("generator mode: worker threads of the PyDataset", 0, 256,
        default=0,
        notes=('Generator mode only: worker threads of the keras.utils.PyDataset (0 = the main '
               'thread on the CPU, 2 prefetching threads on a GPU).')),
    "min_epochs": int_key("epochs trained before early stopping and the best-epoch choice "
                       "start", 0, 100_000,
        default=15,
        notes=('Epochs always trained before early stopping may end training; the best epoch is '
               'chosen among the later ones.')),
    "warmup_epochs": int_key("epochs of linear learning-rate warm-up from 0", 0, 100_000,
        default=2,
        notes=('Epochs of linear learning-rate warm-up from 0 to learning_rate (lr_schedule '
               'constant or cosine; cosine then decays over the remaining epochs).')),
    "time_masks": int_key("SpecAugment: time masks per training row", 0, 100,
        default=2,
        notes=('SpecAugment (training only, saved with the model, inactive at inference): masks '
               'per row over time and over frequency, each at most this fraction of the frames '
               'or bins wide.')),
    "time_mask_fraction": float_key("SpecAugment: widest time mask, as a fraction of the "
                                 "frames", 0, 1,
        default=0.1),
    "freq_masks": int_key("SpecAugment: frequency masks per training row", 0, 100,
        default=2),
    "freq_mask_fraction": float_key("SpecAugment: widest frequency mask, as a fraction of "
                                 "the bins", 0, 1,
        default=0.1),
    "freq_warp": float_key("VTLP-like random stretch of the frequency axis per training row, "
                        "at most this fraction (0: off)", 0, 0.5,
        default=0.1,
        notes=('Vocal tract length perturbation (VTLP-like, training only, saved with the model, '
               "inactive at inference): each row's frequency axis is warped by a random factor "
               "within 1 +- freq_warp on the store's frequency scale (0 = off; at most 0.5). Not "
               'for MFCC stores.')),
    "time_warp": float_key("speed perturbation: random rate change of each training row's "
                        "frames, at most this fraction (0: off)", 0, 0.5,
        default=0.1,
        notes=('Speed perturbation (training only, saved with the model, inactive at inference): '
               "each row's frames are replayed at a random rate within 1 +- time_warp (0 = off; "
               'at most 0.5); pitch is kept. Classification and regression only (frame and '
               'reconstruction targets would move).')),
    "row_normalization": choice_key("normalise each row over its own sounding frames: none, mean "
                                 "(CMN) or standard (CMVN)", ("none", "mean", "standard"),
        default='none',
        notes=('Normalise each row over its own sounding frames (its padding left out), per '
               'frequency bin, inside the model: none | mean (cepstral mean normalisation) | '
               'standard (mean and variance). Removes what is constant over a recording '
               '(microphone, channel, level), which differs between speakers and sites.')),
    # The choices are `none` and the feature types a model computes itself
    # (`preprocessing.features.front_ends`), bound when that registry is imported.
    "front_end": Key("str", "features computed inside the model from a waveform store",
        default='none',
        notes=('Front end (a store of feature = waveform only): the features the model '
               'computes from the audio rows, with the settings of the store\'s [features] '
               'values, so that a saved model takes audio: {choices} (none: the rows as '
               'they are; the others as the librosa feature of that name). The per-fold '
               'normalisation is computed through it from the training rows.')),
    "encoder_trainable_blocks": int_key("with a pretrained encoder inside the model "
                                        "(front_end = aisfx): its last blocks that train",
                                        0, 64,
        default=0,
        notes=('Fine-tuning (front_end = aisfx, on a waveform store at the encoder\'s rate): '
               'how many of the encoder\'s last convolution blocks train (0 = the encoder '
               'frozen; aisfx has 4). Its batch norms keep their pretrained statistics. '
               'Costs the encoder\'s forward pass every epoch: a GPU job.')),
    "encoder_lr_scale": float_key("learning rate of the encoder's trained blocks, as a "
                                  "fraction of learning_rate", 0, 1, open_low=True,
        default=0.1,
        notes=('The learning rate of the encoder\'s trained blocks is learning_rate times '
               'this (the head trains at learning_rate): pretrained weights move slowly.')),
    "random_crop_seconds": float_key("train on a random window of this length of every "
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
    "rank_split": float_key("share of each fold's validation items that rank instances "
                            "and pick no epoch (0: off)", 0, 0.9,
        default=0.0,
        notes=("Share of each fold's validation items kept out of the epoch choice (early "
               "stopping, the best checkpoint) and only scored (the split `rank`): instances "
               "are then ranked on items their epoch was not chosen on, when every complete "
               "instance has them. 0 (the default): every validation item picks the epoch "
               "and ranks (docs/results.md, the selection study, measured both). The pick "
               "depends on the fold only, so every instance gets the same two sets.")),
    "mixup_alpha": float_key("mixup: Beta(alpha, alpha) mixing of training rows (0: off)", 0,
        default=0.2,
        notes=('Mixup: train on Beta(alpha, alpha) mixtures of pairs of rows and of their '
               'targets (0 = off).')),
    "label_smoothing": float_key("label smoothing of the classification targets", 0, 1,
                              open_high=True,
        default=0.1,
        notes='Label smoothing of classification targets (0 = off; 0.1 is usual).'),
    "embedding_classifier": choice_key("a scikit-learn classifier trained per fold on "
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
    "embedding_c": float_key("C of the embedding classifier; none: chosen on the "
                          "validation rows", 0, open_low=True, none=True,
        default=None,
        notes=('C of the classifier; none chooses it on the validation rows (macro recall) among '
               '0.01, 0.1, 1, 10, 100, 1000.')),
    "detection_threshold": float_key("detection: a frame is active at this probability; "
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
    "median_filter_seconds": float_key("detection: median filter of the frame decisions "
                                    "(seconds; 0: none; none: chosen per fold on the "
                                    "validation recordings)", 0, none=True,
        default=0.0),
    "min_event_seconds": float_key("detection: shorter detected events are dropped "
                                "(seconds)", 0,
        default=0.0),
    "min_gap_seconds": float_key("detection: shorter gaps between two detected events are "
                              "bridged (seconds)", 0,
        default=0.0),
}
"""`[training]`: key -> `Key`."""

TRAINING_NOTES = ("Every key of this section is an instance parameter: instances and --set may override "
        "it. The defaults are the best configuration measured on FSDD leave-one-speaker-out "
        "(docs, results): cosine learning rate after a 2-epoch warm-up, at least 15 epochs, "
        "SpecAugment, mixup, label smoothing, and the two classic speaker augmentations at "
        "their usual 10 % (VTLP, speed perturbation). Set them to 0 (and lr_schedule = "
        "constant) for plain training. A default min_epochs or warmup_epochs that does not fit "
        "an instance's epochs is scaled down (epochs // 2, epochs // 5); label smoothing and "
        "the warps are dropped for tasks without classes, SpecAugment, mixup and the warps for "
        "detection and representation; values an instance names are checked as given.")
"""The explanation written under the `[training]` header."""

# Keys added after the first release, with the value that leaves training as it was before
# them: a config.ini written earlier, without them, gets these values, and results recorded
# before them count as made with these values (so they resume instead of conflicting).
ADDED_TRAINING = {"min_epochs": 0, "warmup_epochs": 0, "time_masks": 0,
                 "time_mask_fraction": 0.1, "freq_masks": 0, "freq_mask_fraction": 0.1,
                 "mixup_alpha": 0.0, "label_smoothing": 0.0, "detection_threshold": 0.5,
                 "median_filter_seconds": 0.0, "min_event_seconds": 0.0,
                 "min_gap_seconds": 0.0, "row_normalization": "none",
                 "embedding_classifier": "none", "embedding_models": None,
                 "embedding_layer": "auto", "embedding_c": None,
                 "freq_warp": 0.0, "time_warp": 0.0, "refit_with_val": False,
                 "front_end": "none", "random_crop_seconds": 0.0,
                 "encoder_trainable_blocks": 0, "encoder_lr_scale": 0.1,
                 "rank_split": 0.0}
