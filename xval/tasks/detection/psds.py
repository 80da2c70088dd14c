"""The Polyphonic Sound Detection Score (PSDS) of detection outputs, in numpy.

PSDS (Bilen et al., ICASSP 2020) scores a detector over all its operating points instead of
one threshold: the events found at each of `THRESHOLDS` are matched against the annotation
with intersection criteria (not collars), and the area under the curve of the true-positive
rate against the false-positive rate per hour (up to `max_efpr`), averaged over classes and
penalised by their spread, is the score. The DCASE challenge's task 4 (2021 onwards)
reports two scenarios, `PSDS1` and `PSDS2` (`SCENARIOS`).

This module computes what `psds_eval` 0.5.3 (the DCASE reference) computes, step for step,
without pandas: its last release fails under pandas 3 and numpy 2 (docs/tasks.md). The
expected values of `tests/data/psds/` were computed once with `psds_eval` itself
(`tests/data/psds/make_expected.py`) and the tests check equality to 1e-6.

Per operating point (`operating_point_rates`), with every event of positive length:

- a detection is a *DTC* detection when the share of it that overlaps annotated events of
  its class is at least `dtc`;
- an annotated event is found (a true positive) when DTC detections of its class cover at
  least `gtc` of it;
- a detection that is not a DTC detection counts once as a false positive (it overlaps the
  recording) and once as a cross-trigger on each other class whose events it overlaps by at
  least `cttc` of its length.

True-positive rate: found events / annotated events, per class; false-positive rate:
false positives per hour of audio; cross-trigger rate: cross-triggers per hour of the other
class's events. A class with no annotated event has no true-positive rate: it is left out
(as `psds_eval` leaves it out), and so are its detections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from xval.tasks.detection.events import FileEvent, activity_to_events

SECONDS_PER_HOUR = 3600.0
THRESHOLDS = tuple(float(t) for t in np.arange(1 / 100, 1, 1 / 50).round(6))
"""The 50 operating points, 0.01 to 0.99 (the DCASE task 4 baseline's)."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """The settings of one PSDS.

    Attributes:
        dtc: detection tolerance criterion.
        gtc: ground-truth intersection criterion.
        cttc: cross-trigger tolerance criterion.
        alpha_ct: weight of cross-triggers in the effective false-positive rate.
        alpha_st: weight of the spread of the classes' true-positive rates.
        max_efpr: the largest effective false-positive rate, per hour.
    """

    dtc: float
    gtc: float
    cttc: float
    alpha_ct: float
    alpha_st: float
    max_efpr: float = 100.0


SCENARIOS = {"psds1": Scenario(dtc=0.7, gtc=0.7, cttc=0.3, alpha_ct=0.0, alpha_st=1.0),
             "psds2": Scenario(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5, alpha_st=1.0)}
"""DCASE 2021-2023 task 4: scenario 1 (precise onsets and offsets), scenario 2 (finding
events, tolerant on their bounds, cross-triggers counted half)."""


@dataclasses.dataclass(frozen=True)
class Rates:
    """The rates of one operating point, over the classes that have annotated events.

    Attributes:
        tpr: true-positive rate per class, `np.ndarray [shape=(C,)]`.
        fpr: false positives per hour of audio, per class, `[shape=(C,)]`.
        ctr: cross-triggers of class `i` on class `j` per hour of `j`'s events,
            `[shape=(C, C)]`, `nan` on the diagonal.
    """

    tpr: np.ndarray
    fpr: np.ndarray
    ctr: np.ndarray


def _by_file(events: Iterable[FileEvent], classes: Sequence[str]
             ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Events of positive length grouped by file: `(onsets, offsets, class indices)`; events
    of classes outside `classes` are dropped."""
    index = {c: i for i, c in enumerate(classes)}
    grouped: dict[str, list[tuple[float, float, int]]] = {}
    for file, onset, offset, label in events:
        if label in index and offset > onset:
            grouped.setdefault(str(file), []).append((float(onset), float(offset),
                                                      index[label]))
    return {f: (np.array([e[0] for e in rows]), np.array([e[1] for e in rows]),
                np.array([e[2] for e in rows], dtype=int)) for f, rows in grouped.items()}


def operating_point_rates(reference: Iterable[FileEvent], detections: Iterable[FileEvent],
                          durations: Mapping[str, float], classes: Sequence[str],
                          scenario: Scenario) -> Rates:
    """True-positive, false-positive and cross-trigger rates of one operating point.

    Args:
        reference: the annotated events `(file, onset_s, offset_s, label)`.
        detections: the events detected at this operating point.
        durations: file -> its length in seconds (every file evaluated, with or without
            events).
        classes: the classes, those with annotated events (see `psds`).
        scenario: the criteria (`dtc`, `gtc`, `cttc`).

    Returns:
        The `Rates`.
    """
    n = len(classes)
    truth = _by_file(reference, classes)
    found = _by_file(detections, classes)
    n_true = np.zeros(n)
    true_seconds = np.zeros(n)
    for on, off, cls in truth.values():
        np.add.at(n_true, cls, 1)
        np.add.at(true_seconds, cls, off - on)
    tp = np.zeros(n)
    counts = np.zeros((n, n + 1))  # detections' class x annotated class (+ the recording)
    for file, duration in durations.items():
        if file not in found:
            continue
        d_on, d_off, d_cls = found[file]
        g_on, g_off, g_cls = truth.get(file, (np.zeros(0), np.zeros(0), np.zeros(0, int)))
        g_on = np.append(g_on, 0.0)  # the recording itself, the last "event"
        g_off = np.append(g_off, float(duration))
        g_cls = np.append(g_cls, n)
        overlap = np.minimum(d_off[:, None], g_off[None, :]) \
            - np.maximum(d_on[:, None], g_on[None, :])
        overlap = np.where(overlap > 0, overlap, 0.0)
        share = overlap / (d_off - d_on)[:, None]  # of each detection
        same = d_cls[:, None] == g_cls[None, :]
        dtc = np.where(same, share, 0.0).sum(axis=1) >= scenario.dtc
        coverage = np.where(same & dtc[:, None], overlap / (g_off - g_on)[None, :], 0.0)
        hit = (coverage.sum(axis=0) >= scenario.gtc) & (coverage > 0).any(axis=0)
        np.add.at(tp, g_cls[hit], 1)
        for k in np.flatnonzero(~dtc):  # false positives and cross-triggers
            per_class = np.zeros(n + 1)
            np.add.at(per_class, g_cls, np.where(overlap[k] > 0, share[k], 0.0))
            touched = np.zeros(n + 1, dtype=bool)
            touched[g_cls[overlap[k] > 0]] = True
            crossed = touched & ((per_class >= scenario.cttc) | (np.arange(n + 1) == n))
            crossed[d_cls[k]] = False
            counts[d_cls[k]] += crossed
    total = float(sum(durations.values()))
    ctr = counts[:, :n] * SECONDS_PER_HOUR / np.where(true_seconds > 0, true_seconds, np.nan)
    np.fill_diagonal(ctr, np.nan)
    return Rates(tpr=tp / np.where(n_true > 0, n_true, np.nan),
                 fpr=counts[:, n] * SECONDS_PER_HOUR / total, ctr=ctr)


def _step(x: np.ndarray, xp: np.ndarray, yp: np.ndarray) -> np.ndarray:
    """The staircase ROC at `x`: the best `yp` among the points with `xp <= x`."""
    order = np.lexsort((yp, xp))
    xs, best = xp[order], np.maximum.accumulate(yp[order])
    at = np.searchsorted(xs, x, side="right") - 1
    return np.where(at >= 0, best[np.maximum(at, 0)], 0.0)


def _area(x: np.ndarray, y: np.ndarray, max_x: float) -> float:
    """The area under the staircase `(x, y)` up to `max_x` (psds_eval's `_auc`)."""
    if max_x not in x:
        i = int(np.searchsorted(x, max_x))
        x = np.insert(x, i, max_x)
        y = np.insert(y, i, y[i - 1])
    keep = x <= max_x
    return float(np.sum(np.diff(x[keep]) * y[keep][:-1]))


def psds_from_rates(rates: Sequence[Rates], scenario: Scenario) -> float:
    """The PSDS of the operating points' rates.

    Each class's ROC is the staircase of its true-positive rate against its effective
    false-positive rate (`fpr + alpha_ct * mean over the other classes of ctr`), a point at
    the origin added; the curves are read on the union of their x values, averaged over the
    classes minus `alpha_st` times their standard deviation (floored at 0), and the area
    under that curve up to `max_efpr`, divided by `max_efpr`, is the score.

    Args:
        rates: one `Rates` per operating point, over the same classes.
        scenario: `alpha_ct`, `alpha_st`, `max_efpr`.

    Returns:
        The score in `[0, 1]`; `nan` without a class or an operating point.
    """
    if not rates or not len(rates[0].tpr):
        return float("nan")
    n = len(rates[0].tpr)
    tpr = np.column_stack([r.tpr for r in rates] + [np.zeros(n)])
    fpr = np.column_stack([r.fpr for r in rates] + [np.zeros(n)])
    if n > 1:
        cross = np.column_stack([np.nanmean(r.ctr, axis=1) for r in rates] + [np.zeros(n)])
    else:  # one class: nothing to cross-trigger on
        cross = np.zeros_like(fpr)
    efpr = fpr + scenario.alpha_ct * cross
    points = np.unique(efpr)
    curves = np.stack([_step(points, efpr[c], tpr[c]) for c in range(n)])
    etpr = curves.mean(axis=0) - scenario.alpha_st * curves.std(axis=0)
    etpr = np.maximum(np.nan_to_num(etpr, nan=0.0), 0.0)
    return _area(points, etpr, scenario.max_efpr) / scenario.max_efpr


def psds(reference: Sequence[FileEvent], operating_points: Sequence[Sequence[FileEvent]],
         durations: Mapping[str, float], scenario: Scenario) -> float:
    """The PSDS of a detector's operating points.

    Args:
        reference: the annotated events `(file, onset_s, offset_s, label)`.
        operating_points: the detected events at each operating point (e.g. each threshold
            of `THRESHOLDS`, see `operating_points`).
        durations: file -> length in seconds, for every file evaluated.
        scenario: the settings (`SCENARIOS["psds1"]`, ...).

    Returns:
        The score; `nan` when no event is annotated.
    """
    return psds_from_rates(scenario_rates(reference, operating_points, durations, scenario),
                           scenario)


def scenario_rates(reference: Sequence[FileEvent],
                   operating_points: Sequence[Sequence[FileEvent]],
                   durations: Mapping[str, float], scenario: Scenario) -> list[Rates]:
    """The `Rates` of each operating point under `scenario`'s criteria, over the classes
    with annotated events (sorted); `[]` when no event is annotated."""
    classes = sorted({str(e[3]) for e in reference if e[2] > e[1]})
    if not classes:
        return []
    return [operating_point_rates(reference, found, durations, classes, scenario)
            for found in operating_points]


def operating_points(activity: Mapping[str, np.ndarray], *, frame_seconds: float,
                     classes: Sequence[str], thresholds: Sequence[float] = THRESHOLDS,
                     median_filter_frames: int = 1,
                     min_event_seconds: float | Sequence[float] = 0.0,
                     min_gap_seconds: float | Sequence[float] = 0.0,
                     durations: Mapping[str, float] | None = None) -> list[list[FileEvent]]:
    """The events of every file at each threshold (`xval.tasks.detection.events.activity_to_events`, with
    the same post-processing at every threshold).

    Args:
        activity: file -> frame probabilities, `np.ndarray [shape=(frames, len(classes))]`.
        frame_seconds: time between frames.
        classes: the class names of the columns.
        thresholds: the operating points. Defaults to `THRESHOLDS`.
        median_filter_frames: odd median-filter length. Defaults to `1` (off).
        min_event_seconds: shorter events are removed (one, or one per class). Defaults
            to `0.0`.
        min_gap_seconds: shorter gaps are bridged (one, or one per class). Defaults to
            `0.0`.
        durations: file -> length in seconds, offsets cut there. Defaults to `None`.

    Returns:
        One list of `(file, onset_s, offset_s, label)` per threshold.
    """
    out = []
    for threshold in thresholds:
        found: list[FileEvent] = []
        for file, prob in activity.items():
            found += [(file, *e) for e in activity_to_events(
                prob, frame_seconds=frame_seconds, classes=classes, threshold=threshold,
                median_filter_frames=median_filter_frames,
                min_event_seconds=min_event_seconds, min_gap_seconds=min_gap_seconds,
                duration_s=None if durations is None else durations.get(file))]
        out.append(found)
    return out


def recording_psds(reference: Sequence[FileEvent], activity: Mapping[str, np.ndarray],
                   durations: Mapping[str, float], *, frame_seconds: float,
                   classes: Sequence[str], median_filter_frames: int = 1,
                   min_event_seconds: float | Sequence[float] = 0.0,
                   min_gap_seconds: float | Sequence[float] = 0.0,
                   thresholds: Sequence[float] = THRESHOLDS) -> dict[str, float]:
    """PSDS1 and PSDS2 (`SCENARIOS`) of recordings' frame probabilities: the events found
    at each threshold (`operating_points`, with the same post-processing at every
    threshold) against the annotated events; and why a PSDS2 is low
    (`PSDS2_DIAGNOSIS`).

    Args:
        reference: the annotated events `(file, onset_s, offset_s, label)`.
        activity: file -> frame probabilities, `np.ndarray [shape=(frames, len(classes))]`.
        durations: file -> length in seconds, for every file.
        frame_seconds: time between frames.
        classes: the class names of the columns.
        median_filter_frames: odd median-filter length. Defaults to `1` (off).
        min_event_seconds: shorter events are removed (one, or one per class). Defaults to
            `0.0`.
        min_gap_seconds: shorter gaps are bridged (one, or one per class). Defaults to
            `0.0`.
        thresholds: the operating points. Defaults to `THRESHOLDS`.

    Returns:
        `{"psds1": ..., "psds2": ..., "psds2_no_cross_triggers": ..., "psds2_best_tpr":
        ...}`, each `nan` when no event is annotated.
    """
    points = operating_points(activity, frame_seconds=frame_seconds, classes=classes,
                              thresholds=thresholds, median_filter_frames=median_filter_frames,
                              min_event_seconds=min_event_seconds,
                              min_gap_seconds=min_gap_seconds, durations=durations)
    rates = {name: scenario_rates(reference, points, durations, scenario)
             for name, scenario in SCENARIOS.items()}
    return {**{name: psds_from_rates(rates[name], scenario)
               for name, scenario in SCENARIOS.items()},
            **diagnosis(rates["psds2"], SCENARIOS["psds2"])}


PSDS2_DIAGNOSIS = ("psds2_no_cross_triggers", "psds2_best_tpr")
"""Why a PSDS2 is low: the same score without the cross-trigger penalty (alpha_CT 0), and
the best true-positive rate (the mean over the classes) of any operating point under
PSDS2's criteria (0: nothing found at any threshold)."""


def diagnosis(rates: Sequence[Rates], scenario: Scenario) -> dict[str, float]:
    """`PSDS2_DIAGNOSIS` of the operating points' `rates` under `scenario`.

    Returns:
        dict of the two values (`nan` without a class or an operating point).
    """
    if not rates or not len(rates[0].tpr):
        return dict.fromkeys(PSDS2_DIAGNOSIS, float("nan"))
    best = max(float(np.mean(r.tpr)) for r in rates)
    return {"psds2_no_cross_triggers": psds_from_rates(
        rates, dataclasses.replace(scenario, alpha_ct=0.0)), "psds2_best_tpr": best}


def zero_cause(value: float | None, without_cross_triggers: float | None,
               best_tpr: float | None) -> str:
    """Why a PSDS2 is 0, in words; `""` when it is not 0 (or not known).

    Args:
        value: the PSDS2.
        without_cross_triggers: the same without the cross-trigger penalty
            (`psds2_no_cross_triggers`).
        best_tpr: the best true-positive rate of any operating point (`psds2_best_tpr`).
    """
    if value is None or not value == 0.0:
        return ""
    if best_tpr is not None and best_tpr == 0.0:
        return "nothing detected: no threshold finds an annotated event"
    if without_cross_triggers is not None and without_cross_triggers > 0:
        return (f"the cross-trigger penalty: {without_cross_triggers:.3f} without it (a "
                "detection on another class's events counts per hour of that class's "
                "annotated events)")
    return ("no operating point under 100 false alarms per hour finds every class (the "
            "lowest class's curve sets the score)")
