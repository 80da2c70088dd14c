"""Scoring saved models on new labelled audio: `python -m xval evaluate`.

Rows come from the preprocessing sources (class folders, a regular expression, a CSV
manifest); features are extracted with the model's own feature parameters; the models are
those `xval.predict.resolve_models` picks (one `.keras`, a fold, the refit model, or the
cross-validation ensemble of an instance folder). A detector is scored on annotated
recordings instead (`evaluate_recordings`): the events it finds with the post-processing
its folds chose on their validation recordings, against the annotation's.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preprocessing import annotation_source, sources
from preprocessing.sources import Option
from xval import tasks
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.storage import ResultsStore
from xval.inference.detect import detect_files
from xval.inference.models import (
    feature_params_of,
    file_outputs,
    info_for,
    model_dataset_info,
    resolve_models,
    task_of_info,
)

SOURCES = ("folders", "regex", "manifest")
"""The sources `evaluate` reads (those whose options its command line takes)."""


def _parsed(option: Option, value: Any) -> Any:
    """A value given as text, as the option reads it (`label_map`: a preset or pairs)."""
    parse = option.parse
    return parse(value) if parse is not None and isinstance(value, str) else value


def source_rows(roots: Iterable[str | Path], *, source: str = "folders",
                pattern: str | None = None, label_map: str | dict[str, str] | None = None,
                path_column: str | None = None, label_column: str | None = None,
                clip_column: str | None = None, root: str | Path | None = None
                ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Labelled audio files from one or more roots, read by a registered source
    (`preprocessing.sources`).

    Args:
        roots: folders (`folders`, `regex`) or CSV files (`manifest`).
        source: `"folders"` (a folder per class), `"regex"` or `"manifest"`.
            Defaults to `"folders"`.
        pattern: the regular expression of `regex` (or a preset: `fsdd`, `ravdess`,
            `speaker-id`).
        label_map: with `regex`: a preset name, `CODE=NAME,...` pairs, a JSON file, or a
            dict.
        path_column, label_column, clip_column, root: with `manifest`, as in
            `preprocessing.sources.manifest_source` (`None`: its defaults).

    Returns:
        `(rows, skipped)`: a DataFrame with `path` and `label`, and the skipped files.

    Raises:
        ConfigurationError: for an unknown source, an option the source does not take, or
            a required one missing (`regex` without a pattern).
        DatasetError: from the sources (missing folder, no matching file, missing column).
    """
    if source not in SOURCES:
        raise ConfigurationError(f"source={source!r}: expected one of {', '.join(SOURCES)}.")
    reader = sources.get(source)
    options = {o.key: o for o in reader.options}
    given = {"pattern": pattern, "label_map": label_map, "path_column": path_column,
             "label_column": label_column, "clip_column": clip_column, "root": root}
    for key in (k for k, v in given.items() if v is not None and k not in options):
        owners = [s for s in SOURCES if key in {o.key for o in sources.get(s).options}]
        raise ConfigurationError(f"--{key.replace('_', '-')} goes with the "
                                 f"{' or '.join(owners)} source; got source={source!r}.")
    values = {k: _parsed(options[k], v) for k, v in given.items() if k in options}
    frames, skipped = [], []
    for path in roots:
        rows, bad = reader.rows([str(path)], values)
        frames.append(rows)
        skipped += bad
    return pd.concat(frames, ignore_index=True), skipped


def model_task_name(model_or_instance_dir: str | Path, *, fold: int | None = None,
                    ensemble: bool = False,
                    dataset_info: Mapping[str, Any] | str | Path | None = None,
                    results_store: ResultsStore | None = None) -> str:
    """The task of saved model(s), read from their dataset description (no model is
    loaded): `evaluate` reads labelled files for one and annotated recordings for a
    detector, so it asks first."""
    models = resolve_models(model_or_instance_dir, fold=fold, ensemble=ensemble,
                            results_store=results_store)
    return task_of_info(info_for(models, dataset_info)).name


