"""One job: train and evaluate one (instance, fold). Imports Keras: call after setup."""

import os
import time
import traceback
from pathlib import Path

import numpy as np

from xval import metrics as M
from xval.data import balanced_weights, fold_rows, make_batches, normalization_stats
from xval.errors import TrainingError
from xval.params import metric_direction

_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}


def _reshape_layer(reshaping_type, shape):
    from keras import layers

    if reshaping_type == "conv":
        return layers.Reshape((*shape, 1), name="to_image"), (*shape, 1)
    if reshaping_type == "none":
        return layers.Flatten(name="flatten_features"), (int(np.prod(shape)),)
    return None, tuple(shape)


def _backbone(model):
    """The nested model holding the architecture inside a wrapper model."""
    import keras

    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner[0] if len(inner) == 1 else None


def build_model(params, input_shape, num_outputs, task_type, mean, variance):
    """Builds the fold's model: normalisation and reshaping, then the architecture.

    The normalisation statistics (from the fold's training rows) live in the model, so a
    saved model takes raw features `(time, frequency)` and predicts on its own.

    Args:
        params: resolved instance parameters.
        input_shape: `(time, frequency)` of one row.
        num_outputs: classes (or regression targets).
        task_type: `"classification"` or `"regression"`.
        mean: per-frequency mean, `np.ndarray [shape=(frequency,)]`.
        variance: per-frequency variance, same shape.

    Returns:
        A `keras.Model` from `(time, frequency)` features to logits (or values).
    """
    import keras
    from keras import layers

    import architectures

    inputs = keras.Input(tuple(input_shape), name="features")
    x = layers.Normalization(axis=-1, mean=mean, variance=variance, name="normalization")(inputs)
    reshape, shape = _reshape_layer(params["reshaping_type"], input_shape)
    if reshape is not None:
        x = reshape(x)
    if params["load_model"]:
        base = _transfer_backbone(params, num_outputs, task_type)
    else:
        builder = architectures.get(params["architecture"])
        kwargs = {k: params[k] for k in architectures.keyword_defaults(params["architecture"])}
        base = builder(shape, num_outputs, task_type, **kwargs)
    return keras.Model(inputs, base(x), name=f"xval_{params['architecture']}")


def _transfer_backbone(params, num_outputs, task_type):
    """The backbone of a saved model, its head replaced when the outputs differ, frozen."""
    import keras
    from keras import layers

    from architectures.common import output_head

    path = Path(params["load_model"])
    if not path.is_file():
        raise TrainingError(f"load_model={str(path)!r}: no such .keras file.")
    saved = keras.saving.load_model(path, compile=False, safe_mode=True)
    base = _backbone(saved) or saved
    if base.outputs[0].shape[-1] != num_outputs:
        head = base.layers[-1]
        if not isinstance(head, layers.Dense):
            raise TrainingError(
                f"Cannot replace the head of {path.name}: its last layer is "
                f"{type(head).__name__}, not Dense."
            )
        features = head.input
        base = keras.Model(base.inputs, output_head(features, num_outputs, task_type),
                           name=f"{base.name}_transfer")
    freeze = params["freeze_layers"]
    body = [layer for layer in base.layers if not isinstance(layer, layers.InputLayer)]
    if freeze == -1:
        for layer in body:
            if isinstance(layer, (layers.Conv1D, layers.Conv2D)):
                layer.trainable = False
    elif freeze > len(body):
        raise TrainingError(
            f"freeze_layers={freeze} but {path.name} has {len(body)} layers; use at most "
            f"{len(body)}."
        )
    else:
        for layer in body[:freeze]:
            layer.trainable = False
    return base


def _optimizer(params, steps_per_epoch):
    import keras

    lr = params["learning_rate"]
    if params["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, params["epochs"] * steps_per_epoch)
        )
    cls = getattr(keras.optimizers, _OPTIMIZERS[params["optimizer"]])
    kwargs = {"momentum": 0.9} if params["optimizer"] == "sgd" else {}
    return cls(learning_rate=lr, **kwargs)


def _predict(model, features, rows, batch_size):
    batches = make_batches(features, rows, np.zeros(len(rows)), batch_size=batch_size,
                           shuffle=False)
    outputs = [np.asarray(model.predict_on_batch(batches[i][0]), dtype=np.float64)
               for i in range(len(batches))]
    return np.concatenate(outputs) if outputs else np.zeros((0, 1))


