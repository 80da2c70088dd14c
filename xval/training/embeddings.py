"""Embedding classifiers: a scikit-learn classifier on the embeddings of Keras models.

An instance with `embedding_classifier="svm"` (or `"logreg"`) trains, in every fold after its
network, a classifier on embeddings of the fold's rows: by default those of the fold's own
trained model (`embedding_models=None`), or of saved `.keras` models given by path
(`embedding_models=["ae/instance_1/fold_{fold}.keras", "self"]`: `{fold}` becomes the fold
number, `"self"` is the fold's own model; several sources are concatenated). The layer is
`embedding_layer`: `"auto"` takes the layer named `bottleneck` where there is one (an
autoencoder's code), else the input of the model's last layer (the penultimate
representation).

Per fold, the classifier (standardisation, then an RBF-kernel SVM or a logistic regression)
is fit on the training rows only, with `C = embedding_c` or, when that is `None`, the value
of `C_GRID` of the best validation macro recall (ties: the smaller). Test rows score it once;
its metrics join the fold's, prefixed `embedding_`, on every split and level. The pipeline
is saved as `fold_<i>.skops` (skops, not pickle) for `predict --embedding-classifier`.

A saved model that sits in an experiment's instance folder carries its fold's items
(`fold_<i>.json`, read by the planner into `Job.embedding_items`: a job reads no result
file); a model trained on any of this fold's test items is refused (its embeddings would
have seen the test speakers).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from preprocessing.store import FeatureStore
from xval.config import embedding
from xval.core.errors import ConfigurationError, TrainingError
from xval.core.hashing import file_digest
from xval.core.parameters import TrainingParams
from xval.core.records import Metrics
from xval.training.layers import EmbeddingFunction, embedding_model, layer_names
from xval.training.loading import load as load_model

# The loaders of the skops nodes a saved classifier is made of (anything else, a function,
# a method, a constructor call, is refused before skops loads it).
_LOADERS = frozenset({"DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode",
                      "NdArrayNode", "ObjectNode"})
# Plain values and arrays; the estimators are added from their classes (`_allowed_types`).
_VALUE_TYPES = frozenset(
    [f"builtins.{name}" for name in "dict list tuple str int float bool NoneType type".split()]
    + [f"numpy.{name}" for name in ("ndarray dtype float64 float32 float16 int64 int32 int16 "
                                    "int8 uint8 bool_ str_ bytes_").split()])

Source = tuple[dict[str, Any], EmbeddingFunction]
"""An embedding source of a fold: its description and its function (see `prepare`)."""


def check_no_leak(path: Path, trained: list[str] | None, items: Mapping[str, list[str]],
                  fold: int) -> bool:
    """Raises TrainingError when the saved model at `path` was trained on a test item of
    this fold (`items`, `fold`): `trained`, the items its own fold trained and validated on
    (`Job.embedding_items`, from the fold record beside it), or `None` when no record says.

    Returns:
        Whether the check could be made (`False`: no readable fold record).
    """
    if trained is None:
        return False
    leaked = sorted(set(trained) & set(map(str, items.get("test", []))))
    if leaked:
        raise TrainingError(
            f"Fold {fold}: embedding model {path} was trained on {', '.join(leaked[:5])}, which "
            f"are test items of this fold; its embeddings would have seen the test set. Use the "
            "model of the matching fold (a path with {fold}, from an experiment with the same "
            "folds) or one trained without these items.")
    return True


def prepare(params: TrainingParams, model: Any, store: FeatureStore,
            items: Mapping[str, list[str]], fold: int,
            trained: Mapping[str, list[str] | None]) -> list[Source]:
    """Loads and checks a fold's embedding sources before its network trains.

    Args:
        params: the instance parameters.
        model: the fold's own (not yet trained) model; its embedding function follows its
            weights through training.
        store: the fold's `FeatureStore`.
        items, fold, trained: the fold's items and number, and what each saved model was
            trained on (`Job.embedding_items`), for the leak check (`check_no_leak`).

    Returns:
        list of `(description dict, function)`; the dict names the model and, for a saved
        one, its SHA-256 and whether the leak check could be made.

    Raises:
        TrainingError: a missing model, a leak, or an input shape other than the store's.
        ConfigurationError: an unknown `embedding_layer`.
    """
    layer = params.embedding_layer
    prepared: list[Source] = []
    for source in embedding.sources(params, fold):
        if source == embedding.SELF:
            prepared.append(({"model": embedding.SELF}, embedding_function(model, layer)))
            continue
        source = Path(source)
        if not source.is_file():
            raise TrainingError(f"Fold {fold}: embedding model {source} does not exist (the "
                                "embedding_models entry names no model for this fold).")
        checked = check_no_leak(source, trained.get(str(source)), items, fold)
        saved = load_model(source, what="embedding_models")
        shape = tuple(saved.inputs[0].shape[1:])
        if shape != tuple(store.features.shape[1:]):
            raise TrainingError(
                f"Fold {fold}: embedding model {source} takes features of shape {shape}, but "
                f"the store's rows are {tuple(store.features.shape[1:])}; use a model trained "
                "on features made with the same parameters.")
        digest = file_digest(source)
        prepared.append(({"model": str(source), "sha256": digest, "leak_checked": checked},
                         embedding_function(saved, layer)))
    return prepared


def check_unchanged(source: Mapping[str, Any]) -> None:
    """Raises ConfigurationError when a saved embedding model differs from the one the
    classifier was fit on (`source`: a description dict of `prepare`)."""
    path = Path(source["model"])
    if not path.is_file():
        raise ConfigurationError(f"Embedding model {path} (a source of this embedding "
                                 "classifier) does not exist; it was moved or deleted.")
    if source.get("sha256") and file_digest(path) != source["sha256"]:
        raise ConfigurationError(
            f"Embedding model {path} changed since the embedding classifier was fit on it (its "
            "SHA-256 differs): the classifier's answers would be wrong. Rerun the instance.")


def layer_for(model: Any, name: str = "auto") -> str | None:
    """The layer an embedding is taken from: `name`, or for `"auto"` the `bottleneck` where
    there is one, else `None` (the input of the last layer)."""
    if name != "auto":
        return name
    return "bottleneck" if "bottleneck" in layer_names(model) else None


def embedding_function(model: Any, name: str = "auto") -> EmbeddingFunction:
    """A function from raw features `(n, time, frequency)` to flat embeddings `(n, dims)`.

    Raises:
        ConfigurationError: for an unknown layer name.
    """
    fn = embedding_model(model, layer_for(model, name))
    return lambda x: np.asarray(fn(np.asarray(x, dtype=np.float32))).reshape(len(x), -1)


def make_classifier(kind: str, c: float, seed: int = 0) -> Pipeline:
    """The scikit-learn pipeline: standardisation, then an SVM or a logistic regression."""
    if kind == "svm":
        model = SVC(C=c, kernel="rbf", gamma="scale", random_state=seed)
    elif kind == "logreg":
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    else:
        raise ValueError(f"embedding_classifier={kind!r}: expected one of "
                         f"{', '.join(embedding.CLASSIFIERS[1:])}.")
    return make_pipeline(StandardScaler(), model)


def scores(pipeline: Pipeline, x: np.ndarray) -> np.ndarray:
    """Class scores `(n, classes)` usable as logits: log-probabilities (logreg) or the
    one-vs-rest decision values (SVM); their argmax is the predicted class."""
    final = pipeline[-1]
    if hasattr(final, "predict_log_proba") and not hasattr(final, "support_"):
        return pipeline.predict_log_proba(x)
    out = pipeline.decision_function(x)
    if out.ndim == 1:  # two classes: one decision value
        out = np.stack([-out, out], axis=1)
    return out


def fit(kind: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
        y_val: np.ndarray, c: float | None = None,
        seed: int = 0) -> tuple[Pipeline, dict[str, Any]]:
    """Fits the classifier on the training rows, choosing `C` on the validation rows.

    Args:
        kind: `"svm"` or `"logreg"`; `seed`: its random state.
        x_train, y_train, x_val, y_val: embeddings `(n, dims)` and class indices.
        c: a fixed `C`, or `None` to choose among `C_GRID` by validation macro recall.

    Returns:
        `(pipeline, info)`: the fitted pipeline and a dict with `C` and `val_recall` per
        value tried.
    """
    if len(np.unique(y_train)) < 2:
        raise TrainingError("The embedding classifier needs at least two classes in the "
                            "training rows of the fold.")
    grid = [float(c)] if c is not None else list(embedding.C_GRID)
    fitted = []
    for value in grid:
        pipeline = make_classifier(kind, value, seed).fit(x_train, y_train)
        recall = float(recall_score(y_val, pipeline.predict(x_val), average="macro",
                                    zero_division=0)) if len(y_val) else float("nan")
        fitted.append((recall, value, pipeline))
    _, best, pipeline = max(fitted, key=lambda f: f[0])  # the first of equals: the smaller C
    return pipeline, {"C": best, "val_recall": {str(v): r for r, v, _ in fitted}}


def dumps(pipeline: Pipeline) -> bytes:
    """The fitted pipeline as skops bytes (no pickle)."""
    import skops.io as sio  # noqa: PLC0415  (imports torch, through scikit-learn's array API)

    return sio.dumps(pipeline)


def _allowed_types() -> frozenset[str]:
    """The exact types (`module.Class`) a classifier saved by `dumps` holds."""
    classes = (Pipeline, StandardScaler, SVC, LogisticRegression)
    return _VALUE_TYPES | {f"{c.__module__}.{c.__qualname__}" for c in classes}


def _node_types(node: Any, found: set[tuple[str, str]]) -> None:
    """Every `(module.Class, loader)` named in a skops schema, however deep."""
    if isinstance(node, dict):
        if "__class__" in node:
            found.add((f"{node.get('__module__')}.{node['__class__']}",
                       str(node.get("__loader__"))))
        for value in node.values():
            _node_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _node_types(value, found)


def load_classifier(path: str | Path) -> Pipeline:
    """Loads a classifier saved by `dumps`, allowing only the exact types it writes: every
    node of the file's schema (and skops' own `get_untrusted_types`) is checked against an
    allow-list (the pipeline, its scaler and classifiers, arrays, plain values, each through
    a data loader: never a function, a method or a constructor call) before skops reads it.

    Raises:
        ConfigurationError: when the file holds another type or cannot be read (nothing in
            it is loaded then).
    """
    import skops.io as sio  # noqa: PLC0415  (imports torch, through scikit-learn's array API)

    path = Path(path)
    try:
        data = path.read_bytes()
        found: set[tuple[str, str]] = set()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _node_types(json.loads(archive.read("schema.json")), found)
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as e:  # noqa: BLE001  (skops raises several kinds on a bad file)
        raise ConfigurationError(f"{path} is not a readable skops file: {e}") from e
    allowed = _allowed_types()
    foreign = sorted({name for name, loader in found
                      if name not in allowed or loader not in _LOADERS}
                     | {name for name in untrusted if name not in allowed})
    if foreign:
        raise ConfigurationError(
            f"{path} holds types an embedding classifier never holds ({', '.join(foreign)}); "
            "it is not loaded (a results folder is data, never code).")
    try:
        pipeline = sio.loads(data, trusted=list(untrusted))
    except Exception as e:  # noqa: BLE001  (skops raises several kinds on a bad file)
        # e.g. an array stored pickled (NumPy refuses it: allow_pickle=False).
        raise ConfigurationError(
            f"{path} is not a classifier this project wrote ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); nothing in it was run. Restore "
            "the file, or rerun the fold that wrote it (an instance folder's fold_<i>.skops)."
        ) from None
    if not isinstance(pipeline, Pipeline):
        raise ConfigurationError(
            f"{path} holds a {type(pipeline).__name__}, not the Pipeline an embedding "
            "classifier is; restore the file, or rerun the fold that wrote it.")
    return pipeline


def _embed(prepared: list[Source], store: FeatureStore, rows: Mapping[str, np.ndarray]
           ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """The embeddings of every split's rows (the sources side by side), and the sources'
    descriptions with their dimensions."""
    x: dict[str, list[np.ndarray]] = {k: [] for k in rows}
    described = []
    for source, fn in prepared:
        for k, r in rows.items():
            parts = [fn(store.features[r[i:i + 4096]]) for i in range(0, len(r), 4096)]
            x[k].append(np.concatenate(parts) if parts else np.zeros((0, 0)))
        described.append({**source, "dims": int(x["train"][-1].shape[1])})
    return {k: np.concatenate(v, axis=1) for k, v in x.items()}, described


def fit_fold_classifier(params: TrainingParams, prepared: list[Source],
                        store: FeatureStore, rows: Mapping[str, np.ndarray], fold: int,
                        seed: int, metrics: Metrics, clip_metrics: Metrics,
                        multi_segment: bool) -> tuple[bytes, dict[str, Any]]:
    """Fits the instance's embedding classifier on the fold's training rows, chooses its
    `C` on the validation rows and adds its metrics, prefixed `embedding_`, to every
    split's segment (and clip) metrics, in place.

    Args:
        params, prepared, store, fold, seed: the instance parameters, the fold's embedding
            sources (`prepare`), its store, number and seed.
        rows: split -> the fold's rows (training rows with their augmented copies).
        metrics, clip_metrics: split -> the network's segment and clip metrics (extended
            here; the clip level when `multi_segment`: files cut into several segments).

    Returns:
        `(skops bytes, info dict)` of the fitted classifier.

    Raises:
        TrainingError: for labels outside the store's classes, or embeddings that are not
            finite.
    """
    labels = store.meta["label"].astype(str).to_numpy()
    classes = store.classes or sorted(set(labels))
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels[np.concatenate(list(rows.values()))]) - set(index))
    if unknown:
        raise TrainingError(f"Fold {fold}: labels {', '.join(unknown[:5])} are not among the "
                            "store's classes; the embedding classifier cannot score them.")
    y = {k: np.array([index[v] for v in labels[r]], dtype=int) for k, r in rows.items()}
    x, described = _embed(prepared, store, rows)
    if not np.isfinite(x["train"]).all():
        raise TrainingError(f"Fold {fold}: the embeddings of the training rows are not finite; "
                            "the embedding classifier cannot be fit.")
    pipeline, info = fit(params.embedding_classifier, x["train"], y["train"], x["val"],
                         y["val"], params.embedding_c, seed)
    scoring = embedding.task().scoring  # the classifier's scores are classification's

    def add(into: Metrics, key: str, truth: np.ndarray, out: np.ndarray) -> None:
        found = scoring.evaluate(truth, out, len(classes))
        into.setdefault(key, {}).update({f"{embedding.PREFIX}{n}": v for n, v in found.items()
                                         if n != "confusion_matrix"})

    for key, r in rows.items():
        keep = ~store.augmented[r]  # scores on original rows only, as the network's
        out = scores(pipeline, x[key][keep])
        add(metrics, key, y[key][keep], out)
        pooled = scoring.pool_by_clip(out, y[key][keep], store.clips[r[keep]]) \
            if multi_segment else None
        if pooled is not None:
            add(clip_metrics, key, pooled[2], pooled[1])
    return dumps(pipeline), {"kind": params.embedding_classifier, "layer": params.embedding_layer,
                             "sources": described, "classes": classes, **info}
