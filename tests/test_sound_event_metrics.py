"""Detection's segment- and event-based metrics, computed in the project
(`xval.tasks.detection.metrics`), against sed_eval 0.2.1, the DCASE reference they
reproduce: against the values recorded from it (`tests/data/sed_eval_reference.json`, on
every install) and, where sed_eval can be imported, against sed_eval itself."""

import json
import math
import sys
from pathlib import Path

import pytest

from benchmarks.sed_eval_reference import (
    REFERENCE,
    differences,
    hand_made,
    import_sed_eval,
    project_metrics,
    random_cases,
    sed_eval_metrics,
)
from xval.tasks.detection.events import detection_metrics, event_metrics

RECORDED = json.loads(Path(REFERENCE).read_text())


def test_the_recorded_reference_is_sed_eval_and_covers_the_edges():
    assert RECORDED["recorded_with"]["sed_eval"] == "0.2.1"
    names = {case["name"] for case in RECORDED["cases"]}
    assert {c["name"] for c in hand_made()} <= names and len(names) >= 60
    # The edges: a nan precision, an F1 of 0, collars met exactly, offsets ignored.
    expected = [case["expected"] for case in RECORDED["cases"]]
    assert any(e["event_precision"] is None for e in expected)
    assert any(e["event_f1"] == 0.0 for e in expected)
    assert any(c["options"].get("evaluate_offset") is False for c in RECORDED["cases"])


@pytest.mark.parametrize("case", RECORDED["cases"], ids=lambda c: c["name"])
def test_metrics_equal_the_values_recorded_from_sed_eval(case):
    assert differences(project_metrics(case), case["expected"]) == []


def test_metrics_equal_sed_eval_itself_where_it_is_installed():
    try:
        import_sed_eval()
    except ImportError as e:  # the recorded values above still pin the numbers
        pytest.skip(f"sed_eval cannot be imported here ({e}); compared with its recorded "
                    "values instead")
    cases = hand_made() + random_cases(150, seed=7)
    wrong = {c["name"]: d for c in cases
             if (d := differences(project_metrics(c), sed_eval_metrics(c)))}
    assert wrong == {}


def test_detection_metrics_need_neither_sed_eval_nor_dcase_util(monkeypatch):
    # The runtime install (`make install`) has neither: scoring must not import them.
    for name in ("sed_eval", "dcase_util", "dcase_util.containers", "pkg_resources"):
        monkeypatch.setitem(sys.modules, name, None)
    m = detection_metrics([("f1", 1.0, 2.0, "e")], [("f1", 1.1, 2.0, "e")], files=["f1"],
                          classes=["e"])
    assert m == {"segment_f1": 1.0, "segment_error_rate": 0.0, "event_f1": 1.0,
                 "event_precision": 1.0, "event_recall": 1.0}


def test_metrics_refuse_events_and_options_sed_eval_cannot_score():
    with pytest.raises(ValueError, match=r"from 2.0 to 1.0 s: expected 0 <= onset <= offset"):
        event_metrics([("f1", 2.0, 1.0, "e")], [], files=["f1"], classes=["e"])
    with pytest.raises(ValueError, match=r"from -0.5 to 1.0 s"):
        detection_metrics([], [("f1", -0.5, 1.0, "e")], files=["f1"], classes=["e"])
    with pytest.raises(ValueError, match=r"t_collar=0 .*expected a collar in seconds above 0"):
        event_metrics([], [], files=["f1"], classes=["e"], t_collar=0)
    with pytest.raises(ValueError, match=r"time_resolution=0: expected a segment length"):
        detection_metrics([], [], files=["f1"], classes=["e"], time_resolution=0)


def test_maximum_matching_counts_each_event_once():
    # The first estimate is within the onset collar of both references, the second of the
    # second reference only: a match giving the first estimate to the second reference
    # finds one hit; the maximum matching finds two, and no event counts twice.
    ref = [("f1", 1.0, 1.4, "e"), ("f1", 1.3, 1.7, "e")]
    est = [("f1", 1.15, 1.55, "e"), ("f1", 1.45, 1.85, "e")]
    m = event_metrics(ref, est, files=["f1"], classes=["e"], evaluate_offset=False)
    assert m["event_f1"] == 1.0 and m["class_f1"] == {"e": 1.0}
    nothing = event_metrics(ref, [], files=["f1"], classes=["e"])
    assert math.isnan(nothing["event_precision"]) and nothing["event_recall"] == 0.0
