"""How a detection fold chooses its post-processing: from what an event is in its training
annotations (`xval.tasks.detection.shapes`) and from the event F1 of its validation
recordings, never from a test row.

1. **The rule of the annotations.** The fold's training recordings' annotations give, per
   class, the shortest gap annotators leave between two events and the shortest event they
   draw (`EventShapes`). Half of each is the class's gap bridging (`min_gap_seconds`) and
   shortest event (`min_event_seconds`) by default, and a median filter that would erase
   half of either is not tried (`EventShapes.keeps`): two events as close as annotators
   draw them stay two.
2. **The choice on validation.** For each median-filter length of `MEDIAN_GRID_SECONDS` the
   rule keeps, each class takes the threshold of `THRESHOLD_GRID`, the gap bridging and the
   shortest event (the rule's, or none) with its best class-wise event F1 on the validation
   recordings (ties keep the rule and the threshold nearer 0.5); the median length with the
   best overall event F1 (the metric the task reports and selects on) wins, ties keep the
   shorter.
3. **Enough evidence.** A class with fewer than `MIN_EVENTS` annotated events in the
   validation recordings is not chosen on them: it keeps the rule (threshold 0.5, the
   annotations' gap bridging and shortest event). More items from other models are not
   more evidence: chosen on the other folds' out-of-fold predictions of the fold's training
   items (four items in place of one), the same grid scored lower on both measured sets (a
   threshold belongs to the model it was chosen on; docs/results.md, point 3).

Only the parameters of `CHOSEN_ON_VALIDATION` that the instance leaves unset (`None`) are
chosen; a value it names always wins. The `Postprocessing` says what it was chosen on
(`chosen_on`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xval.core.records import Postprocessing
from xval.tasks.detection.events import FileEvent, event_metrics
from xval.tasks.detection.rules import EventRules, frames, reference_events
from xval.tasks.detection.shapes import EventShapes

THRESHOLD_GRID = (0.5, 0.4, 0.6, 0.3, 0.7)
"""Thresholds tried per class on the validation recordings, in order of preference (a tie
keeps the earlier, nearer the default 0.5)."""
MEDIAN_GRID_SECONDS = (0.0, 0.06, 0.1, 0.2)
"""Median-filter lengths tried on the validation recordings, those the annotations' rule
keeps (a tie keeps the shorter)."""
SHAPED = ("min_gap_seconds", "min_event_seconds")
"""The parameters the annotations' rule sets (`EventShapes.bridge`, `EventShapes.drop`)."""
CHOSEN_ON_VALIDATION = ("detection_threshold", "median_filter_seconds", *SHAPED)
"""The post-processing parameters a fold chooses when the instance leaves them unset
(`None`, the detection default)."""
MIN_EVENTS = 10
"""A class with fewer annotated validation events keeps the annotations' rule."""


