"""One job: train and evaluate one (instance, fold). Imports Keras: call after setup."""

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xval import tasks
from xval.config import embedding
from xval.config.selection import metric_direction
from xval.core.errors import TrainingError
from xval.core.interrupts import interrupt_check
from xval.tasks.base import with_context
from xval.training import embeddings
from xval.training.batches import fold_rows, make_batches, normalization_stats

_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}


def _reshape_layer(reshaping_type, shape):
    from keras import layers

    if reshaping_type == "conv":
        return layers.Reshape((*shape, 1), name="to_image"), (*shape, 1)
    if reshaping_type == "none":
        return layers.Flatten(name="flatten_features"), (int(np.prod(shape)),)
    return None, tuple(shape)


def store_frequencies(store, params):
    """The centre frequency of every feature bin of `store` when `params` warp frequencies
    (`freq_warp`), else `None` (also for a store without recorded feature parameters)."""
    feature_params = store.info.get("feature_params")
    if not params.get("freq_warp", 0.0) or not feature_params:
        return None
    from preprocessing.features import bin_frequencies

    freqs = bin_frequencies(feature_params)
    if freqs is None or len(freqs) != store.features.shape[-1]:
        return None
    return freqs


def build_model(params, input_shape, num_outputs, task_type, mean, variance,
                frequencies=None):
    """Builds the fold's model: normalisation and reshaping, then the architecture.

    The normalisation statistics (from the fold's training rows) live in the model, so a
    saved model takes raw features `(time, frequency)` and predicts on its own.

    Args:
        params: resolved instance parameters.
        input_shape: `(time, frequency)` of one row.
        num_outputs: units of the output head (`Task.num_outputs`).
        task_type: the task's name (see `xval.tasks`).
        mean: per-frequency mean, `np.ndarray [shape=(frequency,)]`.
        variance: per-frequency variance, same shape.
        frequencies: centre frequency (Hz) of every bin, for `freq_warp`
            (`preprocessing.features.bin_frequencies`); `None`: evenly spaced bins.

    Returns:
        A `keras.Model` from `(time, frequency)` features to logits (or values).
    """
    import keras
    from keras import layers

    import architectures

    inputs = keras.Input(tuple(input_shape), name="features")
    x = inputs
    if params.get("freq_warp", 0.0):
        # On the raw features, before the per-bin normalisation: the stretch moves content
        # between bins, and each bin is then normalised with its own statistics as usual.
        x = architectures.FrequencyWarp(max_warp=params["freq_warp"], frequencies=frequencies,
                                        name="freq_warp")(x)
    if params.get("time_warp", 0.0):
        x = architectures.TimeWarp(max_warp=params["time_warp"], name="time_warp")(x)
    x = layers.Normalization(axis=-1, mean=mean, variance=variance, name="normalization")(x)
    if params.get("row_normalization", "none") != "none":
        # After the dataset normalisation (a per-bin affine map, which this undoes exactly),
        # so the statistics of the first layer stay those of the raw features.
        x = architectures.RowNormalization(mode=params["row_normalization"],
                                           ignore_floor_frames=True,
                                           name="row_normalization")(x)
    if params.get("time_masks", 0) or params.get("freq_masks", 0):
        x = architectures.SpecAugment(
            time_masks=params["time_masks"], time_mask_fraction=params["time_mask_fraction"],
            freq_masks=params["freq_masks"], freq_mask_fraction=params["freq_mask_fraction"],
            name="spec_augment")(x)
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

    from xval.core.errors import ConfigurationError
    from xval.training.loading import inner_model, load

    path = Path(params["load_model"])
    try:
        saved = load(path, what="load_model")
    except ConfigurationError as e:
        raise TrainingError(str(e)) from e
    base = inner_model(saved) or saved
    if base.outputs[0].shape[-1] != num_outputs:
        head = base.layers[-1]
        if not isinstance(head, layers.Dense):
            raise TrainingError(
                f"Cannot replace the head of {path.name}: its last layer is "
                f"{type(head).__name__}, not Dense."
            )
        features = head.input
        base = keras.Model(base.inputs, tasks.get(task_type).output_head(features, num_outputs),
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
    """The optimizer, with the learning-rate schedule and warm-up of `params`."""
    import keras

    lr = params["learning_rate"]
    warmup = params.get("warmup_epochs", 0) * steps_per_epoch
    decay = max(1, params["epochs"] * steps_per_epoch - warmup)
    if params["lr_schedule"] == "cosine" and warmup:
        lr = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=decay, warmup_target=lr,
                                                    warmup_steps=warmup)
    elif params["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=decay)
    elif warmup:  # constant after the warm-up: a cosine "decay" to alpha = 1
        lr = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=1, alpha=1.0,
                                                    warmup_target=lr, warmup_steps=warmup)
    cls = getattr(keras.optimizers, _OPTIMIZERS[params["optimizer"]])
    kwargs = {"momentum": 0.9} if params["optimizer"] == "sgd" else {}
    return cls(learning_rate=lr, **kwargs)


