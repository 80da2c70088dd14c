"""Experiment 14: the detection default on the easy detection set, 3 folds over speakers.

The easy set of docs/results.md ("Two detection sets"): FSDD digits (one speaker per
recording, one class) in 10 s of coloured noise at 0 to 20 dB, far apart; a store of the
detection defaults (5 s windows, 20 ms frames). Its pair is `experiments/exp9.py` instance
4, the same default on the hard set (event trains in babble). Instance 1 is the stock
detector with the package's detection defaults, post-processing included.

    python -m preprocessing synth-events ../shared/datasets/fsdd/recordings \\
        --out data/raw/fsdd_events --files-per-speaker 20
    python -m preprocessing detection data/raw/fsdd_events \\
        --annotations data/raw/fsdd_events/annotations.csv \\
        --items data/raw/fsdd_events/items.csv --out fsdd_events
    python experiments/exp14.py 1 1
"""

from xval import Experiment

experiment = Experiment(
    description="The detection default on the easy set (digits far apart in noise)",
    dataset="fsdd_events",
    number=14,
    num_folds=3,
    task_type="detection",
)

experiment[1] = {"architecture": "fast_detector", "reshaping_type": "conv",
                 "comment_1": "fast_detector", "comment_2": "the detection default"}

if __name__ == "__main__":
    experiment.main()
