"""GPU benchmark (issues 53, 63 and 76): does the GPU wait?

Every phase runs in a process of its own under a hard time limit (its projected seconds
times `--slack`, within what is left of `--budget`), prints its lines as they come and writes
them to `<out-dir>/<phase>.json`; a phase stopped at its limit or failing is said so in one
line, and the next one starts. On one GPU, on the product's default backend (`--backend`,
default `jax`: compiled steps; `torch` for the eager one), the sync phase on torch:

env      the GPU environment (`benchmarks/gpu_env.sh --check`, the recipe of
         docs/installation.md): CUDA JAX and CUDA torch in one process, each computing on
         the GPU without JAX reserving it, and their versions against constraints.txt.
sync     CUDA synchronisations (`torch.cuda.set_sync_debug_mode`), host reads, host values
         copied to the device and sync-prone operators (`repeat_interleave`, `nonzero`, a
         boolean mask: `xval.training.host_reads`) per training and validation step, for
         one fold of every task's default instance (`TASK_INSTANCES`: the package defaults
         on a small synthetic store of the task) and of the plain demo CNN.
a-small  the compilation per fold of the demo CNN's warm-up run (the cache empty: its first
         fold compiles, the others load its programs), then
         engine / hand loop (ratio of medians): `Experiment.run` (inline) against scikit-learn
         `GroupKFold` plus `model.fit` on the same folds, model, epochs and batch size, the hand
         loop fed the same device-resident rows (`make_batches(placement=DEVICE)`), once
         under `constants_on_device` as the engine trains (a careful user's loop: the ratio
         asked) and once with Keras's conversions of Python numbers; the demo CNN, 4 folds x
         10 epochs. Every arm's time is printed and saved as it ends.
a-big    the GPU's busy % during epochs 2.. of one fold of a 10.7 M-parameter `audio_cnn`
         (3,200 rows of 128 x 64, 3 epochs; not its start, not its evaluation), then the
         engine against the careful hand loop on it.
b        per-job overhead (wall - sum of the jobs' fit seconds) / jobs: 8 jobs of the demo CNN
         through the process executor on one GPU slot, warm workers (`b-fresh`, not run by
         default: a fresh worker per job, what every GPU job paid before issue 53).
c        16 jobs of the demo CNN at 1, 2 and 4 jobs per GPU, warm workers: jobs per minute and
         the speed-up over 1.
busy     the GPU's busy % during one fold of the 10.7 M model at batch 32 and 128, the
         engine's and the careful hand loop's (on demand: `--only busy`).
mixed    one fold of the 10.7 M model in float32 and in mixed precision: seconds per epoch,
         busy %, compilation cold and warm (on demand: `--only mixed`).

Two calls of at most 300 s each (`--call 1`: env, sync, a-small, b; `--call 2`: a-big, c), each
worth running alone, within 15 minutes of device time (docs/performance.md gives the exact
commands). Every model is warmed up (one short fit) before it is timed. `--dry-run` prints
the projected seconds on an H100, then runs the phases on the CPU at tiny sizes: the code
path, rehearsed before a GPU is lent; `--project` only prints the projections (it writes
nothing).

    python -m benchmarks.gpu --call 1 [--gpu 0] [--out-dir results/gpu-benchmark]
    python -m benchmarks.gpu [--only sync,a-small] [--budget 270] [--data DIR]
    python -m benchmarks.gpu --project | --dry-run [--call 2]

The benchmark never writes over a file it did not make: `--out-dir` must not hold its
figure files already, `--data` must be absent, empty, or a folder it made (where each of its
stores is one it made). `--gpu` must index a GPU `nvidia-smi` lists, in the dry run too. On a
machine without a GPU (and without `--dry-run` or `--project`) it prints a message and exits
with code 0, writing nothing; Ctrl-C stops the phase running (and its workers) and exits
with 130; an error is one `error:` line, a closed stdout (`| head`)
included (`xval.core.entry.run_entry`).
"""

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
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

from benchmarks._common import ROOT, median, number, timed  # noqa: E402

BIG = {"architecture": "audio_cnn", "reshaping_type": "conv", "comment_1": "big",
       "comment_2": "", "filters": 96, "blocks": 4}
"""About 10.7 M parameters on 128 x 64 inputs with 4 classes (plain training, as `ARCH`)."""

DEFAULT_INSTANCE = {"architecture": "audio_cnn", "reshaping_type": "conv",
                    "comment_1": "default", "comment_2": "init's instance 2"}
"""`init`'s audio CNN: everything else at the package defaults (config.ini as shipped)."""

TASK_INSTANCES = {
    "classification": ("demo", DEFAULT_INSTANCE),
    "tagging": ("tags", DEFAULT_INSTANCE),
    "detection": ("events", {"architecture": "fast_detector", "reshaping_type": "conv"}),
    "regression": ("values", DEFAULT_INSTANCE),
    "representation": ("demo", {"architecture": "conv_autoencoder", "reshaping_type": "conv"}),
}
"""Every task's default instance: its store (`task_store`; `demo`: the demo store) and its
architecture, everything else at the package defaults as the task adapts them (SpecAugment,
warps, warm-up + cosine, mixup where the task takes them; detection's boundary weight)."""

H100 = {"start": 20.0, "fold": 1.0, "worker": 12.0, "demo_step": 0.0075, "big_step": 0.03,
        "jax_compile": 20.0, "counted": 8.0, "env": 15.0}
