"""A selection the epoch was not chosen on (issue 58, point 5), measured.

Early stopping keeps each fold's epoch with the best validation loss, so an instance's
score on those validation items is optimistic, and the more so the noisier its curve: the
rule "select the best validation score" may pick the instance that is luckiest there, not
the best on test. With `rank_split = 0.5` each fold's validation items are cut in two
halves (by item, the same halves for every instance): half A picks the epoch, half B only
ranks. On the same trainings this compares two rules of equal data:

- **A (today's rule)**: rank on the items that also chose the epoch (`val`);
- **B (the alternative)**: rank on the items that chose nothing (`rank`).

Instances (as `init` writes them, and two more): 1 aisfx + MLP head refit on training +
validation items; 2 an audio CNN trained from scratch (8 filters, at most 30 epochs);
3 aisfx + a linear head; 4 an MLP on the log-mel store; 5 = Ensemble(1, 2). It prints, per
instance, the mean over folds of A, B and test and how far A and B sit above test; per fold
and over the folds' means, which instance each rule picks and whether it is the best on
test; and each rule's rank correlation with test. With `--today N`, experiment N (e.g.
`benchmarks.ensembles`' run, `rank_split = 0`: every validation item picks the epoch and
ranks) gives today's validation minus test per instance.

    OMP_NUM_THREADS=1 python -m benchmarks.selection --dataset envset --number 21 --today 20
    OMP_NUM_THREADS=1 python -m benchmarks.selection --dataset ravdess480 --number 21

The validation items are split by item, so each fold needs two validation items at least:
FSDD's 6 speakers in 5 folds leave one (`rank_split` refuses it before anything trains);
RAVDESS's 24 actors leave four.
"""

import argparse
from collections.abc import Sequence

import numpy as np
from scipy import stats

from benchmarks.ensembles import SMALL_CNN
from xval import Ensemble, Experiment, Output
from xval.config.loader import find_config, load_config
from xval.config.recipes import HEADS, REFIT_HEAD
from xval.report.results import ExperimentResults
from xval.report.stats import fold_scores

METRIC = "accuracy"
RULES = (("A: val (chose the epoch)", "val"), ("B: rank (chose nothing)", "rank"))


def experiment(dataset: str, encoder_store: str, number: int, folds: int,
               repeats: int) -> Experiment:
    """The five instances with `rank_split = 0.5`."""
    exp = Experiment(description=f"Selection study on {dataset}: rank_split 0.5",
                     dataset=dataset, number=number, num_folds=folds, num_repeats=repeats,
                     parameters={"rank_split": 0.5})
    exp[1] = {**REFIT_HEAD, "dataset": encoder_store, "comment_1": "aisfx + MLP head",
              "comment_2": "refit on train + val"}
    exp[2] = dict(SMALL_CNN)
    exp[3] = {**HEADS["linear"], "dataset": encoder_store, "comment_1": "aisfx + linear head",
              "comment_2": "best epoch on val"}
    exp[4] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "MLP",
              "comment_2": "log-mel, no convolutions"}
    exp[5] = Ensemble(1, 2)
    return exp


def scores(results: ExperimentResults, split: str) -> dict[int, dict[int, float]]:
    """Instance -> fold -> clip accuracy on `split`."""
    return {r.id: fold_scores(r, METRIC, split, "clip") for r in results
            if r.status == "complete"}


def _pm(values: Sequence[float]) -> str:
    return f"{np.mean(values):+.3f} ± {np.std(values, ddof=1):.3f}"


def optimism(results: ExperimentResults, splits: Sequence[str]) -> None:
    """Per instance: the means of each split and how far each sits above test."""
    test = scores(results, "test")
    found = {s: scores(results, s) for s in splits}
    for k, by_fold in test.items():
        folds = sorted(by_fold)
        parts = [f"test {np.mean([by_fold[i] for i in folds]):.3f}"]
        for split in splits:
            mine = found[split].get(k, {})
            if all(i in mine for i in folds):
                gaps = [mine[i] - by_fold[i] for i in folds]
                parts.append(f"{split} {np.mean([mine[i] for i in folds]):.3f} "
                             f"({split} - test {_pm(gaps)})")
        comment = " / ".join(c for c in results[k].comments() if c)
        print(f"  instance {k} ({comment}): " + "; ".join(parts))


def picks(results: ExperimentResults) -> None:
    """Per fold and over the folds' means: each rule's pick and whether it is the best on
    test (and how much test score it gives away); each rule's Spearman correlation with
    test across instances, per fold."""
    test = scores(results, "test")
    ids = sorted(test)
    folds = sorted(set.intersection(*(set(v) for v in test.values())))
    for label, split in RULES:
        ranked = scores(results, split)
        if not all(ranked.get(k) for k in ids):
            print(f"  rule {label}: no {split} scores (rank_split 0)")
            continue
        hits, regret, rho = 0, [], []
        for i in folds:
            by = {k: ranked[k][i] for k in ids}
            chosen = max(ids, key=lambda k: (by[k], -k))
            best = max(ids, key=lambda k: (test[k][i], -k))
            hits += test[chosen][i] >= test[best][i]
            regret.append(test[best][i] - test[chosen][i])
            rho.append(stats.spearmanr([by[k] for k in ids], [test[k][i] for k in ids])[0])
        means = {k: np.mean([ranked[k][i] for i in folds]) for k in ids}
        tests = {k: np.mean([test[k][i] for i in folds]) for k in ids}
        chosen = max(ids, key=lambda k: (means[k], -k))
        best = max(ids, key=lambda k: (tests[k], -k))
        print(f"  rule {label}: per fold, picks the best on test in {hits} of {len(folds)} "
              f"folds (test given away {np.mean(regret):.3f} ± {np.std(regret, ddof=1):.3f}); "
              f"Spearman with test {np.nanmean(rho):+.2f} ± {np.nanstd(rho, ddof=1):.2f}; "
              f"over the folds' means it picks instance {chosen} (test {tests[chosen]:.3f}), "
              f"the best on test is {best} ({tests[best]:.3f})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="the log-mel store init built")
    parser.add_argument("--encoder-store", help="the aisfx store (default: DATASET_aisfx)")
    parser.add_argument("--number", type=int, default=21, help="the experiment number")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--today", type=int, help="an experiment of rank_split 0 on the "
                                                   "same folds (benchmarks.ensembles')")
    parser.add_argument("--report-only", action="store_true", help="print, train nothing")
    parser.add_argument("--config", help="config.ini (default: found as experiments find it)")
    args = parser.parse_args(argv)
    config = load_config(args.config or find_config())
    exp = experiment(args.dataset, args.encoder_store or f"{args.dataset}_aisfx", args.number,
                     args.folds, args.repeats)
    if not args.report_only:
        exp.run(config=config, output=Output(progress=False))
    root = config.results_dir / args.dataset
    results = ExperimentResults(root / f"experiment_{args.number}")
    share = next((r.params.get("rank_split", 0.0) for r in results if r.params), 0.0)
    print(f"{args.dataset}, rank_split {share} (experiment {args.number}): clip {METRIC}, mean "
          "over folds, and mean ± std over folds of the difference")
    optimism(results, ("val", "rank"))
    picks(results)
    if args.today:
        print(f"{args.dataset}, rank_split 0 (experiment {args.today}): every validation item "
              "chose the epoch and ranks")
        optimism(ExperimentResults(root / f"experiment_{args.today}"), ("val",))


if __name__ == "__main__":
    main()
