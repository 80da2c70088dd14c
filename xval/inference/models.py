"""The saved models that answer for a `.keras` file or an instance folder, and the features
of new audio files, extracted exactly as the model's dataset was built (the experiment saves
the store's `dataset.json` beside its results, and the model's folder leads to it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing.build import extract_file, feature_params
from preprocessing.features.stacked import STACKED, EncoderPart, align
from preprocessing.streaming import is_long, stream_features
from xval import tasks
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import ConfigurationError, DatasetError, XvalError
from xval.core.layout import ExperimentLayout, InstanceLayout
from xval.core.links import broken_link
from xval.core.parameters import FeatureParams
from xval.core.storage import ResultsStore, check_fold_file, check_fold_models
from xval.tasks.base import Task
from xval.training.loading import check_model_file, load


def _read_dataset_info(path: Path) -> DatasetInfo:
    """A `dataset.json` read and checked: a JSON object whose `feature_params` pass the
    same checks as when a store is built (`preprocessing.build.feature_params`)."""
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigurationError(
            f"{path} is not a readable JSON dataset description ({type(e).__name__}: "
            f"{str(e)[:120]}); pass the dataset.json of the store the model was trained "
            "on.") from e
    try:
        described = DatasetInfo.from_dict(info, where=str(path))
    except DatasetError as e:
        raise ConfigurationError(f"{e} Pass the dataset.json of the store the model was "
                                 "trained on.") from e
    found = described.recorded_feature_params
    if found is None:
        raise ConfigurationError(
            f"{path} has no feature_params: it was not written by "
            "`python -m preprocessing`, so features cannot be extracted the same way."
        )
    try:
        return described.replace(feature_params=feature_params(found).to_dict())
    except XvalError as e:
        raise ConfigurationError(f"{path}: its feature_params are not usable ({e}).") from e


def feature_params_of(info: DatasetInfo, models: ModelSet | None = None) -> FeatureParams:
    """The feature parameters of a dataset description, to extract new files' features as
    the store did; for models that take audio trained on an embedding store (the encoder
    inside, `xval.training.encoder`), the store's segments of audio instead.

    Args:
        info: the store's description.
        models: the models that will read the features. Defaults to `None`.

    Raises:
        ConfigurationError: when it has none (not written by `python -m preprocessing`).
    """
    found = info.feature_params
    if found is None:
        raise ConfigurationError(
            "The dataset description has no feature_params: it was not written by "
            "`python -m preprocessing`, so features cannot be extracted the same way.")
    if models is not None and info.encoder and models.takes_audio:  # not the encoder's options
        return feature_params(found.replace(options={}), feature="waveform", dtype="float32")
    return found


def check_input_shape(model: Any, shape: Sequence[int], where: str | Path,
                      described_by: str = "the dataset description") -> None:
    """Refuses features whose shape is not the one the model was built for (a dataset
    description of another store).

    Args:
        model: the `keras.Model`.
        shape: the shape of one row of the features.
        where: the model, in messages.
        described_by: where the dataset description came from (`ModelSet.described_by`:
            `--dataset-info PATH`, or the `dataset.json` found beside the model).

    Raises:
        DatasetError: naming both shapes, the description and the fix.
    """
    expected = tuple(getattr(model, "input_shape", (None,))[1:])
    if len(expected) != len(shape) or any(e is not None and e != s
                                          for e, s in zip(expected, shape)):
        raise DatasetError(
            f"{where} expects features of shape {expected}, the dataset description gives "
            f"{tuple(shape)}: {described_by} belongs to another store. Pass the dataset.json "
            "of the store the model was trained on (--dataset-info PATH).")


def dataset_info_for(model_path: str | Path, info_path: str | Path | None = None
                     ) -> DatasetInfo:
    """Finds the dataset description (`dataset.json`) that goes with a saved model.

    Looks at `info_path`, then the model's folder and its parents up to the experiment
    folder (`experiment_<N>/dataset.json`).

    Raises:
        ConfigurationError: when none is found, or it has no feature parameters.
    """
    return _read_dataset_info(dataset_info_path(model_path, info_path))


def dataset_info_path(model_path: str | Path, info_path: str | Path | None = None) -> Path:
    """The dataset description `dataset_info_for` reads (see there).

    Raises:
        ConfigurationError: when none is found, or `info_path` is not a file.
    """
    if info_path is not None:
        candidates = [Path(info_path)]
    else:
        parents = list(Path(model_path).resolve().parents)[:3]
        candidates = [ExperimentLayout(p).dataset_file for p in parents]
    for candidate in candidates:
        if info_path is not None and candidate.exists() and not candidate.is_file():
            raise ConfigurationError(
                f"--dataset-info {str(candidate)!r} is not a file; pass a store's "
                "dataset.json.")
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"No dataset.json found next to {model_path} (looked at "
        f"{', '.join(str(c) for c in candidates)}); pass --dataset-info PATH."
    )


def read_features(path: str | Path, params: Mapping[str, Any], *,
                  real_only: bool | None = None) -> Iterator[dict[str, Any]]:
    """The features of one audio file, extracted as the dataset's were, in chunks: a file
    of at most `preprocessing.streaming.LONG_SECONDS` whole (`extract_file`: one chunk), a
    longer one window batch by window batch (`stream_features`), so that memory does not
    grow with the file.

    Args:
        path: an audio file.
        params: the dataset's feature parameters.
        real_only: drop the silent and padding segments (`preprocessing.silent_segments`),
            so that a clip's score averages real segments only. Defaults to `None`: as the
            store was built (dropped unless `keep_silent_segments`). A detector keeps every
            window (`False`): its windows are stitched in time.

    Yields:
        dicts of `features` (`np.ndarray [shape=(segments, time, frequency)]`) and
        `starts` (seconds), in order; the last one also holds `duration` (seconds).

    Raises:
        DatasetError: for a file that cannot be read or holds no usable audio, naming it.
    """
    params = FeatureParams.of(params)
    if real_only is None:
        real_only = not params.keep_silent_segments
    if params.feature == STACKED:  # each encoder's features as its store's, aligned
        yield _stacked_features(path, params, real_only)
        return
    if is_long(path):
        try:
            yield from stream_features(path, params, real_only=real_only)
        except DatasetError as e:
            raise DatasetError(f"{path}: {e}") from None
        return
    result = extract_file(path, params)
    if "error" in result:
        raise DatasetError(f"{path}: {result['error']}")
    if real_only:
        real = ~np.asarray(result["silent"], bool)
        result = {**result, "features": result["features"][real],
                  "starts": [s for s, keep in zip(result["starts"], real) if keep]}
    yield {"features": result["features"], "starts": list(result["starts"]),
           "duration": result["duration"]}


def _stacked_features(path: str | Path, params: FeatureParams, real_only: bool
                      ) -> dict[str, Any]:
    """The features of one file for a stacked store (`preprocessing.features.stacked`):
    each part's, extracted as its own store's were, then aligned on the first part's rows,
    as `stack_stores` aligned the stores."""
    parts = [EncoderPart.of(p) for p in params.options.get("parts") or ()]
    read = [extract_features([path], part.feature_params, real_only=real_only)[0]
            for part in parts]
    return {"features": align(*[(r["features"], np.asarray(r["starts"], np.float64), part)
                                for r, part in zip(read, parts)]),
            "starts": read[0]["starts"], "duration": read[0]["duration"]}


PREDICT_BATCH = 32
"""The batch of `keras.Model.predict` (its default)."""
ROWS_BYTES = 8 << 20
"""About how many bytes of features a model is handed at a time for a long file."""


def _rows_per_call(features: np.ndarray) -> int:
    """Rows handed to a model at a time: about `ROWS_BYTES` of them (2,048 rows of the demo
    store's log-mel; 32, the least, of 2.5 s of 44.1 kHz audio), a multiple of
    `PREDICT_BATCH`, so that the model sees the batches the whole file would give it (the
    same outputs, to the bit)."""
    row = max(1, features[:1].nbytes)
    return max(PREDICT_BATCH, ROWS_BYTES // row // PREDICT_BATCH * PREDICT_BATCH)


def file_outputs(path: str | Path, params: Mapping[str, Any],
                 respond: Callable[[np.ndarray], np.ndarray], *,
                 real_only: bool | None = None) -> dict[str, Any]:
    """`respond` (a model's outputs, its embeddings) on every segment of one audio file,
    computed chunk by chunk (`read_features`, `_rows_per_call` rows at a time): only the
    outputs are kept.

    Returns:
        dict of `outputs` (`respond`'s rows of every segment, concatenated), `starts`
        (seconds) and `duration` (seconds).

    Raises:
        DatasetError: as `read_features`.
    """
    outputs, pending, starts, duration = [], [], [], 0.0
    for chunk in read_features(path, params, real_only=real_only):
        if len(chunk["features"]):
            pending.append(chunk["features"])
        starts += list(chunk["starts"])
        duration = float(chunk.get("duration", duration))
        rows, per_call = sum(len(p) for p in pending), _rows_per_call(chunk["features"])
        if rows >= per_call and "duration" not in chunk:
            ready = np.concatenate(pending)
            cut = rows // per_call * per_call
            for first in range(0, cut, per_call):
                outputs.append(np.asarray(respond(ready[first:first + per_call])))
            pending = [ready[cut:]]
    rest = np.concatenate(pending) if pending else np.zeros(0)
    if len(rest):
        outputs.append(np.asarray(respond(rest)))
    return {"outputs": np.concatenate(outputs), "starts": starts, "duration": duration}


def extract_features(files: Sequence[str | Path], params: Mapping[str, Any], *,
                     real_only: bool | None = None) -> list[dict[str, Any]]:
    """The features of audio files, extracted as the dataset's were (`read_features`),
    each file's held whole: for a few short files (the commands read files chunk by chunk
    through `file_outputs`).

    Returns:
        One dict per file: `features` (`np.ndarray [shape=(segments, time, frequency)]`),
        `starts` (seconds) and `duration`.

    Raises:
        DatasetError: for a file that cannot be read, naming it.
    """
    out = []
    for path in files:
        chunks = list(read_features(path, params, real_only=real_only))
        out.append({"features": np.concatenate([c["features"] for c in chunks]),
                    "starts": [s for c in chunks for s in c["starts"]],
                    "duration": chunks[-1]["duration"]})
    return out


_PREDICT_BATCH = 32
"""Rows per prediction batch (Keras's default)."""

class ModelSet:
    """The saved model(s) that answer for a `.keras` path or an instance folder.

    Args:
        paths: the `.keras` files; several make a cross-validation ensemble.
        description: what they are, in words (e.g. `"ensemble of 4 fold models of
            instance_1"`), printed by `predict` and `evaluate`.
        results_store: the results store their fold records are read through. Defaults to
            a store of its own.
    """

    def __init__(self, paths: Sequence[str | Path], description: str,
                 results_store: ResultsStore | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.description = description
        self.results_store = results_store if results_store is not None else ResultsStore()
        self.described_by = "the dataset description"  # set by `info_for`
        self._models: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def models(self) -> list[Any]:
        """The loaded `keras.Model`s (loaded on first use)."""
        if self._models is None:
            self._models = [load(p) for p in self.paths]
        return self._models

    @property
    def takes_audio(self) -> bool:
        """Whether the models take audio (their input is named `audio`)."""
        return self.models[0].inputs[0].name == "audio"

    def use_loaded(self, models: Sequence[Any]) -> None:
        """Answers with `models`, already loaded, instead of loading `paths`."""
        self._models = list(models)

    def outputs(self, features: np.ndarray) -> np.ndarray:
        """The models' outputs (logits or regression values), averaged over the models.

        Args:
            features: `np.ndarray [shape=(n, time, frequency)]`.

        Returns:
            `np.ndarray [shape=(n, outputs)]`, float64.
        """
        x = np.asarray(features, dtype=np.float32)
        n = len(x)
        # Whole batches, then the rest padded (copies of the last row) to a power of two:
        # at most six compiled programs per model, and a file of one segment costs one row,
        # not a batch of 32 (a model holding an encoder costs seconds per row on a CPU).
        whole = n - n % _PREDICT_BATCH
        tail = 1 << (n - whole - 1).bit_length() if n > whole else 0
        padded = np.concatenate([x, np.repeat(x[-1:], whole + tail - n, axis=0)]) \
            if n else x
        total = np.zeros(0)
        for k, model in enumerate(self.models):
            check_input_shape(model, x.shape[1:], self.paths[k] if self.paths else "model",
                              self.described_by)
            out = np.concatenate([
                np.asarray(model.predict(part, batch_size=size, verbose=0), dtype=np.float64)
                for part, size in ((padded[:whole], _PREDICT_BATCH), (padded[whole:], tail))
                if len(part)] or [np.zeros((0, 1))])[:n]
            total = out if k == 0 else total + out
        return total / len(self.models)

    def __repr__(self) -> str:
        return f"ModelSet({self.description!r})"


def resolve_models(model_or_instance_dir: str | Path, *, fold: int | None = None,
                   ensemble: bool = False,
                   results_store: ResultsStore | None = None) -> ModelSet:
    """The model(s) to use for a `.keras` path or an `instance_<k>` folder.

    For an instance folder: `fold_<fold>.keras` when `fold` is given; else `final.keras`
    (the refit model) when it exists and `ensemble` is off; else every `fold_<i>.keras` as a
    cross-validation ensemble.

    Args:
        model_or_instance_dir: a `.keras` file or an `instance_<k>` folder.
        fold: keep the single model of this fold. Defaults to `None`.
        ensemble: use the fold models even when `final.keras` exists. Defaults to `False`.
        results_store: the results store the fold records are read through (`ModelSet`).
            Defaults to a store of its own.

    Returns:
        A `ModelSet`.

    Raises:
        ConfigurationError: for `fold` with `ensemble`, `fold`/`ensemble` with a `.keras`
            file, a missing fold model (listing the present ones), or a folder without
            models.
    """
    path = Path(model_or_instance_dir)
    store = results_store if results_store is not None else ResultsStore()
    if not path.exists():
        broken = broken_link(path)
        raise ConfigurationError(
            f"Model {str(path)!r} does not exist" + (f" (it is {broken})" if broken else "")
            + "; give a .keras file or an instance_<k> folder.")
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
        check_model_file(path, "Model")  # its zip directory, before anything else
        owner = InstanceLayout.parse(path.absolute().parent)
        if owner is not None:  # a fold model alone is checked against its record too
            check_fold_file(owner, path, store)
        where = f" of {owner.root.name}" if owner is not None else ""
        return ModelSet([path], f"model {path.name}{where}", store)
    return _instance_models(InstanceLayout.of_folder(path), fold, ensemble, store)


def _instance_models(layout: InstanceLayout, fold: int | None, ensemble: bool,
                     store: ResultsStore) -> ModelSet:
    """The models of an instance folder (see `resolve_models`)."""
    if layout.ensemble_file.is_file():
        raise ConfigurationError(
            f"{layout.root} is an ensemble of instances (ensemble.json): `python -m xval "
            "predict` and `export` answer with it (in Python, `predict_files` once "
            "`xval.ensembles.run.install()` has run); evaluate, detect and embed take one of "
            "its members' folders.")
    folds = layout.fold_models()
    name = layout.root.name
    if fold is not None:
        if fold not in folds:
            raise ConfigurationError(
                f"--fold {fold}: {layout.root} has no {layout.fold_model(fold).name}; its "
                f"fold models are {list(folds) or 'none'}."
            )
        check_fold_models(layout, {fold: folds[fold]}, store, complete=False)
        return ModelSet([folds[fold]], f"fold {fold} model of {name}", store)
    if layout.final_model.is_file() and not ensemble:
        return ModelSet([layout.final_model], f"final model of {name} (refit on all items; "
                                              "--ensemble uses the fold models)", store)
    previous = layout.previous
    if previous.is_dir():  # `--overwrite` is training it again (xval.running.runner)
        raise ConfigurationError(
            f"{layout.root} is being trained again: `--overwrite` keeps its previous results "
            f"in {previous.name} until the new ones complete (or puts them back if the run "
            f"stops), so its fold models ({len(folds)} so far) are not one run's; wait for "
            "the run to end, or choose one fold with --fold.")
    if not folds:
        raise ConfigurationError(
            f"{layout.root} holds no fold_<i>.keras models (nor final.keras): pass an "
            "instance_<k> folder of a run, or a .keras file."
        )
    check_fold_models(layout, folds, store)
    return ModelSet(list(folds.values()), f"ensemble of {len(folds)} fold models of {name}",
                    store)


def info_for(models: ModelSet,
             dataset_info: Mapping[str, Any] | str | Path | None) -> DatasetInfo:
    """The dataset description of `models`: `dataset_info` when it is one (a mapping), else
    found (see `dataset_info_for`); a `--dataset-info` of another encoder than the models'
    is refused (`_check_same_encoder`)."""
    info = model_dataset_info(models.paths[0], dataset_info)
    if dataset_info is not None and not isinstance(dataset_info, Mapping):
        _check_same_encoder(models, info, dataset_info)
        models.described_by = f"--dataset-info {str(dataset_info)!r}"
    elif dataset_info is None:
        found = dataset_info_path(models.paths[0])
        models.described_by = f"{str(found)!r} (the dataset.json found beside the model)"
    return info


def model_dataset_info(model_path: str | Path,
                       dataset_info: Mapping[str, Any] | str | Path | None) -> DatasetInfo:
    """The dataset description of a model: `dataset_info` when it is one (a mapping, such
    as the content of a `dataset.json`), else found (see `dataset_info_for`).

    Raises:
        ConfigurationError: when none is found, or it has no feature parameters.
        DatasetError: for a mapping whose known entries have the wrong types.
    """
    if isinstance(dataset_info, Mapping):
        return DatasetInfo.from_dict(dataset_info)
    return dataset_info_for(model_path, dataset_info)


def _check_same_encoder(models: ModelSet, info: DatasetInfo, given: str | Path) -> None:
    """Refuses a `--dataset-info` whose encoder is not the one the models were trained on
    (when the models' own dataset.json says which), nor the same encoders side by side in
    the same order (a stacked store): embeddings of another encoder mean nothing to them,
    even where the shapes agree."""
    try:
        own = dataset_info_for(models.paths[0])
    except ConfigurationError:
        return
    if own.encoded_by != info.encoded_by:
        raise ConfigurationError(
            f"--dataset-info {str(given)!r} describes a store of "
            f"{info.encoded_by or info.feature!r} features, but the models were trained on "
            f"{own.encoded_by or own.feature!r} features; pass the dataset.json of the store "
            "they were trained on (or drop --dataset-info).")


def task_of_info(info: DatasetInfo) -> Task:
    """The task of a dataset description (`dataset.json`): its `task_type`, or
    `tasks.DEFAULT` for one that names none."""
    return tasks.get(info.task_type or tasks.DEFAULT)
