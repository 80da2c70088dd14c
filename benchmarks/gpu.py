"""GPU benchmark (issue 53): does the GPU wait?

On one GPU, torch first, then JAX (in a child process) if the time budget allows:

(a) engine / hand loop: `Experiment.run` (inline executor) against scikit-learn `GroupKFold`
    plus `model.fit` on the same folds, model, epochs and batch size (ratio of medians), for
    the demo CNN on the demo store and a ~10 M-parameter `audio_cnn` (filters 96) on a
    synthetic store of 3,200 rows of 128 frames x 64 bins, at 10 and 30 epochs.
(b) per-job overhead: 8 jobs (2 instances x 4 folds) of the demo CNN through the process
    executor on one GPU slot, with a fresh worker per job (what every GPU job paid before)
    and with warm workers: (wall - sum of the jobs' fit seconds) / jobs.
(c) throughput at 1, 2 and 4 jobs per GPU on warm workers: 16 jobs of the demo CNN, jobs per
    minute and the speed-up over 1.

Every phase reports the GPU's busy % and its peak memory, sampled by `nvidia-smi` every
0.2 s. The figures are printed, one line each, and written to `--out` (JSON) as they come,
so a run cut short keeps what it measured. Phases past `--budget` seconds are skipped.

    python -m benchmarks.gpu [--budget 420] [--gpu 0] [--out results/gpu-benchmark.json]
    python -m benchmarks.gpu --dry-run        # the same code path on the CPU, tiny sizes
    python -m benchmarks.gpu --cpu-proxies    # issue 53's CPU proxies, before and after

On a machine without a GPU (and without `--dry-run` or `--cpu-proxies`) it prints a message
and exits with code 0.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # TensorFlow only saves models here

from benchmarks._common import ROOT, median, timed  # noqa: E402

BIG = {"architecture": "audio_cnn", "reshaping_type": "conv", "comment_1": "big",
       "comment_2": "", "filters": 96, "blocks": 4}
"""About 10.7 M parameters on 128 x 64 inputs with 4 classes."""


def visible_gpus():
    """GPU names from `nvidia-smi -L` (empty without an NVIDIA driver)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.stdout.splitlines() if line.startswith("GPU ")]


def backend_sees_gpu():
    from xval.training.devices import accelerator

    return accelerator() is not None


class Sampler:
    """`nvidia-smi` sampled every 0.2 s in a thread: the GPU's busy % and memory used (MiB).
    Without a GPU it samples nothing and every figure is `None`."""

    def __init__(self, gpu, active):
        self.samples = []
        self.proc = None
        if active:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "-i", str(gpu), "--query-gpu=utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits", "-lms", "200"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                busy, memory = (float(v) for v in line.split(","))
                self.samples.append((time.perf_counter(), busy, memory))

    @contextlib.contextmanager
    def phase(self, figures):
        """Adds `gpu_busy_pct` and `gpu_peak_mib` of the block to `figures`."""
        start = time.perf_counter()
        yield
        window = [s for s in self.samples if s[0] >= start]
        figures["gpu_busy_pct"] = round(statistics.mean(s[1] for s in window), 1) \
            if window else None
        figures["gpu_peak_mib"] = max((s[2] for s in window), default=None)

    def close(self):
        if self.proc is not None:
            self.proc.terminate()


class Report:
    """The figures: printed one line each and written to `path` as they come."""

    def __init__(self, path, header):
        self.path = Path(path)
        self.data = {"header": header, "lines": []}

    def line(self, text, **figures):
        print(text, flush=True)
        self.data["lines"].append({"text": text, **figures})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1))


def busy(figures):
    """`, GPU busy 93.1 %, peak 2,345 MiB` (or nothing without samples)."""
    if figures.get("gpu_busy_pct") is None:
        return ""
    return f", GPU busy {figures['gpu_busy_pct']} %, peak {figures['gpu_peak_mib']:,.0f} MiB"


def big_store(data_dir, rows):
    """A learnable synthetic store for the 10 M-parameter model: `rows` rows of 128 frames
    x 64 bins, 8 items, 4 classes (each shifts a few bins)."""
    import numpy as np
    import pandas as pd

    from preprocessing.store import write_store

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=rows)
    x = rng.normal(0, 1, size=(rows, 128, 64)).astype(np.float32)
    for c in range(4):
        x[labels == c, :, 8 * c:8 * c + 8] += 1.5
    meta = pd.DataFrame({"item": [f"item{i % 8}" for i in range(rows)],
                         "label": [f"class{c}" for c in labels],
                         "clip": [f"item{i % 8}/clip{i}" for i in range(rows)],
                         "source": [f"clip{i}.wav" for i in range(rows)],
                         "start": 0.0, "augmented": False})
    return write_store(Path(data_dir) / "big", x, meta, info={"sample_rate": 16000})


