"""Prediction and embeddings from saved `.keras` models, on audio files.

Features are extracted exactly as the model's dataset was built: the experiment saves the
store's `dataset.json` (feature parameters, class names) beside its results, and the
model's folder leads to it.
"""

import json
import re
from pathlib import Path

import numpy as np

from xval.errors import ConfigurationError, DatasetError
from xval.tasks.base import with_context


def dataset_info_for(model_path, info_path=None):
    """Finds the dataset description (`dataset.json`) that goes with a saved model.

    Looks at `info_path`, then the model's folder and its parents up to the experiment
    folder (`experiment_<N>/dataset.json`).

    Raises:
        ConfigurationError: when none is found.
    """
    if info_path is not None:
        candidates = [Path(info_path)]
    else:
        model_path = Path(model_path).resolve()
        candidates = [p / "dataset.json" for p in list(model_path.parents)[:3]]
    for candidate in candidates:
        if candidate.is_file():
            info = json.loads(candidate.read_text())
            if "feature_params" not in info:
                raise ConfigurationError(
                    f"{candidate} has no feature_params: it was not written by "
                    "`python -m preprocessing`, so features cannot be extracted the same way."
                )
            return info
    raise ConfigurationError(
        f"No dataset.json found next to {model_path} (looked at "
        f"{', '.join(str(c) for c in candidates)}); pass --dataset-info PATH."
    )


MIN_KERAS = (3, 14)


