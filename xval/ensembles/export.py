"""An ensemble of instances (`ensemble.json`) exported: one Keras model with the members
inside when every member's models take audio of the same segments (`ensemble_model`), else why not
(`apart_reason`: the command line then exports each member apart); what its model card says of
it (`ensemble_card`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xval.core.dataset_info import DatasetInfo
from xval.core.records import EnsembleRecord
from xval.core.records.ensemble import VALIDATION
from xval.inference.export import ensemble, takes_audio
from xval.inference.models import ModelSet
from xval.report.card import scores_section
from xval.report.results import InstanceResult
from xval.tasks.base import Task


def ensemble_model(members: Sequence[ModelSet], weights: Sequence[float], task: Task,
          infos: Sequence[DatasetInfo]) -> Any:
    """One Keras model answering as an ensemble of instances whose models all take audio:
    each member's fold models together (`ensemble`), side by side on the same segment of
    audio.

    Args:
        members: each member's fold models.
        weights: each member's weight (summing to 1).
        task: their task.
        infos: each member's store description.

    Returns:
        A `keras.Model` from `audio` `(batch, samples)` to `scores` `(batch, classes)`,
        the weighted mean of the members' per-segment scores, and `member_scores`
        `(batch, members, classes)`, each member's (a clip's scores, as `predict` gives
        them, pool each member's windows first: `Scoring.ensemble_clip_rule`).
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    nets = [ensemble(m, task, info, name=f"member_{k}")
            for k, (m, info) in enumerate(zip(members, infos))]
    inputs = keras.Input(tuple(nets[0].input_shape[1:]), name="audio")
    outs = [net(inputs) for net in nets]
    k = outs[0].shape[-1]
    stacked = keras.layers.Concatenate(axis=1, name="member_scores")(
        [keras.layers.Reshape((1, k), name=f"member_{i}_row")(o) for i, o in enumerate(outs)])
    weighted = keras.layers.Add(name="scores")(
        [keras.layers.Rescaling(float(w), name=f"weight_{i}")(o)
         for i, (w, o) in enumerate(zip(weights, outs))])
    model = keras.Model(inputs, [weighted, stacked], name="xval_ensemble_export")
    model.trainable = False
    return model


def apart_reason(members: Sequence[tuple[str, ModelSet, DatasetInfo]]) -> str:
    """Why an ensemble of instances cannot be one exported model (`""` when it can): a
    member whose models take store features, or members cut into other segments.

    Args:
        members: `(label, fold models, store description)` of each member.
    """
    for label, models, _ in members:
        if not takes_audio(models.models[0]):
            return (f"{label} takes store features (computed outside its model), not audio, "
                    "so no one model takes audio for every member")
    cuts = {(info.feature_params.sample_rate, info.feature_params.segment_seconds)
            if info.feature_params else None for _, _, info in members}
    shapes = {tuple(models.models[0].input_shape[1:]) for _, models, _ in members}
    if len(cuts) > 1 or len(shapes) > 1:
        described = "; ".join(f"{label}: {info.feature_params.segment_seconds} s at "
                              f"{info.feature_params.sample_rate} Hz" if info.feature_params
                              else f"{label}: unknown" for label, _, info in members)
        return (f"the members take other segments of audio ({described}), so no one "
                "model takes a row for every member")
    return ""


def ensemble_card(ensemble: InstanceResult | None, record: EnsembleRecord,
                  apart: str | None) -> str:
    """What the card says of an ensemble of instances: its members and weights, how their
    scores are fused, and its cross-validated scores.

    Args:
        ensemble: the ensemble's instance, as read.
        record: its `EnsembleRecord`.
        apart: why the members were exported apart (the whole card is then this text), or
            `None` when they are inside one model (a section appended to its card).

    Returns:
        Markdown.
    """
    weights = record.weights()
    members = [f"- instance {k}: weight {w:.2f} (mean over folds)"
               + (f"; `member_{k}/` holds its model and its own card" if apart else "")
               for k, w in zip(record.instances, weights)]
    per_fold = ["", "| fold | " + " | ".join(f"instance {k}" for k in record.instances)
                + " | chosen on |", "|" + " --- |" * (len(record.instances) + 2)]
    per_fold += [f"| {f['fold']} | " + " | ".join(f"{w:.2f}" for w in f["weights"])
                 + f" | {f.get('chosen_on', '')} |" for f in record.folds]
    fusion = ("A clip's scores: each member's clip scores (its own input, segments and clip "
              "rule: see its card), averaged with the weights below, as `python -m xval "
              "predict` gives them for the ensemble's folder.")
    how = (f"{record.objective} on each fold's validation clips; the weights sum to 1" if
           record.weighting == VALIDATION else "the same weight for every member in every fold")
    body = ["## Ensemble", "", f"- Weighting: {record.weighting} ({how}).", *members, "",
            fusion, *per_fold, ""]
    if apart is None:
        return "\n".join(["", *body[:2], "- Outputs: `scores`, the members' scores of each "
                          "segment averaged with the weights; `member_scores` `(batch, members, "
                          "classes)`, each member's.", *body[2:]]) + "\n"
    name = "/".join(ensemble.path.parts[-3:]) if ensemble is not None else "ensemble"
    head = [f"# Model card: {name} (an ensemble of instances)", "",
            f"Written by `python -m xval export`. The members are exported apart: {apart}.",
            ""]
    return "\n".join([*head, *body, *scores_section(ensemble)]) + "\n"
