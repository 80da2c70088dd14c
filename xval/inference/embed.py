"""`embed`: the outputs of an inner layer of a saved model, for every segment of audio
files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xval.inference.models import (
    check_input_shape,
    describe,
    extract_features,
    feature_params_of,
)
from xval.training.embeddings import layer_for
from xval.training.loading import embedding_model, load


def embed_files(model_path: str | Path, files: Sequence[str | Path], layer: str | None = None,
                *, dataset_info: Mapping[str, Any] | str | Path | None = None
                ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Outputs of an inner layer for every segment of every file.

    Args:
        model_path: a `.keras` file.
        files: audio files.
        layer: the layer's name; `None` takes the layer named `bottleneck` where there is
            one (the code of an autoencoder such as `conv_autoencoder`), else the input of
            the model's last layer (the penultimate representation), as the embedding
            classifiers do (`embedding_layer = auto`).
        dataset_info: dict or path of the dataset description; `None` finds it.

    Returns:
        `(embeddings [shape=(segments, dims)], index)`: `index` is a list of
        `{"file", "segment", "start"}` rows, one per embedding row.
    """
    info = describe(model_path, dataset_info)
    model = load(model_path)
    fn = embedding_model(model, layer_for(model, layer or "auto"))
    rows, index = [], []
    for path, feats in zip(files, extract_features(files, feature_params_of(info))):
        check_input_shape(model, feats["features"].shape[1:], model_path)
        out = np.asarray(fn(feats["features"].astype(np.float32)))
        rows.append(out.reshape(len(out), -1))
        index += [{"file": str(path), "segment": k, "start": s}
                  for k, s in enumerate(feats["starts"])]
    return np.concatenate(rows), index
