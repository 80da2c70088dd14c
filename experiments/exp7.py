"""Experiment 7: a convolutional autoencoder on FSDD (the representation task).

No labels are used: the model learns to reconstruct its normalised input through a
bottleneck of `bottleneck_channels` channels. The workbook gives the test reconstruction MSE
beside the baseline that predicts the mean training row; `python -m xval embed MODEL FILES
--out codes.npy` then writes the bottleneck codes. Uses the FSDD store of exp2/exp3.

    python experiments/exp7.py 1 1
"""

from xval import PLAIN_TRAINING, Experiment

experiment = Experiment(
    description="FSDD autoencoder: reconstruction against the mean-row baseline",
    dataset="fsdd",
    number=7,
    num_folds=3,
    task_type="representation",
    # Measured before the generalisation options became the defaults: kept plain, so the
    # README\'s numbers reproduce.
    parameters=PLAIN_TRAINING,
)

experiment[1] = {"architecture": "conv_autoencoder", "reshaping_type": "conv", "filters": 16,
                 "blocks": 2, "bottleneck_channels": 8, "epochs": 20, "patience": 4,
                 "batch_size": 64, "comment_1": "autoencoder", "comment_2": "8-channel code"}

experiment[2] = {**experiment[1], "embedding_classifier": "svm", "comment_1": "autoencoder + svm",
                 "comment_2": "an SVM on the bottleneck codes, C chosen on validation"}

if __name__ == "__main__":
    experiment.main()
