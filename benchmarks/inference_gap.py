"""Inference gap: why a saved model scores worse in inference mode than its training curve.

Trains demo experiment instance 1 (`example_cnn`, 20 epochs, patience 4, batch 32) on one
fold of the built-in demo dataset, several ways, and prints for each: the fit-time training
accuracy (Keras' running figure at the best epoch), then the accuracy on the training rows
and on the test rows in inference mode (BatchNormalization uses its moving statistics) and
with batch statistics (BatchNormalization normalises each shuffled batch of 32 by itself,
dropout off). It also prints how far the moving statistics are from the true statistics of
the training rows, and whether restoring the best weights restored the moving statistics of
the best epoch.

Options measured:
  plain             BN momentum 0.99 (Keras' default, the builders' before the fix), best
                    weights restored; checks the moving statistics after the restore are
                    those of the best epoch
  no-early-stop     `plain` with patience = epochs: more steps for the moving averages
  momentum-0.9      BN momentum 0.9 instead of 0.99
  per-clip-mean     each row minus its own mean over time (per frequency) before the model:
                    removes a per-speaker spectral offset using the input row alone
  engine            `xval.training.run_fold` as it is now (the architecture's own default
                    `bn_momentum`); the saved model is reloaded

    python -m benchmarks.inference_gap [--backend torch|tensorflow] [--fold 3] [--options ...]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

OPTIONS = ("plain", "no-early-stop", "momentum-0.9", "per-clip-mean", "engine")


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--data-dir", help="folder holding the demo store (built if missing)")
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    os.environ["KERAS_BACKEND"] = ARGS.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks._common import ROOT  # noqa: E402
from xval.config.params import PLAIN_TRAINING  # noqa: E402

# Plain training, as measured for the README (mixup and masks change fit-time accuracy).
INSTANCE = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "lr 1e-3",
            "comment_2": "baseline", "learning_rate": 0.001, **PLAIN_TRAINING}


def _bn_layers(model):
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _bn_layers(layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
    return found


def _accuracy(model, x, y, batch_stats, seed=0):
    """Accuracy in inference mode, or with BN batch statistics (shuffled batches of 32)."""
    import keras

    if not batch_stats:
        return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(1) == y))
    saved = model.get_weights()  # a training-mode call moves the moving statistics
    dropouts = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.Dropout)]
    rates = [d.rate for d in dropouts]
    for d in dropouts:
        d.rate = 0.0
    order = np.random.default_rng(seed).permutation(len(x))
    pred = np.empty(len(x), dtype=int)
    for start in range(0, len(x), 32):
        pick = order[start:start + 32]
        out = keras.ops.convert_to_numpy(model(x[pick], training=True))
        pred[pick] = out.argmax(1)
    for d, r in zip(dropouts, rates):
        d.rate = r
    model.set_weights(saved)
    return float(np.mean(pred == y))


def _all_layers(model):
    import keras

    out = []
    for layer in model.layers:
        out += _all_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return out


def _true_stats_gap(model, x):
    """Mean |moving - true| / true std of every BN layer's input over the training rows."""
    import keras

    gaps = []
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        return float("nan")
    base = inner[0]
    head = keras.Model(model.inputs, model.layers[model.layers.index(base) - 1].output)
    z = head.predict(x, batch_size=256, verbose=0)
    for bn in _bn_layers(base):
        probe = keras.Model(base.inputs, bn.input)
        a = probe.predict(z, batch_size=256, verbose=0).reshape(-1, bn.input.shape[-1])
        mean, std = a.mean(0), a.std(0) + 1e-6
        moving = keras.ops.convert_to_numpy(bn.moving_mean)
        moving_std = np.sqrt(keras.ops.convert_to_numpy(bn.moving_variance))
        gaps.append(float(np.mean(np.abs(moving - mean) / std)))
        gaps.append(float(np.mean(np.abs(moving_std / std - 1))))
    return gaps


