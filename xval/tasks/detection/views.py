"""What the detection task shows beyond its metrics, given as data the report renders: the
**Events** sheet (per instance and fold, what lost the test recordings' events, PSDS and why
a PSDS2 is 0, and the post-processing the fold chose and on what) and the lines under the
results tables (the terminal's and the Summary sheet's) that sum the errors over the folds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xval.tasks.detection.errors import COUNTS, KINDS
from xval.tasks.detection.psds import zero_cause
from xval.tasks.views import FoldView, Instance, Sheet

HEADER = ("fold", "event F1", *COUNTS, "PSDS1", "PSDS2", "PSDS2 without cross-triggers",
          "why PSDS2 is 0", "post-processing", "chosen on")
"""The Events sheet's columns after `ID`."""


def _test(fold: FoldView) -> Mapping[str, Any]:
    """A fold's test metrics at the recording level where it has one, else the window's."""
    return fold.clip_metrics or fold.metrics


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def event_rows(instance: Instance) -> list[list[Any]]:
    """One row per fold of the instance (the Events sheet); none for a fold that recorded
    no error counts (trained before they were)."""
    rows = []
    for fold in instance.folds:
        test = _test(fold)
        if "events_annotated" not in test:
            continue
        psds2 = _number(test.get("psds2"))
        no_ct = _number(test.get("psds2_no_cross_triggers"))
        post = fold.postprocessing
        rows.append([fold.fold, _number(test.get("event_f1")),
                     *(int(test[f"events_{k}"]) for k in COUNTS),
                     _number(test.get("psds1")), psds2, no_ct,
                     zero_cause(psds2, no_ct, _number(test.get("psds2_best_tpr"))),
                     "; ".join(f"{k} {v}" for k, v in post.values.items()) if post else "",
                     post.chosen_on if post else ""])
    return rows


def event_lines(instance: Instance) -> list[str]:
    """What lost the test recordings' events, summed over the instance's folds, and each
    fold whose PSDS2 is 0 with the reason (lines under the results tables)."""
    rows = event_rows(instance)
    if not rows:
        return []
    total = dict(zip(COUNTS, np.sum([r[2:2 + len(COUNTS)] for r in rows], axis=0).tolist()))
    lost = sum(total[k] for k in KINDS)
    worst = max(KINDS, key=lambda k: total[k])
    lines = [f"instance {instance.id}, test events over {len(rows)} folds: "
             f"{total['annotated']} annotated, {total['found']} found; "
             + ", ".join(f"{total[k]} {k}" for k in KINDS)
             + f"; {total['inserted']} inserted"
             + (f" (most lost: {worst}, {total[worst] / lost:.0%})" if lost else "")
             + " (the Events sheet has each fold)."]
    cause = len(HEADER) - 3  # the "why PSDS2 is 0" column
    lines += [f"instance {instance.id} fold {r[0]}: PSDS2 is 0 because of {r[cause]}."
              for r in rows if r[cause]]
    return lines


EVENTS = Sheet(
    "Events", order=34, header=HEADER, rows=event_rows,
    number_columns=(1, len(COUNTS) + 2, len(COUNTS) + 3, len(COUNTS) + 4),
    note=("Per fold, the test recordings' annotated events (the recording level; windows "
          "where the fold has no recording level): found by the event F1 (200 ms onset "
          "collar, offset within max(200 ms, half the event)), or lost, each by the first "
          "of: missed (no detection on it), confused (only detections of other classes on "
          "it), merged (a detection on it lies on another event of its class too), split "
          "(two or more detections on it), onset (the one detection starts outside the "
          "collar), offset (it ends outside its collar); inserted: detections on no event "
          "of their class. annotated = found + missed + confused + merged + split + onset + "
          "offset. PSDS2 without cross-triggers is the same score with alpha_CT 0: a PSDS2 of 0 says why (a cross-trigger counts per "
          "hour of the other class's annotated events, so one detection on a class with "
          "seconds of events can pass the 100 per hour the curve is read to). The "
          "post-processing is the fold's own choice (xval.tasks.detection.choice), and "
          "what it was chosen on."))
"""The Events sheet of detection instances."""