def engine_against_hand(report, sampler, config, tmp, name, store, arch, epochs, args):
    """Phase (a) for one model and epoch count."""
    from benchmarks.engine_overhead import engine_run, hand_loop

    t_engine, t_hand, figures = [], [], {}
    with sampler.phase(figures):
        for r in range(args.repeats):
            t_engine.append(timed(engine_run, config, store.path.parent,
                                  tmp / f"{name}{epochs}e{r}", epochs, args.batch_size,
                                  arch=arch, dataset=store.path.name)[0])
            t_hand.append(timed(hand_loop, store, epochs, args.batch_size, arch)[0])
    ratio = median(t_engine) / median(t_hand)
    report.line(f"engine / hand loop, {name}, 4 folds x {epochs} epochs: {ratio:.3f} "
                f"(median {median(t_engine):.2f}s vs {median(t_hand):.2f}s){busy(figures)}",
                phase="a", model=name, epochs=epochs, ratio=ratio,
                engine_s=median(t_engine), hand_s=median(t_hand), **figures)


def sharing_run(config, store_dir, folder, epochs, batch, jobs_per_gpu, gpu, instances=2):
    """`instances` x 4 jobs of the demo CNN through the process executor; returns the
    wall time and the sum of the jobs' fit seconds."""
    from benchmarks.engine_overhead import ARCH
    from xval import Execution, Experiment, Output
    from xval.core.files import read_json
    from xval.core.layout import ExperimentLayout

    config = config.replace(paths={"data_dir": str(store_dir), "results_dir": str(folder)},
                            backend={"jobs_per_gpu": jobs_per_gpu})
    exp = Experiment(description="gpu sharing", dataset="demo", number=1, num_folds=4,
                     parameters={"epochs": epochs, "patience": epochs, "batch_size": batch})
    for k in range(1, instances + 1):
        exp[k] = {**ARCH, "comment_1": str(k)}
    started = time.perf_counter()
    outcome = exp.run(config=config, executor=Execution("process", gpus=[gpu]),
                      output=Output(out=lambda *a: None))
    wall = time.perf_counter() - started
    assert outcome.exit_code == 0
    layout = ExperimentLayout.of(folder, "demo", 1)
    fit = sum(read_json(p)["timings"]["fit_seconds"] for k in range(1, instances + 1)
              for p in layout.instance(k).fold_files().values())
    return wall, fit


def job_overhead(report, sampler, config, tmp, gpu, args):
    """Phase (b): per-job overhead with fresh and with warm workers (alternating)."""
    from xval.executors import base

    warm, runs = base.WORKER_JOBS, {"fresh": [], "warm": []}
    figures = {}
    with sampler.phase(figures):
        for r in range(args.repeats):
            for arm in runs:
                base.WORKER_JOBS = 1 if arm == "fresh" else warm
                try:
                    wall, fit = sharing_run(config, tmp / "data", tmp / f"o{arm}{r}",
                                            args.short_epochs, args.batch_size, 1, gpu,
                                            instances=args.instances_b)
                finally:
                    base.WORKER_JOBS = warm
                runs[arm].append((wall - fit) / (4 * args.instances_b))
    fresh, warm_s = median(runs["fresh"]), median(runs["warm"])
    report.line(f"per-job overhead (wall - fit), {4 * args.instances_b} jobs, 1 slot: fresh "
                f"worker per job "
                f"{fresh:.2f}s, warm workers {warm_s:.2f}s{busy(figures)}",
                phase="b", fresh_s=fresh, warm_s=warm_s, **figures)


def throughput(report, sampler, config, tmp, gpu, args):
    """Phase (c): 16 jobs at 1, 2 and 4 jobs per GPU, warm workers."""
    rates = {}
    for n in (1, 2, 4):
        if time.perf_counter() - args.started > args.budget:
            report.line(f"{n} jobs per GPU: skipped (past the {args.budget:.0f} s budget)")
            continue
        figures = {}
        with sampler.phase(figures):
            walls = [sharing_run(config, tmp / "data", tmp / f"s{n}_{r}", args.epochs,
                                 args.batch_size, n, gpu, instances=args.instances_c)[0]
                     for r in range(args.repeats)]
        jobs = 4 * args.instances_c
        rates[n] = jobs / median(walls) * 60
        report.line(f"{n} job(s) per GPU, warm workers: {rates[n]:.1f} jobs/min "
                    f"({jobs} jobs in {median(walls):.1f}s; x{rates[n] / rates[1]:.2f} over 1)"
                    f"{busy(figures)}", phase="c", jobs_per_gpu=n, jobs_per_min=rates[n],
                    speedup=rates[n] / rates[1], **figures)


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


