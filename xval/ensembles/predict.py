"""`predict` with an ensemble of instances (`instance_<k>/ensemble.json`): each member answers
through its own input path (its own store's feature parameters, or audio into a model that
takes audio), and the members' clip scores are averaged with the ensemble's weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xval import tasks
from xval.core.errors import ConfigurationError
from xval.core.layout import InstanceLayout
from xval.core.records import EnsembleRecord, FoldResult, Postprocessing
from xval.core.storage import ResultsStore
from xval.ensembles.members import member_layout, member_name, retrained
from xval.inference.predict import register_folder

Predict = Callable[..., list[dict[str, Any]]]
"""`predict_files(member_dir, files, fold=..., ensemble=..., results_store=...)`, handed in
(it calls this module for an ensemble)."""


def ensemble_record(folder: str | Path, results_store: ResultsStore) -> EnsembleRecord | None:
    """The `ensemble.json` of an instance folder (read through `results_store`), or `None`
    (a trained instance, a file).

    Raises:
        ConfigurationError: when it cannot be read.
    """
    path = Path(folder)
    if not path.is_dir():
        return None
    layout = InstanceLayout.of_folder(path)
    if not layout.ensemble_file.exists():
        return None
    record, problem = results_store.read_record(layout.ensemble_file, EnsembleRecord.from_dict)
    if record is None:
        raise ConfigurationError(f"{layout.ensemble_file} {problem}: rebuild the ensemble "
                                 "with python -m xval ensemble (or rerun its experiment).")
    return record


def member_folders(folder: str | Path, record: EnsembleRecord,
                   results_store: ResultsStore) -> list[Path]:
    """The members' instance folders (a member of another experiment: its folder relative
    to the ensemble's experiment), their records read through `results_store`.

    Raises:
        ConfigurationError: for a member whose folder is gone, or whose `params.json` now
            names other parameters than the ones the ensemble was made from (its weights and
            scores are of the models it replaced).
    """
    experiment = Path(folder).parent
    found = []
    for member in record.members:
        layout = member_layout(experiment, member)
        if not layout.root.is_dir():
            raise ConfigurationError(f"{layout.root}, a member of the ensemble {folder}, does "
                                     "not exist; restore it (the ensemble answers with its "
                                     "members' models).")
        now = results_store.params(layout)[0]
        change = retrained(member, now.hash if now is not None else None,
                           _models_now(layout, results_store))
        if change:
            how = (f"with other parameters (params hash {change.params[1][:12]}) since the "
                   f"ensemble was made from it ({change.params[0][:12]})" if change.params else
                   f"since the ensemble was made from it (the model of fold(s) "
                   f"{', '.join(map(str, change.folds))} is not the one it fused: another "
                   "SHA-256)")
            raise ConfigurationError(
                f"{layout.root}, a member of the ensemble {folder}, was trained again {how}: "
                f"its weights and scores are not this member's; {_again(folder, record)}.")
        found.append(layout.root)
    return found


def _again(folder: str | Path, record: EnsembleRecord) -> str:
    """How to compute the ensemble at `folder` again (for messages)."""
    names = " ".join(member_name(str(m.get("experiment", ".")), int(m["instance"]))
                     for m in record.members)
    return ("compute the ensemble again (rerun its experiment script with its number, or "
            f"python -m xval ensemble {Path(folder).parent} {names} --as "
            f"{Path(folder).name.split('_')[-1]} --overwrite)")


def _models_now(layout: InstanceLayout, results_store: ResultsStore
                ) -> dict[int, str | None]:
    """Fold number -> the SHA-256 of the model its fold record names now (`None` for a
    record that cannot be read, or names none)."""
    out: dict[int, str | None] = {}
    for i, path in layout.fold_files().items():
        fold, _ = results_store.read_record(path, FoldResult.from_dict)
        out[i] = fold.model_sha256 if fold is not None and fold.ok else None
    return out


def task_of_ensemble(folder: str | Path, results_store: ResultsStore) -> tasks.Task:
    """The task the ensemble's `params.json` records (classification when none)."""
    params, _ = results_store.params(InstanceLayout.of_folder(folder))
    return tasks.get((params.task_type if params else None) or tasks.DEFAULT)


