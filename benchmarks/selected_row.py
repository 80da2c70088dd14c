"""The selected row against its best member (issue 68), measured.

`init` writes three instances: 1 the aisfx encoder with its MLP head refit on training +
validation items, 2 an audio CNN trained from scratch, 3 = `Ensemble(1, 2)`. Early stopping
keeps each fold's epoch best on the validation items, so a model's score on them is
optimistic (the more so for a noisy curve); until issue 68 the ensemble's weights were
chosen on those clips, and the workbook selected the row to report on them. This runs the
two members (the CNN small enough for 2 shared cores: 8 filters, at most 30 epochs; or,
with `--member mlp`, an MLP on the log-mel store; with `--member linear`, a linear head on
the aisfx store, early-stopped and not refit: a member as strong as the first) with
`rank_split` 0 or 0.5 (half of each fold's validation items kept out of the epoch choice),
instance 3 their equal-weight ensemble and 4 their validation-weighted one, and prints, per
rule of selection:

- the row each rule selects, on the folds' means, and its test clip accuracy;
- the best member's (of 1 and 2, by mean test score) and the best row's on test;
- the selected row minus the best member: mean over folds and the corrected resampled
  t-test's 95 % interval (the noise of the folds: Nadeau & Bengio);
- per fold, how often the rule picks the row best on test.

Rules: **today** (before issue 68): validation weights (instance 4), selection on the
validation items that chose the epoch (`rank_split` 0); **new** (`init`'s default since):
equal weights (instance 3), selection on the items that chose no epoch when the folds
allow `rank_split` 0.5, else on the validation items. With `--weights-on-rank` the
ensemble whose weights are chosen on the `rank` clips (which chose nothing) is computed
too (its test score only: its `rank` score is the one its weights were chosen on).

    OMP_NUM_THREADS=1 python -m benchmarks.selected_row run --dataset ravdess480 --number 32 \\
        --member linear
    OMP_NUM_THREADS=1 python -m benchmarks.selected_row run --dataset ravdess480 --number 33 \\
        --member linear --rank-split 0.5
    python -m benchmarks.selected_row report --dataset ravdess480 --today 32 --new 33 \\
        --weights-on-rank

Measured on FSDD and RAVDESS: docs/results.md, "The selected row against its best member".

Build the stores first with `init` (a log-mel store `DATASET` and an aisfx store
`DATASET_aisfx` on the same items).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from benchmarks.ensembles import SMALL_CNN
from xval import Ensemble, Experiment, Output
from xval.config.loader import find_config, load_config
from xval.config.recipes import HEADS, REFIT_HEAD
from xval.report.results import ExperimentResults
from xval.report.stats import corrected_resampled_ttest, fold_scores, fold_test_train_ratio

MLP = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "MLP",
       "comment_2": "log-mel, from scratch"}
"""Member 2 with `--member mlp`: trained from scratch and early-stopped as the CNN is, in
a tenth of its time (RAVDESS's 1 s segments make the small CNN take an hour a fold on 2
shared cores)."""
METRIC = "accuracy"
MEMBERS = (1, 2)
EQUAL_ROW, VALIDATION_ROW = 3, 4


def experiment(dataset: str, encoder_store: str, number: int, folds: int,
               rank_split: float, member: str = "cnn") -> Experiment:
    """`init`'s two members (`member`: the small CNN, `MLP`, or a linear head on the
    encoder store), their equal-weight (3) and validation-weight (4) ensembles."""
    exp = Experiment(description=f"Selected row on {dataset}: rank_split {rank_split}",
                     dataset=dataset, number=number, num_folds=folds,
                     parameters={"rank_split": rank_split} if rank_split else {})
    exp[1] = {**REFIT_HEAD, "dataset": encoder_store, "comment_1": "aisfx + MLP head",
              "comment_2": "refit on train + val"}
    exp[2] = {"cnn": dict(SMALL_CNN), "mlp": dict(MLP),
              "linear": {**HEADS["linear"], "dataset": encoder_store,
                         "comment_1": "aisfx + linear head", "comment_2": "best epoch on val"}
              }[member]
    exp[EQUAL_ROW] = Ensemble(1, 2, weights="equal")
    exp[VALIDATION_ROW] = Ensemble(1, 2, weights="validation")
    return exp


def scores(results: ExperimentResults, split: str) -> dict[int, dict[int, float]]:
    """Instance -> fold -> clip accuracy on `split`."""
    return {r.id: fold_scores(r, METRIC, split, "clip") for r in results
            if r.status == "complete"}


def rank_weighted(root: Path) -> dict[int, float]:
    """Fold -> test clip accuracy of the ensemble of 1 and 2 whose weights are chosen on the
    fold's `rank` clips (predictions that chose nothing); empty without `rank` clips."""
    from xval import tasks  # noqa: PLC0415  (only with --weights-on-rank)
    from xval.core.storage import RESULTS_STORE  # noqa: PLC0415
    from xval.ensembles.compute import member_clips, members_of  # noqa: PLC0415
    from xval.ensembles.fusion import choose_weights, fused  # noqa: PLC0415

    members = members_of(root, list(MEMBERS), RESULTS_STORE)
    task = tasks.get(members[0].result.task_type or tasks.DEFAULT)
    classes = list(members[0].result.folds[0].classes or [])
    out = {}
    for fold in [f.fold for f in members[0].result.folds]:
        found = [member_clips(m, fold, task, classes) for m in members]
        if not all("rank" in c for c in found):
            return {}
        weights = choose_weights(task, [c["rank"] for c in found])
        test = fused(weights, [c["test"] for c in found])
        out[fold] = float(np.mean(test.argmax(axis=1) == found[0]["test"].targets))
    return out