def _predict(model, features, rows, batch_size):
    batches = make_batches(features, rows, np.zeros(len(rows)), batch_size=batch_size,
                           shuffle=False)
    outputs = [np.asarray(model.predict_on_batch(batches[i][0]), dtype=np.float64)
               for i in range(len(batches))]
    return np.concatenate(outputs) if outputs else np.zeros((0, 1))


def _device():
    """Where this process trains: `"cpu"`, or the GPUs it sees (e.g. `"cuda:0 (NVIDIA H100)"`)."""
    import keras

    backend = keras.backend.backend()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return ", ".join(f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                                 for i in range(torch.cuda.device_count()))
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            if gpus:
                return ", ".join(g.name for g in gpus)
        elif backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if gpus:
                return ", ".join(str(d) for d in gpus)
    except Exception:  # a device query must never fail a fold  # noqa: BLE001
        pass
    return "cpu" if not visible else f"cpu (CUDA_VISIBLE_DEVICES={visible} not usable)"


def _check_finite(fold, outputs, result_metrics):
    """Raises TrainingError when any split's outputs or loss are not finite."""
    for key, out in outputs.items():
        bad = int(np.size(out) - np.isfinite(out).sum())
        if bad:
            raise TrainingError(
                f"Fold {fold}: the best model gives {bad} non-finite output value(s) on the "
                f"{key} rows (training diverged). Lower learning_rate, or use "
                "lr_schedule='plateau' or a different optimizer."
            )
        loss = result_metrics[key].get("loss")
        if loss is None or not np.isfinite(loss):
            raise TrainingError(
                f"Fold {fold}: the best model's {key} loss is {loss} (training diverged). "
                "Lower learning_rate, or use a different optimizer."
            )


def _epoch_callback(on_epoch, epochs):
    import keras

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            on_epoch(epoch + 1, epochs, {k: float(v) for k, v in (logs or {}).items()})

    return _Progress()


def run_fold(job, on_epoch=None):
    """Trains and evaluates one (instance, fold).

    With `refit_with_val`, the fold trains twice: the first model picks the best epoch on
    the validation items (its training and validation scores are the fold's), then a fresh
    model trains on the training plus validation items for that many epochs; its test
    scores, predictions and `.keras` file are the fold's.

    Args:
        job: a `xval.jobs.Job` (or its dict form).
        on_epoch: optional `(epoch, epochs, logs) -> None`, called after every epoch (for
            progress display).

    Returns:
        A `xval.jobs.FoldResult` with status `ok`, the metrics of every split, the history,
        timings, and the best model's `.keras` bytes and test predictions (written by the
        recorder, not here); with `refit_with_val`, the second model's, and its epochs,
        rows, training scores and history in `refit`.

    Raises:
        TrainingError: when a fold set has no rows, or the trained model's outputs or loss
            are not finite on some split (training diverged). Other exceptions of the
            framework pass through; executors turn them into failed results.
    """
    from xval.core.records import Job

    if isinstance(job, dict):
        job = Job.from_dict(job)
    result = _train_and_evaluate(job, on_epoch)
    if job.refit_epochs is None and job.params.get("refit_with_val"):
        result = _refit_with_val(job, result, on_epoch)
    return result


