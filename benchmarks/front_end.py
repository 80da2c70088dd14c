"""The front end inside the model against the librosa store (issue 36, point 1).

Two measurements, each one command:

    python -m benchmarks.front_end throughput [--rows N] [--batch B]
    python -m benchmarks.front_end scores demo|fsdd [--epochs E] [--files-per-speaker N]
                                                    [--work DIR]

`throughput`: log-mel features of the same one-second rows (16 kHz, the default
`[features]`), computed by librosa as a store is built (`compute_features`, one row at a
time, one process) and by `architectures.SpectralFrontEnd` on the Keras backend of this
process (batches of `--batch` rows, CPU unless a GPU is visible); prints rows per second of
each and their ratio. The two take the same rows, and the first batch (compilation, kernel
construction) is left out of the timing.

`scores`: builds a log-mel store and a waveform store of the same recordings (the demo's, or
FSDD's six speakers with `--files-per-speaker` files each), then trains the stock audio CNN
(exp3's plain recipe) on both with the same folds: instance 1 on the mel store, instance 2
on the waveform store with `front_end = "mel"`. Prints the per-fold test accuracies, their
means and the mean of the paired differences. Results go to `--work` (a new folder; default a
temporary one).
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import fsdd_rows
from xval import Output

os.environ.setdefault("KERAS_BACKEND", "torch")


def throughput(rows: int, batch: int) -> dict[str, float]:
    """Rows per second of librosa (the store's path) and of the in-model front end."""
    import keras

    from architectures import SpectralFrontEnd
    from preprocessing.features import compute_features

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((rows, 16000))).astype(np.float32)
    settings = {"sample_rate": 16000, "n_fft": 512, "hop_length": 160, "n_mels": 64,
                "fmin": 32.7, "fmax": None, "compression": "db", "power_exponent": 0.3}
    compute_features(x[0], feature="mel", **settings)  # the filter bank, cached
    started = time.perf_counter()
    for row in x:
        compute_features(row, feature="mel", **settings)
    librosa_rate = rows / (time.perf_counter() - started)
    layer = SpectralFrontEnd("mel", **settings)
    keras.ops.convert_to_numpy(layer(x[:batch, :, None]))  # built and warmed up
    started = time.perf_counter()
    for start in range(0, rows, batch):
        keras.ops.convert_to_numpy(layer(x[start:start + batch, :, None]))
    model_rate = rows / (time.perf_counter() - started)
    return {"librosa_rows_per_s": librosa_rate, "front_end_rows_per_s": model_rate,
            "ratio": model_rate / librosa_rate, "backend": keras.backend.backend()}


def _stores(dataset: str, data: Path, files_per_speaker: int) -> tuple[dict[str, Any], int]:
    """Builds `mel` and `wave` stores of the same files; returns the folds and epochs."""
    from preprocessing import build_store, regex_source
    from preprocessing.demo import CLASSES, PATTERN, _demo_params, write_demo_audio

    if dataset == "demo":
        write_demo_audio(data / "audio")
        rows, _ = regex_source(data / "audio", PATTERN)
        params, classes, folds = _demo_params(), list(CLASSES), 4
    else:
        from xval.config import schema

        rows = fsdd_rows(files_per_speaker)
        params = {**schema.defaults()["features"], "sample_rate": 8000, "n_mels": 40}
        params.pop("workers")
        classes, folds = None, 6
    for name, extra in (("mel", {}), ("wave", {"feature": "waveform", "dtype": "auto"})):
        build_store(rows.reset_index(drop=True), data / name, params={**params, **extra},
                    workers=1, classes=classes, progress=False)
    return {"num_folds": folds}, len(rows)


def scores(dataset: str, epochs: int, files_per_speaker: int, work: Path) -> dict[str, Any]:
    """Test accuracies of the audio CNN on the librosa store and with the front end."""
    from xval import Experiment
    from xval.config.loader import load_config

    work.mkdir(parents=True)
    (work / "config.ini").write_text(f"[paths]\ndata_dir = {work / 'data'}\n"
                                     f"results_dir = {work / 'results'}\n")
    config = load_config(work / "config.ini")
    setup, files = _stores(dataset, work / "data", files_per_speaker)
    plain = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 8,
             "epochs": epochs, "patience": max(2, epochs // 4), "batch_size": 64,
             "time_masks": 0, "freq_masks": 0, "mixup_alpha": 0.0, "label_smoothing": 0.0,
             "warmup_epochs": 0, "min_epochs": 0, "lr_schedule": "constant",
             "freq_warp": 0.0, "time_warp": 0.0}
    exp = Experiment(description=f"front end vs librosa store ({dataset})", dataset="mel",
                     number=1, num_folds=setup["num_folds"], config=str(config.path))
    exp[1] = {**plain, "comment_1": "librosa mel store", "comment_2": ""}
    exp[2] = {**plain, "dataset": "wave", "front_end": "mel",
              "comment_1": "waveform store, front_end mel", "comment_2": ""}
    started = time.perf_counter()
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    root = work / "results" / "mel" / "experiment_1"
    acc = {k: [json.loads((root / f"instance_{k}" / f"fold_{i}.json").read_text())[
        "metrics"]["test"]["accuracy"] for i in range(setup["num_folds"])] for k in (1, 2)}
    diff = np.subtract(acc[2], acc[1])
    return {"dataset": dataset, "files": files, "epochs": epochs, "exit": outcome.exit_code,
            "librosa": acc[1], "front_end": acc[2], "librosa_mean": float(np.mean(acc[1])),
            "front_end_mean": float(np.mean(acc[2])), "mean_difference": float(diff.mean()),
            "seconds": round(time.perf_counter() - started, 1), "results": str(root)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p = sub.add_parser("scores")
    p.add_argument("dataset", choices=("demo", "fsdd"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--files-per-speaker", type=int, default=0,
                   help="FSDD: N files of each speaker, the first N / 10 recordings of each "
                        "digit (0: all 500)")
    p.add_argument("--work", help="a new folder for the stores and results")
    args = parser.parse_args()
    if args.what == "throughput":
        print(json.dumps(throughput(args.rows, args.batch), indent=2))
        return
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="front_end_")) / "w"
    print(json.dumps(scores(args.dataset, args.epochs, args.files_per_speaker, work),
                     indent=2))


if __name__ == "__main__":
    main()
