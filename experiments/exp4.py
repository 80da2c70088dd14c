"""Experiment 4: RAVDESS speech emotion, 8 emotions, actor-independent 5-fold (recipe).

The reference recipe for RAVDESS (issue 13): 24 actors are the foldable items, so no actor's
voice is on both sides of a fold; 5 folds, 3 s segments with a 1 s hop (3,107 segments of
1,440 files), clip-level scores (each file's segments pooled) as the headline. The number to
compare is the macro recall (UAR, "recall" in the workbook): chance is 0.125, and the
strongest strictly actor-independent figure we know of is 0.652; figures near 0.9 in the
literature mix actors across training and test. Build the store once (64 ms frames every
32 ms: emotion lives in slower changes than phonemes, and a fold trains in about 12 minutes
on one CPU core):

    python -m preprocessing regex ../shared/datasets/ravdess/audio --pattern ravdess \\
        --label-map ravdess --out ravdess --segment-seconds 3 --segment-hop-seconds 1 \\
        --n-fft 1024 --hop-length 512

then `python experiments/exp4.py 1 3 0`. Instance 2 trains with config.ini's shipped
regularisation (SpecAugment, mixup, label smoothing, the two warps), over 30 epochs;
instance 1 is plain training; instance 3 is instance 2 over 60 epochs (the recipe: clip UAR
0.606 ± 0.075 measured on 2 CPU cores, 25 to 41 minutes a fold on one core).
"""

from xval import Experiment
from xval.config.recipes import audio_cnn_recipe

experiment = Experiment(
    description="RAVDESS speech emotion, actor-independent 5-fold: audio_cnn",
    dataset="ravdess",
    number=4,
    num_folds=5,
    task_type="classification",
)

for k, spec in audio_cnn_recipe(epochs=30, patience=8).items():  # plain, regularised
    experiment[k] = spec
experiment[3] = {**experiment[2], "epochs": 60, "patience": 12, "min_epochs": 20,
                 "comment_1": "regularised, longer",
                 "comment_2": "instance 2 with up to 60 epochs"}

if __name__ == "__main__":
    experiment.main()
