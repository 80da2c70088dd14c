"""Events on the frame grid, windows, post-processing and detection metrics (hand-made cases)."""

import numpy as np
import pandas as pd
import pytest

from preprocessing.features import compute_features, segment, windows
from xval.tasks.detection.events import activity_to_events, detection_metrics, frame_metrics
from xval.tasks.detection.frames import frame_targets


def active(targets, column=0):
    return np.flatnonzero(targets[:, column]).tolist()


# -- frame targets ------------------------------------------------------------------------
# sample_rate=100, hop_length=10: frame t is centred on t * 0.1 s; 1 s of audio = 11 frames.

def targets_of(events, n_frames=11, classes=("event",), **kwargs):
    return frame_targets(events, n_frames, sample_rate=100, hop_length=10, classes=classes,
                         **kwargs)


def test_frame_targets_centres_inside_the_event():
    t = targets_of([(0.15, 0.45, "event")])
    assert t.shape == (11, 1) and t.dtype == np.float32
    assert active(t) == [2, 3, 4]  # centres 0.2, 0.3, 0.4; 0.1 and 0.5 are outside


def test_frame_targets_event_at_zero_and_at_the_last_sample():
    assert active(targets_of([(0.0, 0.25, "event")])) == [0, 1, 2]
    # 1 s at 100 Hz = 100 samples; the last frame is centred on the end (1.0 s): an event
    # ending at the last sample boundary covers it.
    assert active(targets_of([(0.8, 1.0, "event")])) == [8, 9, 10]


def test_frame_targets_short_and_zero_length_events_mark_the_nearest_frame():
    assert active(targets_of([(0.42, 0.47, "event")])) == [4]  # midpoint 0.445 s
    assert active(targets_of([(0.47, 0.52, "event")])) == [5]  # contains centre 0.5
    assert active(targets_of([(0.3, 0.3, "event")])) == [3]
    assert active(targets_of([(0.36, 0.36, "event")])) == [4]
    assert active(targets_of([(0.0, 0.0, "event")])) == [0]
    assert active(targets_of([(1.02, 1.04, "event")])) == [10]  # within half a hop of the end


def test_frame_targets_window_grid_and_events_outside_it():
    # A window starting at 0.5 s: frame t is centred on 0.5 + t * 0.1 s.
    t = targets_of([(0.7, 0.9, "event"), (0.0, 0.3, "event"), (2.0, 3.0, "event")],
                   n_frames=6, start_seconds=0.5)
    assert active(t) == [2, 3]
    # An event running past the window's end covers its last frame.
    assert active(targets_of([(0.8, 5.0, "event")], n_frames=6, start_seconds=0.5)) == [3, 4, 5]


def test_frame_targets_classes_and_dataframe_input():
    events = pd.DataFrame({"file": ["x", "x"], "onset_s": [0.0, 0.2], "offset_s": [0.35, 0.5],
                           "label": ["dog", "cat"]})
    t = targets_of(events, classes=["cat", "dog"])
    assert active(t, 0) == [2, 3, 4] and active(t, 1) == [0, 1, 2, 3]


def test_frame_targets_bad_input():
    with pytest.raises(ValueError, match=r"label 'bird' is not one of classes=\['event'\]"):
        targets_of([(0.1, 0.2, "bird")])
    with pytest.raises(ValueError, match="offset before onset"):
        targets_of([(0.3, 0.2, "event")])
    with pytest.raises(ValueError, match="lacks the column"):
        targets_of(pd.DataFrame({"onset_s": [0.0]}))
    with pytest.raises(ValueError, match="must be positive"):
        targets_of([], n_frames=0)


def test_frame_targets_match_the_feature_frames_of_a_tone_burst():
    sr, hop = 16000, 160
    y = np.zeros(sr, dtype=np.float32)
    t = np.arange(sr) / sr
    burst = (t >= 0.3) & (t < 0.6)
    y[burst] = 0.5 * np.sin(2 * np.pi * 1000 * t[burst])
    features = compute_features(y, sample_rate=sr, hop_length=hop, n_fft=512)
    targets = frame_targets([(0.3, 0.6, "event")], len(features), sample_rate=sr,
                            hop_length=hop, classes=["event"])
    assert targets.shape[0] == features.shape[0] == 1 + sr // hop
    loud = features.max(axis=1) > features.max() - 30
    on = np.flatnonzero(targets[:, 0])
    # The STFT window (512 samples, 3.2 hops) blurs each edge by up to two frames.
    assert loud[on[2:-2]].all() and on[0] == 30 and on[-1] == 59
    assert not loud[: on[0] - 2].any() and not loud[on[-1] + 3:].any()


