"""Recipes: instance parameter sets measured on the project's data, which scripts compose
(`experiments/exp4.py` ... `exp13.py`) and `init` writes (`ENCODER_HEADS`). Each names where it
was measured; a script that copies one keeps its values when the recipe changes."""

from __future__ import annotations

from xval.config.params import PLAIN_TRAINING
from xval.core.parameters import TrainingParams
from xval.core.settings import keys_of

__all__ = ["ENCODER_HEADS", "HEADS", "MLP_HEAD", "PROBED_HEADS", "REFIT_HEAD", "REGULARISED",
           "audio_cnn_recipe", "encoder_grid"]

HEADS: dict[str, dict[str, object]] = {
    "linear": {"architecture": "pretrained_pool", "reshaping_type": "rnn", "projection": 0,
               "pooling": "meanmax", "hidden_units": 0},
    "mlp": {"architecture": "pretrained_pool", "reshaping_type": "rnn", "projection": 0,
            "pooling": "meanmax", "hidden_units": 256},
    "attention": {"architecture": "pretrained_pool", "reshaping_type": "rnn",
                  "projection": 128, "pooling": "attentive", "hidden_units": 128},
}
"""The heads measured on block embeddings (experiments 10-12): the mean and maximum of a
row's blocks with no hidden layer (linear) or one of 256 (MLP), or attentive pooling."""
MLP_HEAD = HEADS["mlp"]
"""Of the three heads, the best mean rank over FSDD, RAVDESS and the environmental set for
both aisfx and BirdNET (docs/results.md#encoders-whose-weights-ship-in-a-wheel)."""
REFIT_HEAD = {**MLP_HEAD, "refit_with_val": True}
"""The MLP head retrained on training + validation items for the epochs chosen on the
validation items: with a store whose rows are whole clips (`init`'s), +0.05 to +0.11 over
block rows on the environmental set and RAVDESS, p ~ 0.02 on both (docs/results.md,
"small-data protocol")."""
ENCODER_HEADS: dict[str, dict[str, object]] = {
    "aisfx": REFIT_HEAD,
    "birdnet": REFIT_HEAD,
    "resemblyzer": {"architecture": "pretrained_pool", "reshaping_type": "rnn"},
}
"""Each built-in encoder's default head in `init`'s script (measured: docs/pretrained.md,
docs/results.md)."""
PROBED_HEADS = {**HEADS, "linear": {**HEADS["linear"], "embedding_classifier": "logreg"}}
"""`HEADS`, the linear one also fitting the logistic-regression probe on its pooled
embeddings (`embedding_recall`): the heads of experiments 10 to 12."""
REGULARISED = {**{name: keys_of(TrainingParams)[name].default
                  for name in ("time_masks", "freq_masks", "mixup_alpha", "label_smoothing")},
               "comment_1": "regularised", "comment_2": "SpecAugment, mixup, label smoothing"}
"""The regularisation of the audio_cnn recipes (experiments 4 and 5: instance 2): SpecAugment,
mixup and label smoothing at the package defaults (2 and 2 masks, 0.2, 0.1), so that the
recipe follows them."""


def encoder_grid(prefix: str, encoders: tuple[str, ...] = ("aisfx", "birdnet")
                 ) -> dict[int, dict[str, object]]:
    """Instances 1, 2, ...: each encoder's store `{prefix}_{encoder}` read by each head of
    `PROBED_HEADS` (experiments 10 to 12)."""
    grid = [{**spec, "dataset": f"{prefix}_{encoder}", "comment_1": encoder,
             "comment_2": head} for encoder in encoders for head, spec in PROBED_HEADS.items()]
    return dict(enumerate(grid, start=1))


def audio_cnn_recipe(epochs: int, patience: int) -> dict[int, dict[str, object]]:
    """Instances 1 (plain training) and 2 (`REGULARISED`) of an audio_cnn recipe: warm-up
    and a cosine schedule, over `epochs` epochs with `patience` (experiments 4 and 5)."""
    base = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 16,
            "epochs": epochs, "patience": patience, "batch_size": 32, "min_epochs": 10,
            "warmup_epochs": 2, "lr_schedule": "cosine"}
    return {1: {**base, **PLAIN_TRAINING, "min_epochs": 10, "warmup_epochs": 2,
                "lr_schedule": "cosine", "comment_1": "plain",
                "comment_2": "audio_cnn, warm-up + cosine"},
            2: {**base, **REGULARISED}}
