"""Experiment 1: which small architecture recognises the demo pitch contours best?

The built-in demo dataset has 8 synthetic speakers (the foldable items) producing four
pitch contours (fall, flat, rise, vibrato). Folds never split a speaker, so the test score
says how well a model generalises to an unseen speaker. Build the dataset with `make demo`
(or `python -m preprocessing demo`), then run:

    python experiments/exp1.py            # every instance
    python experiments/exp1.py 2 3        # instances 2..3
    python experiments/exp1.py 1 3 0      # instances 1..3 on GPU 0
    python experiments/exp1.py --dry-run  # validate and show resolved parameters
"""

from xval import Experiment

experiment = Experiment(
    description="Demo: small CNN vs VGG vs MLP on synthetic pitch contours",
    dataset="demo",              # a feature store under config.ini [paths] data_dir
    number=1,                    # results go to results/demo/experiment_1/
    num_folds=4,                 # folds over items; 1 = one train/validation/test split
    overwrite_results=False,     # rerun instances that already have results
    debug_mode=False,            # True: stop at the first error with its traceback
    task_type="classification",  # or "regression", "detection", "representation", "tagging"
    generator=False,             # True: stream batches from the memory-mapped store
    gpu_ID=None,                 # default GPU; the command line wins
    # Applied to every instance (instances may override them).
    parameters={"epochs": 20, "patience": 4, "batch_size": 32},
)

experiment[1] = ['architecture="example_cnn"', 'reshaping_type="conv"',
                 'comment_1="lr 1e-3"', 'comment_2="baseline"', 'learning_rate=0.001']
experiment[2] = ['architecture="example_cnn"', 'reshaping_type="conv"',
                 'comment_1="lr 3e-3"', 'comment_2="faster learning"', 'learning_rate=0.003']
experiment[3] = {"architecture": "vgg_ultra_mini", "reshaping_type": "conv",
                 "comment_1": "vgg ultra mini", "comment_2": "deeper", "learning_rate": 0.002}
experiment[4] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "mlp",
                 "comment_2": "no convolutions", "hidden_units": 64}

if __name__ == "__main__":
    experiment.main()
