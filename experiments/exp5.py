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

from xval import Experiment
from xval.config.recipes import audio_cnn_recipe

experiment = Experiment(
    description="ESC-50, official 5 folds: audio_cnn",
    dataset="esc50",
    number=5,
    num_folds=5,
    task_type="classification",
)

for k, spec in audio_cnn_recipe(epochs=60, patience=12).items():  # plain, regularised
    experiment[k] = spec

if __name__ == "__main__":
    experiment.main()
