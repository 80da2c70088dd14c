"""Experiment 5: ESC-50 environmental sounds, the official 5 folds (recipe).

ESC-50 (Piczak 2015): 2,000 five-second clips, 50 classes, 5 predefined folds that keep
clips cut from the same source recording together. The folds are the foldable items, so
each fold is the test set once (one other fold validates; the published protocol trains on
all four, so expect slightly lower scores). Clip-level accuracy (the 1 s segments of a clip
pooled) is the headline. Published baselines, trained from scratch like this recipe:
Piczak's CNN 64.5 %, human listeners 81.3 %; models pretrained on AudioSet (PANNs CNN14,
94.7 %) are not comparable. Get the dataset (github.com/karolpiczak/ESC-50), then:

    python -m preprocessing manifest ESC-50/meta/esc50.csv --root ESC-50/audio \\
        --path-column filename --label-column category --item-column fold --out esc50
    python experiments/exp5.py 1 2 0
"""

from xval import PLAIN_TRAINING, Experiment

BASE = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 16, "epochs": 60,
        "patience": 12, "batch_size": 32, "min_epochs": 10, "warmup_epochs": 2,
        "lr_schedule": "cosine"}

experiment = Experiment(
    description="ESC-50, official 5 folds: audio_cnn",
    dataset="esc50",
    number=5,
    num_folds=5,
    task_type="classification",
)

experiment[1] = {**BASE, **PLAIN_TRAINING, "min_epochs": 10, "warmup_epochs": 2,
                 "lr_schedule": "cosine", "comment_1": "plain", "comment_2": "audio_cnn, warm-up + cosine"}
experiment[2] = {**BASE, "time_masks": 2, "freq_masks": 2, "mixup_alpha": 0.2,
                 "label_smoothing": 0.1, "comment_1": "regularised",
                 "comment_2": "SpecAugment, mixup, label smoothing"}

if __name__ == "__main__":
    experiment.main()
