"""Where one detection fold spends its time (issue 44, point 3): one fold of a configuration
of `benchmarks/detect_research.py`, trained by the engine's own steps with a clock around
each: the store and rows (`prepare_fold`), the model build, every epoch's training and its
validation pass, the prediction of each split, the post-processing grid chosen on
validation, the scoring of each split (event and segment metrics, frame metrics), PSDS, and the packaging
(the model's bytes, the predictions table). Wall and CPU seconds of this process (all its
threads) for each, as a Markdown table and one JSON line appended to `--out`.

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks.detect_profile \\
        --dataset fsdd_trains --num-folds 3 --fold 0 --config default \\
        --out results/research/profile.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.detect_research import CONFIGS


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """Wall and CPU seconds summed per step name (a step may run several times)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.active: list[str] = []
        self.epochs: list[float] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Times the block as `name`; time inside a nested step is that step's only."""
        wall, cpu = time.perf_counter(), cpu_seconds()
        self.active.append(name)
        try:
            yield
        finally:
            self.active.pop()
            dw, dc = time.perf_counter() - wall, cpu_seconds() - cpu
            self.wall[name] += dw
            self.cpu[name] += dc
            self.calls[name] += 1
            if self.active:  # not the parent's own time
                self.wall[self.active[-1]] -= dw
                self.cpu[self.active[-1]] -= dc

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` timed as `name` at every call."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.step(name):
                return fn(*args, **kwargs)
        return timed


def profile_fold(job: Any, clock: Clock) -> Any:
    """`xval.training.fold.train_and_evaluate` with a clock around each step.

    Returns:
        The fold's `FoldResult`.
    """
    import xval.tasks.detection.scores as scores  # noqa: PLC0415  (after the backend)
    import xval.training.evaluation as evaluation  # noqa: PLC0415
    import xval.training.package as package  # noqa: PLC0415
    from xval.training.fit import fit_model  # noqa: PLC0415
    from xval.training.package import evaluate_model  # noqa: PLC0415
    from xval.training.prepare import assemble_model, prepare_fold  # noqa: PLC0415

    t_start = time.perf_counter()
    with clock.step("prepare (store, rows, statistics)"):
        fold = prepare_fold(job)
    with clock.step("model build"):
        model = assemble_model(fold)
    task = fold.task
    # Each name is looked up in its module (or on the task) when called: patched here for
    # this process only.
    evaluation.predict_rows = clock.wrap("predict (every split, best model)",
                                         evaluation.predict_rows)
    task.choose_postprocessing = clock.wrap("post-processing grid (validation)",  # type: ignore[method-assign]
                                            task.choose_postprocessing)
    task.pool_by_clip = clock.wrap("stitch recordings", task.pool_by_clip)  # type: ignore[method-assign]
    task.evaluate = clock.wrap("score splits (event, segment, frame metrics)", task.evaluate)  # type: ignore[method-assign]
    scores.recording_psds = clock.wrap("PSDS1 + PSDS2 (val, test)", scores.recording_psds)
    package.model_bytes = clock.wrap("save model bytes", package.model_bytes)
    model.evaluate = clock.wrap("fit: validation pass per epoch", model.evaluate)
    marks = [time.perf_counter()]
    with clock.step("fit: training epochs"):
        fitted = fit_model(model, fold, lambda *_: marks.append(time.perf_counter()))
    clock.epochs = [round(b - a, 2) for a, b in zip(marks, marks[1:])]
    t_eval = time.perf_counter()
    with clock.step("evaluate (other)"):
        evaluated, classifier, info = evaluate_model(model, fold, fitted)
    with clock.step("package (predictions, plot data)"):
        return package.package(model, fold, fitted, evaluated, (classifier, info),
                               (t_start, t_eval))


def table(clock: Clock, total: tuple[float, float], epochs: int) -> str:
    """The Markdown table of the clock's steps, largest first."""
    rows = ["| step | calls | wall s | CPU s | share of wall |", "|---|---|---|---|---|"]
    for name in sorted(clock.wall, key=lambda n: -clock.wall[n]):
        rows.append(f"| {name} | {clock.calls[name]} | {clock.wall[name]:.1f} | "
                    f"{clock.cpu[name]:.1f} | {100 * clock.wall[name] / total[0]:.0f} % |")
    rows.append(f"| **fold** ({epochs} epochs) | | **{total[0]:.1f}** | **{total[1]:.1f}** | |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--num-folds", type=int, default=3)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--config", default="default", help=f"one of {', '.join(CONFIGS)}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", required=True, help="JSON-lines file to append to")
    args = parser.parse_args(argv)
    if args.config not in CONFIGS:
        parser.error(f"--config {args.config!r}: expected one of {', '.join(CONFIGS)}")
    from xval.config.loader import find_config, load_config  # noqa: PLC0415
    from xval.config.params import parse_override  # noqa: PLC0415
    from xval.running.environment import setup_environment  # noqa: PLC0415

    config = load_config(find_config())
    setup_environment(config.backend["backend"])
    from xval.core.storage import RESULTS_STORE  # noqa: PLC0415
    from xval.running.experiment import Experiment  # noqa: PLC0415
    from xval.running.planner import make_plan  # noqa: PLC0415

    extra = dict(parse_override(text) for text in args.set)
    experiment = Experiment(description="detection profile", dataset=args.dataset,
                            number=901, num_folds=args.num_folds, task_type="detection",
                            experiment_folder=tempfile.mkdtemp(prefix="xval-profile-"))
    experiment[1] = {**CONFIGS[args.config], **extra}
    plan = make_plan(experiment, config, [1], {}, False, results_store=RESULTS_STORE)
    (job,) = plan.jobs(1, [args.fold])
    clock = Clock()
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = profile_fold(job, clock)
    total = (time.perf_counter() - wall, cpu_seconds() - cpu)
    print(table(clock, total, result.epochs_run))
    test = (result.clip_metrics or result.metrics)["test"]
    print(f"test event F1 {test['event_f1']:.3f}, best epoch {result.best_epoch}/"
          f"{result.epochs_run}; threads {os.environ.get('OMP_NUM_THREADS', 'default')}, "
          f"load average {os.getloadavg()[0]:.1f}; seconds per epoch (with validation) "
          f"{clock.epochs[:3]}...{clock.epochs[-2:]}")
    line = {"config": args.config, "set": extra, "dataset": args.dataset, "fold": args.fold,
            "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "test_event_f1": test["event_f1"], "wall": round(total[0], 2),
            "cpu": round(total[1], 2), "load": os.getloadavg()[0], "epoch_wall": clock.epochs,
            "steps": {n: [round(clock.wall[n], 2), round(clock.cpu[n], 2), clock.calls[n]]
                      for n in clock.wall}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "torch")
    sys.exit(main())
