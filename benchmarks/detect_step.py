"""CPU seconds of one training step of each detector, side by side (issue 44, point 3).

For each input shape, every architecture trains on the same batch of random windows and
frame targets (`train_on_batch`, after one warm-up step); the steps alternate between the
architectures `--repeats` times, and the medians of the CPU seconds of this process (every
thread) are printed, per batch and per second of audio, with each one's ratio to the first
architecture. The shapes are a store's windows: frames x mel bands (4 s of 20 ms frames and
40 bands: the hard set's recipe; 5 s of 20 ms frames and 64 bands: a detection store's
defaults; 1 s of 10 ms frames: the shared `[features]` defaults those replaced).

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 python -m benchmarks.detect_step \\
        --shapes 201x40x4,251x64x5,101x64x1 --archs resnet_detector,fast_detector
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from collections.abc import Sequence

import numpy as np


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def step_seconds(shape: tuple[int, int], archs: Sequence[str], *, batch: int, classes: int,
                 repeats: int) -> dict[str, float]:
    """Median CPU seconds of one training step of each architecture on `(frames, bins)`."""
    import keras  # noqa: PLC0415  (after the backend is chosen)

    import architectures  # noqa: PLC0415  (imports Keras)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *shape, 1)).astype("float32")
    y = (rng.uniform(size=(batch, shape[0], classes)) > 0.8).astype("float32")
    models = {}
    for name in archs:
        keras.utils.set_random_seed(0)
        model = architectures.get(name)((*shape, 1), classes)
        model.compile(optimizer="adam",
                      loss=keras.losses.BinaryCrossentropy(from_logits=True))
        model.train_on_batch(x, y)  # warm-up
        models[name] = model
    times: dict[str, list[float]] = {name: [] for name in archs}
    for _ in range(repeats):
        for name, model in models.items():
            started = cpu_seconds()
            model.train_on_batch(x, y)
            times[name].append(cpu_seconds() - started)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shapes", default="201x40x4,251x64x5,101x64x1",
                        help="FRAMESxBINSxSECONDS, comma-separated")
    parser.add_argument("--archs", default="resnet_detector,fast_detector")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    archs = args.archs.split(",")
    print(f"CPU seconds per training step of {args.batch} windows (medians of "
          f"{args.repeats}; threads {os.environ.get('OMP_NUM_THREADS', 'default')}, load "
          f"{os.getloadavg()[0]:.1f})\n")
    print("| window | " + " | ".join(archs) + " | " +
          " | ".join(f"{a} / {archs[0]}" for a in archs[1:]) + " |")
    print("|---" * (1 + 2 * len(archs) - 1) + "|")
    for text in args.shapes.split(","):
        frames, bins, seconds = (float(v) for v in text.split("x"))
        found = step_seconds((int(frames), int(bins)), archs, batch=args.batch,
                             classes=args.classes, repeats=args.repeats)
        audio = args.batch * seconds
        cells = [f"{found[a]:.2f} s ({1000 * found[a] / audio:.1f} ms per s of audio)"
                 for a in archs]
        ratios = [f"{found[a] / found[archs[0]]:.2f}" for a in archs[1:]]
        print(f"| {int(frames)} x {int(bins)} ({seconds:g} s) | " + " | ".join(cells) + " | "
              + " | ".join(ratios) + " |", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "torch")
    sys.exit(main())