"""Seconds on one H100, for the projections: a phase's process start (Python, the backend,
Keras, the CUDA context, the stores read), the engine's work per fold besides its steps
(model, evaluation, saving), a worker process's start, a step of the demo CNN (bound by
kernel launches), a step of the 10.7 M `audio_cnn` at batch 32, JAX's compilations per
phase, the environment's check (two frameworks imported, a CUDA context each), and a model
of the sync phase (its warm-up and counted folds, every operator of a
step going through Python while counted). Scaled from
the H200 run of 2026-11 (4 folds x 10 epochs of the demo CNN, 10.5 s), then raised after the
H200 run of 2026-11-27 (sync 22 s, a-small 92 s, b 51 s; a-big did not end within 188 s);
each phase prints its measured seconds beside its projection, to correct them."""


@dataclasses.dataclass
class Sizes:
    """What the phases run (`DEFAULT`; `TINY` for `--dry-run` on the CPU)."""

    repeats: int = 2
    epochs: int = 10
    sync_epochs: int = 3
    big_epochs: int = 3
    big_repeats: int = 1
    big_rows: int = 3200
    big_filters: int = 96
    task_rows: int = 600
    task_shape: tuple = (100, 40)
    jobs_b: int = 8
    jobs_c: int = 16
    batch: int = 32


DEFAULT = Sizes()
TINY = Sizes(repeats=1, epochs=1, sync_epochs=1, big_epochs=2, big_repeats=1, big_rows=64,
             big_filters=4, task_rows=64, task_shape=(16, 8), jobs_b=4, jobs_c=4)
DEMO_STEPS = 19
"""Training steps per epoch of a demo-store fold (600 rows of 5 training items, batch 32)."""


def projected(phase, sizes=DEFAULT):
    """The seconds `phase` takes on an H100 at `sizes` (`H100`'s constants)."""
    h, s = H100, sizes

    def fold(epochs, step, steps_per_epoch):
        return h["fold"] + epochs * steps_per_epoch * step

    big_steps = 0.6 * s.big_rows / s.batch
    demo = fold(s.epochs, h["demo_step"], DEMO_STEPS)
    big = fold(s.big_epochs, h["big_step"], big_steps)
    warm_demo = 2 * 4 * fold(1, h["demo_step"], DEMO_STEPS)  # engine and hand, 1 epoch
    warm_big = 2 * 4 * fold(1, h["big_step"], big_steps)
    # Workers start side by side: one start per run, then the jobs spread over min(n, 3)
    # at a time (the demo CNN leaves the GPU idle between its kernels: sharing fills it).
    sharing = sum(h["worker"] + s.jobs_c * demo / min(n, 3) for n in (1, 2, 4))
    seconds = {
        "sync": h["start"] + (len(TASK_INSTANCES) + 1) * h["counted"] * s.sync_epochs / 3,
        "a-small": h["start"] + 1.5 * warm_demo + 3 * s.repeats * 4 * demo,
        "a-big": h["start"] + warm_big + big + 2 * s.big_repeats * 4 * big,
        "b": h["start"] + h["worker"] + s.jobs_b * demo,
        "b-fresh": h["start"] + s.jobs_b * (h["worker"] + demo),
        "c": h["start"] + sharing,
        "busy": h["start"] + 2 * (warm_big / 8 + 3 * big),
        "mixed": h["start"] + 2 * (warm_big / 8 + big) + h["jax_compile"],
        "env": h["env"],
    }
    # JAX compiles each model's steps once per phase (the cache starts empty).
    return seconds[phase] + (h["jax_compile"] if phase not in ("sync", "env") else 0.0)


PHASES = ("env", "sync", "a-small", "b", "a-big", "c")
"""Every phase run by default, in order (`b-fresh`, `busy` and `mixed` on demand:
`--only`)."""
CALLS = {"1": ("env", "sync", "a-small", "b"), "2": ("a-big", "c")}
"""The two prepared device calls (`--call N`), each within `CALL_BUDGET` seconds."""
CALL_BUDGET = 270
"""Seconds of phases per prepared call: with the wheels' install, within 300 s."""
MARK = ".xval-gpu-benchmark"
"""The file that marks a `--data` folder as made by this benchmark."""
STORES = ("demo", "big", *dict.fromkeys(store for store, _ in TASK_INSTANCES.values()))
"""The stores `prepare_data` makes in `--data`, by name."""


