"""The training options' effect, instance by instance, against a baseline instance.

Reads a finished experiment (by default exp3: FSDD leave-one-speaker-out, one instance per
option) and prints, for every instance, the fold-averaged test accuracy and macro recall
(UAR) at clip level (segment level when the files were not cut), the mean difference from
the baseline instance and the p-value of Nadeau & Bengio's corrected resampled t-test over
the paired folds. Folds are paired by their test items, so `--baseline-dir` can name an
instance of another experiment on the same items (another store of the same recordings).
Nothing is trained here: run the experiment first. Fold files are read as the report reads
them (`xval.report.results`): a fold whose file cannot be believed is left out.

    python experiments/exp3.py 1 6
    python -m benchmarks.training_options [results/fsdd/experiment_3] [--baseline 1]
    python -m benchmarks.training_options results/fsdd_aug/experiment_8 \\
        --baseline-dir results/fsdd/experiment_3/instance_12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from xval.core.errors import ResultsConflictError
from xval.core.layout import ExperimentLayout, InstanceLayout
from xval.core.records import FoldResult, FoldsManifest
from xval.core.storage import RESULTS_STORE
from xval.report.results import InstanceResult
from xval.report.stats import corrected_resampled_ttest, fold_test_train_ratio

FoldKey = tuple[tuple[str, ...], int]
"""What a fold tests: its test items and which occurrence of them it is."""


def read_instance(instance_dir: Path) -> tuple[InstanceResult, FoldsManifest | None]:
    """An instance folder as the report reads it (its fold files checked), with its
    experiment's `folds.json`."""
    manifest = RESULTS_STORE.manifest(ExperimentLayout(instance_dir.parent))
    return InstanceResult(instance_dir, manifest.num_folds if manifest else None), manifest


def fold_keys(instance: InstanceResult, manifest: FoldsManifest | None) -> dict[int, FoldKey]:
    """What each fold of an instance tests, as a key that pairs folds across experiments.

    The key is the fold's test items and which occurrence of them it is (repeated
    cross-validation tests each item once per repeat), counted over every fold of the
    experiment (`folds.json`, or else every fold record, failed ones too), so that a failed
    fold does not shift the keys of the folds after it.

    Args:
        instance: the instance's results.
        manifest: its experiment's `folds.json`, or `None`.

    Returns:
        dict of fold index to `(test items, occurrence)`.
    """
    if manifest is not None:
        tests = [fold["test"] for fold in manifest.folds]
        indices: list[int] = list(range(len(tests)))
    else:
        by_fold = {f.fold: f.items.get("test", []) for f in instance.folds}
        indices = sorted(by_fold)
        tests = [by_fold[i] for i in indices]
    keys, seen = {}, {}
    for index, test in zip(indices, tests):
        items = tuple(sorted(test))
        seen[items] = seen.get(items, 0) + 1
        keys[index] = (items, seen[items])
    return keys


def fold_scores(instance: InstanceResult, manifest: FoldsManifest | None,
                metric: str) -> tuple[dict[FoldKey, float], dict[FoldKey, FoldResult]]:
    """Test `metric` of every finished fold, clip level where recorded.

    Returns:
        `({key: score}, {key: fold record})`, keyed by `fold_keys`, so that folds pair by
        what they test.
    """
    keys = fold_keys(instance, manifest)
    scores, folds = {}, {}
    for fold in instance.folds:
        level = fold.clip_metrics or fold.metrics
        if not fold.ok or not level or fold.fold not in keys:
            continue
        value = level.get("test", {}).get(metric)
        if value is not None:
            key = keys[fold.fold]
            folds[key] = fold
            scores[key] = float(value)
    return scores, folds


def _baseline(parser: argparse.ArgumentParser, exp: Path, args: argparse.Namespace
              ) -> tuple[Path, dict[str, tuple[dict, dict]]]:
    base_dir = args.baseline_dir or ExperimentLayout(exp).instance(args.baseline).root
    if not base_dir.is_dir():
        parser.error(f"baseline {base_dir} is not a folder; expected an instance_<k> folder "
                     "with fold_<i>.json files.")
    inner = ExperimentLayout(base_dir).instances()
    if inner:
        parser.error(f"baseline {base_dir} is an experiment folder; pass one of its "
                     f"instance_<k> folders, e.g. --baseline-dir {inner[0].root}.")
    if InstanceLayout.parse(base_dir) is None:
        parser.error(f"baseline {base_dir} is not an instance_<k> folder.")
    instance, manifest = read_instance(base_dir)
    baseline = {metric: fold_scores(instance, manifest, metric)
                for metric in ("accuracy", "recall")}
    if not baseline["accuracy"][0]:
        parser.error(f"baseline {base_dir} has no finished fold (fold_<i>.json with status "
                     "ok); run it first, or choose another baseline.")
    return base_dir, baseline


def _row(inst_dir: Path, base_dir: Path, baseline: dict[str, tuple[dict, dict]]) -> str:
    instance, manifest = read_instance(inst_dir)
    row = f"{instance.id:<10}{str(instance.params.get('comment_1', ''))[:17]:<18}"
    cells, n, paired = [], 0, 0
    for metric in ("accuracy", "recall"):
        scores, folds = fold_scores(instance, manifest, metric)
        base, base_folds = baseline[metric]
        if not scores:
            cells.append(("", "", ""))
            continue
        values = np.array(list(scores.values()))
        common = sorted(set(scores) & set(base))
        diff = p = ""
        if inst_dir.resolve() != base_dir.resolve() and len(common) >= 2:
            ratio = fold_test_train_ratio([folds[k] for k in common]
                                          + [base_folds[k] for k in common])
            test = corrected_resampled_ttest([scores[k] for k in common],
                                             [base[k] for k in common], ratio)
            diff, p = f"{test.mean_difference:+.3f}", f"{test.p:.3f}"
        spread = values.std(ddof=1) if len(values) > 1 else 0.0
        cells.append((f"{values.mean():.3f} ± {spread:.3f}", diff, p))
        n, paired = len(values), len(common)
    return row + (f"{n:>6}{paired:>7}{cells[0][0]:>16}{cells[1][0]:>16}{cells[0][1]:>9}"
                  f"{cells[0][2]:>8}{cells[1][1]:>9}{cells[1][2]:>8}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("experiment", nargs="?", default="results/fsdd/experiment_3")
    parser.add_argument("--baseline", type=int, default=1,
                        help="baseline instance of the same experiment (default 1)")
    parser.add_argument("--baseline-dir", type=Path,
                        help="baseline instance folder of another experiment on the same items")
    args = parser.parse_args(argv)
    exp = Path(args.experiment)
    instances = ExperimentLayout(exp).instances()
    if not instances:
        parser.error(f"{exp} has no instance_<k> folders; expected an experiment's results "
                     "folder, e.g. results/fsdd/experiment_3.")
    try:
        base_dir, baseline = _baseline(parser, exp, args)
        print(f"{exp}: test scores over folds (mean ± std), against {base_dir} "
              "(corrected resampled t-test, folds paired by their test items)")
        print("(paired: the folds whose test items the baseline also tested; Δ and p use "
              "those)")
        print(f"{'instance':<10}{'comment':<18}{'folds':>6}{'paired':>7}{'accuracy':>16}"
              f"{'UAR':>16}{'Δ acc':>9}{'p':>8}{'Δ UAR':>9}{'p':>8}")
        for inst in instances:
            print(_row(inst.root, base_dir, baseline))
    except ResultsConflictError as e:
        parser.error(str(e))


if __name__ == "__main__":
    main()
