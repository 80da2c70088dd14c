"""The small-data protocol of an encoder's head (issue 42, point 5), through the engine.

Four instances of the encoders' default head (`xval.config.recipes.MLP_HEAD`: the mean and the
maximum of a row's blocks, 256 hidden units) on the same items and folds:

1. **block rows**: the encoder's default store (`--encoders aisfx`: a 2.5 s segment, one
   block, every 1.25 s); the head scores every segment, the clip score averages them;
2. the same with `refit_with_val`: once the epoch is chosen on the validation items, a fresh
   head trains for that many epochs on training + validation items;
3. **clip rows**: a store of the same files whose segments are as long as the clips
   (`--segment-seconds` = the clips' median duration), so that a row holds every block of
   its clip and the head pools them (mean and max over the clip's blocks);
4. the same with `refit_with_val`.

Build the two stores of the same files, then run:

    python -m preprocessing regex ../shared/datasets/ravdess/audio --pattern ravdess \\
        --label-map ravdess --out ravdess_aisfx --encoders aisfx
    python -m preprocessing regex ../shared/datasets/ravdess/audio --pattern ravdess \\
        --label-map ravdess --out ravdess_aisfx_clip --encoders aisfx \\
        --segment-seconds 3.7 --segment-hop-seconds 1.85
    python -m benchmarks.small_data --blocks ravdess_aisfx --clips ravdess_aisfx_clip \\
        --number 13 --folds 5 --metric uar

It prints each instance's test clip score (mean ± std and per fold) and the corrected
resampled t-test (Nadeau and Bengio) of instances 2 to 4 against instance 1, the folds
paired. Results go to config.ini's results folder, like any experiment's.
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from benchmarks.encoders import _instance_folds, _summary, _versus
from xval import Experiment
from xval.config.loader import find_config, load_config
from xval.config.recipes import MLP_HEAD

ARMS = (("block rows", False), ("block rows", True), ("clip rows", False), ("clip rows", True))


def experiment(blocks: str, clips: str | None, number: int, folds: int) -> Experiment:
    """The four instances on the stores `blocks` and `clips` (the same files); the first
    two alone without `clips` (clips no longer than one block: both stores would be one)."""
    exp = Experiment(description=f"Small-data protocol of the MLP head: {blocks} vs {clips}, "
                                 "refit_with_val", dataset=blocks, number=number,
                     num_folds=folds, task_type="classification")
    for k, (rows, refit) in enumerate(ARMS[:4 if clips else 2], start=1):
        exp[k] = {**MLP_HEAD, "dataset": clips if rows == "clip rows" else blocks,
                  "refit_with_val": refit, "comment_1": rows,
                  "comment_2": "refit on train + val" if refit else "best epoch on val"}
    return exp


def report(folder: Path, metric: str) -> None:
    """Prints each instance's scores and its t-test against instance 1."""
    scores = [_instance_folds(folder / f"instance_{k}", metric) for k in range(1, 5)
              if (folder / f"instance_{k}").is_dir()]
    base = scores[0]
    num_folds = json.loads((folder / "folds.json").read_text())["num_folds"]
    for k, ((rows, refit), folds) in enumerate(zip(ARMS, scores), start=1):
        line = (f"{k}. {rows}{', refit_with_val' if refit else ''}: "
                f"{_summary(list(folds.values()))} "
                f"[{' '.join(f'{v:.3f}' for v in folds.values())}]")
        versus = _versus(folds, base, num_folds) if k > 1 else None
        if versus:
            line += f"  vs 1: {versus[0]:+.3f} (p = {versus[1]:.3f})"
        print(line)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", required=True, help="the encoder's default store")
    parser.add_argument("--clips", help="the store of clip-long segments (none: the "
                                        "refit arms alone)")
    parser.add_argument("--number", type=int, default=13, help="the experiment number")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--metric", choices=("accuracy", "uar"), default="accuracy")
    parser.add_argument("--config", help="config.ini (default: found as experiments find it)")
    parser.add_argument("--report-only", action="store_true",
                        help="print the table of a finished run")
    args = parser.parse_args(argv)
    exp = experiment(args.blocks, args.clips, args.number, args.folds)
    if not args.report_only:
        outcome = exp.run(config=args.config)
        if outcome.exit_code:
            raise SystemExit(outcome.exit_code)
    results = Path(load_config(args.config or find_config()).results_dir)
    report(results / args.blocks / f"experiment_{args.number}", args.metric)


if __name__ == "__main__":
    main()