def visible_gpus():
    """GPU names from `nvidia-smi -L` (empty without an NVIDIA driver)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.stdout.splitlines() if line.startswith("GPU ")]


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

    def between(self, start, end, figures):
        """Adds `gpu_busy_pct` and `gpu_peak_mib` of the samples in `[start, end]`."""
        window = [s for s in self.samples if start <= s[0] <= end]
        figures["gpu_busy_pct"] = round(statistics.mean(s[1] for s in window), 1) \
            if window else None
        figures["gpu_peak_mib"] = max((s[2] for s in window), default=None)

    @contextlib.contextmanager
    def phase(self, figures):
        """`between` the start and the end of the block."""
        start = time.perf_counter()
        yield
        self.between(start, time.perf_counter(), figures)

    def close(self):
        if self.proc is not None:
            self.proc.terminate()


class Report:
    """The figures: printed one line each and, with a `path`, written there as they come
    (`None`: printed only)."""

    def __init__(self, path, header):
        self.path = None if path is None else Path(path)
        self.data = {"header": header, "lines": []}

    def line(self, text, **figures):
        print(text, flush=True)
        self.data["lines"].append({"text": text, **figures})
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=1))


def busy(figures):
    """`, GPU busy 93.1 %, peak 2,345 MiB` (or nothing without samples)."""
    if figures.get("gpu_busy_pct") is None:
        return ""
    return f", GPU busy {figures['gpu_busy_pct']} %, peak {figures['gpu_peak_mib']:,.0f} MiB"


# --- the stores ------------------------------------------------------------------------------

def big_store(data_dir, rows):
    """A learnable synthetic store for the 10 M-parameter model: `rows` rows of 128 frames
    x 64 bins, 8 items, 4 classes (each shifts a few bins)."""
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=rows)
    x = rng.normal(0, 1, size=(rows, 128, 64)).astype(np.float32)
    for c in range(4):
        x[labels == c, :, 8 * c:8 * c + 8] += 1.5
    return _write(Path(data_dir) / "big", x, [f"class{c}" for c in labels])


def _write(path, x, label_column, task_type="classification", **kwargs):
    """`write_store` of rows spread over 8 items, one clip each."""
    import pandas as pd

    from preprocessing.store import write_store

    meta = pd.DataFrame({"item": [f"item{i % 8}" for i in range(len(x))],
                         "label": label_column,
                         "clip": [f"item{i % 8}/clip{i}" for i in range(len(x))],
                         "source": [f"clip{i}.wav" for i in range(len(x))],
                         "start": 0.0, "augmented": False})
    return write_store(path, x, meta, task_type=task_type,
                       info={"sample_rate": 16000,
                             "feature_params": {"hop_length": 320, "sample_rate": 16000}},
                       **kwargs)


def task_store(data_dir, task, rows=DEFAULT.task_rows, shape=DEFAULT.task_shape):
    """A small learnable store of `task` (`tagging`, `detection` or `regression`): `rows`
    rows of `shape` (frames, bins) over 8 items, each label raising its own bins (a
    detection event its frames). Returns the `FeatureStore`."""
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, size=(rows, *shape)).astype(np.float32)
    name = TASK_INSTANCES[task][0]
    if task == "tagging":
        tags = rng.uniform(size=(rows, 4)) < 0.35
        tags[~tags.any(axis=1), 0] = True
        for c in range(4):
            x[tags[:, c], :, 2 * c:2 * c + 2] += 2.0
        labels = [";".join(f"tag{c}" for c in np.flatnonzero(t)) for t in tags]
        return _write(Path(data_dir) / name, x, labels, task)
    if task == "regression":
        values = rng.uniform(0, 3, size=rows)
        x[:, :, 0] += values[:, None]
        return _write(Path(data_dir) / name, x, [float(v) for v in values], task)
    frames = np.zeros((rows, shape[0], 2), np.float32)
    for r in range(rows):
        c, length = int(rng.integers(0, 2)), int(rng.integers(3, shape[0] // 2))
        onset = int(rng.integers(0, shape[0] - length))
        frames[r, onset:onset + length, c] = 1
        x[r, onset:onset + length, 2 * c:2 * c + 2] += 2.0
    labels = ["event" for _ in range(rows)]
    return _write(Path(data_dir) / name, x, labels, task, classes=["call", "song"],
                  arrays={"frame_targets.npy": frames})


def prepare_data(folder, sizes):
    """The stores every phase reads, made in `folder` (marked as the benchmark's): the
    demo store (as `python -m preprocessing demo` builds it; at `TINY` sizes a synthetic
    classification store of as many rows as the task stores), the big store and the task
    stores; those already there (a folder an earlier run made) are kept."""
    from preprocessing.demo import build_demo

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).touch()
    if not (folder / "demo" / "dataset.json").exists():
        if sizes is TINY:  # the rehearsal: the code paths, in seconds
            import numpy as np

            labels = np.arange(sizes.task_rows) % 4
            x = np.random.default_rng(2).normal(size=(sizes.task_rows, *sizes.task_shape))
            x[np.arange(len(x)), :, labels] += 2.0
            _write(folder / "demo", x.astype(np.float32), [f"class{c}" for c in labels])
        else:
            build_demo(folder, workers=0, progress=False)
    if not (folder / "big" / "dataset.json").exists():
        big_store(folder, sizes.big_rows)
    for task in ("tagging", "detection", "regression"):
        if not (folder / TASK_INSTANCES[task][0] / "dataset.json").exists():
            task_store(folder, task, sizes.task_rows, sizes.task_shape)


# --- the phases (each in its own process: `--phase NAME`) -----------------------------------

def fold_job(store, spec, epochs, batch, fold=0, task_type=None, compile_cache=None):
    """A `Job` of fold `fold` of `store` (its 4 folds, as the engine cuts them), of
    `task_type` (the store's by default), keeping its compiled steps in `compile_cache`."""
    import architectures
    from xval.config.loader import load_config
    from xval.config.params import resolve
    from xval.core.records import Job
    from xval.folds import ItemKFold

    task_type = task_type or store.task_type
    params = resolve(1, {"comment_1": "", "comment_2": "", **spec, "epochs": epochs,
                         "patience": epochs, "min_epochs": 0, "batch_size": batch},
                     training_defaults=load_config(ROOT / "config.ini").training,
                     architectures=architectures, task_type=task_type)
    items = ItemKFold(4).split_items(store.items)[fold]
    return Job(instance=1, fold=fold, params=params, items=items, task_type=task_type,
               generator=False, store=str(store.path), compile_cache=compile_cache)


def count_waits(store, spec, epochs, batch, task_type=None):
    """One fold of `spec` on `store` after a one-epoch warm-up, its waits counted
    (`count_host_reads`); returns the `HostReads`."""
    from xval.training.fold import run_fold
    from xval.training.host_reads import count_host_reads

    run_fold(fold_job(store, spec, 1, batch, task_type=task_type))  # warm-up
    with count_host_reads() as seen:
        result = run_fold(fold_job(store, spec, epochs, batch, task_type=task_type))
    assert result.ok, result.message
    return seen


def phase_sync(ctx, report):
    """Waits per step: the plain demo CNN, then every task's default instance."""
    from benchmarks.engine_overhead import ARCH

    models = {"plain demo CNN": ("classification", "demo", ARCH),
              **{f"{task} default": (task, *TASK_INSTANCES[task])
                 for task in TASK_INSTANCES}}
    for name, (task, store, spec) in models.items():
        seen = count_waits(ctx.stores[store], spec, ctx.sizes.sync_epochs, ctx.sizes.batch,
                           task)
        steps = seen.steps["train_step"]
        report.line(f"{name}: CUDA syncs per training step {seen.syncs_per_step():.2f}, per "
                    f"validation step {seen.syncs_per_step('test_step'):.2f}; per training "
                    f"step: host reads {seen.per_step():.2f}, host copies to the device "
                    f"{seen.copies_per_step():.2f}, sync-prone operators "
                    f"{seen.sync_ops_per_step():.2f} ({steps} steps; "
                    f"{sum(seen.elsewhere.values()) / max(steps, 1):.2f} per step in Keras's "
                    "callback thread, which the step does not wait for)",
                    phase="sync", model=name, task=task, syncs_per_step=seen.syncs_per_step(),
                    val_syncs_per_step=seen.syncs_per_step("test_step"),
                    reads_per_step=seen.per_step(), copies_per_step=seen.copies_per_step(),
                    val_copies_per_step=seen.copies_per_step("test_step"),
                    sync_ops_per_step=seen.sync_ops_per_step(),
                    val_sync_ops_per_step=seen.sync_ops_per_step("test_step"), steps=steps)
        sites = seen.sync_where + seen.copies + seen.sync_ops + seen.reads
        for where, n in sites.most_common(8):  # the waits, where they are made
            step = where.split(":", 1)[0]
            at = seen.op_where.get(where) or seen.where.get(where) or ""
            report.line(f"  {n / max(seen.steps[step], 1):5.2f} per {where}"
                        + (f" at {at}" if at else ""), phase="sync", model=name,
                        sync_site=where, per_step=n / max(seen.steps[step], 1))


def hand_loop(store, epochs, batch, arch, constants):
    """GroupKFold plus `model.fit` with early stopping on validation items, the engine's
    model, folds, epochs and batch size, fed the rows on the device (`make_batches` with
    `placement=DEVICE`, as the engine feeds them), the test rows scored from the device;
    with `constants`, under `constants_on_device` as the engine's jobs run (else Keras
    copies every Python number from the host)."""
    import keras
    import numpy as np

    from benchmarks.engine_overhead import hand_folds
    from xval.training import devices
    from xval.training.batches import make_batches
    from xval.training.device_constants import constants_on_device

    feed = {"placement": devices.DEVICE, "batch_size": batch}
    with constants_on_device() if constants else contextlib.nullcontext():
        for x, y, fold, train, val, test, model in hand_folds(store, arch):
            stop = keras.callbacks.EarlyStopping(patience=epochs, restore_best_weights=True)
            model.fit(make_batches(x[train], np.arange(len(train)), y[train], shuffle=True,
                                   seed=fold, **feed),
                      validation_data=make_batches(x[val], np.arange(len(val)), y[val],
                                                   shuffle=False, **feed),
                      epochs=epochs, verbose=0, callbacks=[stop])
            model.predict(make_batches(x[test], np.arange(len(test)), y[test],
                                       shuffle=False, **{**feed, "batch_size": 1024}),
                          verbose=0)


HAND = {"hand (careful)": True, "hand (Keras's conversions)": False}
"""The hand loop's arms: `constants` of `hand_loop`."""


def against_hand(ctx, report, name, dataset, arch, epochs, repeats, arms=tuple(HAND)):
    """The engine against the hand loop's `arms`, alternating, after a warm-up of each;
    every arm's time is printed and saved as it ends, then the ratios of medians."""
    from benchmarks.engine_overhead import engine_run

    store = ctx.stores[dataset]
    runs = {"engine": lambda tag: engine_run(ctx.config, ctx.data, ctx.tmp / tag, epochs,
                                             ctx.sizes.batch, arch=arch, dataset=dataset),
            **{arm: (lambda tag, c=HAND[arm]: hand_loop(store, epochs, ctx.sizes.batch, arch,
                                                          c)) for arm in arms}}
    engine_run(ctx.config, ctx.data, ctx.tmp / f"warm-{dataset}", 1, ctx.sizes.batch,
               arch=arch, dataset=dataset)
    compilation(report, name, ctx.tmp / f"warm-{dataset}", dataset)
    hand_loop(store, 1, ctx.sizes.batch, arch, True)
    times = {arm: [] for arm in runs}
    for r in range(repeats):
        for arm, run in runs.items():
            times[arm].append(timed(run, f"{name}-{r}-{len(times[arm])}")[0])
            report.line(f"  {name}, {arm}, repeat {r + 1}: {times[arm][-1]:.2f}s",
                        phase="a-arm", model=name, arm=arm, repeat=r + 1,
                        seconds=times[arm][-1])
    engine = median(times["engine"])
    ratios = {arm: engine / median(times[arm]) for arm in arms}
    report.line(f"engine / hand loop, {name}, 4 folds x {epochs} epochs: "
                + ", ".join(f"{ratios[arm]:.3f} against {arm}" for arm in arms)
                + f" (medians of {repeats}: engine {engine:.2f}s, "
                + ", ".join(f"{arm} {median(times[arm]):.2f}s" for arm in arms) + ")",
                phase="a", model=name, epochs=epochs, engine_s=engine,
                ratios=ratios, medians={arm: median(t) for arm, t in times.items()})


def compilation(report, name, folder, dataset):
    """Prints the compilation of each fold of the run in `folder` (its fold records)."""
    from xval.core.files import read_json
    from xval.core.layout import ExperimentLayout

    records = [read_json(p) for p in sorted(
        ExperimentLayout.of(folder, dataset, 1).instance(1).fold_files().values())]
    found = [r.get("compilation") or {} for r in records]
    report.line(f"  {name}, compiled per fold (cache empty at fold 0): " + "; ".join(
        f"fold {k}: {c.get('seconds', 0):.1f}s, {c.get('programs', 0)} programs, "
        f"{c.get('cached', 0)} from the cache" for k, c in enumerate(found))
        + f" ({records[0]['backend'] if records else '?'}, compiled "
        f"{bool(records and records[0].get('compiled'))})", phase="compile", model=name,
        compilation=found)


def phase_a_small(ctx, report):
    from benchmarks.engine_overhead import ARCH

    against_hand(ctx, report, "demo CNN", "demo", ARCH, ctx.sizes.epochs, ctx.sizes.repeats)


def phase_a_big(ctx, report):
    """One fold of the 10.7 M model and the GPU's busy %, then the engine against the
    careful hand loop on it."""
    from xval.training.fold import run_fold

    arch = {**BIG, "filters": ctx.sizes.big_filters}
    name = "audio_cnn 10.7M" if ctx.sizes.big_filters == BIG["filters"] else "audio_cnn (small)"
    big = ctx.stores["big"]
    cache = ctx.config.backend.compile_cache
    run_fold(fold_job(big, arch, 1, ctx.sizes.batch, compile_cache=cache))  # warm-up
    marks, figures = [], {}
    result = run_fold(fold_job(big, arch, ctx.sizes.big_epochs, ctx.sizes.batch,
                               compile_cache=cache),
                      on_epoch=lambda *a: marks.append(time.perf_counter()))
    assert result.ok, result.message
    ctx.sampler.between(marks[0], marks[-1], figures)
    report.line(f"{name}, one fold's fit, epochs 2 to {len(marks)}: "
                f"{(marks[-1] - marks[0]) / max(1, len(marks) - 1):.2f}s per epoch"
                f"{busy(figures) or ' (no GPU samples)'}; fit {result.timings['fit_seconds']}"
                f"s, evaluation {result.timings['eval_seconds']}s", phase="a-busy",
                model=name, timings=result.timings, **figures)
    against_hand(ctx, report, name, "big", arch, ctx.sizes.big_epochs, ctx.sizes.big_repeats,
                 arms=("hand (careful)",))


def phase_mixed(ctx, report):
    """One fold of the 10.7 M model in float32 and in mixed precision (`mixed_precision`:
    float16 compute, float32 variables, the engine's loss scaling), each after a warm-up:
    seconds per epoch, the GPU's busy %, and the compilation of each."""
    from xval.training.fold import run_fold

    arch, big = {**BIG, "filters": ctx.sizes.big_filters}, ctx.stores["big"]
    cache = ctx.config.backend.compile_cache
    for mixed in (False, True):
        spec = {**arch, "mixed_precision": mixed}
        warm = run_fold(fold_job(big, spec, 1, ctx.sizes.batch, compile_cache=cache))
        marks, figures = [], {}
        result = run_fold(fold_job(big, spec, ctx.sizes.big_epochs, ctx.sizes.batch,
                                   compile_cache=cache),
                          on_epoch=lambda *a, m=marks: m.append(time.perf_counter()))
        assert result.ok, result.message
        ctx.sampler.between(marks[0], marks[-1], figures)
        per_epoch = (marks[-1] - marks[0]) / max(1, len(marks) - 1)
        name = "mixed precision" if mixed else "float32"
        report.line(f"{name}: {per_epoch:.2f}s per epoch{busy(figures)}; compiled "
                    f"{warm.compilation} cold, {result.compilation} warm; test loss "
                    f"{result.metrics['test']['loss']:.4f}", phase="mixed", mixed_precision=mixed,
                    epoch_s=per_epoch, cold=warm.compilation, warm=result.compilation,
                    test=result.metrics["test"], **figures)


def phase_env(args, report):
    """The GPU environment's check (`benchmarks/gpu_env.sh --check`: CUDA JAX and CUDA
    torch in one process, each computing on the GPU; the pinned versions): its lines, and
    whether it passed. The dry run prints the recipe's install commands too."""
    mode = "--dry-run" if args.dry_run else "--check"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_env.sh"), mode,
                           *([] if args.dry_run else [sys.executable])],
                          env={**os.environ, "PYTHON": sys.executable}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    for line in (done.stdout + done.stderr).splitlines():
        report.line(f"  {line}", phase="env")
    report.line(f"GPU environment: {'passed' if done.returncode == 0 else 'FAILED'}",
                phase="env", exit_code=done.returncode)
    return done.returncode


def phase_busy(ctx, report, batches=(32, 128)):
    """The GPU's busy % during epochs 2.. of one fold of the 10.7 M model, the engine's and
    the careful hand loop's, at each batch size of `batches`: whether a step's host work
    (Keras's eager dispatch on torch) or the engine keeps the GPU waiting."""
    import keras
    import numpy as np

    from benchmarks.engine_overhead import hand_folds
    from xval.training import devices
    from xval.training.batches import make_batches
    from xval.training.device_constants import constants_on_device
    from xval.training.fold import run_fold

    arch, big = {**BIG, "filters": ctx.sizes.big_filters}, ctx.stores["big"]
    epochs, marks = ctx.sizes.big_epochs, []
    mark = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda *a: marks.append(time.perf_counter()))
    for batch in batches:
        cache = ctx.config.backend.compile_cache
        run_fold(fold_job(big, arch, 1, batch, compile_cache=cache))  # warm-up
        marks.clear()
        figures = {}
        run_fold(fold_job(big, arch, epochs, batch, compile_cache=cache),
                 on_epoch=lambda *a: marks.append(time.perf_counter()))
        ctx.sampler.between(marks[0], marks[-1], figures)
        per_epoch = (marks[-1] - marks[0]) / max(1, len(marks) - 1)
        report.line(f"batch {batch}, engine: {per_epoch:.2f}s per epoch{busy(figures)}",
                    phase="busy", arm="engine", batch=batch, epoch_s=per_epoch, **figures)
        figures = {}
        with constants_on_device():
            x, y, fold, train, val, _, model = next(hand_folds(big, arch))
            feed = {"placement": devices.DEVICE, "batch_size": batch}
            for n in (1, epochs):  # a warm-up epoch, then the timed ones
                marks.clear()
                model.fit(make_batches(x[train], np.arange(len(train)), y[train], shuffle=True,
                                       seed=fold, **feed),
                          validation_data=make_batches(x[val], np.arange(len(val)), y[val],
                                                       shuffle=False, **feed),
                          epochs=n, verbose=0, callbacks=[mark])
        ctx.sampler.between(marks[0], marks[-1], figures)
        per_epoch = (marks[-1] - marks[0]) / max(1, len(marks) - 1)
        report.line(f"batch {batch}, hand (careful): {per_epoch:.2f}s per epoch"
                    f"{busy(figures)}", phase="busy", arm="hand (careful)", batch=batch,
                    epoch_s=per_epoch, **figures)
        keras.backend.clear_session()


