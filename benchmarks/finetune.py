"""Fine-tuning aisfx's last block against its frozen embedding (issue 33, point 4).

    python -m benchmarks.finetune fsdd --files-per-speaker 50
    python -m benchmarks.finetune manifest data/raw/envset/manifest.csv --folds 5

Every file is read at 44.1 kHz, divided by its peak, padded to one block when shorter, and
cut into the encoder's blocks (100 spectrogram frames, 2.3 s) every half block, as an aisfx
store with its default one-block segments is. aisfx's first three convolution blocks run once
(frozen in both arms): their output maps, `(12, 12, 256)` per block, are the input of a Keras
model made of the fourth block, rebuilt as Keras layers with the wheel's weights (checked here
against the torch network to 1e-4), aisfx's pooling (the mean over frequency, the max over
time) and a softmax layer. Every block is a training row with its clip's label; a clip's
scores are the mean of its blocks' (the engine's clip ensemble).

On every fold (the engine's `ItemKFold`, config.ini's `[folds]` settings, stratified by
label), the same model is trained in two stages, as Keras's transfer-learning guide does:

1. **frozen**: the fourth block frozen (aisfx's own 512-d embedding), the softmax layer
   trained (Adam, 1e-3, early stopping on the validation items' loss, best weights kept;
   trained on the embeddings themselves, which is the same training without the frozen
   convolutions);
2. **fine-tuned**: from there, the fourth block unfrozen (its batch normalisation kept in
   inference mode) and everything trained again with Adam at `--fine-tune-lr`, early stopping
   on the same validation loss, best weights kept.

Printed per fold and as mean ± std: test clip accuracy (or UAR) of both stages, of the
logistic-regression probe on the clips' mean+max pooled embeddings (`benchmarks.encoders`'s
probe, the issue's "frozen probe"), and the corrected resampled t-test of fine-tuned against
each. The fourth block is Keras layers, not `keras.layers.TorchModuleWrapper` (which pickles
the torch module when a model is saved; this project writes no pickle): the measurement is
the same network, and a kept fine-tuned model would save as a plain `.keras` file.
"""

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import fsdd_rows

os.environ.setdefault("KERAS_BACKEND", "torch")


def _rows(args: argparse.Namespace) -> pd.DataFrame:
    """`path`, `label`, `item`, `clip` of the recordings to use."""
    from preprocessing import manifest_source

    if args.dataset == "fsdd":
        return fsdd_rows(args.files_per_speaker)
    rows, _ = manifest_source(args.manifest, item_column="item", clip_column="clip")
    return rows.reset_index(drop=True)