def run_fold(job):
    """Trains and evaluates one (instance, fold).

    Args:
        job: dict with `store` (path), `params`, `fold` (index), `items`
            (`{"train", "val", "test"}`), `task_type`, `generator`, `model_path`,
            `instance`, and optionally `log_dir` and `predictions_path`.

    Returns:
        The fold result: a JSON-serialisable dict (status, metrics, history, timings...).
    """
    import keras

    from preprocessing.store import FeatureStore

    t_start = time.perf_counter()
    params = job["params"]
    fold = job["fold"]
    task_type = job["task_type"]
    store = FeatureStore(job["store"])
    rows = fold_rows(store, job["items"])
    for key, value in rows.items():
        if len(value) == 0:
            raise TrainingError(f"Fold {fold} has no {key} rows.")
    targets = store.targets
    n_outputs = len(store.classes) if task_type == "classification" else 1
    seed = params["seed"] + fold
    keras.utils.set_random_seed(seed)
    if params["mixed_precision"]:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        train_original = rows["train"][~store.augmented[rows["train"]]]
        mean, variance = normalization_stats(store.features, train_original)
        model = build_model(params, store.features.shape[1:], n_outputs, task_type, mean,
                            variance)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    if job["generator"]:
        source = {k: (store.features, v) for k, v in rows.items()}
    else:
        source = {k: (np.asarray(store.features[v], dtype=np.float32), np.arange(len(v)))
                  for k, v in rows.items()}
    weights = None
    if params["class_weights"]:
        weights = balanced_weights(targets[rows["train"]])
    batch_size = params["batch_size"]
    workers = params["generator_workers"] if job["generator"] else 0
    train_data = make_batches(*source["train"], targets[rows["train"]], batch_size=batch_size,
                              shuffle=True, seed=seed, weights=weights, workers=workers)
    val_data = make_batches(*source["val"], targets[rows["val"]], batch_size=batch_size,
                            shuffle=False, workers=workers)
    if task_type == "classification":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        compiled_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        loss = "mse"
        compiled_metrics = [keras.metrics.RootMeanSquaredError(name="rmse"),
                            keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(optimizer=_optimizer(params, len(train_data)), loss=loss,
                  metrics=compiled_metrics)
    monitor = params["save_model_metric"]
    mode = metric_direction(monitor, params["save_model_mode"])
    model_path = Path(job["model_path"])
    model_path.parent.mkdir(parents=True, exist_ok=True)
    partial = model_path.with_name(model_path.stem + ".partial.keras")
    # EarlyStopping keeps the best epoch's weights in memory and restores them when
    # training ends (Keras 3 restores even when no early stop happened); the best model is
    # then saved once, atomically. A ModelCheckpoint would write a .keras file at every
    # improving epoch, which costs more than the training of a small model.
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                            patience=params["patience"],
                                            restore_best_weights=True)
    callbacks = [stopper]
    if params["lr_schedule"] == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=0.5, patience=max(1, params["patience"] // 2)))
    if params["tensorboard"] and job.get("log_dir"):
        callbacks.append(keras.callbacks.TensorBoard(log_dir=job["log_dir"]))
    t_fit = time.perf_counter()
    history = model.fit(train_data, validation_data=val_data, epochs=params["epochs"],
                        callbacks=callbacks, verbose=params["verbose"])
    fit_seconds = time.perf_counter() - t_fit
    hist = {k: [float(v) for v in values] for k, values in history.history.items()}
    curve = np.asarray(hist[monitor], dtype=float)
    if not np.isfinite(curve).any():
        raise TrainingError(
            f"Fold {fold}: no epoch produced a finite {monitor}, so there is no best model "
            "(training diverged?). Try a lower learning_rate."
        )
    curve = np.where(np.isfinite(curve), curve, np.inf if mode == "min" else -np.inf)
    best_epoch = int(np.argmin(curve) if mode == "min" else np.argmax(curve)) + 1
    model.save(partial)
    os.replace(partial, model_path)
    t_eval = time.perf_counter()
    best = model  # the best epoch's weights, restored by EarlyStopping and saved above
    outputs, result_metrics, clip_metrics = {}, {}, {}
    clips = store.clips
    multi_segment = len(np.unique(clips[rows["test"]])) < len(rows["test"])
    for key in ("train", "val", "test"):
        outputs[key] = _predict(best, *source[key], max(batch_size, 1024))
        y = targets[rows[key]]
        result_metrics[key] = M.compute(task_type, y, outputs[key], n_outputs)
        if multi_segment:
            _, clip_out, clip_y = M.pool_by_clip(outputs[key], y, clips[rows[key]])
            clip_metrics[key] = M.compute(task_type, clip_y, clip_out, n_outputs)
    eval_seconds = time.perf_counter() - t_eval
    if job.get("predictions_path"):
        _write_predictions(job["predictions_path"], store, rows["test"], outputs["test"],
                           task_type)
    keras.backend.clear_session()
    return {
        "instance": job["instance"],
        "fold": fold,
        "status": "ok",
        "message": "",
        "metrics": result_metrics,
        "clip_metrics": clip_metrics or None,
        "history": hist,
        "best_epoch": best_epoch,
        "epochs_run": len(curve),
        "monitor": monitor,
        "monitor_mode": mode,
        "timings": {"fit_seconds": round(fit_seconds, 3), "eval_seconds": round(eval_seconds, 3),
                    "total_seconds": round(time.perf_counter() - t_start, 3)},
        "items": job["items"],
        "n_rows": {**{k: int(len(v)) for k, v in rows.items()},
                   "train_original": int(len(train_original))},
        "classes": store.classes,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "params_hash": job.get("params_hash"),
        "pid": os.getpid(),
    }


def _write_predictions(path, store, rows, outputs, task_type):
    import pandas as pd

    from xval.results import atomic_write_text

    meta = store.meta.iloc[rows]
    table = pd.DataFrame({"row": rows, "item": meta["item"].to_numpy(),
                          "clip": meta["clip"].to_numpy(), "label": meta["label"].to_numpy(),
                          "target": meta["target"].to_numpy()})
    if task_type == "classification":
        probs = M.softmax(outputs)
        table["predicted"] = [store.classes[i] for i in probs.argmax(axis=1)]
        for i, name in enumerate(store.classes):
            table[f"p_{name}"] = probs[:, i].round(6)
    else:
        table["predicted"] = outputs.ravel()
    atomic_write_text(path, table.to_csv(index=False))


def failed_result(job, error):
    """The fold result of a job that raised `error`."""
    return {
        "instance": job["instance"],
        "fold": job["fold"],
        "status": "failed",
        "message": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error)),
        "items": job["items"],
        "params_hash": job.get("params_hash"),
    }