def sharing_run(ctx, folder, jobs, jobs_per_gpu, epochs):
    """`jobs` jobs (instances x 4 folds) of the demo CNN through the process executor;
    returns the wall time and the sum of the jobs' fit seconds."""
    from benchmarks.engine_overhead import ARCH
    from xval import Execution, Experiment, Output
    from xval.core.files import read_json
    from xval.core.layout import ExperimentLayout

    instances = max(1, jobs // 4)
    config = ctx.config.replace(paths={"data_dir": str(ctx.data), "results_dir": str(folder)},
                                backend={"jobs_per_gpu": jobs_per_gpu})
    exp = Experiment(description="gpu sharing", dataset="demo", number=1, num_folds=4,
                     parameters={"epochs": epochs, "patience": epochs,
                                 "batch_size": ctx.sizes.batch})
    for k in range(1, instances + 1):
        exp[k] = {**ARCH, "comment_1": str(k)}
    started = time.perf_counter()
    outcome = exp.run(config=config, executor=Execution("process", gpus=[ctx.gpu]),
                      output=Output(out=lambda *a: None))
    wall = time.perf_counter() - started
    assert outcome.exit_code == 0
    layout = ExperimentLayout.of(folder, "demo", 1)
    fit = sum(read_json(p)["timings"]["fit_seconds"] for k in range(1, instances + 1)
              for p in layout.instance(k).fold_files().values())
    return wall, fit, 4 * instances


def overhead(ctx, report, fresh):
    from xval.executors import base

    warm, figures = base.WORKER_JOBS, {}
    base.WORKER_JOBS = 1 if fresh else warm
    try:
        with ctx.sampler.phase(figures):
            wall, fit, jobs = sharing_run(ctx, ctx.tmp / f"b{fresh}", ctx.sizes.jobs_b, 1,
                                          ctx.sizes.epochs)
    finally:
        base.WORKER_JOBS = warm
    kind = "a fresh worker per job" if fresh else "warm workers"
    report.line(f"per-job overhead (wall - fit), {jobs} jobs on one slot, {kind}: "
                f"{(wall - fit) / jobs:.2f}s ({wall:.1f}s wall, {fit:.1f}s fit){busy(figures)}",
                phase="b-fresh" if fresh else "b", overhead_s=(wall - fit) / jobs, wall_s=wall,
                fit_s=fit, **figures)


def phase_b(ctx, report):
    overhead(ctx, report, fresh=False)


def phase_b_fresh(ctx, report):
    overhead(ctx, report, fresh=True)


def phase_c(ctx, report, counts=(1, 2, 4)):
    """Jobs per minute at 1, 2 and 4 jobs per GPU (warm workers)."""
    rates = {}
    for n in counts:
        figures = {}
        with ctx.sampler.phase(figures):
            wall, _, jobs = sharing_run(ctx, ctx.tmp / f"c{n}", ctx.sizes.jobs_c, n,
                                        ctx.sizes.epochs)
        rates[n] = jobs / wall * 60
        report.line(f"{n} job(s) per GPU, warm workers: {rates[n]:.1f} jobs/min ({jobs} jobs in "
                    f"{wall:.1f}s; x{rates[n] / rates[counts[0]]:.2f} over {counts[0]})"
                    f"{busy(figures)}", phase="c", jobs_per_gpu=n, jobs_per_min=rates[n],
                    speedup=rates[n] / rates[counts[0]], **figures)


RUNNERS = {"env": phase_env, "sync": phase_sync, "a-small": phase_a_small,
           "a-big": phase_a_big, "b": phase_b, "b-fresh": phase_b_fresh, "c": phase_c,
           "busy": phase_busy, "mixed": phase_mixed}


@dataclasses.dataclass
class Context:
    """What a phase's process works with."""

    sizes: Sizes
    data: Path
    tmp: Path
    gpu: str
    sampler: Sampler
    config: object = None
    stores: dict = dataclasses.field(default_factory=dict)


def run_phase(args):
    """`--phase NAME`: one phase, in this process (stopped with its workers when the
    driver ends: `_follow_parent`)."""
    _follow_parent()
    if args.phase == "env":  # the environment's own check, in a process of its own
        header = {"card": (visible_gpus() or ["CPU (dry run)"])[0], "phase": "env",
                  "dry_run": args.dry_run}
        return phase_env(args, Report(Path(args.out_dir) / "env.json", header))
    import keras

    from preprocessing.store import FeatureStore
    from xval.config.loader import load_config

    sizes = TINY if args.dry_run else DEFAULT
    gpus = visible_gpus()
    card = gpus[0] if gpus else "CPU (dry run)"
    report = Report(Path(args.out_dir) / f"{args.phase}.json",
                    {"card": card, "backend": keras.backend.backend(), "phase": args.phase,
                     "dry_run": args.dry_run})
    sampler = Sampler(args.gpu, bool(gpus) and not args.dry_run)  # nvidia-smi's numbering
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data).resolve()  # jobs name their store by absolute path
        ctx = Context(sizes=sizes, data=data, tmp=Path(tmp),
                      gpu="0", sampler=sampler,  # the child sees its GPU alone
                      config=load_config(ROOT / "config.ini").replace(
                          backend={"compile_cache": str(Path(tmp) / "cache")}),
                      stores={name: FeatureStore(data / name) for name in STORES})
        try:
            RUNNERS[args.phase](ctx, report)
        finally:
            sampler.close()