def _maps(rows: pd.DataFrame, batch: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Third-block maps `(n, 12, 12, 256)`, frozen embeddings `(n, 512)` and the row index
    of every block."""
    import librosa
    import torch

    from preprocessing.features.encoders.aisfx import AisfxEncoder, run_blocks

    encoder = AisfxEncoder("cpu")
    blocks, owner = [], []
    for k, path in enumerate(rows["path"]):
        y, _ = librosa.load(path, sr=encoder.sample_rate, mono=True)
        y = encoder.prepare(y[None].astype(np.float32))[0]
        if len(y) < encoder.block_length:
            y = np.pad(y, (0, encoder.block_length - len(y)))
        spec = encoder.spectrogram_blocks(y[None], encoder.hop_length)[0]
        blocks.append(spec)
        owner += [k] * len(spec)
    spec = np.concatenate(blocks)
    maps, embeddings = [], []
    first, last = encoder.network[:3], encoder.network[3:]
    with torch.inference_mode():
        for start in range(0, len(spec), batch):
            x = run_blocks(first, torch.from_numpy(spec[start:start + batch])[:, None],
                           pool_last=True)
            maps.append(x.permute(0, 2, 3, 1).numpy().copy())
            embeddings.append(run_blocks(last, x).mean(3).amax(2).numpy().copy())
    return np.concatenate(maps), np.concatenate(embeddings), np.asarray(owner)


def _last_block(inputs: Any) -> tuple[Any, list[Any]]:
    """aisfx's fourth block and pooling as Keras layers; returns the output and the layers."""
    import keras

    layers = [keras.layers.Conv2D(512, 3, padding="same", use_bias=False, name="conv1"),
              keras.layers.BatchNormalization(epsilon=1e-5, name="bn1"),
              keras.layers.Conv2D(512, 3, padding="same", use_bias=False, name="conv2"),
              keras.layers.BatchNormalization(epsilon=1e-5, name="bn2")]
    x = inputs
    for conv, bn in (layers[:2], layers[2:]):
        x = keras.layers.ReLU()(bn(conv(x), training=False))
    pooled = keras.ops.max(keras.ops.mean(x, axis=2), axis=1)
    return pooled, layers


def _set_weights(layers: Sequence[Any]) -> None:
    """Copies the wheel's fourth-block weights into the Keras layers."""
    from preprocessing.features.encoders.aisfx import aisfx_network

    block = aisfx_network()[3]
    for name, layer in zip(("conv1", "bn1", "conv2", "bn2"), layers):
        module = block[name]
        if name.startswith("conv"):
            layer.set_weights([module.weight.detach().permute(2, 3, 1, 0).numpy()])
        else:
            layer.set_weights([t.detach().numpy() for t in (
                module.weight, module.bias, module.running_mean, module.running_var)])


def _model(n_classes: int) -> tuple[Any, list[Any]]:
    import keras

    inputs = keras.Input((12, 12, 256))
    pooled, layers = _last_block(inputs)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="head")(pooled)
    model = keras.Model(inputs, outputs)
    _set_weights(layers)
    return model, layers


def _clip_score(model: Any, maps: np.ndarray, owner: np.ndarray, labels: np.ndarray,
                rows: np.ndarray, metric: str) -> float:
    from benchmarks.encoders import METRICS

    take = np.isin(owner, rows)
    probs = model.predict(maps[take], batch_size=128, verbose=0)
    frame = pd.DataFrame(probs).groupby(owner[take]).mean()
    return float(METRICS[metric](labels[frame.index], frame.to_numpy().argmax(1)))


def _fit(model: Any, lr: float, data: tuple[Any, ...], epochs: int, patience: int) -> int:
    """Trains with early stopping on the validation loss; returns the epochs run."""
    import keras

    x, y, xv, yv = data
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss="sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
                        callbacks=[stop], verbose=0, shuffle=True)
    return len(history.history["loss"])


def fold_scores(maps: np.ndarray, embeddings: np.ndarray, owner: np.ndarray,
                labels: np.ndarray, items: np.ndarray, fold: dict[str, list[str]], args: argparse.Namespace
                ) -> dict[str, Any]:
    """The frozen and fine-tuned stages on one fold."""
    import keras

    keras.utils.set_random_seed(args.seed)
    split = {name: np.flatnonzero(np.isin(items, fold[name])) for name in ("train", "val",
                                                                            "test")}
    mask = {name: np.isin(owner, rows) for name, rows in split.items()}
    data = (maps[mask["train"]], labels[owner[mask["train"]]], maps[mask["val"]],
            labels[owner[mask["val"]]])
    model, layers = _model(int(labels.max()) + 1)
    # The frozen stage on the embeddings themselves: with the fourth block frozen and its
    # batch normalisation in inference mode, the model before the head is a fixed function,
    # so training the head on its outputs is the same training, without the convolutions.
    head = keras.Sequential([keras.Input((embeddings.shape[1],)),
                             keras.layers.Dense(int(labels.max()) + 1, activation="softmax")])
    started = time.perf_counter()
    frozen_epochs = _fit(head, 1e-3, (embeddings[mask["train"]], data[1],
                                      embeddings[mask["val"]], data[3]),
                         args.epochs, args.patience)
    model.get_layer("head").set_weights(head.get_weights())
    frozen = _clip_score(model, maps, owner, labels, split["test"], args.metric)
    frozen_seconds = time.perf_counter() - started
    for layer in layers:
        layer.trainable = True
    started = time.perf_counter()
    tuned_epochs = _fit(model, args.fine_tune_lr, data, args.fine_tune_epochs, args.patience)
    tuned = _clip_score(model, maps, owner, labels, split["test"], args.metric)
    return {"test_items": sorted(fold["test"]), "frozen": frozen, "fine_tuned": tuned,
            "frozen_epochs": frozen_epochs, "fine_tune_epochs": tuned_epochs,
            "frozen_seconds": round(frozen_seconds, 1),
            "fine_tune_seconds": round(time.perf_counter() - started, 1)}


