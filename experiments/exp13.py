"""Experiment 13: which model tags overlaid spoken digits on speakers it has never heard?

A multi-label set built from FSDD (issue 65; `python -m benchmarks.tagging_digits`, the
recordings never copied into the project): 240 clips of 1.5 s, 40 per speaker, each two
or three different digits of one speaker overlaid at random offsets and gains; the labels
are the digits (10), the items the 6 speakers, cross-validated over speakers with the
multi-label stratified k-fold (`MultilabelItemKFold`). The instances are what `python -m
xval init` writes for such a folder: the aisfx embeddings with the MLP head retrained on
training + validation items, an audio CNN from scratch on log-mel (smaller than init's, as
in issue 58's measurement), and their ensemble (the mean of their probabilities). The
baseline beside them (docs/results.md) is a one-vs-rest logistic regression on the same
aisfx embeddings, on the same folds. Build the set and the stores once:

    python -m benchmarks.tagging_digits build --out data/raw/digit_tags
    python -m preprocessing manifest data/raw/digit_tags/manifest.csv --item-column item \\
        --clip-column clip --label-separator ';' --sample-rate 8000 --segment-seconds 1.5 \\
        --segment-hop-seconds 0.75 --out digit_tags
    python -m preprocessing manifest data/raw/digit_tags/manifest.csv --item-column item \\
        --clip-column clip --label-separator ';' --encoders aisfx --out digit_tags_aisfx

then `python experiments/exp13.py` and
`python -m benchmarks.tagging_digits baseline results/digit_tags/experiment_13 --store
data/digit_tags_aisfx`.
"""

from xval import Ensemble, Experiment
from xval.config.recipes import ENCODER_HEADS

experiment = Experiment(
    description="Overlaid spoken digits (FSDD): tagging with aisfx + head, audio CNN, ensemble",
    dataset="digit_tags",
    number=13,
    num_folds=6,  # one speaker tested per fold
    task_type="tagging",
)

experiment[1] = {**ENCODER_HEADS["aisfx"], "dataset": "digit_tags_aisfx",
                 "comment_1": "aisfx + head", "comment_2": "pretrained embeddings, refit"}
# The small CNN of issue 58's ensembles study (docs/results.md): init's package
# defaults train 60 epochs, over an hour per fold on the shared 2-core machine.
experiment[2] = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 8,
                 "blocks": 3, "epochs": 30, "patience": 8, "min_epochs": 10,
                 "comment_1": "audio CNN", "comment_2": "from scratch, 8 filters, 30 epochs"}
experiment[3] = Ensemble(1, 2)  # the mean of 1 and 2's probabilities, equal weights
# The same CNN without the regularisation defaults (mixup, SpecAugment, warps), which a small
# model trained for 30 epochs may not afford.
experiment[4] = {**experiment[2], "mixup_alpha": 0.0, "time_masks": 0, "freq_masks": 0,
                 "freq_warp": 0.0, "time_warp": 0.0, "comment_2": "8 filters, 30 epochs, "
                                                                  "no regularisation"}

if __name__ == "__main__":
    experiment.main()
