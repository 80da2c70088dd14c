"""Ensembles of `init`'s two instances, measured (issue 58): each member, the equal-weight
and the validation-weighted ensemble, and the corrected resampled t-test of each ensemble
against the best member over the paired folds.

The two members are those `python -m xval init` writes: the aisfx encoder with its MLP head
retrained on training + validation items (instance 1), and an audio CNN trained from scratch
on the log-mel store (instance 2: `--cnn small`, 8 filters and at most 30 epochs, so that a
5-fold run fits in tens of minutes on 2 shared cores; `--cnn defaults`: the package defaults,
as `init` writes it). Build the two stores with `init`, then run, e.g.:

    python -m xval init data/raw/envset --manifest data/raw/envset/manifest.csv --name envset
    OMP_NUM_THREADS=1 python -m benchmarks.ensembles --dataset envset --number 20

Results go to config.ini's results folder, like any experiment's; the script prints each
instance's test clip accuracy (mean ± std over folds, and per fold), its validation accuracy,
the weights of the validation-weighted ensemble per fold, and the t-tests.
"""

import argparse
from collections.abc import Sequence

import numpy as np

from xval import Ensemble, Experiment, Output
from xval.config.loader import find_config, load_config
from xval.config.recipes import REFIT_HEAD
from xval.report.comparison import Target, compare
from xval.report.results import ExperimentResults
from xval.report.stats import fold_scores

SMALL_CNN = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 8,
             "blocks": 3, "epochs": 30, "patience": 8, "min_epochs": 10,
             "comment_1": "audio CNN", "comment_2": "from scratch, 8 filters, 30 epochs"}
DEFAULT_CNN = {"architecture": "audio_cnn", "reshaping_type": "conv",
               "comment_1": "audio CNN", "comment_2": "from scratch, package defaults"}


def members(dataset: str, encoder_store: str, cnn: str) -> dict[int, dict[str, object]]:
    """`init`'s two instances on `dataset` (log-mel) and `encoder_store` (aisfx)."""
    return {1: {**REFIT_HEAD, "dataset": encoder_store, "comment_1": "aisfx + head",
                "comment_2": "refit on train + val"},
            2: dict(SMALL_CNN if cnn == "small" else DEFAULT_CNN)}


def experiment(dataset: str, encoder_store: str, number: int, folds: int, cnn: str,
               extra: dict[str, object] | None = None) -> Experiment:
    """The members, then instance 3 (equal weights) and 4 (validation weights)."""
    exp = Experiment(description=f"Ensembles of init's instances on {dataset}",
                     dataset=dataset, number=number, num_folds=folds,
                     parameters=dict(extra or {}))
    for k, spec in members(dataset, encoder_store, cnn).items():
        exp[k] = spec
    exp[3] = Ensemble(1, 2, weights="equal")
    exp[4] = Ensemble(1, 2)
    return exp


def _line(results: ExperimentResults, k: int) -> str:
    r = results[k]
    test = fold_scores(r, "accuracy", "test", "clip")
    val = fold_scores(r, "accuracy", "val", "clip")
    values = list(test.values())
    return (f"instance {k} ({' / '.join(c for c in r.comments() if c)}): test clip accuracy "
            f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} "
            f"[{' '.join(f'{v:.3f}' for v in values)}]; validation "
            f"{np.mean(list(val.values())):.3f}")


def report(results: ExperimentResults) -> None:
    """Prints every instance, the weights and each ensemble's t-test against the best
    member (by mean test score) over the paired folds."""
    for k in sorted(results.instances):
        print(_line(results, k))
    for k in (3, 4):
        record = results[k].ensemble
        if record is not None and record.weighting == "validation":
            print(f"instance {k} weights per fold (aisfx / CNN): "
                  + "; ".join(f"{w[0]:.1f}/{w[1]:.1f}" for w in
                              (f["weights"] for f in record.folds)))
    means = {k: np.mean(list(fold_scores(results[k], "accuracy", "test", "clip").values()))
             for k in (1, 2)}
    best = max(means, key=means.__getitem__)
    comparison = compare([Target(results.path, k) for k in (best, 3, 4)], metric="accuracy")
    for pair in comparison.pairs:
        print(f"{pair.a} - {pair.b}: {pair.difference:+.4f} (corrected 95% CI "
              f"[{pair.ci_low:+.4f}, {pair.ci_high:+.4f}], p {pair.p:.3f}, {pair.folds} "
              "paired folds)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="the log-mel store init built")
    parser.add_argument("--encoder-store", help="the aisfx store (default: DATASET_aisfx)")
    parser.add_argument("--number", type=int, default=20, help="the experiment number")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cnn", choices=("small", "defaults"), default="small")
    parser.add_argument("--report-only", action="store_true", help="print, train nothing")
    parser.add_argument("--config", help="config.ini (default: found as experiments find it)")
    args = parser.parse_args(argv)
    config = load_config(args.config or find_config())
    exp = experiment(args.dataset, args.encoder_store or f"{args.dataset}_aisfx", args.number,
                     args.folds, args.cnn)
    if not args.report_only:
        exp.run(config=config, output=Output(progress=False))
    report(ExperimentResults(config.results_dir / args.dataset / f"experiment_{args.number}"))


if __name__ == "__main__":
    main()
