"""An ensemble of instances: a derived instance computed from its members' recorded
predictions, fold by fold, on the same folds and clips.

Per fold, each member's predictions (`predictions_fold_<i>.csv` for the test rows,
`val_predictions_fold_<i>.csv` for the validation rows) are pooled to its clip level
(classification: the softmax of the mean of the segments' log-probabilities, which is the
softmax of their mean logits, as the member's own clip level; regression: the mean), the
members' clip scores are averaged, and the average is scored on the test clips (and the
validation and ranking clips) with the task's own scoring.

The weights are equal by default: chosen on nothing. With `weighting="validation"` they are
chosen per fold on the fold's validation clips only (the grid of weights summing to 1 with
`GRID_STEP`, minimising the task's loss there; equal weights when a member recorded no
validation predictions): the clips whose loss chose each member's epoch, where an
early-stopped member scores best and a noisy one the more so, so these weights lean towards
the member most optimistic there (measured in docs/results.md, "The selected row against its best member").

Members may read different stores and cut their files differently; their folds (the fold
manifest and every fold's items), clips, task and classes must be the same: anything else
is refused with one line naming the difference (`EnsembleError`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xval import tasks
from xval.config.params import params_hash
from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.layout import ExperimentLayout
from xval.core.parameters import InstanceParams
from xval.core.records import (
    EnsembleRecord,
    FoldResult,
    FoldsManifest,
    InstanceStatus,
    ParamsRecord,
    Postprocessing,
    Status,
)
from xval.core.records.ensemble import DEFAULT_WEIGHTING, EQUAL, VALIDATION, WEIGHTINGS
from xval.core.storage import ResultsStore
from xval.ensembles.fusion import GRID_STEP, choose_weights, fused, loss
from xval.ensembles.members import member_name
from xval.report.results import InstanceResult
from xval.report.stats import fold_test_train_ratio
from xval.tasks import Context, Task
from xval.tasks.fusion import Clips, fusion_of, pooled

HELD_OUT = ("val", "rank")
"""The splits of `val_predictions_fold_<i>.csv`: the validation clips (the weights are
chosen on them) and those kept out of the epoch choice (`rank_split`)."""


class EnsembleError(ConfigurationError):
    """Instances that cannot be fused: other folds, clips, tasks or classes."""


@dataclasses.dataclass
class Member:
    """One instance of an ensemble.

    Attributes:
        result: the instance as read (`InstanceResult`).
        manifest: its experiment's `folds.json`, or `None`.
        label: how messages name it (`instance 2`, or with its experiment folder when it is
            another experiment's).
        experiment: its experiment folder relative to the ensemble's (`"."`: the same).
    """

    result: InstanceResult
    manifest: FoldsManifest | None
    label: str
    experiment: str = "."

    @property
    def id(self) -> int:
        return self.result.id


def members_of(exp_dir: Path, specs: Sequence[int | str], results_store: ResultsStore
               ) -> list[Member]:
    """The members named by `specs`: an instance id of the experiment `exp_dir`, or
    `"EXP_DIR:K"` for instance `K` of another experiment, read through `results_store`.

    Raises:
        EnsembleError: for fewer than two members, one named twice, or a folder that is not
            an instance.
    """
    members = []
    for spec in specs:
        text = str(spec)
        head, sep, tail = text.rpartition(":")
        folder, number = (Path(head), tail) if sep else (exp_dir, text)
        if not number.isdigit():
            raise EnsembleError(f"member {text!r}: expected an instance id (2) or "
                                "EXP_DIR:K (results/x/experiment_2:3).")
        layout = ExperimentLayout(folder).instance(int(number))
        if not layout.root.is_dir():
            raise EnsembleError(f"member {text!r}: {layout.root} does not exist; name an "
                                "instance that has results.")
        manifest = results_store.manifest(ExperimentLayout(folder))
        same = folder.resolve() == exp_dir.resolve()
        members.append(Member(
            InstanceResult(layout.root, manifest.num_folds if manifest else None,
                           results_store=results_store),
            manifest, f"instance {number}" if same else f"instance {number} of {folder}",
            "." if same else os.path.relpath(folder.resolve(), exp_dir.resolve())))
    labels = [m.label for m in members]
    if len(members) < 2 or len(set(labels)) < len(labels):
        raise EnsembleError(f"an ensemble needs two different instances at least; got "
                            f"{', '.join(labels) or 'none'}.")
    return members


def check_members(members: Sequence[Member], manifest: FoldsManifest | None) -> Task:
    """Refuses members that cannot be fused, with one line naming the difference.

    Args:
        members: the members (`members_of`).
        manifest: the fold manifest of the ensemble's experiment.

    Returns:
        Their task.

    Raises:
        EnsembleError: a member not complete, itself an ensemble, on other folds (another
            `folds.json` hash, or other items in a fold), of another task or other classes,
            or a task whose models give no vector per clip (detection, representation).
    """
    first = members[0]
    for m in members:
        if m.result.ensemble is not None:
            raise EnsembleError(f"{m.label} is itself an ensemble; name its members instead.")
        if m.result.status != InstanceStatus.COMPLETE.value:
            raise EnsembleError(
                f"{m.label} is {m.result.status} ({m.result.summary.folds_done} of "
                f"{m.result.summary.num_folds} folds done): an ensemble needs complete "
                "members; run it first.")
        if manifest is not None and (m.manifest is None or m.manifest.hash != manifest.hash):
            other = m.manifest.hash[:12] if m.manifest is not None else "none"
            raise EnsembleError(
                f"{m.label} was cross-validated on other folds (folds.json hash {other}, "
                f"not {manifest.hash[:12]}): an ensemble needs its members on the same folds.")
        if (m.result.task_type or "") != (first.result.task_type or ""):
            raise EnsembleError(f"{m.label} is a {m.result.task_type} instance, "
                                f"{first.label} a {first.result.task_type} one: an ensemble "
                                "fuses instances of one task.")
        if m.result.folds[0].classes != first.result.folds[0].classes:
            raise EnsembleError(f"{m.label} has the classes {m.result.folds[0].classes}, "
                                f"{first.label} {first.result.folds[0].classes}: an ensemble "
                                "fuses instances of the same classes.")
        for mine, reference in zip(m.result.folds, first.result.folds):
            _check_items(m, first, mine, reference)
    task = tasks.get(first.result.task_type or tasks.DEFAULT)
    if task.scoring.fusion is None:
        fused_tasks = ", ".join(n for n in tasks.names()
                                if tasks.get(n).scoring.fusion is not None)
        raise EnsembleError(f"{first.label} is a {task.name} instance: ensembles fuse "
                            "instances that score a clip with one vector "
                            f"({fused_tasks}).")
    return task


def _check_items(m: Member, first: Member, mine: FoldResult, theirs: FoldResult) -> None:
    """Refuses a member whose fold tests or validates other items than the first's."""
    for what, names in (("tests", ("test",)), ("validates", ("val", "rank"))):
        a = sorted(i for n in names for i in mine.items.get(n, []))
        b = sorted(i for n in names for i in theirs.items.get(n, []))
        if a != b:
            only = sorted(set(a) ^ set(b))
            raise EnsembleError(
                f"{m.label} fold {mine.fold} {what} other items than {first.label} "
                f"({len(only)} differ, e.g. {only[0]!r}): an ensemble needs its members on "
                "the same folds.")
    if sorted(mine.items.get("rank", [])) != sorted(theirs.items.get("rank", [])):
        raise EnsembleError(
            f"{m.label} fold {mine.fold} splits its validation items otherwise than "
            f"{first.label} ({len(mine.items.get('rank', []))} and "
            f"{len(theirs.items.get('rank', []))} of them rank): their rank_split differs; "
            "an ensemble chooses its weights on the same validation clips, so give its "
            "members the same rank_split.")


def member_clips(member: Member, fold: int, task: Task, classes: Sequence[str]
                 ) -> dict[str, Clips]:
    """One member's clips of fold `fold`, by split: `test`, and `val` (and `rank`) when
    the fold recorded validation predictions.

    Raises:
        EnsembleError: when its test predictions file is missing, or a predictions file is
            not the one the fold recorded (edited after it was written: its SHA-256 is not
            the one sealed in the fold record).
    """
    layout = member.result.layout
    try:
        test = member.result.results_store.predictions(layout, fold)
        held = member.result.results_store.val_predictions(layout, fold) or []
    except ResultsConflictError as e:
        raise EnsembleError(f"{member.label}: {e}") from None
    if not test:
        raise EnsembleError(f"{member.label} fold {fold} has no "
                            f"{layout.predictions(fold).name}: its test predictions are "
                            "needed; rerun it with --overwrite.")
    out = {"test": pooled(test, task, classes)}
    for split in HELD_OUT:
        rows = [r for r in held if r.get("split") == split]
        if rows:
            out[split] = pooled(rows, task, classes)
    return out


def _check_clips(members: Sequence[Member], fold: int,
                 found: Sequence[Mapping[str, Clips]]) -> None:
    """Refuses members whose fold scored other clips than the first member's."""
    for m, clips in zip(members[1:], found[1:]):
        for split in ("test", *[s for s in HELD_OUT if s in found[0] and s in clips]):
            a, b = set(clips[split].ids), set(found[0][split].ids)
            if a != b:
                only = sorted(map(str, a ^ b))
                raise EnsembleError(
                    f"{m.label} fold {fold} scored other {split} clips than "
                    f"{members[0].label} ({len(only)} differ, e.g. {only[0]!r}): an ensemble "
                    "needs the same clips (the same files, cut into any segments).")


def _outputs(task: Task, scores: np.ndarray) -> np.ndarray:
    """What the task's scoring takes for fused scores (`Fusion.outputs`): log-probabilities
    as logits (classification), logits of the probabilities (tagging), or the values."""
    return fusion_of(task).outputs(scores)


def _table(task: Task, classes: Sequence[str], clips: Clips, scores: np.ndarray,
           context: Context | None = None) -> Any:
    """The fused predictions of some clips, as the members' predictions files are written
    (one row per clip)."""
    import pandas as pd  # noqa: PLC0415  (pandas: when an ensemble is written)

    table = pd.DataFrame({"row": np.arange(len(clips.ids)), "item": clips.items,
                          "clip": clips.ids, "label": clips.labels, "target": clips.written})
    for name, values in task.scoring.prediction_columns(
            _outputs(task, scores), classes, context or Context(classes=classes)).items():
        table[name] = values
    return table


@dataclasses.dataclass
class FusedEnsemble:
    """An ensemble computed: its fold records, its record and its parameters."""

    folds: list[FoldResult]
    record: EnsembleRecord
    params: ParamsRecord


def ensemble_params(instance: int, names: Sequence[str], weighting: str,
                    task_type: str | None) -> ParamsRecord:
    """The `params.json` of an ensemble: its members (`"2"`, or `"EXP_DIR:K"` for another
    experiment's, relative to the ensemble's), its weighting and its comments."""
    names = list(names)
    params = {"ensemble": names, "weights": weighting,
              "comment_1": f"ensemble of {' + '.join(names)}",
              "comment_2": "weights chosen per fold on validation clips"
              if weighting == VALIDATION else "equal weights"}
    return ParamsRecord(instance=instance, hash=params_hash(params), params=params,
                        task_type=task_type)


def member_names(members: Sequence[Member]) -> list[str]:
    """How `params.json` names the members (`ensemble_params`)."""
    return [member_name(m.experiment, m.id) for m in members]


def compute_ensemble(instance: int, members: Sequence[Member], manifest: FoldsManifest | None,
                     weighting: str = DEFAULT_WEIGHTING, step: float = GRID_STEP) -> FusedEnsemble:
    """Fuses the members fold by fold (see the module).

    Args:
        instance: the ensemble's instance id.
        members: the members (`members_of`), checked here (`check_members`).
        manifest: the fold manifest of the ensemble's experiment.
        weighting: `"equal"` or `"validation"` (weights per fold on its validation clips).
            Defaults to `DEFAULT_WEIGHTING` (equal).
        step: the step of the grid of weights. Defaults to `GRID_STEP`.

    Returns:
        The `FusedEnsemble`: one fold record per fold, with its test and validation
        predictions, the `EnsembleRecord` and the `ParamsRecord`.

    Raises:
        EnsembleError: for members that cannot be fused (one line naming the difference),
            or an unknown `weighting`.
    """
    if weighting not in WEIGHTINGS:
        raise EnsembleError(f"weights={weighting!r}: expected one of {', '.join(WEIGHTINGS)}.")
    task = check_members(members, manifest)
    params = ensemble_params(instance, member_names(members), weighting, task.name)
    classes = list(members[0].result.folds[0].classes or [])
    folds, rows, notes = [], [], []
    for fold in [f.fold for f in members[0].result.folds]:
        started = time.perf_counter()
        found = [member_clips(m, fold, task, classes) for m in members]
        _check_clips(members, fold, found)
        weights, chosen_on = _fold_weights(task, members, found, weighting, step)
        if chosen_on not in ("val", EQUAL) and chosen_on not in notes:
            notes.append(f"fold {fold}: {chosen_on}")
        result, row = _fold_result(instance, fold, members, found, weights, task, classes,
                                   params.hash)
        result.timings = {"total_seconds": round(time.perf_counter() - started, 3)}
        folds.append(result)
        rows.append({"fold": fold, "weights": [round(float(w), 6) for w in weights],
                     "chosen_on": chosen_on, **row})
    record = EnsembleRecord(
        members=[{"instance": m.id, "experiment": m.experiment,
                  "params_hash": _hash_of(m),
                  "models": {str(f.fold): f.model_sha256 for f in m.result.folds
                             if f.ok and f.model_sha256}}
                 for m in members],
        weighting=weighting, objective=fusion_of(task).objective,
        step=step, folds=rows, notes=notes)
    return FusedEnsemble(folds, record, params)


def _postprocessing(task: Task, found: Sequence[Mapping[str, Clips]], weights: np.ndarray,
                    classes: Sequence[str], splits: Sequence[str]
                    ) -> tuple[Postprocessing | None, Context]:
    """What the task chooses on the fused validation clips (tagging: each label's
    threshold), as a fold does on its own (`Scoring.choose_postprocessing`), and the
    context every split is then scored in; nothing without validation clips."""
    context = Context(classes=classes, whole_files=True)
    if not task.chosen_on_validation or "val" not in splits:
        return None, context
    val = [c["val"] for c in found]
    choice = task.scoring.choose_postprocessing(
        val[0].targets, _outputs(task, fused(weights, val)), len(classes) or 1, context)
    if choice is None:
        return None, context
    choice.level = "clip"
    return choice, context.replace(params=choice.apply(InstanceParams()))


def _hash_of(member: Member) -> str | None:
    """The member's parameter hash, as its folds recorded it."""
    return next((f.params_hash for f in member.result.folds if f.params_hash), None)


def _fold_weights(task: Task, members: Sequence[Member], found: Sequence[Mapping[str, Clips]],
                  weighting: str, step: float) -> tuple[np.ndarray, str]:
    """The weights of one fold and what they were chosen on (`"val"`, `"equal"`, or why
    equal weights stand in)."""
    equal = np.full(len(members), 1.0 / len(members))
    if weighting == EQUAL:
        return equal, EQUAL
    lacking = [m.label for m, clips in zip(members, found) if "val" not in clips]
    if lacking:
        return equal, (f"equal weights: {', '.join(lacking)} recorded no validation "
                       "predictions (trained before they were kept); rerun with --overwrite "
                       "to weight on validation")
    return choose_weights(task, [clips["val"] for clips in found], step), "val"


def _fold_result(instance: int, fold: int, members: Sequence[Member],
                 found: Sequence[Mapping[str, Clips]], weights: np.ndarray, task: Task,
                 classes: Sequence[str], params_hash_: str
                 ) -> tuple[FoldResult, dict[str, Any]]:
    """The fold record of the ensemble (its clip scores, `clip_metrics`, on every split the
    members share: it has no segment level, no epoch and no history) and its row of the
    `EnsembleRecord`."""
    import pandas as pd  # noqa: PLC0415  (pandas: when an ensemble is written)

    splits = [s for s in ("val", "rank", "test") if all(s in clips for clips in found)]
    chosen, context = _postprocessing(task, found, weights, classes, splits)
    metrics, tables = {}, {}
    for split in splits:
        clips = [c[split] for c in found]
        scores = fused(weights, clips)
        metrics[split] = task.scoring.evaluate(
            clips[0].targets, _outputs(task, scores), len(classes) or 1,
            context.replace(split=split))
        tables[split] = _table(task, classes, clips[0], scores, context)
    held = [tables[s].assign(split=s) for s in HELD_OUT if s in tables]
    held_csv = None
    if held:
        table = pd.concat(held, ignore_index=True)
        held_csv = table[["split", *[c for c in table.columns if c != "split"]]].to_csv(
            index=False)
    source = members[0].result.folds[[f.fold for f in members[0].result.folds].index(fold)]
    ratio = np.nanmean([fold_test_train_ratio([f for f in m.result.folds if f.fold == fold])
                        for m in members])
    n_test = len(found[0]["test"].ids)
    n_rows = {"test": n_test, **{s: len(found[0][s].ids) for s in HELD_OUT if s in splits},
              "train_original": int(round(n_test / ratio)) if ratio > 0 else 0}
    result = FoldResult(  # clip scores only: an ensemble fuses clips, never segments
        instance=instance, fold=fold, status=Status.OK, items=dict(source.items),
        params_hash=params_hash_, task_type=task.name, clip_metrics=metrics, n_rows=n_rows,
        classes=list(classes) or None, predictions_csv=tables["test"].to_csv(index=False),
        val_predictions_csv=held_csv, postprocessing=chosen)
    member_val = [round(loss(task, c["val"].targets, c["val"].scores), 6) if "val" in c
                  else None for c in found]
    return result, {"val_clips": len(found[0]["val"].ids) if "val" in found[0] else 0,
                    "test_clips": n_test, "member_val_loss": member_val}