def _train(option, store, rows, params, fold):
    """Trains one way; returns (model, x_train, y_train, x_test, y_test, fit_accuracy, note)."""
    import keras

    from xval.training.model import build_model
    from xval.training.normalization import normalization_stats

    x = {k: np.asarray(store.features[v], dtype=np.float32) for k, v in rows.items()}
    y = {k: store.targets[v] for k, v in rows.items()}
    if option == "per-clip-mean":
        x = {k: v - v.mean(axis=1, keepdims=True) for k, v in x.items()}
        mean = x["train"].reshape(-1, x["train"].shape[-1]).mean(0)
        variance = x["train"].reshape(-1, x["train"].shape[-1]).var(0)
    else:
        mean, variance = normalization_stats(store.features, rows["train"])
    keras.utils.set_random_seed(params["seed"] + fold)
    model = build_model(params, x["train"].shape[1:], len(store.classes), "classification",
                        mean, variance)
    for bn in _bn_layers(model):  # set here, so the options compare whatever the default
        bn.momentum = 0.9 if option == "momentum-0.9" else 0.99
    model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    patience = params["epochs"] if option == "no-early-stop" else params["patience"]
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                            restore_best_weights=True)
    snapshots = []

    class _Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([keras.ops.convert_to_numpy(bn.moving_mean).copy()
                              for bn in _bn_layers(self.model)])

    history = model.fit(x["train"], y["train"], validation_data=(x["val"], y["val"]),
                        epochs=params["epochs"], batch_size=params["batch_size"], shuffle=True,
                        callbacks=[stopper, _Snapshot()], verbose=0)
    losses = history.history["val_loss"]
    best = int(np.argmin(losses))
    steps = -(-len(x["train"]) // params["batch_size"]) * (best + 1)
    note = f"best epoch {best + 1}/{len(losses)}, {steps} steps to it"
    if option == "plain":
        now = [keras.ops.convert_to_numpy(bn.moving_mean) for bn in _bn_layers(model)]
        same = all(np.allclose(a, b) for a, b in zip(now, snapshots[best]))
        last = all(np.allclose(a, b) for a, b in zip(now, snapshots[-1]))
        note += (f"; moving means after restore == best epoch's: {same}, == last epoch's: "
                 f"{last}")
    fit_acc = history.history["accuracy"][best]
    return model, x, y, fit_acc, note


def _engine(store, rows, params, fold, items, store_dir):
    import keras

    from xval.core.records import Job
    from xval.training.fold import run_fold

    job = Job(instance=1, fold=fold, params=params, items=items,
              task_type="classification", generator=False, store=str(store_dir))
    result = run_fold(job)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.keras"
        path.write_bytes(result.model_bytes)
        model = keras.saving.load_model(path)
    x = {k: np.asarray(store.features[v], dtype=np.float32) for k, v in rows.items()}
    y = {k: store.targets[v] for k, v in rows.items()}
    best = result.best_epoch - 1
    note = f"best epoch {result.best_epoch}/{result.epochs_run}"
    return model, x, y, result.history["accuracy"][best], note


def main():
    import keras

    from preprocessing.demo import build_demo
    from preprocessing.store import FeatureStore
    from xval.config.loader import load_config
    from xval.config.params import resolve
    from xval.folds import ItemKFold
    from xval.training.batches import fold_rows

    config = load_config(ROOT / "config.ini")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(ARGS.data_dir) if ARGS.data_dir else Path(tmp) / "data"
        if (data_dir / "demo" / "dataset.json").is_file():
            store = FeatureStore(data_dir / "demo")
        else:
            store, _ = build_demo(data_dir, workers=1, progress=False)
        params = resolve(1, INSTANCE, training_defaults=config.training,
                         experiment_params={"epochs": ARGS.epochs, "patience": ARGS.patience,
                                            "batch_size": 32})
        splitter = ItemKFold(4, val_fraction=config.folds["val_fraction"],
                             stratify=config.folds["stratify"],
                             random_state=config.folds["fold_seed"])
        labels = store.meta["label"].to_numpy(str)
        items = splitter.split_items(store.items, labels)[ARGS.fold]
        rows = fold_rows(store, items)
        print(f"backend {keras.backend.backend()}, keras {keras.__version__}, demo fold "
              f"{ARGS.fold}: {len(rows['train'])} train / {len(rows['val'])} val / "
              f"{len(rows['test'])} test rows, test items {items['test']}")
        print(f"{'option':<15} {'fit':>5} | {'train inf':>9} {'train bat':>9} | "
              f"{'test inf':>8} {'test bat':>8} | moving vs true stats | note")
        for option in ARGS.options:
            if option == "engine":
                model, x, y, fit_acc, note = _engine(store, rows, params, ARGS.fold, items,
                                                     data_dir / "demo")
            else:
                model, x, y, fit_acc, note = _train(option, store, rows, params, ARGS.fold)
            gaps = _true_stats_gap(model, x["train"])
            gap_text = " ".join(f"{g:.2f}" for g in gaps[:4])
            print(f"{option:<15} {fit_acc:5.3f} | "
                  f"{_accuracy(model, x['train'], y['train'], False):9.3f} "
                  f"{_accuracy(model, x['train'], y['train'], True):9.3f} | "
                  f"{_accuracy(model, x['test'], y['test'], False):8.3f} "
                  f"{_accuracy(model, x['test'], y['test'], True):8.3f} | "
                  f"{gap_text:<20} | {note}", flush=True)
            keras.backend.clear_session()
    print("moving vs true stats: per BN layer, mean |moving mean - true mean| / true std, "
          "then mean |moving std / true std - 1| (0 = exact)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