def child_jax(args, report):
    """JAX's phases (a, demo CNN) and (c), in a child process, within the budget left."""
    left = args.budget - (time.perf_counter() - args.started)
    if left < 60:
        report.line("JAX: skipped (the budget is spent)")
        return
    out = Path(args.out).with_name(Path(args.out).stem + "-jax.json")
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--gpu", args.gpu, "--out", str(out),
           "--repeats", "1", "--only", "a-small,c"]
    if args.dry_run:
        cmd.append("--dry-run")
    else:
        cmd += ["--budget", str(int(left - 20))]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    try:
        subprocess.run(cmd, env=env, timeout=None if args.dry_run else left, check=False)
    except subprocess.TimeoutExpired:
        report.line("JAX: stopped at the budget")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=420, help="seconds for every phase")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--short-epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--gpu", default="0", help="GPU id to use (CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--out", default=str(ROOT / "results" / "gpu-benchmark.json"))
    parser.add_argument("--only", default="a-small,a-big,b,c,jax")
    parser.add_argument("--dry-run", action="store_true",
                        help="the code path on the CPU: tiny sizes, one repeat")
    parser.add_argument("--cpu-proxies", action="store_true",
                        help="issue 53's CPU proxies, before and after")
    args = parser.parse_args()
    args.started = time.perf_counter()
    if args.cpu_proxies:
        return cpu_proxies(args)
    gpus = visible_gpus()
    if not gpus and not args.dry_run:
        print("No GPU found (nvidia-smi lists none): nothing to measure here. Run this on a "
              "machine with an NVIDIA GPU and a CUDA build of the backend (see the README).")
        return 0
    args.instances_b, args.instances_c, args.big_rows, args.big = 2, 4, 3200, BIG
    if args.dry_run:  # the code path, at sizes a CPU runs in minutes
        args.repeats, args.epochs, args.short_epochs = 1, 2, 1
        args.instances_b, args.instances_c, args.big_rows = 1, 1, 64
        args.big = {**BIG, "filters": 4}
        args.budget = float("inf")  # every phase: the point is to run each one
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    return measure(args, gpus)


def measure(args, gpus):
    import keras

    from benchmarks.engine_overhead import ARCH, engine_run
    from preprocessing.demo import build_demo
    from xval.config.loader import load_config

    if not args.dry_run and not backend_sees_gpu():
        print(f"{gpus[0]} is present, but the {keras.backend.backend()} backend does not see "
              "it (a CPU-only build?). Install a CUDA build (see the README) and rerun.")
        return 0
    card = gpus[int(args.gpu)] if args.gpu.isdigit() and int(args.gpu) < len(gpus) \
        else (gpus[0] if gpus else "CPU (dry run)")
    report = Report(args.out, {"card": card, "backend": keras.backend.backend(),
                               "dry_run": args.dry_run})
    report.line(f"{card}, backend {keras.backend.backend()}"
                f"{' (dry run on the CPU)' if args.dry_run else ''}")
    sampler = Sampler(args.gpu, bool(gpus) and not args.dry_run)
    only = set(args.only.split(","))
    config = load_config(ROOT / "config.ini")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            store, _ = build_demo(tmp / "data", workers=0, progress=False)
            big = big_store(tmp / "data", args.big_rows)
            models = [("a-small", "demo CNN", store, ARCH),
                      ("a-big", "audio_cnn 10.7M" if args.big is BIG else "audio_cnn (small)",
                       big, args.big)]
            engine_run(config, tmp / "data", tmp / "warm", 1, args.batch_size)  # kernels
            for key, name, data, arch in models:
                for epochs in (args.short_epochs, args.epochs):
                    if key in only and within(args, report, f"{name}, {epochs} epochs"):
                        engine_against_hand(report, sampler, config, tmp, name, data, arch,
                                            epochs, args)
            if "b" in only and within(args, report, "per-job overhead"):
                job_overhead(report, sampler, config, tmp, args.gpu if gpus else "0", args)
            if "c" in only and within(args, report, "jobs per GPU"):
                throughput(report, sampler, config, tmp, args.gpu if gpus else "0", args)
    finally:
        sampler.close()
    if "jax" in only and keras.backend.backend() == "torch":
        child_jax(args, report)
    print(f"Figures written to {args.out}")
    return 0


def within(args, report, what):
    """Whether the budget allows one more phase (a line says when it does not)."""
    if time.perf_counter() - args.started <= args.budget:
        return True
    report.line(f"{what}: skipped (past the {args.budget:.0f} s budget)")
    return False


if __name__ == "__main__":
    sys.exit(main())
