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

from xval.report.stats import corrected_resampled_ttest, fold_test_train_ratio


def fold_keys(instance_dir):
    """What each fold of an instance tests, as a key that pairs folds across experiments.

    The key is the fold's test items and which occurrence of them it is (repeated
    cross-validation tests each item once per repeat), counted over every fold of the
    experiment (`folds.json`, or else every fold file, failed ones too), so that a failed
    fold does not shift the keys of the folds after it.

    Args:
        instance_dir: an `instance_<k>` folder.

    Returns:
        dict of fold index to `(test items, occurrence)`.
    """
    manifest = instance_dir.parent / "folds.json"
    if manifest.is_file():
        tests = [fold["test"] for fold in json.loads(manifest.read_text())["folds"]]
        indices = range(len(tests))
    else:
        files = {int(p.stem.split("_")[1]): json.loads(p.read_text())
                 for p in instance_dir.glob("fold_*.json")}
        indices = sorted(files)
        tests = [files[i]["items"]["test"] for i in indices]
    keys, seen = {}, {}
    for index, test in zip(indices, tests):
        test = tuple(sorted(test))
        seen[test] = seen.get(test, 0) + 1
        keys[index] = (test, seen[test])
    return keys


def fold_scores(instance_dir, metric):
    """Test `metric` of every finished fold, clip level where recorded.

    Returns:
        `({key: score}, {key: fold dict})`, keyed by `fold_keys`, so that folds pair by
        what they test.
    """
    keys = fold_keys(instance_dir)
    scores, folds = {}, {}
    for path in instance_dir.glob("fold_*.json"):
        fold = json.loads(path.read_text())
        if fold.get("status") != "ok":
            continue
        key = keys[fold["fold"]]
        folds[key] = fold
        level = fold.get("clip_metrics") or fold["metrics"]
        scores[key] = level["test"][metric]
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
    if not instances:
        parser.error(f"{exp} has no instance_<k> folders; expected an experiment's results "
                     "folder, e.g. results/fsdd/experiment_3.")
    base_dir = args.baseline_dir or exp / f"instance_{args.baseline}"
    if not base_dir.is_dir():
        parser.error(f"baseline {base_dir} is not a folder; expected an instance_<k> folder "
                     "with fold_<i>.json files.")
    if any(base_dir.glob("instance_*")):
        parser.error(f"baseline {base_dir} is an experiment folder; pass one of its "
                     "instance_<k> folders, e.g. --baseline-dir "
                     f"{sorted(base_dir.glob('instance_*'))[0]}.")
    baseline = {metric: fold_scores(base_dir, metric) for metric in ("accuracy", "recall")}
    if not baseline["accuracy"][0]:
        parser.error(f"baseline {base_dir} has no finished fold (fold_<i>.json with status "
                     "ok); run it first, or choose another baseline.")
    print(f"{exp}: test scores over folds (mean ± std), against {base_dir} "
          "(corrected resampled t-test, folds paired by their test items)")
    print("(paired: the folds whose test items the baseline also tested; Δ and p use those)")
    print(f"{'instance':<10}{'comment':<18}{'folds':>6}{'paired':>7}{'accuracy':>16}{'UAR':>16}"
          f"{'Δ acc':>9}{'p':>8}{'Δ UAR':>9}{'p':>8}")
    for inst in instances:
        params = json.loads((inst / "params.json").read_text())
        params = params.get("params", params)
        row = f"{inst.name.split('_')[1]:<10}{str(params.get('comment_1', ''))[:17]:<18}"
        cells, n, paired = [], 0, 0
        for metric in ("accuracy", "recall"):
            scores, folds = fold_scores(inst, metric)
            base, base_folds = baseline[metric]
            if not scores:
                cells.append(("", "", ""))
                continue
            values = np.array(list(scores.values()))
            common = sorted(set(scores) & set(base))
            diff = p = ""
            if inst.resolve() != base_dir.resolve() and len(common) >= 2:
                ratio = fold_test_train_ratio([folds[k] for k in common]
                                              + [base_folds[k] for k in common])
                test = corrected_resampled_ttest([scores[k] for k in common],
                                                 [base[k] for k in common], ratio)
                diff, p = f"{test.mean_difference:+.3f}", f"{test.p:.3f}"
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append((f"{values.mean():.3f} ± {spread:.3f}", diff, p))
            n, paired = len(values), len(common)
        print(row + f"{n:>6}{paired:>7}{cells[0][0]:>16}{cells[1][0]:>16}{cells[0][1]:>9}"
              f"{cells[0][2]:>8}{cells[1][1]:>9}{cells[1][2]:>8}")


if __name__ == "__main__":
    main()