def _check_rebuild(maps: np.ndarray, embeddings: np.ndarray) -> float:
    """Largest difference between the Keras fourth block and the torch one."""
    import keras

    inputs = keras.Input((12, 12, 256))
    pooled, layers = _last_block(inputs)
    probe = keras.Model(inputs, pooled)
    _set_weights(layers)
    out = probe.predict(maps[:16], verbose=0)
    return float(np.abs(out - embeddings[:16]).max())


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.encoders import item_folds, probe_folds
    from xval.report.stats import corrected_resampled_ttest

    rows = _rows(args)
    started = time.perf_counter()
    maps, embeddings, owner = _maps(rows)
    extraction = time.perf_counter() - started
    gap = _check_rebuild(maps, embeddings)
    if gap > 1e-3:
        raise SystemExit(f"the Keras fourth block differs from aisfx's by {gap}")
    classes = sorted(rows["label"].astype(str).unique())
    labels = rows["label"].astype(str).map({c: k for k, c in enumerate(classes)}).to_numpy()
    items = rows["item"].astype(str).to_numpy()
    folds = item_folds(items, rows["label"].to_numpy(), args.folds)
    clips = pd.DataFrame({
        "clip": rows.index, "item": items, "label": rows["label"].astype(str),
        "x": [np.concatenate([embeddings[owner == k].mean(0), embeddings[owner == k].max(0)])
              for k in range(len(rows))]})
    probe = probe_folds(clips, folds, args.metric)
    out = []
    for k, fold in enumerate(folds):
        scores = fold_scores(maps, embeddings, owner, labels, items, fold, args)
        scores["probe"] = probe[k]["score"]
        print(json.dumps(scores), flush=True)
        out.append(scores)
    n_test = np.mean([np.isin(items, f["test"]).sum() for f in folds])
    n_train = np.mean([np.isin(items, f["train"] + f["val"]).sum() for f in folds])
    summary: dict[str, Any] = {"files": len(rows), "blocks": len(maps),
                               "extraction_seconds": round(extraction, 1),
                               "keras_block_max_difference": gap}
    for arm in ("probe", "frozen", "fine_tuned"):
        values = [f[arm] for f in out]
        summary[arm] = f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    for base in ("probe", "frozen"):
        test = corrected_resampled_ttest([f["fine_tuned"] for f in out],
                                         [f[base] for f in out], n_test / n_train)
        summary[f"fine_tuned_minus_{base}"] = {
            "mean": round(float(test.mean_difference), 4), "t": round(float(test.t), 3),
            "p": round(float(test.p), 4),
            "ci": [round(float(test.ci_low), 4), round(float(test.ci_high), 4)]}
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", choices=("fsdd", "manifest"))
    p.add_argument("manifest", nargs="?", help="manifest: the CSV (path,label,item,clip)")
    p.add_argument("--files-per-speaker", type=int, default=50,
                   help="fsdd: N files of each speaker (0: all 500)")
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--metric", choices=("accuracy", "uar"), default="accuracy")
    p.add_argument("--epochs", type=int, default=60, help="most epochs of the frozen stage")
    p.add_argument("--fine-tune-epochs", type=int, default=10)
    p.add_argument("--fine-tune-lr", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.dataset == "manifest" and not args.manifest:
        p.error("manifest: give the CSV")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
