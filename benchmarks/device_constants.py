"""What making Keras's Python constants on the device costs where there is no device (the
CPU): a small CNN's fit with Keras's own conversion and under
`xval.training.device_constants.constants_on_device`, alternating, the same seed; prints
the median seconds, their ratio and whether the losses are equal. On a GPU the change
removes a wait per constant (docs/performance.md, "On a GPU"); here it should cost nothing.

    python -m benchmarks.device_constants --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Sequence

os.environ.setdefault("KERAS_BACKEND", "torch")


def fit_seconds(x, y, epochs: int) -> tuple[float, float]:
    """Seconds of one seeded fit of a small CNN on `x`, `y`, and its last loss."""
    import keras  # noqa: PLC0415  (the backend is set above)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(x.shape[1:]),
                              keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return time.perf_counter() - start, history.history["loss"][-1]


def main(argv: Sequence[str] | None = None) -> None:
    import numpy as np  # noqa: PLC0415

    from xval.training.device_constants import constants_on_device  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    for name in ("repeats", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: expected an integer >= 1.")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 32, 16, 1)).astype("float32")
    y = rng.integers(0, 4, 640)
    fit_seconds(x, y, 1)  # warm-up
    arms: dict[str, list[tuple[float, float]]] = {"keras": [], "device constants": []}
    for _ in range(args.repeats):
        for name, scope in (("keras", contextlib.nullcontext()),
                            ("device constants", constants_on_device())):
            with scope:
                arms[name].append(fit_seconds(x, y, args.epochs))
    medians = {name: statistics.median(s for s, _ in runs) for name, runs in arms.items()}
    same = {loss for runs in arms.values() for _, loss in runs}
    print(f"fit, {args.epochs} epochs, medians of {args.repeats}: Keras's conversion "
          f"{medians['keras']:.3f} s, device constants {medians['device constants']:.3f} s, "
          f"ratio {medians['device constants'] / medians['keras']:.3f}; losses "
          f"{'equal' if len(same) == 1 else 'differ: ' + str(sorted(same))}")


if __name__ == "__main__":
    main()
