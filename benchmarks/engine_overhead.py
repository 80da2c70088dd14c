"""Engine overhead: the same k-fold training run by the engine and by a hand-written loop.

(a) `Experiment.run` (inline executor), everything included: folds, normalisation,
    training, saving the best model, evaluation on train/validation/test, predictions,
    summaries, plots, the workbook, the code snapshot.
(b) scikit-learn `GroupKFold` plus `model.fit` with early stopping on validation items,
    the same model, data, epochs and batch size, and `model.evaluate` on the test items.
Runs alternate (a, b, a, b, ...); the ratio is of medians. Target: <= 1.05.
Then generator vs in-memory training throughput (rows x epochs / fit seconds), target >= 0.9.
Then, with Ray installed, the Ray executor against inline on the same experiment: once with a
Ray instance already running (the per-job cost: a fresh worker process per job, task
scheduling, results shipped back) and once including starting and stopping a local Ray.
Then the process executor against inline: its warm CPU worker (the default) and a fresh
worker per job (`WORKER_JOBS = 1`, what every job paid before), alternating.

    python -m benchmarks.engine_overhead [--repeats 3] [--epochs 30]
        [--skip-ray | --only-ray | --only-process] [--smoke]

`--smoke` runs every comparison but Ray's at a size that proves only the code path (for the
test suite): a synthetic store of 64 rows (as `benchmarks.gpu --dry-run`'s) instead of the
demo's, 2 folds, one repeat, one epoch, no warm-up, the process executor's warm worker only.
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # TensorFlow only saves models here

import numpy as np  # noqa: E402

from benchmarks._common import ROOT, median, timed  # noqa: E402
from xval.config.params import PLAIN_TRAINING  # noqa: E402

# Plain training (no masks, mixup or schedule): the raw Keras loop it is compared with has none.
ARCH = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "bench",
        "comment_2": "", "filters": 16, **PLAIN_TRAINING}


def engine_run(config, store_dir, folder, epochs, batch, generator=False, executor="inline",
               *, arch=ARCH, dataset="demo", gpus=None, folds=4):
    """Runs instance 1 (`arch`) of a `folds`-fold experiment; returns its training throughput
    (rows x epochs / fit seconds)."""
    from xval import Execution, Experiment, Output

    config = config.replace(paths={"data_dir": str(store_dir), "results_dir": str(folder)})
    exp = Experiment(description="bench", dataset=dataset, number=1, num_folds=folds,
                     generator=generator,
                     parameters={"epochs": epochs, "patience": epochs, "batch_size": batch})
    exp[1] = arch
    outcome = exp.run(config=config, executor=Execution(executor, gpus=gpus),
                      output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0
    from xval.core.files import read_json
    from xval.core.layout import ExperimentLayout
    from xval.core.records import FoldResult

    instance = ExperimentLayout.of(folder, dataset, 1).instance(1)
    folds = [FoldResult.from_dict(read_json(p)) for p in instance.fold_files().values()]
    fit = sum(f.timings["fit_seconds"] for f in folds)
    rows = sum(f.n_rows["train"] * (f.epochs_run or 0) for f in folds)
    return rows / fit


def hand_folds(store, arch=ARCH, folds=4):
    """The hand loop's folds: GroupKFold over items, one validation item held out of each
    training side, and the engine's model (`arch`, the engine's defaults) built and compiled
    on the fold's statistics; yields `(x, y, fold, train, val, test, model)` (the benchmarks'
    hand loops differ only in how they feed it)."""
    import keras
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit

    import architectures
    from xval.config.loader import load_config
    from xval.config.params import resolve
    from xval.training.model import build_model

    params = resolve(1, arch, training_defaults=load_config(ROOT / "config.ini").training,
                     architectures=architectures)
    x = np.asarray(store.features, dtype=np.float32)
    y, groups = store.targets, store.items
    for fold, (train_val, test) in enumerate(GroupKFold(folds).split(x, y, groups)):
        inner = GroupShuffleSplit(1, test_size=1, random_state=fold)
        train, val = next(inner.split(train_val, groups=groups[train_val]))
        train, val = train_val[train], train_val[val]
        keras.utils.set_random_seed(fold)
        mean = x[train].reshape(-1, x.shape[-1]).mean(0)
        var = x[train].reshape(-1, x.shape[-1]).var(0)
        model = build_model(params, x.shape[1:], len(store.classes), "classification", mean, var)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        yield x, y, fold, train, val, test, model
        keras.backend.clear_session()


def hand_loop(store, epochs, batch, arch=ARCH, folds=4):
    """GroupKFold plus `model.fit` with early stopping on validation items, the engine's
    model (`arch`), data, epochs and batch size; returns the mean test accuracy."""
    import keras

    scores = []
    for x, y, _, train, val, test, model in hand_folds(store, arch, folds):
        model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=epochs,
                  batch_size=batch, verbose=0,
                  callbacks=[keras.callbacks.EarlyStopping(patience=epochs,
                                                           restore_best_weights=True)])
        scores.append(model.evaluate(x[test], y[test], verbose=0)[1])
    return float(np.mean(scores))


def smoke_store(data_dir):
    """The `--smoke` store: 64 synthetic rows of 16 x 8 named `demo`, 4 classes over 8
    items."""
    from benchmarks.gpu import _write
    from preprocessing.store import FeatureStore

    labels = np.arange(64) % 4
    x = np.random.default_rng(0).normal(size=(64, 16, 8)).astype(np.float32)
    x[np.arange(64), :, labels] += 2.0
    _write(Path(data_dir) / "demo", x, [f"class{c}" for c in labels])
    return FeatureStore(Path(data_dir) / "demo")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30, help="config.ini's default")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-ray", action="store_true", help="skip the Ray comparison")
    parser.add_argument("--only-ray", action="store_true", help="only the Ray comparison")
    parser.add_argument("--only-process", action="store_true",
                        help="only the process executor comparison")
    parser.add_argument("--folds", type=int, default=4, help="folds of the experiment")
    parser.add_argument("--smoke", action="store_true",
                        help="the code path at a tiny size (see the module docstring)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.epochs, args.folds, args.skip_ray = 1, 1, 2, True
    import keras

    from preprocessing.demo import build_demo
    from xval.config.loader import load_config

    config = load_config(ROOT / "config.ini")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = smoke_store(tmp / "data") if args.smoke else \
            build_demo(tmp / "data", workers=1, progress=False)[0]
        print(f"backend {keras.backend.backend()}, demo store {store.features.shape}, "
              f"{args.folds} folds x {args.epochs} epochs, batch {args.batch_size}")
        if not args.smoke:  # the warm-ups: imports, kernels
            engine_run(config, tmp / "data", tmp / "warm", 1, args.batch_size,
                       folds=args.folds)
        if args.only_ray or args.only_process:
            (ray_overhead if args.only_ray else process_overhead)(config, tmp, args)
            return
        if not args.smoke:
            hand_loop(store, 1, args.batch_size, folds=args.folds)
        t_engine, t_hand, mem, gen = [], [], [], []
        for r in range(args.repeats):
            t, _ = timed(engine_run, config, tmp / "data", tmp / f"e{r}", args.epochs,
                         args.batch_size, folds=args.folds)
            t_engine.append(t)
            t, _ = timed(hand_loop, store, args.epochs, args.batch_size, folds=args.folds)
            t_hand.append(t)
            print(f"  repeat {r}: engine {t_engine[-1]:.2f}s, hand loop {t_hand[-1]:.2f}s")
        ratio = median(t_engine) / median(t_hand)
        print(f"engine / hand-written loop wall time: {ratio:.3f} (median {median(t_engine):.2f}s "
              f"vs {median(t_hand):.2f}s; target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
        print(f"engine's extra work (saving 4 models, evaluating 3 splits, predictions, plots, "
              f"workbook, snapshot): {median(t_engine) - median(t_hand):.2f}s per instance")
        for r in range(args.repeats):
            mem.append(engine_run(config, tmp / "data", tmp / f"m{r}", args.epochs,
                                  args.batch_size, generator=False, folds=args.folds))
            gen.append(engine_run(config, tmp / "data", tmp / f"g{r}", args.epochs,
                                  args.batch_size, generator=True, folds=args.folds))
        tp = median(gen) / median(mem)
        print(f"generator / in-memory training throughput: {tp:.3f} ({median(gen):.0f} vs "
              f"{median(mem):.0f} rows/s; target >= 0.9: {'met' if tp >= 0.9 else 'NOT met'})")
        process_overhead(config, tmp, args)
        if not args.skip_ray:
            ray_overhead(config, tmp, args)


def process_overhead(config, tmp, args):
    """Process executor (a warm CPU worker; a fresh worker per job) vs inline, same
    experiment, alternating runs (medians)."""
    from xval.executors import base

    warm = base.WORKER_JOBS
    run = {"inline": [], "warm": [], **({} if args.smoke else {"fresh": []})}
    for r in range(args.repeats):
        for arm in run:
            base.WORKER_JOBS = 1 if arm == "fresh" else warm
            t, _ = timed(engine_run, config, tmp / "data", tmp / f"p{arm}{r}", args.epochs,
                         args.batch_size, executor="inline" if arm == "inline" else "process",
                         folds=args.folds)
            run[arm].append(t)
        base.WORKER_JOBS = warm
        print(f"  repeat {r}: " + ", ".join(f"{arm} {times[-1]:.2f}s"
                                            for arm, times in run.items()))
    inline = median(run["inline"])
    fresh = (f", {median(run['fresh']) / inline:.3f} with a fresh worker per job "
             f"({median(run['fresh']):.2f}s)") if "fresh" in run else ""
    print(f"process / inline wall time: {median(run['warm']) / inline:.3f} with a warm worker "
          f"(median {median(run['warm']):.2f}s vs {inline:.2f}s){fresh}; {args.folds} jobs, 1 slot")


def ray_overhead(config, tmp, args):
    """Ray executor vs inline, same experiment, alternating runs (medians)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        print("Ray executor: skipped (ray is not installed: pip install -e '.[ray]')")
        return
    import ray

    run = {"inline": [], "ray": [], "ray+start": []}
    for r in range(args.repeats):
        t, _ = timed(engine_run, config, tmp / "data", tmp / f"ri{r}", args.epochs,
                     args.batch_size, folds=args.folds)
        run["inline"].append(t)
        t, _ = timed(engine_run, config, tmp / "data", tmp / f"rs{r}", args.epochs,
                     args.batch_size, executor="ray",
                     folds=args.folds)  # starts and stops a local Ray
        run["ray+start"].append(t)
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            t, _ = timed(engine_run, config, tmp / "data", tmp / f"rr{r}", args.epochs,
                         args.batch_size, executor="ray", folds=args.folds)
        finally:
            ray.shutdown()
        run["ray"].append(t)
        print(f"  repeat {r}: inline {run['inline'][-1]:.2f}s, ray {run['ray'][-1]:.2f}s, "
              f"ray with start-up {run['ray+start'][-1]:.2f}s")
    base = median(run["inline"])
    print(f"ray / inline wall time: {median(run['ray']) / base:.3f} with Ray running "
          f"(median {median(run['ray']):.2f}s vs {base:.2f}s), "
          f"{median(run['ray+start']) / base:.3f} including starting a local Ray "
          f"({median(run['ray+start']):.2f}s); {os.cpu_count()} cores, {args.folds} jobs")


if __name__ == "__main__":
    main()
