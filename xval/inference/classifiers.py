"""The embedding classifiers of fold models (`fold_<i>.skops` beside `fold_<i>.keras`,
described in `fold_<i>.json`): found, checked and run on features for `predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xval.config import embedding
from xval.core.errors import ConfigurationError
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult
from xval.core.storage import ResultsStore
from xval.inference.models import ModelSet
from xval.training import embeddings
from xval.training.loading import load


def fold_classifier(path: Path, results_store: ResultsStore) -> tuple[Path, dict[str, Any]]:
    """The saved embedding classifier of a fold model and its description (the
    `embedding_classifier` entry of the model's fold record, read through `results_store`).

    Raises:
        ConfigurationError: when the model has none (or is not a fold model).
    """
    found = InstanceLayout.of_fold_model(path)
    if found is None:
        raise ConfigurationError(
            f"{path} has no embedding classifier (it is not the fold_<i>.keras of an "
            "instance folder, beside its fold_<i>.json and .skops); pass the instance folder "
            "or one of its fold models, or leave out --embedding-classifier.")
    layout, fold = found
    record, saved = layout.fold_file(fold), layout.fold_classifier(fold)
    fold_record, _ = results_store.read_record(record, FoldResult.from_dict)
    info = fold_record.embedding_classifier if fold_record is not None else None
    if not info or not saved.is_file():
        raise ConfigurationError(
            f"{path} has no embedding classifier ({saved.name} and the embedding_classifier "
            f"entry of {record.name}); train the instance with embedding_classifier='svm' "
            "or 'logreg', or leave out --embedding-classifier."
        )
    return saved, info


def check_classes(saved: Path, pipeline: Any, described: dict[str, Any]) -> None:
    """Refuses a classifier whose classes are not those its fold record describes.

    Raises:
        ConfigurationError: naming the file, both counts and the fix.
    """
    found = getattr(pipeline, "classes_", None)
    expected = len(described.get("classes") or [])
    if found is not None and len(found) != expected:
        raise ConfigurationError(
            f"{saved} is a classifier of {len(found)} classes, but its fold record "
            f"describes {expected}; it is not the classifier this fold trained. Restore the "
            "file, or rerun the fold that wrote it.")


def check_width(saved: Path, pipeline: Any, width: int) -> None:
    """Refuses a classifier fitted on embeddings of another width than its model gives.

    Raises:
        ConfigurationError: naming the file, both widths and the fix.
    """
    expected = getattr(pipeline, "n_features_in_", None)
    if expected is not None and expected != width:
        raise ConfigurationError(
            f"{saved} was fitted on embeddings of {expected} values, but its fold model "
            f"gives {width}; it is not the classifier this fold trained. Restore the file, "
            "or rerun the fold that wrote it.")


class ClassifierSet:
    """The embedding classifiers of fold models: `fold_<i>.skops` beside `fold_<i>.keras`,
    described by the `embedding_classifier` entry of `fold_<i>.json` (see
    `xval.training.embeddings`).

    Args:
        models: a `ModelSet` of fold models of an instance trained with an embedding
            classifier.

    Raises:
        ConfigurationError: when a fold model has no saved classifier, or a saved model it
            embeds with changed.
    """

    def __init__(self, models: ModelSet) -> None:
        self.models = models
        self.pipelines: list[Any] = []
        self.saved: list[Path] = []
        self.infos: list[dict[str, Any]] = []
        for path in models.paths:
            saved, info = fold_classifier(path, models.results_store)
            for source in info["sources"]:
                if source["model"] != embedding.SELF:
                    embeddings.check_unchanged(source)
            pipeline = embeddings.load_classifier(saved)
            check_classes(saved, pipeline, info)
            self.pipelines.append(pipeline)
            self.saved.append(saved)
            self.infos.append(info)
        self.classes = list(self.infos[0]["classes"])
        self.description = (f"embedding classifier ({self.infos[0]['kind']}) of the "
                            f"{models.description}")
        self._loaded: dict[str, Any] = {}

    def _model(self, source: str, own: Any) -> Any:
        if source == embedding.SELF:
            return own
        if source not in self._loaded:
            self._loaded[source] = load(source, what="embedding model")
        return self._loaded[source]

    def outputs(self, features: np.ndarray) -> np.ndarray:
        """The classifiers' class scores, averaged over the folds: `(n, classes)`."""
        x = np.asarray(features, dtype=np.float32)
        total = np.zeros(0)
        for k, (own, pipeline, info) in enumerate(zip(self.models.models, self.pipelines,
                                                      self.infos)):
            parts = [embeddings.embedding_function(self._model(s["model"], own),
                                                   info["layer"])(x)
                     for s in info["sources"]]
            joined = np.concatenate(parts, axis=1)
            check_width(self.saved[k], pipeline, joined.shape[1])
            out = embeddings.scores(pipeline, joined)
            total = out if k == 0 else total + out
        return total / len(self.pipelines)
