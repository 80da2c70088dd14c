"""`detect`: the events a detection model finds in audio files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xval.core.errors import DatasetError
from xval.core.layout import InstanceLayout
from xval.core.parameters import FeatureParams
from xval.core.records import FoldResult, ParamsRecord, Postprocessing, RecordError
from xval.core.storage import ResultsStore
from xval.inference.models import (
    ModelSet,
    feature_params_of,
    file_outputs,
    info_for,
    resolve_models,
    task_of_info,
)


def instance_params(folder: Path, results_store: ResultsStore) -> dict[str, Any]:
    """The parameters recorded in a model's folder (its `params.json`, read through
    `results_store`); `{}` when the folder has none.

    Raises:
        ResultsConflictError: for a `params.json` that is not a parameter record.
    """
    path = InstanceLayout.of_folder(folder).params_file
    record, problem = results_store.read_record(path, ParamsRecord.from_dict)
    if problem:  # not JSON, or not a parameter record
        raise RecordError(f"{path} cannot be read as the instance's parameters ({problem}); "
                          "restore it, or pass the .keras file alone.")
    return dict(record.params) if record is not None else {}


def chosen_postprocessing(models: ModelSet) -> Postprocessing | None:
    """The post-processing the models' folds chose on their validation recordings (their
    fold records, `fold_<i>.json` beside `fold_<i>.keras`): one fold model's own choice,
    or for an ensemble or the refit `final.keras` the median over the folds
    (`Postprocessing.merged`); `None` when no record holds one (a model outside an instance
    folder, or trained before the choice existed).

    Raises:
        RecordError: for a fold record that cannot be read.
    """
    layout = InstanceLayout.of_folder(models.paths[0].parent)
    records = [layout.model_record(p) for p in models.paths]
    if any(r is None for r in records):  # final.keras: every fold's choice
        records = list(layout.fold_files().values())
    chosen = []
    for path in records:
        if path is None or not path.is_file():
            continue
        record, problem = models.results_store.read_record(path, FoldResult.from_dict)
        if record is None:
            raise RecordError(f"{path} cannot be read as a fold record ({problem}); restore "
                              "it, or pass the .keras file out of its folder.")
        if record.postprocessing is not None:
            chosen.append(record.postprocessing)
    return Postprocessing.merged(chosen)


def reading_windows(feature: FeatureParams, hop: float) -> FeatureParams:
    """The store's windows at the hop new recordings are read with: every `hop` windows
    (the task's, `Scoring.reading_hop`), or the store's hop where that is shorter."""
    if hop >= 1:
        return feature
    return feature.replace(segment_hop_seconds=min(
        feature.segment_hop_seconds, feature.segment_seconds * float(hop)))


def detect_files(model_or_instance_dir: str | Path, files: Sequence[str | Path],
                 fold: int | None = None, *, ensemble: bool = False,
                 dataset_info: Mapping[str, Any] | str | Path | None = None,
                 skipped: list[dict[str, str]] | None = None,
                 results_store: ResultsStore | None = None) -> list[dict[str, Any]]:
    """The events a model finds in audio files, through its task's hooks.

    Each file is cut into the store's windows, read at the task's hop (`Scoring.reading_hop`,
    `reading_windows`); the windows' frame probabilities are laid on the file's time line
    (`Scoring.recording_activity`) and turned into events by the task's rules
    (`Scoring.event_rules`) of the instance's parameters (its `params.json`; those it
    leaves unset as the folds chose them on their validation recordings,
    `chosen_postprocessing`; the task's defaults when the model is not in an instance
    folder).

    Args:
        model_or_instance_dir: a `.keras` file, or an `instance_<k>` folder.
        files: audio files.
        fold: with an instance folder, keep the single model of this fold.
        ensemble: use the fold models even when `final.keras` exists.
        dataset_info: dict or path of the dataset description; `None` finds it.
        skipped: a list that receives `{"path", "reason"}` for each file that cannot be
            read, which is then left out; `None` (the default): such a file is an error.
        results_store: the results store the instance's records are read through.
            Defaults to a store of its own.

    Returns:
        list (one per usable file) of dicts: `file`, `model` (in words), `events` (list of
        `(onset_s, offset_s, label)`), `times` (frame times, seconds), `frame_seconds`,
        `activity` (`np.ndarray [shape=(frames, classes)]` of probabilities), `classes` and
        `postprocessing` (the parameters that made the events).

    Raises:
        ConfigurationError: when the model's task finds no events.
        DatasetError: for a file that cannot be read, unless `skipped` is given.
    """
    models = resolve_models(model_or_instance_dir, fold=fold, ensemble=ensemble,
                            results_store=results_store)
    info = info_for(models, dataset_info)
    task = task_of_info(info)
    given = instance_params(models.paths[0].parent, models.results_store)
    chosen = chosen_postprocessing(models)
    params = task.scoring.event_rules(chosen.apply(given) if chosen else given)
    feature = reading_windows(feature_params_of(info, models), task.scoring.reading_hop(given))
    frame_seconds = info.frame_seconds or 0.0
    classes = info.classes
    results = []
    for path in files:
        try:
            feats = file_outputs(path, feature, models.outputs, real_only=False)
        except DatasetError as e:
            if skipped is None:
                raise
            skipped.append({"path": str(path), "reason": str(e)})
            continue
        activity = task.scoring.recording_activity(feats["outputs"], feats["starts"],
                                                   frame_seconds)
        # The last window is zero-padded past a short file's end: keep the file's frames.
        total = min(len(activity), int(np.floor(feats["duration"] / frame_seconds)) + 1)
        activity = activity[:total]
        events = params.events(activity, frame_seconds, classes,
                               duration_s=feats["duration"])
        results.append({"file": str(path), "model": models.description, "events": events,
                        "times": np.arange(total) * frame_seconds,
                        "frame_seconds": frame_seconds, "activity": activity,
                        "classes": classes, "postprocessing": params})
    return results

