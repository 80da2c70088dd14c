"""What lost an annotated event (xval.tasks.detection.errors), and how the report shows it
(xval.tasks.detection.views): one hand-made case of every kind."""

import pytest

from xval.tasks.detection.errors import KINDS, event_errors
from xval.tasks.detection.events import event_metrics
from xval.tasks.detection.views import event_lines, event_rows
from xval.tasks.views import FoldView, Instance

REFERENCE = [("a", 1.0, 1.5, "x"),                        # found
             ("a", 3.0, 3.4, "x"),                        # missed: nothing on it
             ("a", 5.0, 5.3, "x"), ("a", 5.45, 5.8, "x"),  # merged by one detection
             ("a", 7.0, 8.0, "x"),                        # split in two
             ("a", 9.0, 9.5, "x"),                        # onset 300 ms late
             ("a", 11.0, 12.0, "x"),                      # offset 1 s late
             ("a", 14.0, 14.5, "x")]                      # confused: heard as y
DETECTED = [("a", 1.05, 1.5, "x"), ("a", 5.0, 5.8, "x"), ("a", 7.0, 7.4, "x"),
            ("a", 7.6, 8.0, "x"), ("a", 9.3, 9.6, "x"), ("a", 11.1, 13.0, "x"),
            ("a", 14.0, 14.5, "y"),                       # inserted: on no y event
            ("a", 16.0, 16.5, "x")]                       # inserted


def test_event_errors_name_the_kind_of_every_lost_event():
    counts = event_errors(REFERENCE, DETECTED, files=["a"], classes=["x", "y"])
    assert counts == {"annotated": 8, "found": 1, "missed": 1, "confused": 1, "merged": 2,
                      "split": 1, "onset": 1, "offset": 1, "inserted": 2}
    assert counts["annotated"] == counts["found"] + sum(counts[k] for k in KINDS)
    hits = event_metrics(REFERENCE, DETECTED, files=["a"], classes=["x", "y"])
    assert hits["event_recall"] == pytest.approx(counts["found"] / counts["annotated"])


def test_events_sheet_and_lines_sum_the_folds_and_say_why_psds2_is_0():
    test = {f"events_{k}": v for k, v in event_errors(
        REFERENCE, DETECTED, files=["a"], classes=["x", "y"]).items()}
    zero = {**test, "event_f1": 0.2, "psds1": 0.3, "psds2": 0.0,
            "psds2_no_cross_triggers": 0.41, "psds2_best_tpr": 0.8}
    folds = [FoldView(0, [], metrics={"event_f1": 0.1}, clip_metrics=zero),
             FoldView(1, [], metrics={**test, "psds2": 0.5}),  # windows only
             FoldView(2, [], metrics={"event_f1": 0.5})]      # recorded before the counts
    instance = Instance(3, None, ["x", "y"], folds)  # type: ignore[arg-type]
    rows = event_rows(instance)
    assert [r[0] for r in rows] == [0, 1] and rows[0][1] == 0.2  # the recording level first
    assert "cross-trigger penalty: 0.410 without it" in rows[0][-3] and rows[1][-3] == ""
    lines = event_lines(instance)
    assert lines[0].startswith("instance 3, test events over 2 folds: 16 annotated, 2 found")
    assert "4 merged" in lines[0] and "4 inserted" in lines[0]
    assert lines[1].startswith("instance 3 fold 0: PSDS2 is 0 because of the cross-trigger")
