"""Host reads per training step (issue 63), before and after, and what drawing SpecAugment's
and the warps' randomness on the device changes in the scores.

(a) `reads`: one fold of `init`'s audio CNN at the package defaults and of the demo's
    instances, on the demo store: the host reads inside Keras's `train_step` and `test_step`
    (`xval.training.host_reads.count_host_reads`) with Keras's seeded draws (what the layers
    did before: `--keras-draws` puts them back for the run) and with the device draws.
(b) `scores`: the same instance (a small size: 8 filters, 20 epochs, so that 2 CPU cores run
    it) over the folds of a store, Keras's draws against the device draws, the same seeds:
    each fold's test clip accuracy, their means, and the corrected resampled t-test of the
    difference (Nadeau & Bengio). Both arms draw each mask's width and place, and each row's
    warp, from the same uniform distributions; only the random streams differ.

    python -m benchmarks.host_reads reads
    python -m benchmarks.host_reads scores --config PROJECT/config.ini --dataset fsdd600 \\
        --number 63
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

from benchmarks._common import ROOT  # noqa: E402

DEFAULT_CNN = {"architecture": "audio_cnn", "reshaping_type": "conv",
               "comment_1": "audio CNN", "comment_2": "package defaults"}
SMALL = {"filters": 8, "blocks": 3, "epochs": 20, "patience": 6, "min_epochs": 8}


@contextlib.contextmanager
def keras_draws() -> Iterator[None]:
    """The layers draw as they did before issue 63: Keras's seeded draws, whose seed the
    torch backend reads back to the host at every call."""
    import keras

    from architectures.layers import DeviceDraws

    kept = DeviceDraws.uniform, DeviceDraws.randint
    DeviceDraws.uniform = lambda self, shape, like: keras.random.uniform(
        shape, seed=self.seed_generator)
    DeviceDraws.randint = lambda self, shape, high, like: keras.random.randint(
        shape, 0, high, seed=self.seed_generator)
    try:
        yield
    finally:
        DeviceDraws.uniform, DeviceDraws.randint = kept


def reads() -> None:
    """Part (a)."""
    import architectures
    from benchmarks.engine_overhead import ARCH
    from preprocessing.demo import build_demo
    from xval.config.loader import load_config
    from xval.config.params import resolve
    from xval.core.records import Job
    from xval.folds import ItemKFold
    from xval.training.fold import run_fold
    from xval.training.host_reads import count_host_reads

    defaults = load_config(ROOT / "config.ini").training
    instances = {"init's audio CNN (package defaults)": DEFAULT_CNN,
                 "demo CNN (plain)": ARCH,
                 "demo vgg_ultra_mini": {"architecture": "vgg_ultra_mini",
                                         "reshaping_type": "conv"},
                 "demo mlp": {"architecture": "mlp", "reshaping_type": "none"}}
    with tempfile.TemporaryDirectory() as tmp:
        store, _ = build_demo(Path(tmp) / "data", workers=1, progress=False)
        items = ItemKFold(4).split_items(store.items)[0]
        for name, spec in instances.items():
            params = resolve(1, {**spec, "epochs": 2, "patience": 2, "min_epochs": 0},
                             training_defaults=defaults, architectures=architectures)
            job = Job(instance=1, fold=0, params=params, items=items,
                      task_type="classification", generator=False, store=str(store.path))
            counts = []
            for before in (True, False):
                with keras_draws() if before else contextlib.nullcontext(), \
                        count_host_reads() as seen:
                    assert run_fold(job).ok
                counts.append(f"{seen.per_step():.0f}")
            print(f"{name}: host reads per training step, Keras's draws {counts[0]}, device "
                  f"draws {counts[1]}")


def scores(config_path: str, dataset: str, number: int, folds: int, size: dict) -> None:
    """Part (b): experiment `number` (Keras's draws, instance 1; device draws, instance 2)."""
    from xval import Experiment, Output
    from xval.config.loader import load_config
    from xval.report.results import ExperimentResults
    from xval.report.stats import corrected_resampled_ttest, fold_scores, fold_test_train_ratio

    config = load_config(config_path)
    exp = Experiment(description="issue 63: Keras's draws (1) vs device draws (2)",
                     dataset=dataset, number=number, num_folds=folds)
    for k in (1, 2):
        exp[k] = {**DEFAULT_CNN, **SMALL, **size,
                  "comment_1": ("Keras's draws", "device draws")[k - 1]}
    quiet = Output(out=lambda *a: None)
    with keras_draws():
        assert exp.run([1], config=config, output=quiet).exit_code == 0
    assert exp.run([2], config=config, output=quiet).exit_code == 0
    results = ExperimentResults(config.results_dir / dataset / f"experiment_{number}")
    a, b = (fold_scores(results[k], "accuracy", "test", "clip") for k in (1, 2))
    common = sorted(set(a) & set(b))
    ratio = float(np.nanmean([fold_test_train_ratio(results[k].folds) for k in (1, 2)]))
    test = corrected_resampled_ttest([b[i] for i in common], [a[i] for i in common], ratio)
    for label, values in (("Keras's draws", a), ("device draws", b)):
        shown = ", ".join(f"{values[i]:.3f}" for i in common)
        print(f"{label}: test clip accuracy {np.mean([values[i] for i in common]):.3f} ± "
              f"{np.std([values[i] for i in common]):.3f} ({shown})")
    print(f"device - Keras: {test.mean_difference:+.3f} (95 % interval {test.ci_low:+.3f} to "
          f"{test.ci_high:+.3f}, p = {test.p:.2f}, corrected resampled t-test, "
          f"{len(common)} folds)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("reads", "scores"))
    parser.add_argument("--config", help="scores: the project's config.ini")
    parser.add_argument("--dataset", help="scores: a store of that project")
    parser.add_argument("--number", type=int, default=63)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--filters", type=int, default=SMALL["filters"])
    parser.add_argument("--epochs", type=int, default=SMALL["epochs"])
    args = parser.parse_args(argv)
    if args.part == "reads":
        reads()
    else:
        if not args.config or not args.dataset:
            parser.error("scores needs --config and --dataset")
        scores(args.config, args.dataset, args.number, args.folds,
               {"filters": args.filters, "epochs": args.epochs})


if __name__ == "__main__":
    main()
