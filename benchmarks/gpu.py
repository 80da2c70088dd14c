"""GPU benchmark: the engine against a hand-written loop on one GPU, and GPU sharing.

(a) On one GPU, `Experiment.run` (inline executor) against scikit-learn `GroupKFold` plus
    `model.fit` on the same folds, model, epochs and batch size (ratio of medians, as
    `benchmarks.engine_overhead` does on CPU).
(b) The wall time of an 8-job experiment (2 instances x 4 folds) with the process executor
    and 1, 2 and 4 jobs per GPU (`[backend] jobs_per_gpu`), and the speed-up over 1.

On a machine without a GPU it prints a message and exits with code 0.

    python -m benchmarks.gpu [--repeats 3] [--epochs 30] [--batch-size 32] [--gpu 0]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # TensorFlow only saves models here

from benchmarks._common import ROOT, median, timed  # noqa: E402


def visible_gpus():
    """GPU names from `nvidia-smi -L` (empty without an NVIDIA driver)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in out.stdout.splitlines() if line.startswith("GPU ")]


def backend_sees_gpu():
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


def sharing_run(config, store_dir, folder, epochs, batch, jobs_per_gpu, gpu):
    from xval import PLAIN_TRAINING, Experiment

    config = config.replace(paths={"data_dir": str(store_dir), "results_dir": str(folder)},
                            backend={"jobs_per_gpu": jobs_per_gpu})
    exp = Experiment(description="gpu sharing", dataset="demo", number=1, num_folds=4,
                     parameters={"epochs": epochs, "patience": epochs, "batch_size": batch,
                                 **PLAIN_TRAINING})
    exp[1] = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "a",
              "comment_2": "", "filters": 16}
    exp[2] = {"architecture": "vgg_ultra_mini", "reshaping_type": "conv", "comment_1": "b",
              "comment_2": ""}
    outcome = exp.run(config=config, executor="process", gpus=[gpu], out=lambda *a: None)
    assert outcome.exit_code == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--gpu", default="0", help="GPU id to use (CUDA_VISIBLE_DEVICES)")
    args = parser.parse_args()
    gpus = visible_gpus()
    if not gpus:
        print("No GPU found (nvidia-smi lists none): nothing to measure here. Run this on a "
              "machine with an NVIDIA GPU and a CUDA build of the backend (see the README).")
        return 0
    os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    from benchmarks.engine_overhead import engine_run, hand_loop
    from preprocessing.demo import build_demo
    from xval.config.loader import load_config

    if not backend_sees_gpu():
        print(f"{gpus[0]} is present, but the {os.environ['KERAS_BACKEND']} backend does not "
              "see it (a CPU-only build?). Install a CUDA build (see the README) and rerun.")
        return 0
    config = load_config(ROOT / "config.ini")
    print(f"{gpus[int(args.gpu)] if int(args.gpu) < len(gpus) else gpus[0]}, backend "
          f"{os.environ['KERAS_BACKEND']}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store, _ = build_demo(tmp / "data", workers=0, progress=False)
        engine_run(config, tmp / "data", tmp / "warm", 1, args.batch_size)
        hand_loop(store, 1, args.batch_size)
        t_engine, t_hand = [], []
        for r in range(args.repeats):
            t_engine.append(timed(engine_run, config, tmp / "data", tmp / f"e{r}", args.epochs,
                                  args.batch_size)[0])
            t_hand.append(timed(hand_loop, store, args.epochs, args.batch_size)[0])
            print(f"  repeat {r}: engine {t_engine[-1]:.2f}s, hand loop {t_hand[-1]:.2f}s")
        print(f"engine / hand-written loop on one GPU: {median(t_engine) / median(t_hand):.3f} "
              f"(median {median(t_engine):.2f}s vs {median(t_hand):.2f}s)")
        walls = {}
        for n in (1, 2, 4):
            times = [timed(sharing_run, config, tmp / "data", tmp / f"s{n}_{r}", args.epochs,
                           args.batch_size, n, args.gpu)[0] for r in range(args.repeats)]
            walls[n] = median(times)
            print(f"  {n} job(s) per GPU: {walls[n]:.2f}s for 8 jobs "
                  f"(speed-up {walls[1] / walls[n]:.2f}x over 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
