"""The saved models that answer for a `.keras` file or an instance folder, and the features
of new audio files, extracted exactly as the model's dataset was built (the experiment saves
the store's `dataset.json` beside its results, and the model's folder leads to it)."""

import json
import re
from pathlib import Path

import numpy as np

from preprocessing.build import extract_file
from xval import tasks
from xval.config import embedding
from xval.core.errors import ConfigurationError, DatasetError
from xval.training import embeddings
from xval.training.loading import load


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


def extract_features(files, params):
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


def info_for(models, dataset_info):
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
                if source["model"] != embedding.SELF:
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
        x = np.asarray(features, dtype=np.float32)
        total = None
        for own, pipeline, info in zip(self.models.models, self.pipelines, self.infos):
            parts = [embeddings.embedding_function(self._model(s["model"], own),
                                                   info["layer"])(x)
                     for s in info["sources"]]
            out = embeddings.scores(pipeline, np.concatenate(parts, axis=1))
            total = out if total is None else total + out
        return total / len(self.pipelines)


def task_of(info):
    """The task of a dataset description (`dataset.json`): its `task_type`, or for one
    written before stores recorded it, the task its classes imply (`xval.tasks.infer`)."""
    return tasks.get(info.get("task_type")
                     or tasks.infer(classes=list(info.get("classes") or [])))