def evaluate_rows(model_or_instance_dir: str | Path, rows: pd.DataFrame, *,
                  fold: int | None = None, ensemble: bool = False,
                  dataset_info: Mapping[str, Any] | str | Path | None = None,
                  skipped: Sequence[Mapping[str, Any]] = (),
                  results_store: ResultsStore | None = None) -> dict[str, Any]:
    """Scores saved model(s) on labelled audio files.

    Args:
        model_or_instance_dir: a `.keras` file or an `instance_<k>` folder (see
            `xval.predict.resolve_models`).
        rows: DataFrame with `path` and `label` (e.g. from `source_rows`).
        fold: with an instance folder, keep this fold's model.
        ensemble: use the fold models even when `final.keras` exists.
        dataset_info: dict or path of the dataset description; `None` finds it.
        skipped: files the source could not use (`{"path", "reason"}`), reported.
        results_store: the results store the instance's records are read through.
            Defaults to a store of its own.

    Returns:
        dict: `model` (in words), `task_type`, `files`, `segments`, `skipped`, and `levels`
        (`clip`: one row per file, its segment logits averaged; `segment`). Each
        classification level has `accuracy`, `f1_macro`, `report` (scikit-learn's
        `classification_report` as a dict), `labels` and `confusion_matrix` (rows: true);
        each regression level has `rmse`, `mae`, `r2`.

    Raises:
        DatasetError: for labels the model does not know (listing them), non-numeric
            regression targets, or no usable file.
    """
    models = resolve_models(model_or_instance_dir, fold=fold, ensemble=ensemble,
                            results_store=results_store)
    info = model_dataset_info(models.paths[0], dataset_info)
    classes = info.classes
    task = task_of_info(info)
    labels = rows["label"].astype(str).to_numpy()
    targets = task.targets.of_files(labels, classes)
    skipped = list(skipped)
    answers: list[np.ndarray] = []
    segment_targets: list[Any] = []
    segment_files: list[int] = []
    paths = rows["path"].tolist()
    for k, path in enumerate(paths):  # outputs kept, features not: a file at a time
        try:
            done = file_outputs(path, feature_params_of(info, models), models.outputs)
        except DatasetError as e:
            skipped.append({"path": str(path), "reason": str(e)})
            continue
        answers.append(done["outputs"])
        segment_targets += [targets[k]] * len(done["outputs"])
        segment_files += [k] * len(done["outputs"])
    if not answers:
        raise DatasetError(f"No usable audio file among {len(paths)}; skipped: {skipped[:3]}")
    outputs = np.concatenate(answers)
    seg_targets, file_of = np.asarray(segment_targets), np.asarray(segment_files)
    files = np.unique(file_of)
    pooled = task.scoring.pool_by_clip(outputs, seg_targets, file_of)  # as its folds pool
    clip_out = pooled[1] if pooled is not None else \
        np.stack([outputs[file_of == f].mean(axis=0) for f in files])
    clip_targets = targets[files]
    levels = {}
    for level, y, out in (("clip", clip_targets, clip_out), ("segment", seg_targets, outputs)):
        levels[level] = task.scoring.evaluation_level(y, out, classes)
    return {"model": models.description, "task_type": task.name, "files": int(len(files)),
            "segments": int(len(outputs)), "skipped": skipped, "levels": levels}


