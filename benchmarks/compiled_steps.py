"""Compiled training steps: the engine's step against a plain compiled loop of the same model.

For every task's default instance (`benchmarks.gpu.TASK_INSTANCES`: the package defaults,
SpecAugment, warps, warm-up + cosine, mixup where the task takes them) on a small synthetic
store (`--shape`, dispatch-bound: the step's cost is its operators' launches, not their
arithmetic), one fold:

engine   the engine's fold (`prepare_fold`, `assemble_model`, `fit_model`), the training
         time of each epoch after the first (from the epoch's start to its validation: the
         steps, their data, Keras's loop and callbacks) over its steps.
plain    the same model, optimizer, loss and batches (the engine's, gathered once) trained by
         a jitted JAX step (`stateless_call`, `value_and_grad`, `stateless_apply`: the loop of
         keras-io's "writing a training loop from scratch in JAX"), timed the same way.

Each backend runs in a process of its own (`--backends`, default `jax,torch`: the default
and the eager backend it replaced); the plain loop runs in the JAX process. Prints the
median ms per step of each arm and the ratios engine / plain (goal on the default: <= 1.3).
Whole runs on each backend, the programs each fold compiles and the compilation cache across
runs: `benchmarks.default_backend`.

    python -m benchmarks.compiled_steps [--epochs 6] [--rows 600] [--shape 16 8]
        [--backends jax,torch] [--tasks classification,...] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import ROOT, number

TASKS = ("classification", "tagging", "detection", "regression", "representation")


def stores(folder, rows, shape):
    """The task stores of `benchmarks.gpu` at `rows` x `shape`, and a classification store
    (`demo`) of the same size; returns `{task: FeatureStore}`."""
    import numpy as np

    from benchmarks.gpu import TASK_INSTANCES, _write, task_store
    from preprocessing.store import FeatureStore

    folder = Path(folder)
    if not (folder / "demo" / "dataset.json").exists():
        labels = np.arange(rows) % 4
        x = np.random.default_rng(2).normal(size=(rows, *shape)).astype(np.float32)
        x[np.arange(rows), :, labels % shape[1]] += 2.0
        _write(folder / "demo", x, [f"class{c}" for c in labels])
    for task in ("tagging", "detection", "regression"):
        if not (folder / TASK_INSTANCES[task][0] / "dataset.json").exists():
            task_store(folder, task, rows, tuple(shape))
    return {task: FeatureStore(folder / TASK_INSTANCES[task][0]) for task in TASKS}


def _timer():
    """A Keras callback keeping each epoch's training seconds, from its start to the start
    of its validation, when its last step has finished."""
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.start = [], None

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_test_begin(self, logs=None):
            if self.start is not None:
                # A weight read back waits for the epoch's last step (dispatch is async).
                keras.ops.convert_to_numpy(self.model.trainable_variables[-1].value)
                self.seconds.append(time.perf_counter() - self.start)
                self.start = None

    return Timer()


def engine_steps(store, spec, task, epochs, batch):
    """One fold through the engine; returns `(ms per step of each epoch after the first,
    steps per epoch, the prepared fold, its model)`."""
    from benchmarks.gpu import fold_job
    from xval.training import fit
    from xval.training.device_constants import constants_on_device
    from xval.training.prepare import assemble_model, prepare_fold

    job = fold_job(store, spec, epochs, batch, task_type=task)
    timer = _timer()
    callbacks = fit.fold_callbacks

    def with_timer(fold, on_epoch):
        found = callbacks(fold, on_epoch)
        return ([timer, *found[0]], *found[1:])

    fit.fold_callbacks = with_timer  # the engine's callbacks, and the timer first
    try:
        with constants_on_device():
            fold = prepare_fold(job)
            model = assemble_model(fold)
            fit.fit_model(model, fold, None)
    finally:
        fit.fold_callbacks = callbacks
    steps = -(-len(fold.rows["train"]) // fold.batch_size)
    return [1000 * s / steps for s in timer.seconds[1:]], steps, fold, model


def plain_steps(fold, epochs):
    """The fold's model rebuilt, trained by a jitted JAX step on the engine's batches of
    one epoch (gathered once, on the device); returns ms per step of each epoch after the
    first."""
    import jax
    import keras

    from xval.training.model import make_optimizer
    from xval.training.prepare import assemble_model, fold_batches

    train, _ = fold_batches(fold)
    batches = [tuple(jax.device_put(a) for a in train[i]) for i in range(len(train))]
    model = assemble_model(fold)
    optimizer = make_optimizer(fold.params, len(batches), model)
    loss_fn = keras.losses.get(fold.task.head.loss(fold.params,
                                                   fold.store.targets[fold.rows["train"]]))
    if not isinstance(loss_fn, keras.losses.Loss):  # "mse": a function
        loss_fn = keras.src.losses.LossFunctionWrapper(loss_fn)
    optimizer.build(model.trainable_variables)

    def step(state, batch):
        trainable, non_trainable, opt = state
        x, y = batch[0], batch[1]
        w = batch[2] if len(batch) > 2 else None

        def loss(trainable):
            out, non = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss_fn(y, out, sample_weight=w), non

        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable)
        trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
        return (trainable, non_trainable, opt), value

    step = jax.jit(step, donate_argnums=0)
    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in batches:
            state, value = step(state, batch)
        jax.block_until_ready(value)
        seconds.append(time.perf_counter() - start)
    return [1000 * s / len(batches) for s in seconds[1:]]


def child(args):
    """The arms of one backend (this process's), as JSON lines on stdout."""
    import keras

    from benchmarks.gpu import TASK_INSTANCES

    found = stores(args.data, args.rows, args.shape)
    backend = keras.backend.backend()
    for task in args.tasks:
        spec = TASK_INSTANCES[task][1]
        engine, steps, fold, _ = engine_steps(found[task], spec, task, args.epochs, args.batch)
        line = {"backend": backend, "task": task, "steps": steps,
                "engine_ms": statistics.median(engine)}
        if backend == "jax":
            line["plain_ms"] = statistics.median(plain_steps(fold, args.epochs))
        print(json.dumps(line), flush=True)


def run_child(args, backend):
    """The arms of `backend`, in a process of its own (`child`): its JSON lines."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "benchmarks.compiled_steps", "--child",
                           "--data", args.data, "--rows", str(args.rows), "--shape",
                           *map(str, args.shape), "--epochs", str(args.epochs), "--batch",
                           str(args.batch), "--tasks", ",".join(args.tasks)],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"the {backend} process failed:\n{done.stderr[-4000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=number(2, int, closed=True), default=6)
    parser.add_argument("--rows", type=number(64, int, closed=True), default=600)
    parser.add_argument("--shape", type=number(2, int, closed=True), nargs=2, default=[16, 8])
    parser.add_argument("--batch", type=number(1, int, closed=True), default=32)
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help=f"the tasks whose default instance runs (default {','.join(TASKS)})")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        parser.error(f"--tasks {args.tasks}: choose among {', '.join(TASKS)}, comma-separated")
    args.tasks = tasks
    if args.child:
        child(args)
        return
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="xval-steps-") as data:
        args.data = data
        stores(data, args.rows, args.shape)
        lines = {b: run_child(args, b) for b in backends}
        plain = {line["task"]: line["plain_ms"] for line in lines.get("jax", [])}
        print(f"ms per training step, one fold, {args.rows} rows of {args.shape[0]} x "
              f"{args.shape[1]}, batch {args.batch} (median of epochs 2..{args.epochs}):")
        print(f"{'task':16}" + "".join(f"{'engine ' + b:>16}" for b in backends)
              + f"{'plain jax':>12}" + "".join(f"{b + ' / plain':>16}" for b in backends))
        figures = {"steps": lines}
        for task in args.tasks:
            row = {b: next(x for x in lines[b] if x["task"] == task)["engine_ms"]
                   for b in backends}
            print(f"{task:16}" + "".join(f"{row[b]:16.2f}" for b in backends)
                  + (f"{plain[task]:12.2f}" + "".join(f"{row[b] / plain[task]:16.2f}"
                                                      for b in backends) if task in plain
                     else ""))
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
