"""Detection on a CPU end to end (issue 44, point 3): annotated recordings -> a store built
by `python -m preprocessing detection` with its defaults -> an experiment of `--folds` folds
over the recordings with the default detector, through the command line as a user runs it.

Each step runs as its own process, timed for wall and CPU seconds (user + system of the
process and every process it waited for: `os.wait4`), with the load average at the start
and the end; the experiment's fold records give each fold's wall seconds and epochs, and its
test event F1 per recording. The experiment runs on `--executor` (inline: one process, the
framework's own thread count; process: `--jobs` folds side by side, one share of the cores
each). One JSON line per run is appended to `--out`.

    nice -n 10 python -m benchmarks.detect_cpu data/raw/fsdd_trains \\
        --annotations data/raw/fsdd_trains/annotations.csv --work /tmp/detect_cpu \\
        --folds 5 --executor process --jobs 2 --out results/research/cpu.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.detect_research import CONFIGS

SCRIPT = '''"""Detection on a CPU: the default detector over {folds} folds (benchmarks/detect_cpu.py)."""

from xval import Experiment

experiment = Experiment(description="detection on a CPU", dataset="store", number=1,
                        num_folds={folds}, task_type="detection")
experiment[1] = {instance!r}

if __name__ == "__main__":
    experiment.main()
'''


def timed(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Runs `command`; its wall and CPU seconds (with its waited-for children) and the load
    average before and after.

    Raises:
        SystemExit: when the command fails (its output's tail is printed).
    """
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status:
        print(output[-4000:], file=sys.stderr)
        raise SystemExit(f"{' '.join(command[:4])} ... failed (status {status}).")
    return {"wall": round(wall, 1), "cpu": round(usage.ru_utime + usage.ru_stime, 1),
            "load_start": round(load, 1), "load_end": round(os.getloadavg()[0], 1)}


def fold_figures(instance: Path) -> dict[str, Any]:
    """Each fold's wall seconds, epochs and test event F1 per recording, and their mean."""
    folds = [json.loads(p.read_text()) for p in sorted(instance.glob("fold_*.json"))]
    f1 = [(f.get("clip_metrics") or f["metrics"])["test"]["event_f1"] for f in folds]
    return {"fold_wall": [f["timings"]["total_seconds"] for f in folds],
            "epochs_run": [f["epochs_run"] for f in folds],
            "best_epoch": [f["best_epoch"] for f in folds],
            "test_event_f1": [round(float(v), 4) for v in f1],
            "test_event_f1_mean": round(float(np.nanmean(f1)), 4)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Builds the store and runs the experiment in `--work`; the figures of both."""
    work = Path(args.work).resolve()
    if work.exists():
        shutil.rmtree(work)
    (work / "data").mkdir(parents=True)
    (work / "config.ini").write_text(
        f"[paths]\ndata_dir = {work / 'data'}\nresults_dir = {work / 'results'}\n"
        f"[backend]\nbackend = {args.backend}\nexecutor = {args.executor}\n"
        f"jobs_per_gpu = {args.jobs}\n")
    env = {**os.environ, "KERAS_BACKEND": args.backend}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    build = [sys.executable, "-m", "preprocessing", "detection", str(args.recordings),
             "--annotations", str(args.annotations), "--out", str(work / "data" / "store"),
             "--config", str(work / "config.ini"), "--no-progress", "-q", *args.features]
    if args.items:
        build += ["--items", str(args.items)]
    store = timed(build, env)
    info = json.loads((work / "data" / "store" / "dataset.json").read_text())
    instance = {**CONFIGS[args.config], **dict(_literal(s) for s in args.set)}
    script = work / "experiment.py"
    script.write_text(SCRIPT.format(folds=args.folds, instance=instance))
    train = timed([sys.executable, str(script), "--config", str(work / "config.ini"), "-q"],
                  env)
    figures = fold_figures(work / "results" / "store" / "experiment_1" / "instance_1")
    return {"config": args.config, "set": args.set, "features": args.features,
            "folds": args.folds, "executor": args.executor, "jobs": args.jobs,
            "threads": args.threads, "rows": info["n_rows"],
            "feature_shape": info["feature_shape"], "store": store, "experiment": train,
            "cpu_per_fold": round(train["cpu"] / args.folds, 1), **figures}


def _literal(text: str) -> tuple[str, Any]:
    from xval.config.params import parse_override  # noqa: PLC0415

    return parse_override(text)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("recordings", help="folder of the annotated recordings")
    parser.add_argument("--annotations", required=True)
    parser.add_argument("--items", help="file,item CSV (default: each recording an item)")
    parser.add_argument("--work", required=True, help="scratch folder (replaced)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--config", default="fast", help=f"one of {', '.join(CONFIGS)}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--feature", dest="features", action="append", default=[],
                        metavar="FLAG", help="extra flag of the store's command, repeatable "
                                             "(e.g. --feature=--segment-seconds=4)")
    parser.add_argument("--executor", default="inline", choices=("inline", "process"))
    parser.add_argument("--jobs", type=int, default=1, help="process executor: folds at once")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS of the experiment (0: the framework's own)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--out", required=True, help="JSON-lines file to append to")
    args = parser.parse_args(argv)
    if args.config not in CONFIGS:
        parser.error(f"--config {args.config!r}: expected one of {', '.join(CONFIGS)}")
    line = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
