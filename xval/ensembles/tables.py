"""What the report says of an ensemble of instances, as tables and text: the Ensembles
sheet's rows (`ensembles_table`: per ensemble and fold, its members, their weights and what
they were chosen on, its test score and its members') and note, and the note under the
terminal table and the Summary sheet (`ensemble_note`: its members and weights, and the
members trained again since), added to the report as data it renders (`install_report`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xval.ensembles.members import retrained
from xval.report.additions import TableSheet, add_note, add_table_sheet
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.stats import fold_scores
from xval.report.tables import report_level

NOTE = ("An ensemble is derived from its members' recorded predictions: in every fold, the "
        "members' clip scores are averaged with the weights shown (equal, chosen on nothing, "
        "unless its weighting is 'validation': then chosen on that fold's validation clips "
        "only, the lowest validation log loss, or squared error, on a grid of weights summing "
        "to 1; those clips chose the members' epochs, so such weights lean towards the member "
        "most optimistic there), and scored on its test clips. It trains nothing: it has no "
        "epoch and no segment-level score. Members' test scores are their own, at their clip "
        "level, on the same folds.")


def _member(results: ExperimentResults, ensemble: InstanceResult, k: int
            ) -> InstanceResult | None:
    """A member of the same experiment, as read with the results (`None`: another
    experiment's)."""
    record = ensemble.ensemble
    entry = record.members[record.instances.index(k)] if record is not None else {}
    if entry.get("experiment", ".") != ".":
        return None
    return results.instances.get(k)


def ensembles_table(results: ExperimentResults, metric: str
                    ) -> tuple[list[str], list[list[Any]]]:
    """One row per ensemble and fold.

    Returns:
        `(header, rows)`; no rows when the experiment has no ensemble.
    """
    header = ["ID", "fold", "members", "weighting", "weights", "chosen on", "validation clips",
              "test clips", f"test clip {metric}", f"members' test clip {metric}"]
    rows = []
    for r in results:
        if r.ensemble is None:
            continue
        mine = fold_scores(r, metric, "test", "clip")
        members = [_member(results, r, k) for k in r.ensemble.instances]
        theirs = [fold_scores(m, metric, "test", report_level(m, metric)) if m else {}
                  for m in members]
        for fold in r.ensemble.folds:
            i = int(fold["fold"])
            scores = " / ".join("n/a" if i not in s else f"{s[i]:.4f}" for s in theirs)
            rows.append([r.id, i, " + ".join(map(str, r.ensemble.instances)),
                         r.ensemble.weighting, weights_text(fold["weights"]),
                         fold.get("chosen_on", ""), fold.get("val_clips"),
                         fold.get("test_clips"), mine.get(i), scores])
    return header, rows


def weights_text(weights: list[float]) -> str:
    """`0.30 / 0.70`: one weight per member, in the members' order."""
    return " / ".join(f"{w:.2f}" for w in weights)


def ensemble_note(results: ExperimentResults,
                  shown: Iterable[InstanceResult] | None = None) -> list[str]:
    """One sentence per ensemble (of `shown`, default all): its members and its weights per
    fold (the Summary sheet and the terminal table show it under the table)."""
    lines = []
    for r in (results if shown is None else shown):
        if r.ensemble is None:
            continue
        folds = "; ".join(f"fold {f['fold']} {weights_text(f['weights'])}"
                          for f in r.ensemble.folds)
        lines.append(f"Instance {r.id} is an ensemble of instances "
                     f"{' + '.join(map(str, r.ensemble.instances))} ({r.ensemble.weighting} "
                     f"weights; per fold, in that order: {folds}).")
        retrained = retrained_members(results, r)
        if retrained:
            lines[-1] += (f" Instance(s) {', '.join(map(str, retrained))} were trained again "
                          f"since ({'; '.join(retrained.values())}): its scores are of the "
                          "results they replaced, and predict and export refuse it; compute "
                          "it again (rerun its script with its number, or python -m xval "
                          "ensemble with --as and --overwrite).")
    return lines


def retrained_members(results: ExperimentResults, ensemble: InstanceResult) -> dict[int, str]:
    """The members (of the same experiment) trained again since the ensemble was made from
    them (`ensemble.json`, `xval.ensembles.members.retrained`), with what changed: other
    parameters, or other fold models (a member trained again with the same parameters)."""
    out: dict[int, str] = {}
    record = ensemble.ensemble
    if record is None:
        return out
    for entry in record.members:
        member = results.instances.get(int(entry["instance"]))
        if member is None or entry.get("experiment", ".") != ".":
            continue
        change = retrained(entry, next((f.params_hash for f in member.folds if f.params_hash),
                                       None),
                           {f.fold: f.model_sha256 for f in member.folds if f.ok})
        if change.params:
            out[member.id] = f"instance {member.id}: other parameters"
        elif change.folds:
            out[member.id] = (f"instance {member.id}: other models in fold(s) "
                              f"{', '.join(map(str, change.folds))}")
    return out




SHEET = TableSheet("Ensembles", order=35, table=ensembles_table, note=NOTE, number_columns=(8,))
"""The workbook's Ensembles sheet (after Statistics), left out without an ensemble."""


def install_report() -> None:
    """Adds the Ensembles sheet and the ensembles' note under the results tables to the
    report (`xval.report.additions`), which never imports the ensembles; a second call
    changes nothing."""
    add_note(ensemble_note)
    add_table_sheet(SHEET)