def choose_rules(y_true: Any, outputs: Any, num_outputs: int,
                 params: Mapping[str, Any] | None, frame_seconds: float | None,
                 classes: Sequence[str] | None,
                 annotations: Sequence[np.ndarray] | np.ndarray | None = None
                 ) -> Postprocessing | None:
    """The post-processing of the module's three steps, on the given (validation) rows.

    Args:
        y_true: the validation rows' frame targets (windows, or stitched recordings).
        outputs: the model's logits on them, in the same form.
        num_outputs: the number of event classes.
        params: the instance parameters (those set are kept).
        frame_seconds: time between frames, or `None` (nothing is chosen).
        classes: the event class names, or `None` (`class0`, ...).
        annotations: the training rows' frame targets (the rule's annotations); `None`:
            the validation rows' own.

    Returns:
        A `Postprocessing` of the chosen values (`split="val"`, its validation event F1,
        and what it was chosen on), or `None` when the instance sets every parameter of
        `CHOSEN_ON_VALIDATION` or `frame_seconds` is unknown.
    """
    free = [k for k in CHOSEN_ON_VALIDATION if (params or {}).get(k) is None]
    if not free or frame_seconds is None:
        return None
    ys, probs, _, _ = frames(y_true, outputs, num_outputs)
    names = list(classes) if classes else [f"class{i}" for i in range(num_outputs)]
    shapes = EventShapes.of_targets(ys if annotations is None else annotations,
                                    frame_seconds, names)
    rule = EventRules.of(params).replace(**{k: v for k, v in zip(
        SHAPED, (shapes.bridge(), shapes.drop())) if k in free})
    medians = [m for m in MEDIAN_GRID_SECONDS if shapes.keeps(m, frame_seconds)] \
        if "median_filter_seconds" in free else [rule.median_filter_seconds]
    reference, durations = reference_events(ys, frame_seconds, names)
    counts = np.array([sum(e[3] == c for e in reference) for c in names])
    options = _options(rule, free, len(names))
    best: tuple[float, EventRules] = (-math.inf, rule)
    for median in medians:
        rules = _class_choice(rule.replace(median_filter_seconds=median), options, reference,
                              probs, frame_seconds, names, list(durations),
                              counts >= MIN_EVENTS)
        score = event_metrics(reference, rules.file_events(probs, frame_seconds, names),
                              files=list(durations), classes=names)["event_f1"]
        score = score if np.isfinite(score) else -1.0
        if score > best[0]:
            best = (score, rules)
    return Postprocessing(values={k: _plain(best[1][k]) for k in free}, classes=names,
                          score=best[0] if best[0] >= 0 else None,
                          chosen_on=_chosen_on(len(ys), counts, shapes,
                                               annotations is not None))


def _options(rule: EventRules, free: Sequence[str], n: int) -> list[dict[str, np.ndarray]]:
    """The per-class candidates, the rule's first: each a dict of parameter -> one value per
    class, for the parameters of `free` other than the median filter."""
    def per_class(value: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()

    grids: dict[str, tuple[Any, ...]] = {
        "detection_threshold": THRESHOLD_GRID if "detection_threshold" in free
        else (rule.detection_threshold,)}
    for name in SHAPED:
        grids[name] = (rule[name], 0.0) if name in free else (rule[name],)
    return [{"detection_threshold": per_class(t), "min_gap_seconds": per_class(g),
             "min_event_seconds": per_class(e)}
            for t in grids["detection_threshold"] for g in grids["min_gap_seconds"]
            for e in grids["min_event_seconds"]]


def _class_choice(rules: EventRules, options: list[dict[str, np.ndarray]],
                  reference: list[FileEvent], probs: Sequence[np.ndarray],
                  frame_seconds: float, names: list[str], files: list[str],
                  enough: np.ndarray) -> EventRules:
    """`rules` with each class's values from the option of its best class-wise event F1 (the
    first on a tie); a class without `enough` validation events, or scoring nowhere, keeps
    the first option (the rule)."""
    scores = []
    for option in options:
        trial = rules.replace(**{k: v.tolist() for k, v in option.items()})
        found = event_metrics(reference, trial.file_events(probs, frame_seconds, names),
                              files=files, classes=names)["class_f1"]
        scores.append([found[c] if np.isfinite(found[c]) else -1.0 for c in names])
    table = np.asarray(scores)  # (options, classes)
    pick = np.argmax(table, axis=0)  # the first maximum: the preferred on a tie
    pick = np.where(enough & (table[pick, np.arange(len(names))] >= 0), pick, 0)
    return rules.replace(**{k: [float(options[pick[c]][k][c]) for c in range(len(names))]
                            for k in options[0]})


def _plain(value: Any) -> Any:
    """A chosen value as the fold record keeps it: floats rounded to 4 places."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [round(float(v), 4) for v in value]
    return round(float(value), 4)


def _chosen_on(recordings: int, counts: np.ndarray, shapes: EventShapes,
               training: bool) -> str:
    """What a choice was made on, in words (`Postprocessing.chosen_on`)."""
    thin = int((counts < MIN_EVENTS).sum())
    return (f"validation: {recordings} recordings, {int(counts.sum())} events"
            + (f" ({thin} class(es) under {MIN_EVENTS} events keep the rule)" if thin else "")
            + f"; rule: {'training' if training else 'validation'} annotations, "
            + shapes.describe())
