"""Experiment 2: which learning rate, width and dropout make example_cnn best on FSDD digits?

The Free Spoken Digit Dataset: 6 speakers (the foldable items) each saying the ten digits
50 times. Folds never split a speaker, so every score is speaker-independent. Instance 1 is
the architecture's default; `--search` lets Optuna propose instances 2, 3, ... over learning
rate, filters and dropout, scored on the mean validation accuracy over the folds (never test)
and pruned fold by fold. Build the store once (the FSDD recipe of docs/preprocessing.md):

    python -m preprocessing regex ../shared/datasets/fsdd/recordings --pattern fsdd \\
        --out fsdd --sample-rate 8000 --n-mels 40

then:

    python experiments/exp2.py                      # the default instance
    python experiments/exp2.py --search --dry-run   # show the search space
    python experiments/exp2.py --search             # 20 trials (resumable; one runner per GPU)
"""

from xval import PLAIN_TRAINING, Experiment
from xval.config.space import Float, Int, Search

BASE = {"architecture": "example_cnn", "reshaping_type": "conv", "epochs": 15,
        "patience": 4, "batch_size": 64}

experiment = Experiment(
    description="FSDD digits: example_cnn default vs an Optuna search",
    dataset="fsdd",
    number=2,
    num_folds=3,
    task_type="classification",
    # Measured before the generalisation options became the defaults: kept plain, so the
    # README\'s numbers reproduce.
    parameters=PLAIN_TRAINING,
)

experiment[1] = {**BASE, "comment_1": "default", "comment_2": "example_cnn as shipped"}

experiment.search = Search(
    base=BASE,
    space={
        "learning_rate": Float(1e-4, 1e-2, log=True),
        "filters": Int(8, 32, step=8),
        "dropout": Float(0.0, 0.5),
    },
    n_trials=20,
    pruner="median",
)

if __name__ == "__main__":
    experiment.main()
