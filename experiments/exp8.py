"""Experiment 8: FSDD with the offline augmentation of `--augment 2`, leave-one-speaker-out.

Instance 1 is experiment 3's instance 12 (config.ini's training) on a store where every
recording also has two augmented versions (coloured noise, seven-band EQ, simulated room,
time stretch; config.ini [augmentation]), used for training only. Build the store once:

    python -m preprocessing regex ../shared/datasets/fsdd/recordings --pattern fsdd \\
        --out fsdd_aug --sample-rate 8000 --n-mels 40 --augment 2

then:

    python experiments/exp8.py 1 1
"""

from xval import Experiment

experiment = Experiment(
    description="FSDD digits, leave-one-speaker-out, with 2 augmented versions per file",
    dataset="fsdd_aug",
    number=8,
    num_folds=6,
    task_type="classification",
)

# config.ini's training (experiment 3's instance 12 resolves to it, with batch 64).
experiment[1] = {"architecture": "audio_cnn", "reshaping_type": "conv", "batch_size": 64,
                 "comment_1": "exp3 instance 12 + --augment 2",
                 "comment_2": "noise, EQ, room, stretch: 2 versions per file, training only"}

if __name__ == "__main__":
    experiment.main()
