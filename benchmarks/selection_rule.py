"""The selected row against the best on test (issue 81): the rule before, and the rule now.

`init`'s instances on a set's stores, one experiment per fold seed (`[folds] fold_seed`: other
folds each time, the same stores): 1 to N each encoder's store with `init`'s head
(`encoder_head`: refit on training + validation items), N + 1 the encoders' embeddings side
by side (two encoders or more), then a model trained from scratch on the log-mel store (an
MLP: `init`'s CNN takes an hour a fold on 2 shared cores), then the late fusion of the
encoders' instances (`Ensemble`, equal weights), with `init`'s preference (fusion, side by
side, each encoder, from scratch: `xval.cli.scripts.encoder_preference`) and `rank_split`
0.5 where every fold has two validation items (else 0, as `init` writes).

`report` reads each experiment and prints, per rule:

- **before**: the best mean of the ranking scores (`ExperimentResults.best`: `rank` where
  every row has them, else `val`; exact ties by the validation loss);
- **after**: the report's selection (`xval.report.tables.Selection`: among the rows the
  ranking scores cannot tell apart, the first in the declared preference);

the selected row, its test clip score, the best row on test, their difference and the
corrected resampled t-test's p (Nadeau & Bengio, over the folds; computed here afterwards,
only to check: no rule reads a test score), and whether the selected row is the best or not
worse than it at p < 0.1; the same for every subset of two rows or more (an ensemble with
its members), as if the experiment had declared only those, on the same trainings; then per
rule, over the experiments and over the subsets, how often the selected row is the best or
not worse than it, how often the best, and how far below the best on test on average.
`--config` with another `[report] behind_probability` judges that threshold on the same
trainings.

    # AUDIO: a folder of links to 5 takes of each digit and speaker of FSDD
    python -m xval init AUDIO --pattern fsdd --name fsdd300 --folds 5 --no-progress
    OMP_NUM_THREADS=1 python -m benchmarks.selection_rule run --dataset fsdd300 \\
        --seeds 0 1 2 --number 91 --no-stratify
    python -m benchmarks.selection_rule report --dataset fsdd300 --numbers 91 92 93
    # RAVDESS, 10 clips per actor: --pattern ravdess --name ravdess240, then
    #   run --dataset ravdess240 --seeds 0 1 --number 91 --no-stratify --rank-split 0.5
    #   and --seeds 0 --number 81 --rank-split 0.5 (stratified: one cut whatever the seed)
    # the tagging set: benchmarks.tagging_digits build --clips 30 --seconds 3, init --manifest
    #   OUT/manifest.csv --name digit_tags, then
    #   run --dataset digit_tags --task-type tagging --seeds 0 1 --number 91 --no-stratify

Measured: docs/results.md, "The selected row a reader can trust (issue 81)".
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from xval import Ensemble, Experiment
from xval.cli.scripts import encoder_head, encoder_preference
from xval.config.loader import Config, find_config, load_config
from xval.config.selection import metric_direction, selection_metric
from xval.report.results import ExperimentResults
from xval.report.selection import preference_of, rank_rows
from xval.report.stats import corrected_resampled_ttest, fold_scores, fold_test_train_ratio
from xval.report.tables import (
    Selection,
    behind_probability_of,
    rope_of,
    selection_level,
    selection_split,
)

FROM_SCRATCH = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "MLP",
                "comment_2": "log-mel, from scratch"}
"""The row trained from scratch (`init` writes a CNN there: too slow for 2 shared cores)."""
NOT_WORSE_P = 0.1
"""The goal: the selected row is the best on test or not worse than it at this p."""


def seeded_config(config: Config, seed: int, stratify: bool = True) -> Config:
    """`config` with `[folds] fold_seed = seed` (and `stratify = false` unless `stratify`),
    as a file beside it, so that its relative paths still read the same folders. Items
    whose label shares are all alike (FSDD's speakers, each saying every digit as often)
    are cut the same way by every seed when the folds are stratified."""
    if seed == 0 and stratify:
        return config
    path = Path(config.path)
    text = path.read_text()
    head = "[folds]\n"
    keys = f"fold_seed = {seed}\n" + ("" if stratify else "stratify = false\n")
    text = text.replace(head, head + keys) if head in text \
        else f"{text.rstrip()}\n\n{head}{keys}"
    seeded = path.with_name(f"{path.stem}_fold_seed_{seed}{'' if stratify else '_plain'}.ini")
    seeded.write_text(text)
    return load_config(seeded)


def experiment(dataset: str, encoders: Sequence[str], number: int, folds: int,
               rank_split: float, seed: int, task_type: str = "classification") -> Experiment:
    """`init`'s instances and preference on `dataset`'s stores (see the module)."""
    stores = [f"{dataset}_{e}" for e in encoders]
    if len(stores) > 1:
        stores.append(f"{dataset}_{'_'.join(encoders)}")  # init's stacked store
    order = encoder_preference(len(stores))
    exp = Experiment(description=f"Selection rule on {dataset}, fold seed {seed}",
                     dataset=dataset, number=number, num_folds=folds, task_type=task_type,
                     parameters={"rank_split": rank_split} if rank_split else {},
                     preference=order)
    for k, store in enumerate(stores, start=1):
        head = encoder_head(encoders[k - 1] if k <= len(encoders) else None, task_type)
        exp[k] = {**head, "dataset": store, "comment_1": store.removeprefix(dataset + "_"),
                  "comment_2": "pretrained embeddings, refit"}
    exp[order[-1]] = dict(FROM_SCRATCH)
    exp[order[0]] = Ensemble(*range(1, len(encoders) + 1) if len(encoders) > 1 else (1, 2))
    return exp


class Verdict(NamedTuple):
    """A selected row against the best row on test."""

    ok: bool
    """Whether it is the best or not worse than it at `NOT_WORSE_P`."""
    best: bool
    """Whether it is the best."""
    below: float
    """How far its mean test score is below the best's (0 for the best)."""


def judge(results: ExperimentResults, selected: int, metric: str, level: str,
          rows: Collection[int] | None = None) -> tuple[str, Verdict]:
    """The selected row against the best complete row on test (among `rows`; `None`: all):
    a line, and the `Verdict`."""
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    test = {r.id: fold_scores(r, metric, "test", level) for r in results.complete()
            if rows is None or r.id in rows}
    mean = {k: float(np.mean(list(v.values()))) for k, v in test.items() if v}
    best = max(mean, key=lambda k: (sign * mean[k], -k))
    if selected == best:
        return f"{selected} (test {mean[selected]:.3f}) is the best on test", \
            Verdict(True, True, 0.0)
    folds = sorted(set(test[selected]) & set(test[best]))
    ratio = fold_test_train_ratio([f for k in (selected, best) for f in results[k].folds
                                   if f.fold in folds])
    t = corrected_resampled_ttest([test[selected][i] for i in folds],
                                  [test[best][i] for i in folds], ratio)
    ok = not (sign * t.mean_difference < 0 and t.p < NOT_WORSE_P)
    return (f"{selected} (test {mean[selected]:.3f}); best {best} ({mean[best]:.3f}); "
            f"difference {t.mean_difference:+.3f}, p {t.p:.2f}"), \
        Verdict(ok, False, sign * (mean[best] - mean[selected]))


def subsets(results: ExperimentResults, config: Config) -> dict[str, list[Verdict]]:
    """Both rules on every subset of two complete rows or more (an ensemble only with all
    its members), as if the experiment had declared those rows only, on the same trainings:
    rule -> per subset, its row against the subset's best (`judge`).
    The rule now is the report's own (`rank_rows`) with the experiment's preference."""
    metric = selection_metric(config, results.task_type)
    split = selection_split(results, metric)
    level = selection_level(results, metric, split)
    ranked = results.ranked(metric, split, level)
    members = {r.id: {int(m["instance"]) for m in r.ensemble.members}
               for r in ranked if r.ensemble is not None}
    out: dict[str, list[Verdict]] = {"before": [], "after": []}
    ids = [r.id for r in ranked]
    for size in range(2, len(ids) + 1):
        for rows in itertools.combinations(sorted(ids), size):
            if any(k in members and not members[k] <= set(rows) for k in rows):
                continue
            chosen = rank_rows([r for r in ranked if r.id in rows], metric, split, level,
                               confidence=behind_probability_of(config),
                               rope=rope_of(config),
                               repeats=(results.num_repeats, results.num_folds or 0),
                               preference=preference_of(results))
            before = next(r.id for r in ranked if r.id in rows)
            for name, k in (("before", before), ("after", chosen.selected)):
                line, verdict = judge(results, k, metric, level, rows)
                out[name].append(verdict)
                if not verdict.ok:
                    print(f"    {name}, rows {', '.join(map(str, rows))}: selects {line}")
    return out


def report(root: Path, config: Config) -> dict[str, list[Verdict]]:
    """Prints one experiment's rows and what each rule selects; returns rule -> its row
    against the best on test (`judge`): for the experiment, then for each subset of its
    rows (`subsets`)."""
    results = ExperimentResults(root)
    metric = selection_metric(config, results.task_type)
    split = selection_split(results, metric)
    level = selection_level(results, metric, split)
    print(f"{root} ({split} {level} {metric}):")
    for r in results.complete():
        ranked, test = fold_scores(r, metric, split, level), fold_scores(r, metric, "test", level)
        print(f"  {r.id} {' / '.join(c for c in r.comments() if c)}: {split} "
              f"{np.mean(list(ranked.values())):.3f}, test {np.mean(list(test.values())):.3f}")
    selection = Selection.of(results, config)
    before = results.best(metric, split, level)
    out: dict[str, list[Verdict]] = {}
    for name, chosen in (("before", before.id if before else None), ("after", selection.id)):
        if chosen is None:
            continue
        line, verdict = judge(results, chosen, metric, level)
        out[name] = [verdict]
        print(f"  {name}: selects {line}: {'ok' if verdict.ok else 'WORSE'}")
    if selection.ranking is not None:
        tied = ", ".join(map(str, sorted(selection.ranking.tied)))
        print(f"  after: rows the {split} scores cannot tell apart: {tied}")
    for name, found in subsets(results, config).items():
        out[name] = out.get(name, []) + found
        print(f"  {name}, every subset of 2 rows or more: {summary(found)}")
    return out


def summary(verdicts: Sequence[Verdict]) -> str:
    """How often the selected rows are the best or not worse, how often the best, and how
    far below the best on test they are on average."""
    if not verdicts:
        return "none"
    return (f"best or not worse (p < {NOT_WORSE_P}) in {sum(v.ok for v in verdicts)} of "
            f"{len(verdicts)}, the best in {sum(v.best for v in verdicts)}, "
            f"{np.mean([v.below for v in verdicts]):.3f} below the best on average")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "report"))
    parser.add_argument("--dataset", required=True, help="the log-mel store init built")
    parser.add_argument("--encoders", nargs="+", default=["aisfx", "birdnet"],
                        help="run: the encoders whose stores init built (DATASET_ENCODER)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="run: the fold seeds, one experiment each")
    parser.add_argument("--number", type=int, default=81,
                        help="run: the first experiment's number (one more per seed)")
    parser.add_argument("--numbers", nargs="+", type=int, help="report: the experiments")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--task-type", default="classification",
                        help="run: the stores' task (tagging for the multi-label sets)")
    parser.add_argument("--no-stratify", action="store_true",
                        help="run: plain shuffled folds over items (where the items' label "
                             "shares are all alike, stratified folds are one cut whatever the "
                             "seed)")
    parser.add_argument("--rank-split", type=float, default=0.0,
                        help="run: 0.5 where every fold has two validation items (init's)")
    parser.add_argument("--config", help="config.ini (default: found as experiments find it)")
    args = parser.parse_args(argv)
    config = load_config(args.config or find_config())
    root = config.results_dir / args.dataset
    numbers = args.numbers or []
    if args.action == "run":
        numbers = []
        for k, seed in enumerate(args.seeds):
            exp = experiment(args.dataset, args.encoders, args.number + k, args.folds,
                             args.rank_split, seed, args.task_type)
            exp.run(config=seeded_config(config, seed, not args.no_stratify))
            numbers.append(args.number + k)
    verdicts = [report(root / f"experiment_{n}", config) for n in numbers]
    for name in ("before", "after"):
        found = [v[name][0] for v in verdicts if name in v]
        rows = [verdict for v in verdicts for verdict in v.get(name, [])[1:]]
        print(f"{args.dataset}, {name}: experiments: {summary(found)}; subsets of their "
              f"rows: {summary(rows)}")


if __name__ == "__main__":
    main()