def _refit_with_val(job, result, on_epoch):
    """`result` with the test scores, predictions and model of a fresh model trained on the
    fold's training plus validation items for `result.best_epoch` epochs."""
    import dataclasses

    items = {"train": [*job.items["train"], *job.items["val"]], "val": [],
             "test": list(job.items["test"])}
    log_dir = str(Path(job.log_dir) / "refit") if job.log_dir else None
    second = _train_and_evaluate(dataclasses.replace(
        job, items=items, refit_epochs=result.best_epoch, log_dir=log_dir), on_epoch)
    result.metrics["test"] = second.metrics["test"]
    if second.clip_metrics and "test" in second.clip_metrics:
        result.clip_metrics["test"] = second.clip_metrics["test"]
    result.model_bytes = second.model_bytes
    result.predictions_csv = second.predictions_csv
    result.plot_data = second.plot_data
    result.refit = {"epochs": second.epochs_run, "n_items": len(items["train"]),
                    "rows": second.n_rows["train"],
                    "train_original": second.n_rows["train_original"],
                    "train": second.metrics["train"], "history": second.history,
                    "timings": second.timings}
    result.timings = {k: round(v + second.timings.get(k, 0.0), 3)
                      for k, v in result.timings.items()}
    return result


def _train_and_evaluate(job, on_epoch=None):
    """`run_fold` without `refit_with_val`: one model, trained and evaluated."""
    import tempfile

    import keras

    from preprocessing.store import FeatureStore
    from xval.core.records import FoldResult, Status

    t_start = time.perf_counter()
    params = job.params
    # A refit trains on every item of items["train"] for fixed epochs, without validation:
    # the final model of an instance (no test items), or a fold's refit_with_val model.
    refit = job.refit_epochs is not None
    if refit:
        params = {**params, "epochs": int(job.refit_epochs)}
    splits = (("train", "test") if job.items.get("test") else ("train",)) if refit \
        else ("train", "val", "test")
    fold = job.fold
    task_type = job.task_type
    task = tasks.get(task_type)
    store = FeatureStore(job.store)
    if job.store_hash and store.content_hash != job.store_hash:
        raise TrainingError(
            f"The store at {job.store} has content hash {store.content_hash[:12]}, but the "
            f"job was planned on {job.store_hash[:12]}: the dataset changed under the run."
        )
    rows = fold_rows(store, job.items)
    for key, value in rows.items():
        if len(value) == 0 and key in splits:
            raise TrainingError(f"Fold {fold} has no {key} rows.")
    targets = store.targets
    n_outputs = task.num_outputs(store)
    seed = params["seed"] + fold
    keras.utils.set_random_seed(seed)
    # Augmented copies train and do nothing else: statistics and scores use the originals.
    original_train = ~store.augmented[rows["train"]]
    train_original = rows["train"][original_train]
    if params["mixed_precision"]:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        mean, variance = normalization_stats(store.features, train_original)
        model = build_model(params, store.features.shape[1:], n_outputs, task_type, mean,
                            variance, frequencies=store_frequencies(store, params))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    if job.generator:
        source = {k: (store.features, v) for k, v in rows.items()}
    else:
        source = {k: (np.asarray(store.features[v], dtype=np.float32), np.arange(len(v)))
                  for k, v in rows.items()}
    # class_weights: balanced sample weights (classification) or a weighted loss
    # (detection), from the fold's training rows only.
    train_y = targets[rows["train"]]
    weights = task.sample_weights(train_y, params)
    batch_size = params["batch_size"]
    workers = params["generator_workers"] if job.generator else 0
    mixup = params.get("mixup_alpha", 0.0)
    # Mixup and label smoothing need soft targets (the task makes them one-hot).
    fit_targets = {k: task.keras_targets(targets[v], params, n_outputs) for k, v in rows.items()}
    # An autoencoder's target is its own input, normalised with the fold's statistics.
    target_fn = _normalizer(mean, variance) if getattr(task, "reconstructs", False) else None
    train_data = make_batches(*source["train"], fit_targets["train"], batch_size=batch_size,
                              shuffle=True, seed=seed, weights=weights, workers=workers,
                              mixup_alpha=mixup, target_fn=target_fn)
    val_data = None if refit else make_batches(*source["val"], fit_targets["val"],
                                               batch_size=batch_size, shuffle=False,
                                               workers=workers, target_fn=target_fn)
    model.compile(optimizer=_optimizer(params, len(train_data)),
                  loss=with_context(task.loss, params, train_targets=train_y),
                  metrics=task.keras_metrics(params))
    monitor = params["save_model_metric"]
    mode = metric_direction(monitor, params["save_model_mode"])
    # EarlyStopping keeps the best epoch's weights in memory and restores them when
    # training ends (Keras 3 restores even when no early stop happened, and when another
    # callback stopped training); the best model is then saved once. A ModelCheckpoint
    # would write a .keras file at every improving epoch, which costs more than the
    # training of a small model. TerminateOnNaN stops a diverged run at once.
    # min_epochs: neither stopping nor the best-epoch choice looks at the first epochs,
    # whose weights are still far from trained (a lucky early validation score would
    # otherwise end training and keep an untrained model).
    min_epochs = 0 if refit else params.get("min_epochs", 0)
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                            patience=params["patience"],
                                            restore_best_weights=True,
                                            start_from_epoch=min_epochs)
    callbacks = [keras.callbacks.TerminateOnNaN(), interrupt_check()]
    if refit:  # no validation rows: no early stopping, no best-epoch restore
        monitor, mode = "loss", "min"
    else:
        callbacks.insert(0, stopper)
    if on_epoch is not None:
        callbacks.append(_epoch_callback(on_epoch, params["epochs"]))
    if params["lr_schedule"] == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=0.5, patience=max(1, params["patience"] // 2)))
    if params["tensorboard"] and job.log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=job.log_dir))
    # The embedding sources are loaded and checked before the network trains (a missing
    # model, a leak or an unknown layer costs no training).
    prepared = embeddings.prepare(params, model, store, job.items, fold) \
        if embedding.enabled(params) and not refit else None
    t_fit = time.perf_counter()
    history = model.fit(train_data, validation_data=val_data, epochs=params["epochs"],
                        callbacks=callbacks, verbose=params["verbose"])
    fit_seconds = time.perf_counter() - t_fit
    hist = {k: [float(v) for v in values] for k, values in history.history.items()}
    curve = np.asarray(hist.get(monitor, []), dtype=float)
    if not np.isfinite(curve).any():
        raise TrainingError(
            f"Fold {fold}: no epoch produced a finite {monitor}, so there is no best model "
            "(training diverged). Lower learning_rate."
        )
    curve = np.where(np.isfinite(curve), curve, np.inf if mode == "min" else -np.inf)
    start = min(min_epochs, len(curve) - 1)  # EarlyStopping's start_from_epoch
    later = curve[start:]
    best_epoch = start + int(np.argmin(later) if mode == "min" else np.argmax(later)) + 1
    if refit:
        best_epoch = len(curve)  # the model of the last epoch is the one kept
    t_eval = time.perf_counter()
    best = model  # the best epoch's weights, restored by EarlyStopping
    outputs, result_metrics, clip_metrics = {}, {}, {}
    clips = store.clips
    # Clip metrics for every fold of a store whose files were cut into segments (a fold whose
    # clips all have one segment gets the same numbers at both levels), so that clip-level
    # means and paired tests cover all folds.
    original = ~store.augmented
    multi_segment = len(np.unique(clips[original])) < int(original.sum())
    starts = (pd.to_numeric(store.meta["start"], errors="coerce").to_numpy(np.float64)
              if "start" in store.meta else None)  # windows' places in their recordings
    context = {"params": params, "frame_seconds": _frame_seconds(store),
               "classes": store.classes}
    if target_fn is not None:  # the baseline: the mean normalised training row
        context["reference"] = target_fn(_mean_row(store.features, train_original))
    scored = {**rows, "train": train_original}
    scored_source = {**source,
                     "train": (source["train"][0], source["train"][1][original_train])}
    for key in splits:
        outputs[key] = _predict(best, *scored_source[key], max(batch_size, 1024))
        y = targets[scored[key]]
        if target_fn is not None:
            y = target_fn(np.asarray(store.features[scored[key]], dtype=np.float32))
            if key == "test":
                context["targets"] = y
        if np.isfinite(outputs[key]).all():
            result_metrics[key] = with_context(task.evaluate, y, outputs[key], n_outputs,
                                               **context)
        else:
            result_metrics[key] = {"loss": float("nan")}
        pooled = None
        if multi_segment and np.isfinite(outputs[key]).all():
            pooled = with_context(task.pool_by_clip, outputs[key], y, clips[scored[key]],
                                  starts=None if starts is None else starts[scored[key]],
                                  frame_seconds=context["frame_seconds"])
        if pooled is not None:
            _, clip_out, clip_y = pooled
            clip_metrics[key] = with_context(task.evaluate, clip_y, clip_out, n_outputs,
                                             **context)
    _check_finite(fold, outputs, result_metrics)
    classifier_bytes = classifier_info = None
    if embedding.enabled(params) and not refit:
        classifier_bytes, classifier_info = _embedding_classifier(
            params, prepared, store, rows, fold, seed, result_metrics, clip_metrics,
            multi_segment)
    eval_seconds = time.perf_counter() - t_eval
    with tempfile.TemporaryDirectory(prefix="xval-model-") as tmp:
        path = Path(tmp) / f"fold_{fold}.keras"
        model.save(path)
        model_bytes = path.read_bytes()
    predictions = None if "test" not in splits else _predictions_csv(
        store, rows["test"], outputs["test"], task_type, params, context.get("targets"))
    plot_data = None if "test" not in splits else with_context(
        task.fold_plot_data, targets[rows["test"]], outputs["test"],
        store.meta.iloc[rows["test"]], **context)
    backend = keras.backend.backend()
    keras.backend.clear_session()
    import socket

    return FoldResult(
        instance=job.instance, fold=fold, status=Status.OK, items=job.items,
        params_hash=job.params_hash, task_type=task_type, metrics=result_metrics,
        clip_metrics=clip_metrics or None,
        history=hist, best_epoch=best_epoch, epochs_run=len(curve), monitor=monitor,
        monitor_mode=mode,
        timings={"fit_seconds": round(fit_seconds, 3), "eval_seconds": round(eval_seconds, 3),
                 "total_seconds": round(time.perf_counter() - t_start, 3)},
        n_rows={**{k: int(len(v)) for k, v in rows.items()},
                "train_original": int(len(train_original))},
        classes=store.classes, backend=backend, keras_version=keras.__version__,
        device=_device(), host=socket.gethostname(), pid=os.getpid(),
        model_bytes=model_bytes, predictions_csv=predictions, plot_data=plot_data,
        embedding_classifier=classifier_info, classifier_bytes=classifier_bytes,
    )