def _follow_parent():
    """A phase's process (its own process group, so that its limit stops its workers too)
    stops with its group when the driver ends, even killed (Linux: the parent-death
    signal; the SIGTERM handler stops the group)."""
    def stop(*_):
        os.killpg(0, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the driver ended before the signal was asked for
        stop()


# --- the driver ------------------------------------------------------------------------------

def print_projection(report, only):
    total = 0.0
    for phase in only:
        seconds = projected(phase)
        total += seconds
        report.line(f"  {phase:8} {seconds:6.0f} s projected on an H100", phase=phase,
                    projected_s=seconds)
    report.line(f"  {'total':8} {total:6.0f} s ({total / 60:.1f} min)", projected_total_s=total)


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP reached the driver."""


def run_child(args, phase, limit, report):
    """Runs `phase` in its own process group, killed (with its workers) at `limit`
    seconds, or when the driver is interrupted (then `Interrupted` goes on)."""
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--phase", phase, "--data", str(args.data),
           "--out-dir", str(args.out_dir), "--gpu", args.gpu] + \
        (["--dry-run"] if args.dry_run else [])
    # The sync phase counts torch's CUDA synchronisations (a JAX step is one program).
    env = {**os.environ, "KERAS_BACKEND": "torch" if phase == "sync" else args.backend}
    if not args.dry_run:
        env["CUDA_VISIBLE_DEVICES"] = args.gpu
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
    try:
        code = proc.wait(timeout=limit)
    except (subprocess.TimeoutExpired, Interrupted, KeyboardInterrupt) as stopped:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not isinstance(stopped, subprocess.TimeoutExpired):
            raise Interrupted(phase) from None
        report.line(f"{phase}: stopped at its limit of {limit:.0f} s (what it measured is "
                    "above)", phase=phase, stopped_s=limit)
        return
    seconds = time.perf_counter() - started
    projection = "" if args.dry_run else f", projected {projected(phase):.0f} s"
    report.line(f"{phase}: {'done' if code == 0 else f'FAILED (exit code {code})'} in "
                f"{seconds:.0f} s{projection}", phase=phase, seconds=seconds, exit_code=code)


def check_folders(parser, args, only):
    """Refuses, before anything is written, an `--out-dir` that is a file or holds the
    figure files this run would write, and a `--data` folder this benchmark did not make."""
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        parser.error(f"--out-dir {out}: is a file; pass a folder (made when absent).")
    ours = [out / name for name in ("summary.json", *(f"{p}.json" for p in only))]
    kept = [p.name for p in ours if p.exists()]
    if kept:
        parser.error(f"--out-dir {out}: already holds {', '.join(kept)}, which this run would "
                     "write over; pass another folder, or move those files away first.")
    if args.data is not None:
        data = Path(args.data)
        if data.exists() and (not data.is_dir() or (any(data.iterdir())
                                                     and not (data / MARK).exists())):
            parser.error(f"--data {data}: holds files this benchmark did not make (no {MARK} "
                         "in it); pass an absent or empty folder (the stores are made there) "
                         "or one an earlier run made.")
        foreign = [name for name in STORES if (data / name).exists()
                   and not (data / name / "dataset.json").is_file()]
        if data.is_dir() and foreign:
            parser.error(f"--data {data}: {', '.join(foreign)} there is not a store this "
                         "benchmark made (no dataset.json), and it writes its stores under "
                         "those names; move it away, or pass another folder.")


def make_folders(parser, args):
    """Makes `--out-dir` and `--data` (when given) before the run writes into them; one
    that cannot be made (`/proc/x`, a read-only disk) is refused naming it, and a folder
    made here is removed again."""
    made = []
    for option, folder in (("--out-dir", args.out_dir), ("--data", args.data)):
        if folder is None:
            continue
        missing = [p for p in (Path(folder), *Path(folder).parents) if not p.exists()]
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            probe = Path(folder) / f"{MARK}.probe"
            probe.touch()
            probe.unlink()
        except OSError as e:
            for path in made:  # the deepest first
                with contextlib.suppress(OSError):
                    path.rmdir()
            for path in missing:
                with contextlib.suppress(OSError):
                    path.rmdir()
            parser.error(f"{option} {folder}: cannot be written ({e.strerror}); pass a "
                         "folder you can write.")
        made += missing


def check_gpu(parser, gpu, gpus):
    """Refuses a `--gpu` that is not the index of a visible GPU."""
    if not gpu.isdigit() or (gpus and int(gpu) >= len(gpus)):
        seen = f"{len(gpus)} GPU(s): ids 0 to {len(gpus) - 1}" if gpus else "no GPU"
        parser.error(f"--gpu {gpu}: expected the index of one GPU nvidia-smi lists; this "
                     f"machine has {seen}.")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call", choices=sorted(CALLS),
                        help="one of the two prepared device calls (phases and budget)")
    parser.add_argument("--budget", type=number(0), help="seconds for every phase (default 480; "
                        f"{CALL_BUDGET} with --call)")
    parser.add_argument("--slack", type=number(0), default=1.6,
                        help="a phase's limit: its projected seconds times this")
    parser.add_argument("--gpu", default="0", help="GPU id to use (CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--backend", choices=("jax", "torch", "tensorflow"), default="jax",
                        help="the phases' Keras backend (default jax, the product's; the "
                        "sync phase runs torch)")
    parser.add_argument("--out-dir", default=str(ROOT / "results" / "gpu-benchmark"))
    parser.add_argument("--only", help=f"phases, comma-separated (default {','.join(PHASES)})")
    parser.add_argument("--data", help="the stores' folder (made when absent)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the phases on the CPU at tiny sizes, after the projections")
    parser.add_argument("--project", action="store_true",
                        help="only print each phase's projected seconds on an H100")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.call and args.only:
        parser.error("--call and --only both choose the phases: pass one of them.")
    only = list(CALLS[args.call]) if args.call else \
        [p for p in (args.only or ",".join(PHASES)).split(",") if p]
    twice = sorted({p for p in only if only.count(p) > 1})
    if not only or twice:
        parser.error(f"--only {args.only}: " + (f"{', '.join(twice)} named twice" if twice
                                                 else "names no phase")
                     + f"; give each phase once, comma-separated, from {', '.join(RUNNERS)}")
    unknown = sorted(set(only) - set(RUNNERS))
    if unknown:
        parser.error(f"--only {','.join(unknown)}: not a phase; choose from "
                     f"{', '.join(RUNNERS)}")
    if args.budget is None:
        args.budget = CALL_BUDGET if args.call else 480
    return parser, args, only


def main(argv=None):
    parser, args, only = parse(argv)
    if args.phase:
        return run_phase(args)
    gpus = visible_gpus()
    measured = not args.project and bool(gpus or args.dry_run)  # else it only prints
    check_gpu(parser, args.gpu, gpus)  # the rehearsal's too: it runs the same command
    if measured:
        check_folders(parser, args, only)
        make_folders(parser, args)
    out = Path(args.out_dir)
    report = Report(out / "summary.json" if measured else None,
                    {"card": gpus[0] if gpus else None, "dry_run": args.dry_run,
                     "budget_s": args.budget, "phases": only})
    report.line("Projected seconds on an H100 (benchmarks.gpu.H100), default sizes:")
    print_projection(report, only)
    if args.project:
        return 0
    if not measured:
        print("No GPU found (nvidia-smi lists none): nothing to measure here, nothing "
              "written. Run this on a machine with an NVIDIA GPU and a CUDA build of the "
              "backend (see the README).")
        return 0
    report.line(f"{gpus[int(args.gpu)] if gpus and not args.dry_run else 'CPU'}"
                f"{' (dry run: tiny sizes)' if args.dry_run else ''}")

    def interrupted(*_):
        raise Interrupted

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    started, phase = time.perf_counter(), None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            args.data = Path(args.data or Path(tmp) / "data").resolve()
            prepare_data(args.data, TINY if args.dry_run else DEFAULT)
            for phase in only:
                left = args.budget - (time.perf_counter() - started)
                need = projected(phase)
                if not args.dry_run and left < 0.5 * need:
                    report.line(f"{phase}: skipped ({left:.0f} s left of the "
                                f"{args.budget:.0f} s budget; it needs about {need:.0f} s)",
                                phase=phase, skipped=True)
                    continue
                limit = 600 if args.dry_run else min(args.slack * need, left)
                run_child(args, phase, limit, report)
    except (Interrupted, KeyboardInterrupt):
        print(f"Interrupted{f' during {phase}' if phase else ''}: that phase and its workers "
              f"were stopped; the figures so far are in {out}/.", file=sys.stderr, flush=True)
        return 130
    report.line(f"Figures written to {out}/ (summary.json and one file per phase)")
    return 0


if __name__ == "__main__":
    from xval.core.entry import run_entry

    sys.exit(run_entry(main))  # one `error:` line, a closed pipe (`| head`) included