def ensemble_postprocessing(folder: str | Path, results_store: ResultsStore,
                            fold: int | None = None) -> Postprocessing | None:
    """What the ensemble chose on its fused validation clips (tagging: each label's
    threshold): fold `fold`'s choice, else the median over its folds
    (`Postprocessing.merged`); `None` when its fold records hold none.

    Raises:
        ConfigurationError: for a fold record that is not believed (edited by hand, not
            readable): its choice is not the one the ensemble made.
    """
    layout = InstanceLayout.of_folder(folder)
    chosen = []
    for number, path in layout.fold_files().items():
        if fold is not None and number != fold:
            continue
        record, why = results_store.read_record(path, FoldResult.from_dict)
        if why:
            made = ensemble_record(folder, results_store)
            raise ConfigurationError(
                f"{path} {why}, so its choice (thresholds) cannot be believed; restore it, or "
                + (_again(folder, made) if made is not None else "rerun the fold") + ".")
        if record is not None and record.postprocessing is not None:
            chosen.append(record.postprocessing)
    return Postprocessing.merged(chosen)


def predict_ensemble(folder: str | Path, record: EnsembleRecord, files: Sequence[str | Path],
                     predict: Predict, *, fold: int | None = None,
                     ensemble: bool = False,
                     results_store: ResultsStore) -> list[dict[str, Any]]:
    """Clip scores of an ensemble of instances on audio files: the weighted mean of its
    members' `predict` clip scores.

    Args:
        folder: the ensemble's instance folder.
        record: its `EnsembleRecord`.
        files: audio files.
        predict: `xval.inference.predict.predict_files`.
        fold: each member's model of this fold, and this fold's weights; `None`: each
            member's models as `predict` takes them (its fold models, or its final model)
            and the weights' mean over folds.
        ensemble: the members' fold models even where a final model exists.
        results_store: the results store the records are read through.

    Returns:
        One dict per file, as `predict_files` gives (`segments` empty: the members may cut
        a file differently), with `members`: each member's weight and clip scores.
    """
    weights = record.weights(fold)
    folders = member_folders(folder, record, results_store)
    # its fold records believed, before any member's model is loaded
    chosen = ensemble_postprocessing(folder, results_store, fold)
    fusion = task_of_ensemble(folder, results_store).scoring.fusion
    if fusion is None:
        raise ConfigurationError(f"{folder} is an ensemble of a task whose scores are not "
                                 "fused; rebuild it from instances of a task that is.")
    answers = [predict(path, files, fold=fold, ensemble=ensemble, results_store=results_store)
               for path in folders]
    params: dict[str, Any] | None = chosen.apply({}) if chosen is not None else None
    described = " + ".join(f"{w:.2f} x {a[0]['model']}" for w, a in zip(weights, answers)) \
        if answers and answers[0] else ""
    out = []
    for j, path in enumerate(files):
        clips = [a[j]["clip"]["scores"] for a in answers]
        scores = {name: float(sum(w * c[name] for w, c in zip(weights, clips)))
                  for name in clips[0]}
        predicted: Any = fusion.decide(scores, params)
        out.append({"file": str(path),
                    "model": f"ensemble of {len(folders)} instances ({described})",
                    "segments": [], "clip": {"scores": scores, "predicted": predicted},
                    "members": [{"instance": int(m["instance"]), "weight": w,
                                 "clip": a[j]["clip"]}
                                for m, w, a in zip(record.members, weights, answers)]})
    return out


def predict_folder(folder: str | Path, files: Sequence[str | Path], predict: Predict, *,
                   fold: int | None, ensemble: bool, dataset_info: Any, model: Any,
                   embedding_classifier: bool, results_store: ResultsStore
                   ) -> list[dict[str, Any]] | None:
    """`predict` on an ensemble's folder (`predict_ensemble`), or `None` for a folder that
    holds no ensemble (`xval.inference.predict.register_folder`).

    Raises:
        ConfigurationError: for a dataset description, a loaded model or the embedding
            classifiers given with an ensemble (each member has its own).
    """
    record = ensemble_record(folder, results_store)
    if record is None:
        return None
    if dataset_info is not None or model is not None or embedding_classifier:
        raise ConfigurationError(
            f"{folder} is an ensemble of instances: each member reads its own dataset.json "
            "and model; --dataset-info and --embedding-classifier go with a member.")
    return predict_ensemble(folder, record, files, predict, fold=fold, ensemble=ensemble,
                            results_store=results_store)


def install_predict() -> None:
    """Makes `predict` (`xval.inference.predict.predict_files`) answer an ensemble's folder
    (`predict_folder`): the entry points install it, inference never imports the ensembles;
    a second call changes nothing."""
    register_folder(predict_folder)
