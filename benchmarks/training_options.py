"""The training options' effect, instance by instance, against a baseline instance.

Reads a finished experiment (by default exp3: FSDD leave-one-speaker-out, one instance per
option) and prints, for every instance, the fold-averaged test accuracy and macro recall
(UAR) at clip level (segment level when the files were not cut), the mean difference from
the baseline instance and the p-value of Nadeau & Bengio's corrected resampled t-test over
the paired folds. Folds are paired by their test items, so `--baseline-dir` can name an
instance of another experiment on the same items (another store of the same recordings).
Nothing is trained here: run the experiment first.

    python experiments/exp3.py 1 6
    python -m benchmarks.training_options [results/fsdd/experiment_3] [--baseline 1]
    python -m benchmarks.training_options results/fsdd_aug/experiment_8 \\
        --baseline-dir results/fsdd/experiment_3/instance_12
"""

import argparse
import json
from pathlib import Path

import numpy as np

from xval.stats import corrected_resampled_ttest, fold_test_train_ratio


def fold_scores(instance_dir, metric):
    """Test `metric` of every finished fold, clip level where recorded.

    Returns:
        `({key: score}, fold dicts)`, the key being the fold's test items (and, for repeated
        cross-validation, which occurrence of them), so that folds pair by what they test.
    """
    scores, folds, seen = {}, [], {}
    paths = sorted(instance_dir.glob("fold_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    for path in paths:
        fold = json.loads(path.read_text())
        if fold.get("status") != "ok":
            continue
        folds.append(fold)
        level = fold.get("clip_metrics") or fold["metrics"]
        test = tuple(sorted(fold["items"]["test"]))
        seen[test] = seen.get(test, 0) + 1
        scores[(test, seen[test])] = level["test"][metric]
    return scores, folds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default="results/fsdd/experiment_3")
    parser.add_argument("--baseline", type=int, default=1,
                        help="baseline instance of the same experiment (default 1)")
    parser.add_argument("--baseline-dir", type=Path,
                        help="baseline instance folder of another experiment on the same items")
    args = parser.parse_args(argv)
    exp = Path(args.experiment)
    instances = sorted((p for p in exp.glob("instance_*") if p.name.split("_")[1].isdigit()),
                       key=lambda p: int(p.name.split("_")[1]))
    base_dir = args.baseline_dir or exp / f"instance_{args.baseline}"
    if not base_dir.is_dir():
        parser.error(f"baseline {base_dir} is not a folder; expected an instance_<k> folder "
                     "with fold_<i>.json files.")
    print(f"{exp}: test scores over folds (mean ± std), against {base_dir} "
          "(corrected resampled t-test, folds paired by their test items)")
    print(f"{'instance':<10}{'comment':<18}{'folds':>6}{'accuracy':>16}{'UAR':>16}"
          f"{'Δ acc':>9}{'p':>8}{'Δ UAR':>9}{'p':>8}")
    for inst in instances:
        params = json.loads((inst / "params.json").read_text())
        params = params.get("params", params)
        row = f"{inst.name.split('_')[1]:<10}{str(params.get('comment_1', ''))[:17]:<18}"
        cells, n = [], 0
        for metric in ("accuracy", "recall"):
            scores, folds = fold_scores(inst, metric)
            base, base_folds = fold_scores(base_dir, metric)
            if not scores:
                cells.append(("", "", ""))
                continue
            values = np.array(list(scores.values()))
            common = sorted(set(scores) & set(base))
            diff = p = ""
            if inst != base_dir and len(common) >= 2:
                ratio = fold_test_train_ratio(folds + base_folds)
                test = corrected_resampled_ttest([scores[f] for f in common],
                                                 [base[f] for f in common], ratio)
                diff, p = f"{test.mean_difference:+.3f}", f"{test.p:.3f}"
            cells.append((f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}",
                          diff, p))
            n = len(values)
        print(row + f"{n:>6}{cells[0][0]:>16}{cells[1][0]:>16}{cells[0][1]:>9}{cells[0][2]:>8}"
              f"{cells[1][1]:>9}{cells[1][2]:>8}")


if __name__ == "__main__":
    main()