def _ci(a: Mapping[int, float], b: Mapping[int, float], ratio: float) -> str:
    """`a - b` over their common folds: the mean and the corrected 95 % interval."""
    folds = sorted(set(a) & set(b))
    test = corrected_resampled_ttest([a[i] for i in folds], [b[i] for i in folds], ratio)
    return (f"{test.mean_difference:+.3f} (95% CI {test.ci_low:+.3f} to {test.ci_high:+.3f}, "
            f"p {test.p:.2f})")


def rule(label: str, results: ExperimentResults, rows: Sequence[int], split: str,
         extra: Mapping[str, Mapping[int, float]] | None = None) -> None:
    """Prints what one rule selects among `rows` on `split`, against the best member and
    the best row on test."""
    test = scores(results, "test")
    chosen_on = scores(results, split)
    rows = [k for k in rows if test.get(k) and chosen_on.get(k)]
    folds = sorted(set.intersection(*(set(test[k]) for k in rows)))
    mean = {k: float(np.mean([test[k][i] for i in folds])) for k in rows}
    by_split = {k: float(np.mean([chosen_on[k][i] for i in folds])) for k in rows}
    selected = max(rows, key=lambda k: (by_split[k], -k))
    member = max(MEMBERS, key=lambda k: (mean[k], -k))
    best = max(rows, key=lambda k: (mean[k], -k))
    hits = sum(max(rows, key=lambda k: (chosen_on[k][i], -k))
               == max(rows, key=lambda k: (test[k][i], -k)) for i in folds)
    ratio = float(np.nanmean([fold_test_train_ratio(results[k].folds) for k in MEMBERS]))
    print(f"  {label}: on {split}, rows {', '.join(map(str, rows))} score "
          + ", ".join(f"{k}: {by_split[k]:.3f}" for k in rows)
          + f"; selects {selected} (test {mean[selected]:.3f}); best member {member} "
          f"({mean[member]:.3f}); best on test {best} ({mean[best]:.3f}); selected - best "
          f"member {_ci(test[selected], test[member], ratio)}; per fold it picks the best on "
          f"test in {hits} of {len(folds)}")
    for name, values in (extra or {}).items():
        if values:
            print(f"    {name}: test {np.mean(list(values.values())):.3f}; - best member "
                  f"{_ci(values, test[member], ratio)}")


