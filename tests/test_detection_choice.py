"""A detection fold's post-processing (xval.tasks.detection.choice, .shapes): gap bridging
and the shortest event from the training annotations, a median filter that keeps two
events as close as annotators draw them, and a class chosen on validation only with enough
events there. Frame probabilities made in numpy; no model."""

import numpy as np
import pytest

from xval.tasks.detection.choice import CHOSEN_ON_VALIDATION, MIN_EVENTS, choose_rules
from xval.tasks.detection.frames import frame_targets
from xval.tasks.detection.rules import EventRules
from xval.tasks.detection.shapes import EventShapes

FRAME = 0.02
UNSET = dict.fromkeys(CHOSEN_ON_VALIDATION)


def pairs(gap_s: float, n: int = 3, seconds: float = 10.0) -> np.ndarray:
    """Frame targets (20 ms frames) of `n` pairs of 0.5 s calls, `gap_s` apart (each pair's
    first call ends on frame 2 of a block of 4: the worst place for a pooled detector)."""
    events = [(0.98 + 3.04 * k + dt, 1.48 + 3.04 * k + dt, "call") for k in range(n)
              for dt in (0.0, 0.5 + gap_s)]
    return frame_targets(events, int(seconds / FRAME), sample_rate=1 / FRAME, hop_length=1,
                         classes=["call"])


def pooled_detector(y: np.ndarray, block: int = 4) -> np.ndarray:
    """What a detector that pools time by `block` (fast_detector's 80 ms on 20 ms frames)
    can say at best: each block's share of active frames, repeated over its frames."""
    n = len(y) // block * block
    means = y[:n].reshape(-1, block, y.shape[1]).mean(axis=1)
    return np.repeat(means, block, axis=0)


def logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p) - np.log1p(-p)


def test_shapes_of_the_annotations_set_bridging_shortest_event_and_median_bound():
    shapes = EventShapes.of_targets([pairs(0.15)], FRAME, ["call"])
    assert shapes.events.tolist() == [6] and shapes.gaps.tolist() == [5]
    assert shapes.shortest_gap[0] == pytest.approx(0.16)  # 150 ms on the 20 ms grid
    assert shapes.bridge() == [0.08] and shapes.drop() == [0.25]
    # A median filter of n frames erases runs of (n - 1) // 2: 0.2 s (11 frames) would
    # erase 100 ms, more than half the shortest gap; 0.1 s (5 frames) erases 40 ms.
    assert [shapes.keeps(m, FRAME) for m in (0.0, 0.06, 0.1, 0.2)] == [True, True, True,
                                                                        False]
    empty = EventShapes.of_targets([np.zeros((50, 1))], FRAME, ["call"])
    assert empty.bridge() == [0.0] and empty.drop() == [0.0] and empty.keeps(0.2, FRAME)
    with pytest.raises(ValueError, match=r"expected \(frames, 1\)"):
        EventShapes.of_targets([np.zeros((50, 2))], FRAME, ["call"])


def test_two_events_150_ms_apart_stay_two_on_a_pooled_detectors_grid():
    """Point 4: the store's 20 ms frames, a detector pooling time by 4 (80 ms) and the median
    filter the fold may choose keep two calls 150 ms apart as two; the longest filter of the
    previous grid (0.2 s) merges them."""
    truth = [pairs(0.15) for _ in range(2)]  # 12 validation calls: enough to choose on
    probs = [pooled_detector(y) for y in truth]
    for p in probs:  # dropouts of one frame inside the calls, which a filter may mend
        p[60:61] = p[210:211] = 0.0
    chosen = choose_rules(truth, [logits(p) for p in probs], 1, UNSET, FRAME, ["call"],
                          annotations=[pairs(0.15) for _ in range(3)])
    rules = EventRules.of(chosen.values)
    assert rules.median_filter_seconds < 0.2
    test = pooled_detector(pairs(0.15, n=1))
    assert len(rules.events(test, FRAME, ["call"])) == 2
    assert len(EventRules(median_filter_seconds=0.2).events(test, FRAME, ["call"])) == 1


def test_the_rule_comes_from_the_training_annotations_and_says_so():
    val = [pairs(0.4) for _ in range(2)]
    outputs = [logits(0.1 + 0.8 * y) for y in val]
    from_training = choose_rules(val, outputs, 1, UNSET, FRAME, ["call"],
                                 annotations=[pairs(0.15)])
    from_validation = choose_rules(val, outputs, 1, UNSET, FRAME, ["call"])
    assert set(from_training.values) == set(CHOSEN_ON_VALIDATION)
    assert from_training.values["min_gap_seconds"] == [0.08]  # half of 0.16 s
    assert from_validation.values["min_gap_seconds"] == [0.2]  # half of 0.4 s
    assert from_training.split == "val" and from_training.score == pytest.approx(1.0)
    assert "validation: 2 recordings, 12 events" in from_training.chosen_on
    assert "rule: training annotations, 1 recordings, 6 events" in from_training.chosen_on
    kept = choose_rules(val, outputs, 1, {**UNSET, "min_gap_seconds": 0.3}, FRAME, ["call"],
                        annotations=[pairs(0.15)])
    assert "min_gap_seconds" not in kept.values  # the instance's value wins


def test_a_class_with_too_few_validation_events_keeps_the_rule():
    """Class a: 12 validation calls at 0.35 (only 0.3 finds them): chosen. Class b: the same
    with 2 calls (under MIN_EVENTS): it keeps threshold 0.5, found nothing there."""
    y_a = [pairs(0.4) for _ in range(2)]
    y_b = [pairs(0.4, n=1) for _ in range(2)]
    truth = [np.hstack([a, b]) for a, b in zip(y_a, y_b)]
    outputs = [logits(0.05 + 0.3 * y) for y in truth]
    chosen = choose_rules(truth, outputs, 2, UNSET, FRAME, ["a", "b"])
    assert chosen.values["detection_threshold"] == [0.3, 0.5]
    assert f"1 class(es) under {MIN_EVENTS} events keep the rule" in chosen.chosen_on
