"""Detection research driver (issue 27): trains named configurations on chosen folds of a
detection store and appends one JSON line per (configuration, fold) to a results file.

Each fold is trained by the engine (`xval.training.fold.run_fold`, the same code as an
experiment) on the folds an `Experiment` with `num_folds` makes. The line holds the
recording-level (stitched) metrics of every split, among them the onset-only event F1,
the post-processing the fold chose on its validation recordings (the engine's own choice,
never on test), the test scores with the fixed post-processing of the previous default
(threshold 0.5, no median filter) for comparison, and the best epoch. `--summary` prints
mean ± std over folds per configuration and, against `previous` when it ran on the same
folds, the corrected resampled t-test of the test event F1.

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks.detect_research \\
        --dataset fsdd_trains --num-folds 3 --folds all --configs default,previous \\
        --out results/research/trains.jsonl
    python -m benchmarks.detect_research --summary --out results/research/trains.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

CRNN = {"architecture": "crnn_detector", "reshaping_type": "conv"}
PREVIOUS = {**CRNN, "freq_pool": 4, "learning_rate": 0.001, "detection_threshold": 0.5,
            "median_filter_seconds": 0.0, "boundary_weight": 0.0}
"""The detection default before issue 27: pooling frequency by 4, the shared learning
rate, fixed post-processing."""
CONFIGS: dict[str, dict[str, Any]] = {
    # Today's default (issue 44): the stock detector with its own defaults (a stem pooling
    # time by 4, then resnet_detector's blocks and GRUs), lr 0.003, post-processing chosen
    # on validation.
    "default": {"architecture": "fast_detector", "reshaping_type": "conv"},
    # The stock path of issue 66's tables (before boundary_weight=2 became the default).
    "stock66": {"architecture": "fast_detector", "reshaping_type": "conv",
                "boundary_weight": 0.0},
    # The default of issue 27: filters 16, 3 residual blocks, 64 GRU units, 2 GRU layers.
    "resnet": {"architecture": "resnet_detector", "reshaping_type": "conv"},
    "crnn": {**CRNN},  # the default of issue 27's first part: freq_pool 2, lr 0.003
    "previous": PREVIOUS,
    "masks": {**CRNN, "time_masks": 2, "freq_masks": 2},
    "mixup": {**CRNN, "mixup_alpha": 0.2},
    "cw": {**CRNN, "class_weights": True},
    "long": {**CRNN, "epochs": 120, "patience": 20},
    "wide": {**CRNN, "filters": 64, "units": 128},
    "res16": {"architecture": "resnet_detector", "reshaping_type": "conv", "filters": 16,
              "conv_blocks": 3, "units": 64},
    "conf": {"architecture": "conformer_detector", "reshaping_type": "conv"},
    # Issue 44's candidates: fast_detector (variants through --set and --tag).
    "fast": {"architecture": "fast_detector", "reshaping_type": "conv"},
    # Issue 66: the frame head on an encoder's frames (an `aisfx_frames` store).
    "pretrained": {"architecture": "pretrained_detector", "reshaping_type": "rnn"},
}
FIXED_POST = {"detection_threshold": 0.5, "median_filter_seconds": 0.0}
COLUMNS = [("train_event_f1", "train event F1"), ("train_segment_f1", "train segment F1"),
           ("train_frame_f1", "train frame F1"), ("test_event_f1", "test event F1"),
           ("test_segment_f1", "test segment F1"), ("test_frame_f1", "test frame F1"),
           ("test_onset_f1", "test onset F1"),
           ("test_event_precision", "test event precision"),
           ("test_event_recall", "test event recall"), ("test_psds1", "test PSDS1"),
           ("test_psds2", "test PSDS2"),
           ("test_fixed_event_f1", "test event F1, fixed post 0.5")]


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fixed_post_scores(job: Any, model_bytes: bytes) -> dict[str, float]:
    """The fold model's test recordings scored with `FIXED_POST` (no choice on val).

    Args:
        job: the fold's `Job`.
        model_bytes: its best model, as a `.keras` file's bytes.

    Returns:
        dict `test_fixed_event_f1`, `test_fixed_onset_f1` (recording level).
    """
    from xval.training.evaluation import evaluate_splits
    from xval.training.fold import prepare_fold
    from xval.training.loading import load

    fold = prepare_fold(job)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fold.keras"
        path.write_bytes(model_bytes)
        model = load(path)
    params = {**fold.params, **FIXED_POST}
    scored = evaluate_splits(model, fold.task, fold.store, params=params, splits=("test",),
                             rows=fold.rows, source=fold.source, n_outputs=fold.n_outputs,
                             train_original=fold.train_original, target_fn=None,
                             batch_size=256)
    test = (scored.clip_metrics or scored.metrics)["test"]
    return {"test_fixed_event_f1": test["event_f1"], "test_fixed_onset_f1": test["onset_f1"]}


def fold_line(name: str, job: Any, result: Any, dataset: str) -> dict[str, Any]:
    """The JSON line of one trained fold.

    Args:
        name: the configuration's name.
        job: the fold's `Job`.
        result: its `FoldResult`.
        dataset: the store's name.

    Returns:
        dict of the fold's recording-level (and window-level) metrics, post-processing,
        epochs and rows.
    """
    post = result.postprocessing
    line: dict[str, Any] = {
        "config": name, "dataset": dataset, "fold": job.fold, "epochs": result.epochs,
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "late_best_epoch": result.late_best_epoch,
        "fit_seconds": result.timings["fit_seconds"], "test_items": job.items["test"],
        "train_rows": result.train_rows, "test_rows": result.n_rows.get("test"),
        "postprocessing": None if post is None else post.values}
    return {**line, **split_metrics(result.clip_metrics or {}, result.metrics or {})}


METRICS = ("event_f1", "onset_f1", "segment_f1", "frame_f1", "loss", "event_precision",
           "event_recall", "psds1", "psds2")
"""The metrics a line keeps of each split, recording (stitched) and window level."""


def split_metrics(clip: dict[str, Any], seg: dict[str, Any]) -> dict[str, Any]:
    """`<split>_<metric>` (recording level) and `<split>_window_<metric>` of every split."""
    line = {}
    for split in ("train", "val", "test"):
        for metric in METRICS:
            line[f"{split}_{metric}"] = clip.get(split, {}).get(metric)
            line[f"{split}_window_{metric}"] = seg.get(split, {}).get(metric)
    return line


RESCORE: dict[str, dict[str, Any]] = {
    "hop1": {"prediction_hop": 1.0},
    "hop0.5": {"prediction_hop": 0.5},
    "hop0.25": {"prediction_hop": 0.25},
    "hop0.5+low": {"prediction_hop": 0.5, "_thresholds": (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.1)},
    "hop0.5+gap": {"prediction_hop": 0.5, "min_gap_seconds": 0.1},
    "hop0.5+taper": {"prediction_hop": 0.5, "_taper": True},
    "hop0.25+taper": {"prediction_hop": 0.25, "_taper": True},
}
"""Evaluation variants of `--rescore`: parameters that change how a trained fold model is
scored (never how it trains); `_thresholds` replaces the grid of thresholds the validation
recordings choose from (`xval.tasks.detection.choice.THRESHOLD_GRID`)."""


def rescore(args: argparse.Namespace, experiment: Any, plan: Any, names: list[str],
            folds: list[int]) -> None:
    """Scores the kept fold models (`--models`) again with each `--rescore` variant, the
    post-processing chosen on the validation recordings as the engine chooses it, and
    appends a line each (configuration `<name>+<variant>`)."""
    from xval.tasks.detection import choice as event_choice
    from xval.tasks.detection import rules as event_rules
    from xval.training.evaluation import evaluate_splits
    from xval.training.fold import prepare_fold
    from xval.training.loading import load

    grid, stitch = event_choice.THRESHOLD_GRID, event_rules.stitch_windows

    def tapered(windows: Any, starts: Any, frame_seconds: float, *, reduce: str = "mean"
                ) -> Any:
        """`stitch_windows` with each window's frames weighted by a Hann taper (edges
        count least) where windows overlap."""
        windows = np.asarray(windows, dtype=np.float64)
        if reduce != "mean":
            return stitch(windows, starts, frame_seconds, reduce=reduce)
        length = windows.shape[1]
        taper = np.sin(np.pi * (np.arange(length) + 0.5) / length) ** 2
        ones = np.broadcast_to(taper[None, :, None], (len(windows), length, 1))
        total = stitch(windows * taper[None, :, None], starts, frame_seconds)
        weight = stitch(np.ascontiguousarray(ones), starts, frame_seconds)
        return total / np.maximum(weight, 1e-12)
    for k, name in enumerate(names, start=1):
        for job in plan.jobs(k, folds):
            model = load(Path(args.models) / f"{name}{args.tag}_{args.dataset}_fold{job.fold}"
                                             ".keras")
            fold = prepare_fold(job)
            for variant in args.rescore.split(","):
                given = dict(RESCORE[variant])
                event_choice.THRESHOLD_GRID = given.pop("_thresholds", grid)
                event_rules.stitch_windows = tapered if given.pop("_taper", False) \
                    else stitch
                params = fold.params.replace(**given)
                scored = evaluate_splits(
                    model, fold.task, fold.store, params=params, splits=fold.splits,
                    rows=fold.rows, source=fold.source, n_outputs=fold.n_outputs,
                    train_original=fold.train_original, target_fn=None, batch_size=256)
                event_choice.THRESHOLD_GRID, event_rules.stitch_windows = grid, stitch
                line = {"config": f"{name}{args.tag}+{variant}", "dataset": args.dataset,
                        "fold": job.fold, "test_items": job.items["test"],
                        "train_rows": len(fold.train_original),
                        "test_rows": len(fold.rows["test"]),
                        "postprocessing": None if scored.postprocessing is None
                        else scored.postprocessing.values,
                        **split_metrics(scored.clip_metrics, scored.metrics)}
                with Path(args.out).open("a") as f:
                    f.write(json.dumps(line) + "\n")
                print(f"{line['config']} fold {job.fold}: test event F1 "
                      f"{line['test_event_f1']}", flush=True)


def _cell(values: Sequence[Any]) -> str:
    if any(v is None for v in values):
        return ""
    array = np.nan_to_num(np.array(values, dtype=float), nan=0.0)  # undefined F1 -> 0
    return f"{array.mean():.3f} ± {array.std():.3f}" if len(array) > 1 \
        else f"{array.mean():.3f}"


def _ttest(mine: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> str:
    """`Δ mean, p` of the test event F1 against the baseline on the same folds: paired by
    their test items (two stores of the same recordings may number the same folds
    differently: an encoder's coarser frames move a window's event label, hence the
    stratified order), by fold index where a line has none."""
    from xval.report.stats import corrected_resampled_ttest

    def key(line: dict[str, Any]) -> Any:
        return tuple(sorted(line["test_items"])) if line.get("test_items") else line["fold"]

    base = {key(line): line for line in baseline}
    pairs = [(line, base[key(line)]) for line in mine if key(line) in base]
    if len(pairs) < 2:
        return ""
    a = np.nan_to_num([p[0]["test_event_f1"] for p in pairs], nan=0.0)
    b = np.nan_to_num([p[1]["test_event_f1"] for p in pairs], nan=0.0)
    ratio = float(np.mean([p[0]["test_rows"] / p[0]["train_rows"] for p in pairs]))
    test = corrected_resampled_ttest(a, b, ratio)
    return f"{test.mean_difference:+.3f}, p={test.p:.3f}"


def summary(path: str | Path, baseline: str = "previous") -> str:
    """A Markdown table of a results file: mean ± std over the folds of each configuration
    (an undefined event F1, no event detected, counts as 0), the best epochs, and the
    corrected t-test of test event F1 against `baseline` (on the folds both ran).

    Raises:
        ValueError: `baseline` names no configuration of the file."""
    lines = [json.loads(text) for text in Path(path).read_text().splitlines() if text]
    out = ["| config | folds | " + " | ".join(c for _, c in COLUMNS)
           + f" | best epoch / run / epochs | vs {baseline}: Δ event F1, p |",
           "|---" * (len(COLUMNS) + 4) + "|"]
    by_config: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_config.setdefault(line["config"], []).append(line)
    if baseline not in by_config:
        raise ValueError(f"--baseline {baseline!r}: no such configuration in {path}; it holds "
                         f"{', '.join(by_config) or 'no line'}.")
    reference = by_config[baseline]
    for name, mine in by_config.items():
        mine = sorted(mine, key=lambda x: x["fold"])
        cells = [_cell([line.get(key) for line in mine]) for key, _ in COLUMNS]
        epochs = ", ".join(f"{line['best_epoch']}/{line['epochs_run']}/{line['epochs']}"
                           for line in mine if "best_epoch" in line)
        folds = ",".join(str(line["fold"]) for line in mine)
        out.append(f"| {name} | {folds} | " + " | ".join(cells)
                   + f" | {epochs} | {'' if name == baseline else _ttest(mine, reference)} |")
    return "\n".join(out)


def train(args: argparse.Namespace) -> int:
    """Trains every (configuration, fold) asked for, appending a line each to `--out`."""
    from xval.config.loader import find_config, load_config
    from xval.config.params import parse_override
    from xval.running.environment import setup_environment

    config = load_config(find_config())
    setup_environment(config.backend["backend"])
    from xval.core.storage import RESULTS_STORE
    from xval.running.experiment import Experiment
    from xval.running.planner import make_plan
    from xval.training.fold import run_fold

    names = args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"--configs {unknown}: expected names of {sorted(CONFIGS)}.")
    extra = dict(parse_override(text) for text in args.set)
    experiment = Experiment(description="detection research", dataset=args.dataset,
                            number=900, num_folds=args.num_folds, task_type="detection",
                            experiment_folder=tempfile.mkdtemp(prefix="xval-research-"))
    for k, name in enumerate(names, start=1):
        experiment[k] = {**CONFIGS[name], **extra, "comment_1": name, "comment_2": args.tag}
    plan = make_plan(experiment, config, list(range(1, len(names) + 1)), {}, False,
                     results_store=RESULTS_STORE)
    folds = list(range(plan.num_folds)) if args.folds == "all" else \
        [int(f) for f in args.folds.split(",")]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        rescore(args, experiment, plan, names, folds)
        return 0
    for k, name in enumerate(names, start=1):
        for job in plan.jobs(k, folds):
            started, cpu = time.perf_counter(), _cpu_seconds()
            result = run_fold(job)
            seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
            line = fold_line(name + args.tag, job, result, args.dataset)
            if not result.ok or result.model_bytes is None:
                raise SystemExit(f"{name} fold {job.fold} failed: {result.message}")
            line.update(fixed_post_scores(job, result.model_bytes))
            if args.models:
                folder = Path(args.models)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{line['config']}_{args.dataset}_fold{job.fold}.keras").write_bytes(
                    result.model_bytes)
            line.update(seconds=round(seconds, 1), cpu_seconds=round(cpu, 1),
                        eval_seconds=result.timings["eval_seconds"],
                        load=round(os.getloadavg()[0], 1), set=extra)
            with out.open("a") as f:
                f.write(json.dumps(line) + "\n")
            print(f"{line['config']} fold {job.fold}: train frame F1 "
                  f"{line['train_frame_f1']:.3f}, test event F1 {line['test_event_f1']:.3f} "
                  f"(fixed post {line['test_fixed_event_f1']:.3f}), best epoch "
                  f"{line['best_epoch']}/{line['epochs']}, {line['seconds']:.0f} s "
                  f"({line['cpu_seconds']:.0f} s CPU)",
                  flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset")
    parser.add_argument("--num-folds", type=int, default=4)
    parser.add_argument("--folds", default="0", help="comma-separated fold indices, or all")
    parser.add_argument("--configs", default="default,previous",
                        help=f"comma-separated names of {', '.join(CONFIGS)}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="extra parameter for every configuration")
    parser.add_argument("--tag", default="", help="suffix of the configuration names")
    parser.add_argument("--out", required=True, help="JSON-lines file to append to")
    parser.add_argument("--models", help="folder to keep each fold's best model in "
                                         "(<config>_<dataset>_fold<i>.keras)")
    parser.add_argument("--rescore", help=f"comma-separated evaluation variants of "
                                          f"{', '.join(RESCORE)}: score the models kept in "
                                          "--models again instead of training")
    parser.add_argument("--summary", action="store_true",
                        help="print the table of --out instead of training")
    parser.add_argument("--baseline", default="previous",
                        help="with --summary: the configuration the t-test compares with")
    args = parser.parse_args(argv)
    if args.summary:
        try:
            print(summary(args.out, args.baseline))
        except ValueError as e:
            parser.error(str(e))
        return 0
    if not args.dataset:
        parser.error("--dataset is needed to train (or pass --summary)")
    return train(args)


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "torch")
    sys.exit(main())