def evaluate_recordings(model_or_instance_dir: str | Path, annotations: str | Path,
                        audio_root: str | Path, *, fold: int | None = None,
                        ensemble: bool = False,
                        dataset_info: Mapping[str, Any] | str | Path | None = None,
                        results_store: ResultsStore | None = None,
                        **read_kwargs: Any) -> dict[str, Any]:
    """Scores a detection model on annotated recordings, as its experiment scores its
    test recordings.

    The events are those `detect` finds (`xval.inference.detect.detect_files`: the
    instance's post-processing, the thresholds and median filter its folds chose on their
    validation recordings where it leaves them unset); the metrics are the experiment's:
    event F1 with a 200 ms collar (onsets and offsets), onset-only event F1, segment F1
    and error rate (1 s segments), frame F1 at the chosen thresholds, PSDS1 and PSDS2
    (`xval.psds`: the events at 50 thresholds, the other post-processing as chosen), and
    event F1 per class.
    The reference is the annotation itself (the experiment's is the same events on the
    frame grid: within a frame of it).

    Args:
        model_or_instance_dir: a `.keras` file or an `instance_<k>` folder of a detection
            experiment.
        annotations: the annotation CSV (wide or long, as `python -m preprocessing
            detection` reads it).
        audio_root: the folder of the annotated recordings.
        fold: with an instance folder, keep this fold's model.
        ensemble: use the fold models even when `final.keras` exists.
        dataset_info: dict or path of the dataset description; `None` finds it.
        results_store: the results store the records are read through (default: its own).
        **read_kwargs: passed to `preprocessing.read_annotations` (`layout`,
            `units`, `annotation_sample_rate`, columns, `context`, `merge_overlaps`); those
            not given are read as the model's store read its own annotations (its
            `dataset.json`'s `annotation_options`).

    Returns:
        dict: `model`, `task_type` (`"detection"`), `files`, `events` (annotated),
        `skipped` (audio files without annotation, or unreadable) and `levels`
        (`recording`: the overall metrics and `class_f1`, class -> event F1).

    Raises:
        ConfigurationError: when the model's task finds no events.
        DatasetError: for every annotation error (see `annotation_source`), an annotated
            label the model does not detect, or no readable recording.
    """
    store = results_store if results_store is not None else ResultsStore()
    info = info_for(resolve_models(model_or_instance_dir, fold=fold, ensemble=ensemble,
                                   results_store=store), dataset_info)
    task = task_of_info(info)
    task.scoring.event_rules(None)  # refuses a task whose models find no events
    options = {**info.annotation_options, **read_kwargs}
    recordings, events, skipped = annotation_source(annotations, audio_root, **options)
    if recordings.empty:
        raise DatasetError(f"{annotations} annotates no recording under {audio_root}.")
    skipped = list(skipped)
    unreadable: list[dict[str, str]] = []
    results = detect_files(model_or_instance_dir, recordings["path"].tolist(), fold=fold,
                           ensemble=ensemble, dataset_info=info, skipped=unreadable,
                           results_store=store)
    skipped += unreadable
    if not results:
        raise DatasetError(f"No readable recording among {len(recordings)}: "
                           f"{unreadable[:3]}")
    classes = _detected_classes(results, events, annotations)
    kept = recordings[~recordings["path"].astype(str).isin({s["path"] for s in unreadable})]
    files = kept["file"].astype(str).tolist()
    events = events[events["file"].astype(str).isin(files)]
    durations = dict(zip(files, kept["duration_s"].astype(float)))
    found = dict(zip(files, results))
    feature = feature_params_of(info)
    metrics = task.scoring.score_recordings(
        events, found, classes, durations,
        {k: feature[k] for k in ("sample_rate", "hop_length")})
    return {"model": results[0]["model"], "task_type": task.name, "files": len(files),
            "events": len(events), "skipped": skipped, "levels": {"recording": metrics}}


def _detected_classes(results: list[dict[str, Any]], events: pd.DataFrame,
                      annotations: str | Path) -> list[str]:
    """The classes the model detects; refuses annotated events of any other label."""
    classes = list(results[0]["classes"])
    unknown = sorted(set(events["label"]) - set(classes))
    if unknown:
        raise DatasetError(
            f"{annotations} has events labelled {unknown} that the model does not detect "
            f"(its classes: {classes}); drop those events or evaluate a model trained "
            "on them.")
    return classes


LEVEL_TITLES = {"clip": "Clip level (one row per file: its segment logits averaged; tagging: "
                        "their probabilities)",
                "segment": "Segment level (one row per segment)",
                "recording": "Recording level (the events found in each whole recording, "
                             "post-processed as the folds chose on validation)"}


def format_text(report: Mapping[str, Any]) -> str:
    """The evaluation as text: per level the metrics, the report and the confusion matrix."""
    counted = f"{report['segments']} segments" if "segments" in report \
        else f"{report['events']} annotated events"
    lines = [report["model"], f"{report['files']} files, {counted}"
             + (f", {len(report['skipped'])} skipped" if report["skipped"] else "")]
    for s in report["skipped"]:
        lines.append(f"  skipped {s['path']}: {s['reason']}")
    for level, data in report["levels"].items():
        lines += ["", LEVEL_TITLES[level]]
        lines += tasks.get(report["task_type"]).scoring.format_level(data)
    return "\n".join(lines)


def format_csv(report: Mapping[str, Any]) -> str:
    """The evaluation as one long CSV table: `level,label,metric,value`.

    The first line is a comment naming the model(s) (read with `comment="#"`). Per class:
    precision, recall, f1-score, support and `predicted_<class>` counts (the confusion
    matrix row); then `macro avg` / `weighted avg` rows; `accuracy` and `f1_macro` with an
    empty label. Regression: `rmse`, `mae`, `r2`.
    """
    records = []
    task = tasks.get(report["task_type"])
    for level, data in report["levels"].items():
        records += task.scoring.level_records(level, data)
    buffer = io.StringIO()
    buffer.write(f"# {' '.join(str(report['model']).splitlines())}\n")
    pd.DataFrame(records, columns=["level", "label", "metric", "value"]).to_csv(buffer,
                                                                              index=False)
    return buffer.getvalue()


