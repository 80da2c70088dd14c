"""Issue 53's CPU proxies of "a training step never waits on the host", the engine before
and after in one run (`python -m benchmarks.gpu --cpu-proxies`, or this module directly).

    python -m benchmarks.gpu_proxies [--repeats 3]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks._common import ROOT, median, number  # noqa: E402


def cpu_proxies(args):
    """Issue 53's CPU proxies, before (the engine as it was) and after, in one run."""
    import keras
    import numpy as np
    from keras.src.trainers.data_adapters import data_adapter_utils

    from benchmarks.engine_overhead import ARCH
    from preprocessing.demo import build_demo
    from xval.config.loader import load_config
    from xval.config.params import resolve
    from xval.core.records import Job
    from xval.training import devices
    from xval.training.fit import fold_callbacks
    from xval.training.fold import run_fold
    from xval.training.prepare import prepare_fold

    class BatchEndCheck(keras.callbacks.Callback):  # the interrupt check as it was
        def on_train_batch_end(self, batch, logs=None):
            pass

    before = keras.callbacks.CallbackList([keras.callbacks.TerminateOnNaN(), BatchEndCheck()])
    config = load_config(ROOT / "config.ini")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store, _ = build_demo(tmp / "data", workers=1, progress=False)
        import architectures

        params = resolve(1, {**ARCH, "epochs": 10, "patience": 10, "mixup_alpha": 0.2},
                         training_defaults=config.training, architectures=architectures)
        items = demo_folds(store)[0]
        jobs = {cap: Job(instance=1, fold=0, params=params, items=items,
                         task_type="classification", generator=False,
                         store=str(store.path), device_data_mb=cap) for cap in (0, 2048)}
        after = keras.callbacks.CallbackList(
            fold_callbacks(prepare_fold(jobs[2048]), lambda *a: None)[0])
        print(f"_async_train on the engine's callback list: before {before._async_train}, "
              f"after {after._async_train} (backend {keras.backend.backend()})")
        converted, loader = [], data_adapter_utils.get_torch_dataloader

        def counting(iterable):
            def batches():
                for batch in iterable:
                    converted.extend(a for a in batch if isinstance(a, np.ndarray))
                    yield batch
            return loader(batches())

        data_adapter_utils.get_torch_dataloader = counting
        history, steps = {}, {}
        try:
            for cap, job in jobs.items():
                converted.clear()
                result = run_fold(job)
                history[cap], steps[cap] = result.history, len(converted)
        finally:
            data_adapter_utils.get_torch_dataloader = loader
        diff = max(float(np.max(np.abs(np.subtract(history[0][k], history[2048][k]))))
                   for k in history[0])
        print(f"histories, numpy batches (before) vs the device path (after): max |diff| "
              f"{diff:.2e} over {len(history[0]['loss'])} epochs")
        print(f"numpy arrays Keras converted during fit: before {steps[0]}, after "
              f"{steps[2048]} (host transfers counted on the device path: "
              f"{devices.host_transfers()})")
        overhead_before_after(config, tmp, args)


def overhead_before_after(config, tmp, args):
    """Per-job overhead of the process executor on a GPU slot (on a CPU machine `--gpus 0`
    becomes CPU slots; the executor is built directly here, so the slot keeps id 0 and
    follows the GPU rules): a fresh worker per job (before) and warm workers (after)."""
    from xval.executors import JobQueue, base
    from xval.executors.process import ProcessExecutor

    plan_jobs = demo_jobs(config, tmp)
    warm, runs = base.WORKER_JOBS, {"before": [], "after": []}
    for r in range(args.repeats):
        for arm in runs:
            base.WORKER_JOBS = 1 if arm == "before" else warm
            try:
                started = time.perf_counter()
                results = list(ProcessExecutor(["0"], backend="torch").run(
                    JobQueue(plan_jobs)))
                wall = time.perf_counter() - started
            finally:
                base.WORKER_JOBS = warm
            assert all(res.ok for res in results), [res.message for res in results]
            fit = sum(res.timings["fit_seconds"] for res in results)
            runs[arm].append((wall - fit) / len(results))
            print(f"  repeat {r}, {arm}: {runs[arm][-1]:.2f}s per job")
    print(f"per-job overhead (wall - fit) of the process executor, {len(plan_jobs)} jobs, one "
          f"GPU slot: before (a fresh worker per job) {median(runs['before']):.2f}s, after "
          f"(warm) {median(runs['after']):.2f}s (medians of {args.repeats})")


def demo_folds(store):
    """The 4 folds of the demo store's items (`ItemKFold`, as the engine cuts them)."""
    from xval.folds import ItemKFold

    return ItemKFold(4).split_items(store.items)


def demo_jobs(config, tmp):
    """The 8 jobs (2 instances x 4 folds) of the demo CNN, 5 epochs."""
    import architectures
    from benchmarks.engine_overhead import ARCH
    from preprocessing.store import FeatureStore
    from xval.config.params import resolve
    from xval.core.records import Job

    store = FeatureStore(tmp / "data" / "demo")
    folds = demo_folds(store)
    jobs = []
    for k in (1, 2):
        params = resolve(k, {**ARCH, "comment_1": str(k), "epochs": 5, "patience": 5},
                         training_defaults=config.training, architectures=architectures)
        jobs += [Job(instance=k, fold=i, params=params, items=folds[i],
                     task_type="classification", generator=False, store=str(store.path))
                 for i in range(4)]
    return jobs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=number(1, int, closed=True), default=3)
    cpu_proxies(parser.parse_args(argv))


if __name__ == "__main__":
    main()