def load(model_path, what="Model file"):
    """Loads a saved `.keras` model with Keras safe mode on (custom layers registered).

    Args:
        model_path: path of a `.keras` file.
        what: how to name the file in errors (e.g. `"load_model"`).

    Returns:
        The `keras.Model`, not compiled.

    Raises:
        ConfigurationError: for a missing file, a legacy HDF5 (`.h5`) or other non-`.keras`
            file, or a Keras older than 3.14 (its safe mode can be bypassed).
    """
    import zipfile

    import keras

    import architectures  # noqa: F401  (registers custom layers)
    import xval.losses  # noqa: F401  (registers custom losses)

    path = Path(model_path)
    if not path.is_file():
        raise ConfigurationError(f"{what} {str(path)!r} does not exist.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigurationError(
            f"{what} {str(path)!r} is not a Keras 3 `.keras` file. Legacy HDF5 (.h5) and "
            "other formats are refused: they can run code when loaded. Re-save the model "
            "with `model.save('name.keras')` in a trusted environment."
        )
    version = tuple(int(p) for p in keras.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_KERAS:
        raise ConfigurationError(
            f"Keras {keras.__version__} is installed; loading models needs Keras >= 3.14, "
            "whose safe mode has the known bypasses fixed: `pip install 'keras>=3.14'`."
        )
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _features(files, params):
    from preprocessing.build import extract_file

    out = []
    for path in files:
        result = extract_file(path, params)
        if "error" in result:
            raise DatasetError(f"{path}: {result['error']}")
        out.append(result)
    return out


class ModelSet:
    """The saved model(s) that answer for a `.keras` path or an instance folder.

    Args:
        paths: the `.keras` files; several make a cross-validation ensemble.
        description: what they are, in words (e.g. `"ensemble of 4 fold models of
            instance_1"`), printed by `predict` and `evaluate`.
    """

    def __init__(self, paths, description):
        self.paths = [Path(p) for p in paths]
        self.description = description
        self._models = None

    def __len__(self):
        return len(self.paths)

    @property
    def models(self):
        if self._models is None:
            self._models = [load(p) for p in self.paths]
        return self._models

    def outputs(self, features):
        """The models' outputs (logits or regression values), averaged over the models.

        Args:
            features: `np.ndarray [shape=(n, time, frequency)]`.

        Returns:
            `np.ndarray [shape=(n, outputs)]`, float64.
        """
        x = np.asarray(features, dtype=np.float32)
        total = None
        for model in self.models:
            out = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
            total = out if total is None else total + out
        return total / len(self.models)

    def __repr__(self):
        return f"ModelSet({self.description!r})"


def _fold_index(path):
    match = re.fullmatch(r"fold_(\d+)\.keras", path.name)
    return int(match.group(1)) if match else None


def resolve_models(model_or_instance_dir, *, fold=None, ensemble=False):
    """The model(s) to use for a `.keras` path or an `instance_<k>` folder.

    For an instance folder: `fold_<fold>.keras` when `fold` is given; else `final.keras`
    (the refit model) when it exists and `ensemble` is off; else every `fold_<i>.keras` as a
    cross-validation ensemble.

    Args:
        model_or_instance_dir: a `.keras` file or an `instance_<k>` folder.
        fold: keep the single model of this fold. Defaults to `None`.
        ensemble: use the fold models even when `final.keras` exists. Defaults to `False`.

    Returns:
        A `ModelSet`.

    Raises:
        ConfigurationError: for `fold` with `ensemble`, `fold`/`ensemble` with a `.keras`
            file, a missing fold model (listing the present ones), or a folder without
            models.
    """
    path = Path(model_or_instance_dir)
    if fold is not None and ensemble:
        raise ConfigurationError(
            f"--fold {fold} and --ensemble contradict each other: --fold keeps one fold "
            "model, --ensemble averages all of them. Give one."
        )
    if not path.is_dir():
        if fold is not None or ensemble:
            raise ConfigurationError(
                f"--fold and --ensemble choose models inside an instance folder, but "
                f"{str(path)!r} is not a folder. Pass its instance_<k> folder instead."
            )
        owner = path.parent.name
        where = f" of {owner}" if owner.startswith("instance_") else ""
        return ModelSet([path], f"model {path.name}{where}")
    folds = sorted((p for p in path.glob("fold_*.keras") if _fold_index(p) is not None),
                   key=_fold_index)
    final = path / "final.keras"
    if fold is not None:
        chosen = path / f"fold_{fold}.keras"
        if not chosen.is_file():
            present = [_fold_index(p) for p in folds]
            raise ConfigurationError(
                f"--fold {fold}: {path} has no {chosen.name}; its fold models are "
                f"{present or 'none'}."
            )
        return ModelSet([chosen], f"fold {fold} model of {path.name}")
    if final.is_file() and not ensemble:
        return ModelSet([final], f"final model of {path.name} (refit on all items; "
                                 "--ensemble uses the fold models)")
    if not folds:
        raise ConfigurationError(
            f"{path} holds no fold_<i>.keras models (nor final.keras): pass an "
            "instance_<k> folder of a run, or a .keras file."
        )
    return ModelSet(folds, f"ensemble of {len(folds)} fold models of {path.name}")


def _info_for(models, dataset_info):
    if isinstance(dataset_info, dict):
        return dataset_info
    return dataset_info_for(models.paths[0], dataset_info)


class ClassifierSet:
    """The embedding classifiers of fold models: `fold_<i>.skops` beside `fold_<i>.keras`,
    described by the `embedding_classifier` entry of `fold_<i>.json` (see `xval.embeddings`).

    Args:
        models: a `ModelSet` of fold models of an instance trained with an embedding
            classifier.

    Raises:
        ConfigurationError: when a fold model has no saved classifier.
    """

    def __init__(self, models):
        from xval import embeddings

        self.models = models
        self.pipelines, self.infos = [], []
        for path in models.paths:
            record = path.with_suffix(".json")
            info = json.loads(record.read_text()).get("embedding_classifier") \
                if record.is_file() else None
            saved = path.with_suffix(".skops")
            if not info or not saved.is_file():
                raise ConfigurationError(
                    f"{path} has no embedding classifier ({saved.name} and the "
                    f"embedding_classifier entry of {record.name}); train the instance with "
                    "embedding_classifier='svm' or 'logreg', or leave out "
                    "--embedding-classifier."
                )
            for source in info["sources"]:
                if source["model"] != embeddings.SELF:
                    embeddings.check_unchanged(source)
            self.pipelines.append(embeddings.load(saved))
            self.infos.append(info)
        self.classes = list(self.infos[0]["classes"])
        self.description = (f"embedding classifier ({self.infos[0]['kind']}) of the "
                            f"{models.description}")
        self._loaded = {}

    def _model(self, source, own):
        if source == "self":
            return own
        if source not in self._loaded:
            self._loaded[source] = load(source, what="embedding model")
        return self._loaded[source]

    def outputs(self, features):
        """The classifiers' class scores, averaged over the folds: `(n, classes)`."""
        from xval import embeddings

        x = np.asarray(features, dtype=np.float32)
        total = None
        for own, pipeline, info in zip(self.models.models, self.pipelines, self.infos):
            parts = [embeddings.embedding_function(self._model(s["model"], own),
                                                   info["layer"])(x)
                     for s in info["sources"]]
            out = embeddings.scores(pipeline, np.concatenate(parts, axis=1))
            total = out if total is None else total + out
        return total / len(self.pipelines)


def predict_files(model_or_instance_dir, files, fold=None, *, ensemble=False,
                  dataset_info=None, model=None, embedding_classifier=False):
    """Per-segment and per-clip outputs of saved model(s) on audio files.

    Given an instance folder, the fold models form a cross-validation ensemble: their
    logits (regression outputs) are averaged, then the softmax is taken; `final.keras` is
    used instead when the instance was refit (see `resolve_models`).

    Args:
        model_or_instance_dir: a `.keras` file, or an `instance_<k>` folder.
        files: audio files.
        fold: with an instance folder, keep the single model of this fold.
        ensemble: use the fold models even when `final.keras` exists.
        dataset_info: dict or path of the dataset description; `None` finds it.
        model: an already loaded `keras.Model` (skips loading; a single `.keras` path only).
        embedding_classifier: answer with the fold models' saved embedding classifiers
            (`fold_<i>.skops`, see `xval.embeddings`) instead of the networks' own outputs;
            with an instance folder, the fold models (never `final.keras`).

    Returns:
        list (one per file) of dicts: `file`, `model` (what answered, in words),
        `segments` (list of `{"start", "scores"}`) and `clip` (`{"scores", "predicted"}`),
        as the task makes them (`Task.predict_record`). For classification `scores` maps
        class names to probabilities and the clip scores average the segment logits.
    """
    folds_only = embedding_classifier and fold is None and Path(model_or_instance_dir).is_dir()
    models = resolve_models(model_or_instance_dir, fold=fold,
                            ensemble=ensemble or folds_only)
    info = _info_for(models, dataset_info)
    if model is not None:
        models._models = [model]
    classes = info.get("classes") or []
    task = task_of(info)
    if embedding_classifier:
        from xval import embeddings, tasks

        models = ClassifierSet(models)
        classes, task = models.classes, tasks.get(embeddings.TASK)
    feature = info["feature_params"]
    frame_seconds = feature["hop_length"] / feature["sample_rate"]
    results = []
    for path, feats in zip(files, _features(files, info["feature_params"])):
        outputs = models.outputs(feats["features"])
        segments, clip = with_context(task.predict_record, outputs, feats["starts"], classes,
                                      frame_seconds=frame_seconds)
        results.append({"file": str(path), "model": models.description, "segments": segments,
                        "clip": clip})
    return results


def task_of(info):
    """The task of a dataset description (`dataset.json`): its `task_type`, or for one
    written before stores recorded it, the task its classes imply (`xval.tasks.infer`)."""
    from xval import tasks

    return tasks.get(info.get("task_type")
                     or tasks.infer(classes=list(info.get("classes") or [])))


def layer_names(model):
    """Names of the model's layers, the architecture's own layers included."""
    from xval.training import _backbone

    names = [layer.name for layer in model.layers]
    backbone = _backbone(model)
    if backbone is not None:
        names += [f"{layer.name}" for layer in backbone.layers]
    return names


def embedding_model(model, layer=None):
    """A function from features to the outputs of the layer named `layer`, or with
    `layer=None` to the input of the model's last layer (the penultimate representation).

    Raises:
        ConfigurationError: for an unknown layer name, listing the known ones.
    """
    import keras

    from xval.training import _backbone

    backbone = _backbone(model)
    own = {layer_.name for layer_ in model.layers}
    if layer is None and backbone is None:
        sub = keras.Model(model.inputs, model.layers[-1].input)
        return lambda x: sub.predict(x, verbose=0)
    if layer is not None and layer in own and (backbone is None or layer != backbone.name):
        sub = keras.Model(model.inputs, model.get_layer(layer).output)
        return lambda x: sub.predict(x, verbose=0)
    if layer is not None and (backbone is None or
                              layer not in {layer_.name for layer_ in backbone.layers}):
        raise ConfigurationError(
            f"No layer named {layer!r}; the model's layers are: {', '.join(layer_names(model))}."
        )
    index = model.layers.index(backbone)
    pre = keras.Model(model.inputs, model.layers[index - 1].output)
    output = backbone.layers[-1].input if layer is None else backbone.get_layer(layer).output
    trunk = keras.Model(backbone.inputs, output)
    return lambda x: trunk.predict(pre.predict(x, verbose=0), verbose=0)


def embed_files(model_path, files, layer=None, *, dataset_info=None):
    """Outputs of an inner layer for every segment of every file.

    Args:
        model_path: a `.keras` file.
        files: audio files.
        layer: the layer's name; `None` takes the layer named `bottleneck` (the code of an
            autoencoder such as `conv_autoencoder`).
        dataset_info: dict or path of the dataset description; `None` finds it.

    Returns:
        `(embeddings [shape=(segments, dims)], index)`: `index` is a list of
        `{"file", "segment", "start"}` rows, one per embedding row.
    """
    info = dataset_info if isinstance(dataset_info, dict) else \
        dataset_info_for(model_path, dataset_info)
    model = load(model_path)
    if layer is None:
        if "bottleneck" not in layer_names(model):
            raise ConfigurationError(
                f"{model_path} has no layer named 'bottleneck' (an autoencoder's code); name "
                f"one with --layer: {', '.join(layer_names(model))}."
            )
        layer = "bottleneck"
    fn = embedding_model(model, layer)
    rows, index = [], []
    for path, feats in zip(files, _features(files, info["feature_params"])):
        out = np.asarray(fn(feats["features"].astype(np.float32)))
        rows.append(out.reshape(len(out), -1))
        index += [{"file": str(path), "segment": k, "start": s}
                  for k, s in enumerate(feats["starts"])]
    return np.concatenate(rows), index


def main_predict(args):
    results = predict_files(args.model, args.audio, fold=getattr(args, "fold", None),
                            ensemble=getattr(args, "ensemble", False),
                            dataset_info=getattr(args, "dataset_info", None),
                            embedding_classifier=getattr(args, "embedding_classifier", False))
    described = Path(args.model).is_dir()
    if args.format == "csv":
        if described:  # a comment line: pandas reads it with `comment="#"`
            print(f"# {results[0]['model']}")
        names = list(results[0]["clip"]["scores"])
        print(",".join(["file", "level", "start", "predicted"] + names))
        for r in results:
            for s in r["segments"]:
                best = max(s["scores"], key=s["scores"].get) if len(names) > 1 else ""
                print(",".join([r["file"], "segment", f"{s['start']:.3f}", str(best)]
                               + [f"{s['scores'][n]:.6f}" for n in names]))
            print(",".join([r["file"], "clip", "", str(r["clip"]["predicted"])]
                           + [f"{r['clip']['scores'][n]:.6f}" for n in names]))
        return 0
    print(results[0]["model"])
    for r in results:
        scores = r["clip"]["scores"]
        top = sorted(scores.items(), key=lambda kv: -kv[1])
        print(f"{r['file']}: {r['clip']['predicted']}  (clip: "
              + ", ".join(f"{k} {v:.3f}" for k, v in top[:5]) + ")")
        for s in r["segments"]:
            seg = sorted(s["scores"].items(), key=lambda kv: -kv[1])
            print(f"  segment at {s['start']:.2f}s: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in seg[:5]))
    return 0


def main_embed(args):
    import pandas as pd

    from xval.results import atomic_write_text

    embeddings, index = embed_files(args.model, args.audio, args.layer,
                                    dataset_info=getattr(args, "dataset_info", None))
    out = Path(args.out)
    if out.suffix != ".npy":
        out = out.with_suffix(".npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, embeddings.astype(np.float32))
    atomic_write_text(out.with_suffix(".csv"), pd.DataFrame(index).to_csv(index=False))
    print(f"Wrote {out} ({embeddings.shape[0]} x {embeddings.shape[1]}) and "
          f"{out.with_suffix('.csv')}")
    return 0


def detect_files(model_or_instance_dir, files, fold=None, *, ensemble=False,
                 dataset_info=None):
    """The events a detection model finds in audio files.

    Each file is cut into the store's windows; the windows' frame probabilities are laid on
    the file's time line (averaged where windows overlap) and turned into events with the
    instance's post-processing parameters (`detection_threshold`, `median_filter_seconds`,
    `min_gap_seconds`, `min_event_seconds`, read from the instance's `params.json`; the
    defaults of `xval.tasks.detection` when the model is not in an instance folder).

    Args:
        model_or_instance_dir: a `.keras` file, or an `instance_<k>` folder.
        files: audio files.
        fold: with an instance folder, keep the single model of this fold.
        ensemble: use the fold models even when `final.keras` exists.
        dataset_info: dict or path of the dataset description; `None` finds it.

    Returns:
        list (one per file) of dicts: `file`, `model` (in words), `events` (list of
        `(onset_s, offset_s, label)`), `times` (frame times, seconds), `activity`
        (`np.ndarray [shape=(frames, classes)]` of probabilities) and `classes`.

    Raises:
        ConfigurationError: when the model is not a detection model.
    """
    from xval.events import stitch_windows
    from xval.tasks.detection import Detection, _sigmoid, postprocessing

    models = resolve_models(model_or_instance_dir, fold=fold, ensemble=ensemble)
    info = _info_for(models, dataset_info)
    task = task_of(info)
    if not isinstance(task, Detection):
        raise ConfigurationError(
            f"{model_or_instance_dir} is a {task.name} model; `detect` needs a detection "
            "model (task_type='detection'). Use `python -m xval predict` for this one."
        )
    params_file = models.paths[0].parent / "params.json"
    saved = json.loads(params_file.read_text()) if params_file.is_file() else {}
    params = postprocessing(saved.get("params", saved))
    feature = info["feature_params"]
    frame_seconds = feature["hop_length"] / feature["sample_rate"]
    classes = list(info.get("classes") or [])
    results = []
    for path, feats in zip(files, _features(files, feature)):
        prob = _sigmoid(np.asarray(models.outputs(feats["features"]), dtype=np.float64))
        activity = stitch_windows(prob, feats["starts"], frame_seconds)
        # The last window is zero-padded past a short file's end: keep the file's frames.
        total = min(len(activity), int(np.floor(feats["duration"] / frame_seconds)) + 1)
        activity = activity[:total]
        events = Detection.events(activity, frame_seconds, classes, params,
                                  duration_s=feats["duration"])
        results.append({"file": str(path), "model": models.description, "events": events,
                        "times": np.arange(total) * frame_seconds, "activity": activity,
                        "classes": classes})
    return results


def activity_plot(result, path):
    """Writes a PNG of one file's frame probabilities with its detected events shaded.

    Args:
        result: one entry of `detect_files`.
        path: the PNG to write.

    Returns:
        The path.
    """
    from xval.plots import file_activity

    return file_activity(result["times"], result["activity"], result["classes"],
                         result["events"], path,
                         title=f"{Path(result['file']).name}: {len(result['events'])} event(s)")


def main_detect(args):
    if args.plot:
        try:
            Path(args.plot).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigurationError(f"--plot {args.plot!r}: cannot create the folder ({e}); "
                                     "give a folder you can write.") from e
    results = detect_files(args.model, args.audio, fold=getattr(args, "fold", None),
                           ensemble=getattr(args, "ensemble", False),
                           dataset_info=getattr(args, "dataset_info", None))
    if args.format == "csv":
        print("file,onset_s,offset_s,label")
        for r in results:
            for onset, offset, label in r["events"]:
                print(f"{r['file']},{onset:.3f},{offset:.3f},{label}")
    else:
        print(results[0]["model"])
        for r in results:
            print(f"{r['file']}: {len(r['events'])} event(s)")
            for onset, offset, label in r["events"]:
                print(f"  {onset:8.3f} {offset:8.3f}  {label}")
    if args.plot:
        for r in results:
            activity_plot(r, Path(args.plot) / f"{Path(r['file']).stem}_activity.png")
        if args.format != "csv":
            print(f"Activity plots in {args.plot}")
    return 0
