"""Trainings that share the CPU: default thread pools against one share of the cores each.

Each run trains the same small CNN (3 epochs, 1000 rows of 63 x 64) in `--jobs` processes at
once, first with the frameworks' default thread pools (each sized to every core), then with
`xval.executors.process.cpu_threads(jobs)` (what the process executor gives its concurrent
workers, and what the test suite's xdist workers use). Runs alternate; the ratio is of the
medians of the wall time of all jobs together. A single job alone is timed for reference.

    python -m benchmarks.cpu_threads [--jobs 2] [--repeats 3]

Measured on 2 CPU cores (torch): two jobs with default pools 114 s, with one thread each
30 s (3.8x); one job alone 7.4 s of fit.
"""

import argparse
import os
import subprocess
import sys
import textwrap
import time

from benchmarks._common import median
from xval.executors.process import cpu_threads

FIT = textwrap.dedent("""
    import os, time
    import numpy as np, keras
    from keras import layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 63, 64, 1)).astype("float32")
    y = rng.integers(0, 10, 1000)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((63, 64, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
""")


def run_jobs(jobs: int, env: dict[str, str]) -> float:
    """Wall seconds for `jobs` processes training at once with `env`."""
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", FIT], env=env) for _ in range(jobs)]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"a training process failed (exit {proc.returncode})")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")}
    base.setdefault("KERAS_BACKEND", "torch")
    shared = {**base, **cpu_threads(args.jobs)}
    defaults, shares = [], []
    for _ in range(args.repeats):
        defaults.append(run_jobs(args.jobs, base))
        shares.append(run_jobs(args.jobs, shared))
    alone = median([run_jobs(1, base) for _ in range(args.repeats)])
    print(f"{args.jobs} jobs on {len(os.sched_getaffinity(0))} cores, "
          f"{os.environ.get('KERAS_BACKEND', 'torch')} backend, medians of {args.repeats}:")
    print(f"  default thread pools: {median(defaults):.1f} s")
    print(f"  cpu_threads ({shared.get('OMP_NUM_THREADS', 'all')} each): {median(shares):.1f} s"
          f"   ratio default/shared {median(defaults) / median(shares):.2f}")
    print(f"  one job alone: {alone:.1f} s   ratio shared/alone {median(shares) / alone:.2f}")


if __name__ == "__main__":
    main()