def _embedding_classifier(params, prepared, store, rows, fold, seed, result_metrics,
                          clip_metrics, multi_segment):
    """Fits the instance's embedding classifier (`xval.embeddings`) on the fold's training
    rows, chooses its `C` on the validation rows and adds its metrics, prefixed
    `embedding_`, to every split's segment (and clip) metrics.

    Returns:
        `(skops bytes, info dict)` of the fitted classifier.
    """
    from xval.config import embedding
    from xval.tasks.metrics import classification_metrics
    from xval.training import embeddings

    labels = store.meta["label"].astype(str).to_numpy()
    classes = store.classes or sorted(set(labels))
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels[np.concatenate(list(rows.values()))]) - set(index))
    if unknown:
        raise TrainingError(f"Fold {fold}: labels {', '.join(unknown[:5])} are not among the "
                            "store's classes; the embedding classifier cannot score them.")
    y = {k: np.array([index[v] for v in labels[r]], dtype=int) for k, r in rows.items()}
    layer = params.get("embedding_layer", "auto")
    x = {k: [] for k in rows}
    described = []
    for source, fn in prepared:
        for k, r in rows.items():
            parts = [fn(store.features[r[i:i + 4096]]) for i in range(0, len(r), 4096)]
            x[k].append(np.concatenate(parts) if parts else np.zeros((0, 0)))
        described.append({**source, "dims": int(x["train"][-1].shape[1])})
    x = {k: np.concatenate(v, axis=1) for k, v in x.items()}
    if not np.isfinite(x["train"]).all():
        raise TrainingError(f"Fold {fold}: the embeddings of the training rows are not finite; "
                            "the embedding classifier cannot be fit.")
    pipeline, info = embeddings.fit(params["embedding_classifier"], x["train"], y["train"],
                                    x["val"], y["val"], params.get("embedding_c"), seed)
    clips = store.clips
    classification = tasks.get(embedding.TASK)
    for key, r in rows.items():
        keep = ~store.augmented[r]  # scores on original rows only, as the network's
        r = r[keep]
        out = embeddings.scores(pipeline, x[key][keep])
        block = classification_metrics(y[key][keep], out, len(classes))
        block.pop("confusion_matrix")
        result_metrics.setdefault(key, {}).update(
            {f"{embedding.PREFIX}{n}": v for n, v in block.items()})
        if multi_segment:
            _, clip_out, clip_y = classification.pool_by_clip(out, y[key][keep], clips[r])
            block = classification_metrics(clip_y, clip_out, len(classes))
            block.pop("confusion_matrix")
            clip_metrics.setdefault(key, {}).update(
                {f"{embedding.PREFIX}{n}": v for n, v in block.items()})
    info = {"kind": params["embedding_classifier"], "layer": layer, "sources": described,
            "classes": classes, **info}
    return embeddings.dumps(pipeline), info