def describe(results: ExperimentResults) -> None:
    """Per instance: test, validation and rank clip accuracy (mean over folds, and how far
    validation and rank sit above test), and the ensembles' weights per fold."""
    test = scores(results, "test")
    for k in sorted(test):
        parts = [f"test {np.mean(list(test[k].values())):.3f} "
                 f"[{' '.join(f'{v:.2f}' for v in test[k].values())}]"]
        for split in ("val", "rank"):
            mine = scores(results, split).get(k, {})
            if mine:
                gap = np.mean([mine[i] - test[k][i] for i in mine if i in test[k]])
                parts.append(f"{split} {np.mean(list(mine.values())):.3f} ({gap:+.3f})")
        comment = " / ".join(c for c in results[k].comments() if c)
        print(f"  instance {k} ({comment}): " + "; ".join(parts))
        record = results[k].ensemble
        if record is not None and record.weighting == "validation":
            print("    weights per fold (1 / 2): " + ", ".join(
                f"{f['weights'][0]:.1f}/{f['weights'][1]:.1f}" for f in record.folds))


def report(root: Path, label: str, today: bool, new: bool, on_rank: bool) -> None:
    """Prints one experiment's instances and the rules it can judge."""
    results = ExperimentResults(root)
    share = next((r.params.get("rank_split", 0.0) for r in results if r.params), 0.0)
    print(f"{label} (experiment {root.name}, rank_split {share or 0}):")
    describe(results)
    has_rank = bool(scores(results, "rank").get(1))
    extra = {"weights chosen on rank": rank_weighted(root)} if on_rank and has_rank else None
    if today:
        rule("today (validation weights, selected on val)", results,
             [*MEMBERS, VALIDATION_ROW], "val")
    if new:
        rule("new (equal weights, selected on " + ("rank)" if has_rank else "val)"), results,
             [*MEMBERS, EQUAL_ROW], "rank" if has_rank else "val", extra)
        if has_rank:  # the same trainings, the items that chose the epoch
            rule("equal weights, selected on val (same trainings)", results,
                 [*MEMBERS, EQUAL_ROW], "val")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "report"))
    parser.add_argument("--dataset", required=True, help="the log-mel store init built")
    parser.add_argument("--encoder-store", help="the aisfx store (default: DATASET_aisfx)")
    parser.add_argument("--number", type=int, default=30, help="run: the experiment number")
    parser.add_argument("--rank-split", type=float, default=0.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--member", choices=("cnn", "mlp", "linear"), default="cnn",
                        help="run: instance 2, the small CNN or an MLP on the log-mel store, "
                             "or a linear head on the aisfx store (early-stopped, no refit)")
    parser.add_argument("--today", type=int, help="report: the experiment of rank_split 0")
    parser.add_argument("--new", type=int, help="report: the experiment of init's default "
                                                "(rank_split 0.5 where the folds allow it)")
    parser.add_argument("--weights-on-rank", action="store_true",
                        help="report: also the ensemble weighted on the rank clips")
    parser.add_argument("--config", help="config.ini (default: found as experiments find it)")
    args = parser.parse_args(argv)
    config = load_config(args.config or find_config())
    root = config.results_dir / args.dataset
    if args.action == "run":
        exp = experiment(args.dataset, args.encoder_store or f"{args.dataset}_aisfx",
                         args.number, args.folds, args.rank_split, args.member)
        exp.run(config=config, output=Output(progress=False))
        report(root / f"experiment_{args.number}", args.dataset, True, True, False)
        return
    today = args.today
    new = args.new if args.new is not None else today
    if today is not None:
        report(root / f"experiment_{today}", args.dataset, True, new == today,
               args.weights_on_rank)
    if new is not None and new != today:
        report(root / f"experiment_{new}", args.dataset, False, True, args.weights_on_rank)


if __name__ == "__main__":
    main()
