"""Scoring saved models on new labelled audio: `python -m xval evaluate`.

Rows come from the preprocessing sources (class folders, a regular expression, a CSV
manifest); features are extracted with the model's own feature parameters; the models are
those `xval.predict.resolve_models` picks (one `.keras`, a fold, the refit model, or the
cross-validation ensemble of an instance folder).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preprocessing import sources
from preprocessing.sources import LABEL_MAPS
from xval import tasks
from xval.core.errors import ConfigurationError, DatasetError
from xval.inference.models import (
    DatasetInfo,
    dataset_info_for,
    extract_features,
    resolve_models,
    task_of,
)

SOURCES = ("folders", "regex", "manifest")


def _label_map(text: str | dict[str, str] | None) -> dict[str, str] | None:
    if text is None or isinstance(text, dict):
        return text
    if text in LABEL_MAPS:
        return LABEL_MAPS[text]
    pairs = [p.split("=", 1) for p in text.split(",") if p]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ConfigurationError(
            f"--label-map {text!r}: expected a preset ({', '.join(LABEL_MAPS)}) or CODE=NAME "
            "pairs like 01=neutral,02=calm."
        )
    return dict(pairs)


def source_rows(roots: Iterable[str | Path], *, source: str = "folders",
                pattern: str | None = None, label_map: str | dict[str, str] | None = None,
                path_column: str = "path", label_column: str = "label",
                clip_column: str | None = None, root: str | Path | None = None
                ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Labelled audio files from one or more sources, read with `preprocessing.sources`.

    Args:
        roots: folders (`folders`, `regex`) or CSV files (`manifest`).
        source: `"folders"` (a folder per class), `"regex"` or `"manifest"`.
            Defaults to `"folders"`.
        pattern: the regular expression of `regex` (or a preset: `fsdd`, `ravdess`,
            `speaker-id`).
        label_map: with `regex`: a preset name, `CODE=NAME,...` pairs, or a dict.
        path_column, label_column, clip_column, root: with `manifest`, as in
            `preprocessing.sources.manifest_source`.

    Returns:
        `(rows, skipped)`: a DataFrame with `path` and `label`, and the skipped files.

    Raises:
        ConfigurationError: for an unknown source, or a pattern without `regex`.
        DatasetError: from the sources (missing folder, no matching file, missing column).
    """
    if source not in SOURCES:
        raise ConfigurationError(f"source={source!r}: expected one of {', '.join(SOURCES)}.")
    if (pattern is not None) != (source == "regex"):
        raise ConfigurationError(
            "--pattern goes with the regex source, and the regex source needs --pattern "
            f"(got source={source!r}, pattern={pattern!r})."
        )
    presets = {"fsdd": sources.FSDD_PATTERN, "ravdess": sources.RAVDESS_PATTERN,
               "speaker-id": sources.SPEAKER_ID_PATTERN}
    frames, skipped = [], []
    for path in roots:
        if source == "folders":
            rows, bad = sources.folder_source(path)
        elif source == "regex":
            rows, bad = sources.regex_source(path, presets.get(str(pattern), str(pattern)),
                                             label_map=_label_map(label_map))
        else:
            rows, bad = sources.manifest_source(path, path_column=path_column,
                                                label_column=label_column,
                                                clip_column=clip_column, root=root)
        frames.append(rows)
        skipped += bad
    return pd.concat(frames, ignore_index=True), skipped


def evaluate_rows(model_or_instance_dir: str | Path, rows: pd.DataFrame, *,
                  fold: int | None = None, ensemble: bool = False,
                  dataset_info: DatasetInfo | str | Path | None = None,
                  skipped: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Scores saved model(s) on labelled audio files.

    Args:
        model_or_instance_dir: a `.keras` file or an `instance_<k>` folder (see
            `xval.predict.resolve_models`).
        rows: DataFrame with `path` and `label` (e.g. from `source_rows`).
        fold: with an instance folder, keep this fold's model.
        ensemble: use the fold models even when `final.keras` exists.
        dataset_info: dict or path of the dataset description; `None` finds it.
        skipped: files the source could not use (`{"path", "reason"}`), reported.

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
    models = resolve_models(model_or_instance_dir, fold=fold, ensemble=ensemble)
    info = dataset_info if isinstance(dataset_info, dict) else \
        dataset_info_for(models.paths[0], dataset_info)
    classes = list(info.get("classes") or [])
    task = task_of(info)
    labels = rows["label"].astype(str).to_numpy()
    targets = task.file_targets(labels, classes)
    skipped = list(skipped)
    features: list[np.ndarray] = []
    segment_targets: list[Any] = []
    segment_files: list[int] = []
    paths = rows["path"].tolist()
    for k, path in enumerate(paths):
        try:
            feats = extract_features([path], info["feature_params"])[0]
        except DatasetError as e:
            skipped.append({"path": str(path), "reason": str(e)})
            continue
        features.append(feats["features"])
        segment_targets += [targets[k]] * len(feats["features"])
        segment_files += [k] * len(feats["features"])
    if not features:
        raise DatasetError(f"No usable audio file among {len(paths)}; skipped: {skipped[:3]}")
    outputs = models.outputs(np.concatenate(features))
    seg_targets, file_of = np.asarray(segment_targets), np.asarray(segment_files)
    files = np.unique(file_of)
    clip_out = np.stack([outputs[file_of == f].mean(axis=0) for f in files])
    clip_targets = targets[files]
    levels = {}
    for level, y, out in (("clip", clip_targets, clip_out), ("segment", seg_targets, outputs)):
        levels[level] = task.evaluation_level(y, out, classes)
    return {"model": models.description, "task_type": task.name, "files": int(len(files)),
            "segments": int(len(outputs)), "skipped": skipped, "levels": levels}


LEVEL_TITLES = {"clip": "Clip level (one row per file: its segment logits averaged)",
                "segment": "Segment level (one row per segment)"}


def format_text(report: Mapping[str, Any]) -> str:
    """The evaluation as text: per level the metrics, the report and the confusion matrix."""
    lines = [report["model"],
             f"{report['files']} files, {report['segments']} segments"
             + (f", {len(report['skipped'])} skipped" if report["skipped"] else "")]
    for s in report["skipped"]:
        lines.append(f"  skipped {s['path']}: {s['reason']}")
    for level, data in report["levels"].items():
        lines += ["", LEVEL_TITLES[level]]
        lines += tasks.get(report["task_type"]).format_level(data)
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
        records += task.level_records(level, data)
    buffer = io.StringIO()
    buffer.write(f"# {report['model']}\n")
    pd.DataFrame(records, columns=["level", "label", "metric", "value"]).to_csv(buffer,
                                                                              index=False)
    return buffer.getvalue()