def _frame_seconds(store):
    """The feature hop in seconds, from the store's feature parameters (`None` if unknown)."""
    feature = store.info.get("feature_params") or {}
    if feature.get("hop_length") and feature.get("sample_rate"):
        return feature["hop_length"] / feature["sample_rate"]
    return None


def _normalizer(mean, variance):
    """`x -> (x - mean) / sqrt(variance)`, the model's own input normalisation, in numpy."""
    scale = (1.0 / np.sqrt(variance)).astype(np.float32)

    def normalize(x):
        return ((np.asarray(x, dtype=np.float32) - mean) * scale).astype(np.float32)

    return normalize


def _mean_row(features, rows, chunk=1024):
    """The mean of `features[rows]` over rows, read in chunks."""
    total = np.zeros(features.shape[1:], dtype=np.float64)
    for start in range(0, len(rows), chunk):
        total += np.asarray(features[rows[start:start + chunk]], dtype=np.float64).sum(axis=0)
    return (total / max(len(rows), 1)).astype(np.float32)


def _predictions_csv(store, rows, outputs, task_type, params=None, targets=None):
    """The test predictions as CSV text: row, item, clip, label, target, then the task's
    columns (`Task.prediction_columns`: predicted, scores)."""
    import pandas as pd

    meta = store.meta.iloc[rows]
    table = pd.DataFrame({"row": rows, "item": meta["item"].to_numpy(),
                          "clip": meta["clip"].to_numpy(), "label": meta["label"].to_numpy(),
                          "target": meta["target"].to_numpy()})
    columns = with_context(tasks.get(task_type).prediction_columns, outputs, store.classes,
                           frame_seconds=_frame_seconds(store), params=params, targets=targets)
    for name, values in columns.items():
        table[name] = values
    return table.to_csv(index=False)
