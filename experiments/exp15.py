"""Experiment 15: the detection default on the dense set, 3 folds over items.

The dense set of docs/results.md ("Events as the annotator draws them"): FSDD digits as one
class ("digit", like a call or a bark) placed close together, singly or in trains of up to
3 (gaps inside a train 50-300 ms; 31 % of all gaps under 200 ms, 54 % under 300 ms), at 0
to 15 dB on reverberant babble recorded from RAVDESS actors, 20-40 s recordings; an item is
a speaker and a site. Unlike the hard set (`experiments/exp9.py`) the detector's frames are
mostly right here, so what is left to lose is the events' bounds: merged, split, or outside
the collar.

    python -m preprocessing synth-babble ../shared/datasets/ravdess/audio \\
        --out data/raw/babble --groups 6 --files-per-group 3 --seconds 60 --seed 0
    python -m preprocessing synth-events ../shared/datasets/fsdd/recordings \\
        --out data/raw/fsdd_dense --backgrounds data/raw/babble --background-groups \\
        --files-per-speaker 7 --seconds 20 --seconds-max 40 --events-min 6 --events-max 10 \\
        --train-min 1 --train-max 3 --train-gap-min 0.05 --train-gap-max 0.3 --min-gap 0.4 \\
        --labels single --snr-min 0 --snr-max 15 --seed 0
    python -m preprocessing detection data/raw/fsdd_dense \\
        --annotations data/raw/fsdd_dense/annotations.csv \\
        --items data/raw/fsdd_dense/items.csv --out fsdd_dense
    python experiments/exp15.py 1 1
"""

from xval import Experiment

experiment = Experiment(
    description="The detection default on the dense set (calls close together in babble)",
    dataset="fsdd_dense",
    number=15,
    num_folds=3,
    task_type="detection",
)

experiment[1] = {"architecture": "fast_detector", "reshaping_type": "conv",
                 "comment_1": "fast_detector", "comment_2": "the detection default"}

if __name__ == "__main__":
    experiment.main()