# -- windows ----------------------------------------------------------------------------

def test_windows_hops_and_tail_aligned_to_the_end():
    assert windows(1100, sample_rate=1000, segment_seconds=0.5, hop_seconds=0.25) == [
        (0, 500), (250, 750), (500, 1000), (600, 1100)]
    assert windows(1000, sample_rate=1000, segment_seconds=0.5, hop_seconds=0.25)[-1] == (
        500, 1000)


def test_windows_short_recording_is_one_padded_window():
    assert windows(100, sample_rate=1000, segment_seconds=0.5, hop_seconds=0.25) == [(0, 500)]


def test_windows_are_the_segments_of_preprocessing():
    y = np.arange(1100, dtype=np.float32)
    _, starts = segment(y, sample_rate=1000, segment_seconds=0.5, hop_seconds=0.25, grid=64)
    found = windows(1100, sample_rate=1000, segment_seconds=0.5, hop_seconds=0.25, grid=64)
    assert [s for s, _ in found] == [round(s * 1000) for s in starts] == [0, 256, 512, 576]
    with pytest.raises(ValueError, match="must be > 0"):
        windows(100, sample_rate=1000, segment_seconds=0, hop_seconds=0.25)


# -- activity to events -------------------------------------------------------------------

def events_of(p, **kwargs):
    out = activity_to_events(np.asarray(p, dtype=float), frame_seconds=0.1,
                             classes=kwargs.pop("classes", ["e"]), **kwargs)
    return [(round(a, 6), round(b, 6), label) for a, b, label in out]


P = [0, 0, 1, 1, 1, 0, 0, 1, 0, 0]


def test_activity_to_events_runs_threshold_and_offset():
    assert events_of(P) == [(0.2, 0.5, "e"), (0.7, 0.8, "e")]
    assert events_of([0.2, 0.6, 0.5, 0.49], threshold=0.5) == [(0.1, 0.3, "e")]
    assert events_of(P, offset_s=10.0) == [(10.2, 10.5, "e"), (10.7, 10.8, "e")]
    assert events_of([0, 1, 1], duration_s=0.25) == [(0.1, 0.25, "e")]
    assert events_of(np.zeros(5)) == []


def test_activity_to_events_min_gap_and_min_event():
    assert events_of(P, min_gap_seconds=0.25) == [(0.2, 0.8, "e")]
    assert events_of(P, min_gap_seconds=0.2) == [(0.2, 0.5, "e"), (0.7, 0.8, "e")]
    assert events_of(P, min_event_seconds=0.15) == [(0.2, 0.5, "e")]


def test_activity_to_events_bridges_gaps_before_removing_short_events():
    p = [1, 0, 1, 0, 0, 0]
    assert events_of(p, min_event_seconds=0.25) == []
    assert events_of(p, min_gap_seconds=0.15, min_event_seconds=0.25) == [(0.0, 0.3, "e")]


def test_activity_to_events_median_filter():
    p = [0, 1, 0, 0, 1, 1, 1, 0, 1, 1]
    assert events_of(p) == [(0.1, 0.2, "e"), (0.4, 0.7, "e"), (0.8, 1.0, "e")]
    assert events_of(p, median_filter_frames=3) == [(0.4, 1.0, "e")]


def test_activity_to_events_classes_are_independent():
    p = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    assert events_of(p, classes=["a", "b"]) == [(0.0, 0.2, "a"), (0.1, 0.3, "b")]


def test_activity_to_events_round_trips_frame_targets():
    events = [(0.2, 0.5, "a"), (0.7, 1.0, "b")]
    t = targets_of(events, classes=["a", "b"])
    assert events_of(t, classes=["a", "b"], duration_s=1.0) == events


@pytest.mark.parametrize("kwargs,match", [
    ({"threshold": 0}, r"threshold=0: expected a value in \(0, 1\]"),
    ({"median_filter_frames": 2}, "median_filter_frames=2: expected an odd number"),
    ({"min_event_seconds": -1}, "min_event_seconds=-1"),
    ({"classes": ["a", "b"]}, r"do not match classes=\['a', 'b'\]"),
])
def test_activity_to_events_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        events_of(P, **kwargs)


# -- frame metrics (scikit-learn) -------------------------------------------------------------

