"""Prediction and embeddings from saved `.keras` models, on audio files.

Features are extracted exactly as the model's dataset was built: the experiment saves the
store's `dataset.json` (feature parameters, class names) beside its results, and the
model's folder leads to it.
"""

import json
from pathlib import Path

import numpy as np

from xval.errors import ConfigurationError, DatasetError
from xval.metrics import softmax


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


def predict_files(model_path, files, *, dataset_info=None, model=None):
    """Per-segment and per-clip outputs of a saved model on audio files.

    Args:
        model_path: a `fold_<i>.keras` file.
        files: audio files.
        dataset_info: dict or path of the dataset description; `None` finds it.
        model: an already loaded model (skips loading).

    Returns:
        list (one per file) of dicts: `file`, `segments` (list of `{"start", "scores"}`)
        and `clip` (`{"scores", "predicted"}`). For classification `scores` maps class
        names to probabilities and the clip scores average the segment logits.
    """
    info = dataset_info if isinstance(dataset_info, dict) else \
        dataset_info_for(model_path, dataset_info)
    model = model or load(model_path)
    classes = info.get("classes") or []
    results = []
    for path, feats in zip(files, _features(files, info["feature_params"])):
        outputs = np.asarray(model.predict(feats["features"].astype(np.float32), verbose=0),
                             dtype=np.float64)
        record = {"file": str(path), "segments": []}
        if classes:
            probs = softmax(outputs)
            clip = softmax(outputs.mean(axis=0, keepdims=True))[0]
            for start, p in zip(feats["starts"], probs):
                record["segments"].append({"start": start,
                                           "scores": dict(zip(classes, p.tolist()))})
            record["clip"] = {"scores": dict(zip(classes, clip.tolist())),
                              "predicted": classes[int(clip.argmax())]}
        else:
            for start, v in zip(feats["starts"], outputs[:, 0]):
                record["segments"].append({"start": start, "scores": {"value": float(v)}})
            record["clip"] = {"scores": {"value": float(outputs[:, 0].mean())},
                              "predicted": float(outputs[:, 0].mean())}
        results.append(record)
    return results


def layer_names(model):
    """Names of the model's layers, the architecture's own layers included."""
    from xval.training import _backbone

    names = [layer.name for layer in model.layers]
    backbone = _backbone(model)
    if backbone is not None:
        names += [f"{layer.name}" for layer in backbone.layers]
    return names


def embedding_model(model, layer):
    """A function from features to the outputs of the layer named `layer`.

    Raises:
        ConfigurationError: for an unknown layer name, listing the known ones.
    """
    import keras

    from xval.training import _backbone

    backbone = _backbone(model)
    own = {layer_.name for layer_ in model.layers}
    if layer in own and (backbone is None or layer != backbone.name):
        sub = keras.Model(model.inputs, model.get_layer(layer).output)
        return lambda x: sub.predict(x, verbose=0)
    if backbone is None or layer not in {layer_.name for layer_ in backbone.layers}:
        raise ConfigurationError(
            f"No layer named {layer!r}; the model's layers are: {', '.join(layer_names(model))}."
        )
    index = model.layers.index(backbone)
    pre = keras.Model(model.inputs, model.layers[index - 1].output)
    trunk = keras.Model(backbone.inputs, backbone.get_layer(layer).output)
    return lambda x: trunk.predict(pre.predict(x, verbose=0), verbose=0)


def embed_files(model_path, files, layer, *, dataset_info=None):
    """Outputs of an inner layer for every segment of every file.

    Returns:
        `(embeddings [shape=(segments, dims)], index)`: `index` is a list of
        `{"file", "segment", "start"}` rows, one per embedding row.
    """
    info = dataset_info if isinstance(dataset_info, dict) else \
        dataset_info_for(model_path, dataset_info)
    model = load(model_path)
    fn = embedding_model(model, layer)
    rows, index = [], []
    for path, feats in zip(files, _features(files, info["feature_params"])):
        out = np.asarray(fn(feats["features"].astype(np.float32)))
        rows.append(out.reshape(len(out), -1))
        index += [{"file": str(path), "segment": k, "start": s}
                  for k, s in enumerate(feats["starts"])]
    return np.concatenate(rows), index


def main_predict(args):
    results = predict_files(args.model, args.audio,
                            dataset_info=getattr(args, "dataset_info", None))
    if args.format == "csv":
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
