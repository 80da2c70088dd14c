"""Segment-based and event-based sound event detection metrics, as sed_eval computes them.

The DCASE definitions (Mesaros, Heittola and Virtanen, "Metrics for polyphonic sound event
detection", Applied Sciences 6(6), 2016), computed with numpy and scipy so that scoring a
detection experiment needs no package beyond the project's own dependencies. The numbers
are sed_eval 0.2.1's (the DCASE reference implementation) to 1e-9:
`tests/test_sound_event_metrics.py` compares them with values recorded from sed_eval
(`python -m benchmarks.sed_eval_reference --record`) and, where sed_eval is installed, with
sed_eval itself.

- **Segment-based**: each file's time line is cut into segments of `time_resolution`
  seconds (as many as cover its evaluated length, rounded up); a class is active in a
  segment when an event of it overlaps the segment (onset rounded down, offset rounded up to
  the segment grid). Per segment, `Ntp` counts classes active in both lists, and the
  substitutions, deletions and insertions are `min(Nref, Nsys) - Ntp`,
  `max(0, Nref - Nsys)` and `max(0, Nsys - Nref)`.
- **Event-based**: an estimated event hits a reference event of the same class when its
  onset is within `t_collar` of the reference onset and (with `evaluate_offset`) its offset
  within `max(t_collar, percentage_of_length * reference length)` of the reference offset.
  Each event is matched once: `Ntp` is the size of a maximum matching between the two lists
  (sed_eval's "optimal" matching; `scipy.sparse.csgraph.maximum_bipartite_matching`), per
  file and class.

Counts are summed over files (micro-averaged) before precision, recall, F1 and the error
rate are computed, with sed_eval's conventions: a precision with no estimated event, and a
recall with no reference event, are `nan`; F1 is 0 when both precision and recall are 0.
"""

from __future__ import annotations

import math

import numpy as np

_EPS = float(np.spacing(1))
"""sed_eval's `eps` in the error rates' denominators (`Nref + eps`)."""

__all__ = ["EventList", "error_rate", "event_hits", "f_measure", "segment_counts"]

EventList = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One file's events: `(onsets_s, offsets_s, class indices)`, three arrays of one length."""


def segment_counts(reference: EventList, estimated: EventList, n_classes: int, *,
                   time_resolution: float, length_s: float | None = None) -> np.ndarray:
    """The segment-based counts of one file.

    Args:
        reference: the file's annotated events (`EventList`).
        estimated: the file's detected events.
        n_classes: the number of classes (the class indices are below it).
        time_resolution: the segment length in seconds (> 0).
        length_s: the file's evaluated length in seconds; `None` takes the last offset of
            either list (as sed_eval does). Defaults to `None`.

    Returns:
        `np.ndarray [shape=(6,)]` (float64) of `Ntp, Nref, Nsys, S, D, I`, summed over the
        file's segments.
    """
    if length_s is None:
        length_s = max([0.0, *reference[1].tolist(), *estimated[1].tolist()])
    n = int(math.ceil(length_s * 1 / float(time_resolution)))
    ref = _activity(reference, n, n_classes, time_resolution)
    est = _activity(estimated, n, n_classes, time_resolution)
    n_ref, n_sys = ref.sum(axis=1), est.sum(axis=1)
    n_tp = (ref & est).sum(axis=1)
    return np.array([n_tp.sum(), n_ref.sum(), n_sys.sum(),
                     (np.minimum(n_ref, n_sys) - n_tp).sum(),
                     np.maximum(0, n_ref - n_sys).sum(), np.maximum(0, n_sys - n_ref).sum()],
                    dtype=np.float64)


def _activity(events: EventList, n: int, n_classes: int, time_resolution: float
              ) -> np.ndarray:
    """`np.ndarray [shape=(n, n_classes)]` of 0/1 (int64): the classes active in each of the
    `n` segments (sed_eval's event roll, cut or padded to `n`)."""
    onsets, offsets, labels = events
    first = np.minimum(np.floor(onsets * 1 / float(time_resolution)), n).astype(np.int64)
    last = np.minimum(np.ceil(offsets * 1 / float(time_resolution)), n).astype(np.int64)
    keep = last > first
    edges = np.zeros((n + 1, n_classes), dtype=np.int64)
    np.add.at(edges, (first[keep], labels[keep]), 1)
    np.add.at(edges, (last[keep], labels[keep]), -1)
    return (np.cumsum(edges, axis=0)[:n] > 0).astype(np.int64)


def event_hits(reference: EventList, estimated: EventList, n_classes: int, *,
               t_collar: float, percentage_of_length: float,
               evaluate_offset: bool = True) -> np.ndarray:
    """The event-based counts of one file, per class.

    Args:
        reference: the file's annotated events (`EventList`).
        estimated: the file's detected events.
        n_classes: the number of classes.
        t_collar: the onset collar (and the least offset collar) in seconds.
        percentage_of_length: the offset collar's share of the reference event's length.
        evaluate_offset: require the offset to match too. Defaults to `True`.

    Returns:
        `np.ndarray [shape=(n_classes, 3)]` (float64) of `Ntp, Nref, Nsys` per class.
    """
    from scipy.sparse import csr_matrix  # noqa: PLC0415  (scipy: where events are scored)
    from scipy.sparse.csgraph import maximum_bipartite_matching  # noqa: PLC0415

    out = np.zeros((n_classes, 3))
    for c in range(n_classes):
        r_on, r_off = (a[reference[2] == c] for a in reference[:2])
        e_on, e_off = (a[estimated[2] == c] for a in estimated[:2])
        out[c, 1:] = len(r_on), len(e_on)
        if not len(r_on) or not len(e_on):
            continue
        hit = np.abs(r_on[:, None] - e_on[None, :]) <= t_collar
        if evaluate_offset:
            collar = np.maximum(t_collar, percentage_of_length * (r_off - r_on))
            hit &= np.abs(r_off[:, None] - e_off[None, :]) <= collar[:, None]
        if hit.any():
            matched = maximum_bipartite_matching(csr_matrix(hit), perm_type="column")
            out[c, 0] = np.count_nonzero(matched >= 0)
    return out


def f_measure(n_tp: float, n_ref: float, n_sys: float) -> tuple[float, float, float]:
    """`(f1, precision, recall)` of summed counts, with sed_eval's conventions: precision
    `nan` when nothing was estimated, recall `nan` when nothing was annotated, F1 `0.0`
    when both are 0 (and `nan` when either is `nan` otherwise)."""
    precision = float(n_tp / float(n_sys)) if n_sys else math.nan
    recall = float(n_tp / float(n_ref)) if n_ref else math.nan
    if precision == 0 and recall == 0:
        return 0.0, precision, recall
    return float(2.0 * precision * recall / (1.0 * precision + recall)), precision, recall


def error_rate(counts: np.ndarray) -> float:
    """The segment-based error rate `(S + D + I) / Nref` of summed `segment_counts`
    (`np.ndarray [shape=(6,)]`), as
    sed_eval computes it (each rate over `Nref + eps`, then summed: `0` with no reference
    and no estimate, very large with estimates and no reference)."""
    n_ref, s, d, i = counts[1], counts[3], counts[4], counts[5]
    return float(s / (n_ref + _EPS)) + float(d / (n_ref + _EPS)) + float(i / (n_ref + _EPS))