def test_frame_metrics_hand_made():
    m = frame_metrics(np.array([[1], [1], [0], [0]]), np.array([[0.9], [0.2], [0.7], [0.1]]))
    assert m == {"frame_f1": 0.5, "frame_precision": 0.5, "frame_recall": 0.5}
    # Pooled over classes: 3 true positives, 1 false negative, no false positive.
    m = frame_metrics(np.array([[1, 0], [1, 1]]), np.array([[0.8, 0.1], [0.3, 0.6]]))
    assert m["frame_precision"] == 1.0 and m["frame_recall"] == pytest.approx(2 / 3)
    assert frame_metrics(np.eye(3), np.eye(3))["frame_f1"] == 1.0
    # Per-class thresholds (a fold's choice on validation): class 0 at 0.2, class 1 at 0.7.
    m = frame_metrics(np.array([[1, 0], [1, 1]]), np.array([[0.8, 0.1], [0.3, 0.6]]),
                      threshold=[0.2, 0.7])
    assert m["frame_precision"] == 1.0 and m["frame_recall"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="3 thresholds for 2 classes"):
        frame_metrics(np.zeros((3, 2)), np.zeros((3, 2)), threshold=[0.5, 0.5, 0.5])
    assert frame_metrics(np.zeros((3, 1)), np.zeros((3, 1)))["frame_f1"] == 0.0
    with pytest.raises(ValueError, match=r"y_true of shape \(3, 1\) and y_prob of shape"):
        frame_metrics(np.zeros((3, 1)), np.zeros((3, 2)))


# -- event and segment metrics (sed_eval's, computed in the project) ---------------------------

def metrics(reference, estimated, files=("f1",), classes=("e",), **kwargs):
    return detection_metrics(reference, estimated, files=list(files), classes=list(classes),
                             **kwargs)


def test_detection_metrics_perfect_match():
    ref = [("f1", 1.0, 2.0, "e"), ("f1", 4.0, 4.5, "e")]
    m = metrics(ref, list(ref))
    assert m == {"segment_f1": 1.0, "segment_error_rate": 0.0, "event_f1": 1.0,
                 "event_precision": 1.0, "event_recall": 1.0}


def test_detection_metrics_onset_collar():
    ref = [("f1", 1.0, 2.0, "e")]
    assert metrics(ref, [("f1", 1.15, 2.0, "e")])["event_f1"] == 1.0   # inside 200 ms
    late = metrics(ref, [("f1", 1.3, 2.0, "e")])                       # outside
    assert (late["event_f1"], late["event_precision"], late["event_recall"]) == (0, 0, 0)
    # Both still cover the 1 s segment [1, 2): the segment-based view is unchanged.
    assert late["segment_f1"] == 1.0 and late["segment_error_rate"] == 0.0


def test_detection_metrics_offset_collar():
    ref = [("f1", 1.0, 2.0, "e")]
    # The offset collar is max(200 ms, 50% of the 1 s event) = 500 ms.
    assert metrics(ref, [("f1", 1.0, 2.4, "e")])["event_f1"] == 1.0
    assert metrics(ref, [("f1", 1.0, 3.0, "e")])["event_f1"] == 0.0
    assert metrics(ref, [("f1", 1.0, 3.0, "e")], evaluate_offset=False)["event_f1"] == 1.0


def test_detection_metrics_insertions_in_a_file_without_reference():
    ref = pd.DataFrame([("f1", 1.0, 2.0, "e")], columns=["file", "onset_s", "offset_s", "label"])
    est = [("f1", 1.0, 2.0, "e"), ("f2", 0.5, 1.0, "e")]
    m = metrics(ref, est, files=["f1", "f2"])
    # Events: 1 hit, 1 false alarm: P = 1/2, R = 1, F = 2/3. Segments: the same, and the
    # insertion in f2's segment 0 gives ER = (S + D + I) / N = 1 / 1.
    assert m["event_precision"] == 0.5 and m["event_recall"] == 1.0
    assert m["event_f1"] == pytest.approx(2 / 3) and m["segment_f1"] == pytest.approx(2 / 3)
    assert m["segment_error_rate"] == pytest.approx(1.0)


def test_detection_metrics_classes_must_match():
    ref = [("f1", 1.0, 2.0, "a")]
    m = metrics(ref, [("f1", 1.0, 2.0, "b")], classes=["a", "b"])
    assert m["event_f1"] == 0.0 and m["segment_f1"] == 0.0


def test_detection_metrics_bad_input():
    with pytest.raises(ValueError, match=r"estimated event of file 'f9' .*not in `files`"):
        metrics([], [("f9", 0.0, 1.0, "e")])
    with pytest.raises(ValueError, match=r"reference event label 'x' is not one of"):
        metrics([("f1", 0.0, 1.0, "x")], [])
