"""`embed`: the outputs of an inner layer of a saved model, for every segment of audio
files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xval.core.errors import ConfigurationError
from xval.core.layout import InstanceLayout
from xval.core.storage import ResultsStore
from xval.inference.models import (
    ModelSet,
    check_input_shape,
    feature_params_of,
    file_outputs,
    info_for,
    resolve_models,
)
from xval.training.embeddings import layer_for
from xval.training.layers import embedding_model


def embedding_model_set(model_or_instance_dir: str | Path, fold: int | None = None,
                        results_store: ResultsStore | None = None) -> ModelSet:
    """The one model `embed` reads, found as `predict` finds its models
    (`xval.inference.models.resolve_models`): a `.keras` file; for an instance folder, the
    model of fold `fold`, else its `final.keras` (after `--refit`), else its only fold
    model.

    Raises:
        ConfigurationError: for what `resolve_models` refuses, and for an instance folder
            of several fold models without `final.keras` and without `fold` (each fold's
            model has its own embedding space: their outputs cannot be averaged).
    """
    models = resolve_models(model_or_instance_dir, fold=fold, results_store=results_store)
    if len(models) > 1:
        folds = sorted(i for p in models.paths
                       if (i := InstanceLayout.fold_of_model(p)) is not None)
        raise ConfigurationError(
            f"{str(model_or_instance_dir)!r} holds {len(models)} fold models and no "
            "final.keras; each has its own embedding space, so embed reads one: give "
            f"--fold I (one of {folds}), or refit the instance first (`python <script> "
            "--refit K`) and embed with its final.keras.")
    return models


def embed_files(model_or_instance_dir: str | Path, files: Sequence[str | Path],
                layer: str | None = None, *, fold: int | None = None,
                dataset_info: Mapping[str, Any] | str | Path | None = None,
                results_store: ResultsStore | None = None
                ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Outputs of an inner layer for every segment of every file.

    Args:
        model_or_instance_dir: a `.keras` file or an `instance_<k>` folder, as for
            `predict` (see `embedding_model_set`).
        files: audio files.
        layer: the layer's name; `None` takes the layer named `bottleneck` where there is
            one (the code of an autoencoder such as `conv_autoencoder`), else the input of
            the model's last layer (the penultimate representation), as the embedding
            classifiers do (`embedding_layer = auto`).
        fold: with an instance folder, the model of this fold. Defaults to `None`.
        dataset_info: dict or path of the dataset description; `None` finds it.
        results_store: the results store the instance's records are read through.
            Defaults to a store of its own.

    Returns:
        `(embeddings [shape=(segments, dims)], index)`: `index` is a list of
        `{"file", "segment", "start"}` rows, one per embedding row.

    Raises:
        ConfigurationError: for a model that cannot be found or read, or an instance
            folder of several fold models without `fold` or `final.keras`.
    """
    models = embedding_model_set(model_or_instance_dir, fold, results_store)
    info = info_for(models, dataset_info)
    model, path = models.models[0], models.paths[0]
    fn = embedding_model(model, layer_for(model, layer or "auto"))
    def embed(features: np.ndarray) -> np.ndarray:
        check_input_shape(model, features.shape[1:], path, models.described_by)
        out = np.asarray(fn(features.astype(np.float32)))
        return out.reshape(len(out), -1)

    rows, index = [], []
    for file in files:  # one file at a time, a long one window batch by window batch
        done = file_outputs(file, feature_params_of(info, models), embed)
        rows.append(done["outputs"])
        index += [{"file": str(file), "segment": k, "start": s}
                  for k, s in enumerate(done["starts"])]
    return np.concatenate(rows), index
