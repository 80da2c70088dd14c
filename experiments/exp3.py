"""Experiment 3: FSDD digits, leave-one-speaker-out: which training options generalise?

The reference recipe for FSDD (issue 13): 6 speakers, 6 folds, each speaker the test set
once (a validation speaker is drawn from the other five), so every score is on a voice the
model never heard. Instance 1 is `audio_cnn` plain; instances 2 to 5 add one training option
each; instance 6 uses them all; 7 to 9 vary it; 10 to 13 add the speaker augmentations
(VTLP, speed perturbation, both; 12 is config.ini's defaults); 14 adds per-row mean
normalisation over the sounding frames; 15 doubles the width; 16 refits each fold on its
training and validation speakers; 17 and 18 are instance 12 on seeds 2 and 3. The results'
table of the options (docs/results.md) comes from this experiment. Build the store once (the FSDD
recipe of docs/preprocessing.md):

    python -m preprocessing regex ../shared/datasets/fsdd/recordings --pattern fsdd \\
        --out fsdd --sample-rate 8000 --n-mels 40

then:

    python experiments/exp3.py 1 6
"""

from xval import Experiment

PLAIN = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 8, "epochs": 25,
         "patience": 6, "batch_size": 64, "time_masks": 0, "freq_masks": 0,
         "mixup_alpha": 0.0, "label_smoothing": 0.0, "warmup_epochs": 0, "min_epochs": 0,
         "lr_schedule": "constant"}
SPEC_AUGMENT = {"time_masks": 2, "freq_masks": 2}
MIXUP = {"mixup_alpha": 0.2}
SMOOTHING = {"label_smoothing": 0.1}
SCHEDULE = {"warmup_epochs": 2, "lr_schedule": "cosine", "min_epochs": 10}

experiment = Experiment(
    description="FSDD digits, leave-one-speaker-out: audio_cnn and its training options",
    dataset="fsdd",
    number=3,
    num_folds=6,
    task_type="classification",
)

experiment[1] = {**PLAIN, "comment_1": "plain", "comment_2": "no option"}
experiment[2] = {**PLAIN, **SPEC_AUGMENT, "comment_1": "specaugment",
                 "comment_2": "2 time + 2 frequency masks"}
experiment[3] = {**PLAIN, **MIXUP, "comment_1": "mixup", "comment_2": "alpha 0.2"}
experiment[4] = {**PLAIN, **SMOOTHING, "comment_1": "label smoothing", "comment_2": "0.1"}
experiment[5] = {**PLAIN, **SCHEDULE, "comment_1": "schedule",
                 "comment_2": "warm-up 2, cosine, min_epochs 10"}
experiment[6] = {**PLAIN, **SPEC_AUGMENT, **MIXUP, **SMOOTHING, **SCHEDULE,
                 "comment_1": "all options", "comment_2": "instances 2 to 5 together"}
ALL = {**PLAIN, **SPEC_AUGMENT, **MIXUP, **SMOOTHING, **SCHEDULE}
experiment[7] = {**ALL, "row_normalization": "standard", "comment_1": "all + row norm",
                 "comment_2": "instance 6 with per-row CMVN"}
experiment[8] = {**ALL, "epochs": 60, "patience": 10, "min_epochs": 15,
                 "comment_1": "all, longer", "comment_2": "instance 6 with up to 60 epochs"}
experiment[9] = {**experiment[8], "filters": 16, "comment_1": "all, longer, wider",
                 "comment_2": "instance 8 with audio_cnn's default 16 filters"}
experiment[10] = {**experiment[9], "freq_warp": 0.1, "comment_1": "defaults + VTLP",
                  "comment_2": "instance 9 with frequency warping up to 10 %"}
experiment[11] = {**experiment[9], "time_warp": 0.1, "comment_1": "defaults + speed",
                  "comment_2": "instance 9 with speed perturbation up to 10 %"}
experiment[12] = {**experiment[9], "freq_warp": 0.1, "time_warp": 0.1,
                  "comment_1": "defaults + VTLP + speed", "comment_2": "instances 10 and 11"}
experiment[13] = {**experiment[9], "freq_warp": 0.2, "time_warp": 0.2,
                  "comment_1": "defaults + wider warps", "comment_2": "instance 12 at 20 %"}
experiment[14] = {**experiment[12], "row_normalization": "mean",
                  "comment_1": "defaults + CMN", "comment_2": "instance 12 with per-row mean "
                  "normalisation over the sounding frames"}
experiment[15] = {**experiment[12], "filters": 32, "comment_1": "defaults, 32 filters",
                  "comment_2": "instance 12 with twice audio_cnn's default width"}
experiment[16] = {**experiment[12], "refit_with_val": True, "comment_1": "defaults + refit",
                  "comment_2": "instance 12, each fold refit on its 5 training and "
                  "validation voices"}
experiment[17] = {**experiment[12], "seed": 2, "comment_1": "defaults, seed 2",
                  "comment_2": "instance 12 on another seed: how much a rerun moves"}
experiment[18] = {**experiment[12], "seed": 3, "comment_1": "defaults, seed 3",
                  "comment_2": "instance 12 on a third seed"}

if __name__ == "__main__":
    experiment.main()
