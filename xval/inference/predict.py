"""`predict`: per-segment and per-clip outputs of saved models on audio files."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xval.config import embedding
from xval.core.parameters import InstanceParams
from xval.core.storage import ResultsStore
from xval.inference.classifiers import ClassifierSet
from xval.inference.detect import chosen_postprocessing
from xval.inference.models import (
    ModelSet,
    feature_params_of,
    file_outputs,
    info_for,
    resolve_models,
    task_of_info,
)
from xval.tasks import Context

FolderPredictor = Callable[..., list[dict[str, Any]] | None]
"""`predictor(folder, files, predict_files, fold=, ensemble=, dataset_info=, model=,
embedding_classifier=, results_store=) -> results` for a folder it answers (an ensemble of
instances'), or `None` for any other (`register_folder`)."""

_FOLDERS: list[FolderPredictor] = []


def register_folder(predictor: FolderPredictor) -> None:
    """Adds what `predict_files` asks first of a folder (`xval.ensembles.run.install` adds the
    ensembles'; once, however often it is registered)."""
    if predictor not in _FOLDERS:
        _FOLDERS.append(predictor)


def predict_files(model_or_instance_dir: str | Path, files: Sequence[str | Path],
                  fold: int | None = None, *, ensemble: bool = False,
                  dataset_info: Mapping[str, Any] | str | Path | None = None, model: Any = None,
                  embedding_classifier: bool = False,
                  results_store: ResultsStore | None = None) -> list[dict[str, Any]]:
    """Per-segment and per-clip outputs of saved model(s) on audio files.

    Given an instance folder, the fold models form a cross-validation ensemble: their
    logits (regression outputs) are averaged, then the softmax is taken; `final.keras` is
    used instead when the instance was refit (see `resolve_models`). A folder a registered
    predictor answers (`register_folder`: an ensemble of instances, whose members answer
    through their own input paths, their clip scores averaged with its weights) is its.

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
        results_store: the results store the instance's records are read through.
            Defaults to a store of its own.

    Returns:
        list (one per file) of dicts: `file`, `model` (what answered, in words),
        `segments` (list of `{"start", "scores"}`) and `clip` (`{"scores", "predicted"}`),
        as the task makes them (`Scoring.predict_record`). For classification `scores` maps
        class names to probabilities and the clip scores average the segment logits; for
        tagging they map labels to probabilities, the clip's are their mean, and its
        `predicted` labels are those at or over the thresholds the folds chose on their
        validation items (the median over the folds for several models).
    """
    store = results_store if results_store is not None else ResultsStore()
    for predictor in _FOLDERS:
        found = predictor(model_or_instance_dir, files, predict_files, fold=fold,
                          ensemble=ensemble, dataset_info=dataset_info, model=model,
                          embedding_classifier=embedding_classifier, results_store=store)
        if found is not None:
            return found
    folds_only = embedding_classifier and fold is None and Path(model_or_instance_dir).is_dir()
    models = resolve_models(model_or_instance_dir, fold=fold,
                            ensemble=ensemble or folds_only, results_store=store)
    info = info_for(models, dataset_info)
    if model is not None:
        models.use_loaded([model])
    classes = info.classes
    task = task_of_info(info)
    answering: ModelSet | ClassifierSet = models
    if embedding_classifier:
        answering = ClassifierSet(models)
        classes, task = answering.classes, embedding.task()
    feature = feature_params_of(info, answering if isinstance(answering, ModelSet) else None)
    # What the folds chose on their validation items (tagging: each label's threshold).
    chosen = chosen_postprocessing(models) if task.chosen_on_validation \
        and isinstance(answering, ModelSet) else None
    context = Context(frame_seconds=info.frame_seconds,
                      params=chosen.apply(InstanceParams()) if chosen is not None else None)
    results = []
    for path in files:  # one file at a time, a long one window batch by window batch
        done = file_outputs(path, feature, answering.outputs)
        segments, clip = task.scoring.predict_record(done["outputs"], done["starts"], classes,
                                                     context)
        results.append({"file": str(path), "model": answering.description,
                        "segments": segments, "clip": clip})
    return results


