"""Overlapping windows at evaluation and prediction (`prediction_hop`, issue 66): the
windows laid between a recording's stored windows, and a fold scored through them."""

import numpy as np
import pandas as pd
import pytest

from preprocessing.store import write_store
from xval import tasks
from xval.core.parameters import InstanceParams, TrainingParams
from xval.tasks.detection.overlap import overlap_starts, overlap_windows

FRAME = 0.02  # seconds per frame
LENGTH = 20   # frames per stored window


def test_overlap_starts_every_hop_and_the_tail():
    assert overlap_starts(60, 20, 0.5) == [0, 10, 20, 30, 40]
    assert overlap_starts(65, 20, 0.5) == [0, 10, 20, 30, 40, 45]  # the last ends at 65
    assert overlap_starts(60, 20, 1.0) == [0, 20, 40]
    assert overlap_starts(15, 20, 0.5) == [0]


def _recording(frames, seed=0):
    """Stored windows side by side over a recording of `frames` frames (the last ending
    with it, as a detection store cuts them), and the recording's own frames."""
    rng = np.random.default_rng(seed)
    line = rng.normal(size=(frames, 3)).astype(np.float32)
    truth = (rng.random((frames, 1)) < 0.3).astype(np.uint8)
    firsts = overlap_starts(frames, LENGTH, 1.0)
    x = np.stack([line[f:f + LENGTH] for f in firsts])
    y = np.stack([truth[f:f + LENGTH] for f in firsts])
    return line, truth, x, y, np.asarray(firsts) * FRAME


def test_overlap_windows_are_slices_of_the_recording_between_its_windows():
    line, truth, x, y, starts = _recording(65)        # stored at frames 0, 20, 40, 45
    windows = overlap_windows(x, y, ["a"] * len(x), starts, FRAME, 0.5)
    firsts = np.rint(windows.starts / FRAME).astype(int)
    assert firsts.tolist() == [10, 30]                 # 0, 20, 40, 45 are stored already
    for k, first in enumerate(firsts):
        np.testing.assert_array_equal(windows.features[k], line[first:first + LENGTH])
        np.testing.assert_array_equal(windows.targets[k], truth[first:first + LENGTH])
    assert windows.clips.tolist() == ["a", "a"] and len(windows) == 2
    assert windows.features.dtype == np.float32 and windows.targets.dtype == np.uint8


def test_overlap_windows_leave_gaps_single_windows_and_hop_one():
    _, _, x, y, starts = _recording(60)
    assert overlap_windows(x, y, ["a"] * 3, starts, FRAME, 1.0) is None
    gapped = starts.copy()
    gapped[2] += 10 * FRAME                            # a gap of 10 frames before window 3
    assert overlap_windows(x, y, ["a"] * 3, gapped, FRAME, 0.5) is None
    assert overlap_windows(x[:1], y[:1], ["a"], starts[:1], FRAME, 0.5) is None
    two = overlap_windows(np.concatenate([x, x]), np.concatenate([y, y]),
                          ["a"] * 3 + ["b"] * 3, np.concatenate([starts, starts]), FRAME,
                          0.5)
    assert two.clips.tolist() == ["a", "a", "b", "b"]  # each recording's own


@pytest.mark.parametrize("hop", [0.0, 1.5, -0.5])
def test_overlap_windows_refuse_a_hop_outside_0_1(hop):
    _, _, x, y, starts = _recording(60)
    with pytest.raises(ValueError, match=r"prediction_hop=.*expected a fraction of the "
                                         r"window in \(0, 1\]"):
        overlap_windows(x, y, ["a"] * 3, starts, FRAME, hop)


def edge_blind():
    """A detector (a Keras model without weights) that finds every active frame (feature
    bin 0 high) except in the first and last 6 frames of its window, where it sees
    nothing."""
    import keras
    from keras import ops

    def logits(x):
        found = ops.where(x[..., :1] > 0.5, 8.0, -8.0)
        frame = ops.arange(LENGTH)[None, :, None]
        return ops.where((frame < 6) | (frame >= LENGTH - 6), -3.0, found)

    inputs = keras.Input((LENGTH, 2))
    return keras.Model(inputs, keras.layers.Lambda(logits)(inputs))


def test_a_fold_scores_an_event_on_a_window_edge_through_the_overlapping_windows(tmp_path):
    """Two recordings of three stored windows, each with one 8-frame event across the
    border of its first two windows: an edge-blind detector misses both when the
    recordings are read through their stored windows only, and finds both with
    `prediction_hop=0.5`."""
    from xval.training.evaluation import evaluate_splits

    feats, targets, rows = [], [], []
    for r in range(2):
        line = np.zeros((60, 2), np.float32)
        truth = np.zeros((60, 1), np.uint8)
        line[16:24, 0], truth[16:24] = 1.0, 1
        for w in range(3):
            feats.append(line[w * LENGTH:(w + 1) * LENGTH])
            targets.append(truth[w * LENGTH:(w + 1) * LENGTH])
            rows.append({"item": f"rec{r}", "clip": f"rec{r}", "start": w * LENGTH * FRAME,
                         "label": "event" if truth[w * LENGTH:(w + 1) * LENGTH].any()
                         else "background", "source": f"rec{r}.wav"})
    store = write_store(tmp_path / "sed", np.stack(feats), pd.DataFrame(rows),
                        task_type="detection", classes=["call"],
                        arrays={"frame_targets.npy": np.stack(targets)},
                        info={"feature_params": {"hop_length": 160, "sample_rate": 8000}})
    everything = np.arange(len(feats))
    scores = {}
    for hop in (1.0, 0.5):
        params = InstanceParams().replace(detection_threshold=0.5, median_filter_seconds=0.0,
                                          prediction_hop=hop)
        scored = evaluate_splits(
            edge_blind(), tasks.get("detection"), store, params=params, splits=("test",),
            rows={"train": everything, "test": everything},
            source={"train": (store.features, everything),
                    "test": (store.features, everything)},
            n_outputs=1, train_original=everything, target_fn=None, batch_size=4)
        scores[hop] = (scored.clip_metrics["test"]["event_recall"],
                       scored.metrics["test"]["frame_recall"])
    assert scores[1.0][0] == 0.0 and scores[0.5][0] == 1.0
    assert scores[1.0][1] == scores[0.5][1]  # the stored windows' own scores are unchanged


def test_detect_reads_new_recordings_every_prediction_hop_windows():
    from xval.core.parameters import FeatureParams
    from xval.inference.detect import reading_windows

    hop = tasks.get("detection").scoring.reading_hop
    store = FeatureParams(segment_seconds=5.0, segment_hop_seconds=5.0)
    assert reading_windows(store, hop({"prediction_hop": 0.5})).segment_hop_seconds == 2.5
    assert reading_windows(store, hop({})).segment_hop_seconds == 5.0  # its default: 1
    assert reading_windows(store, hop({"prediction_hop": 1.0})).segment_hop_seconds == 5.0
    overlapping = store.replace(segment_hop_seconds=2.0)  # the store's own hop is shorter
    assert reading_windows(overlapping, hop({"prediction_hop": 0.5})).segment_hop_seconds == 2.0


@pytest.mark.parametrize("name, value", [("prediction_hop", 0.5), ("event_mix", 0.5),
                                         ("boundary_weight", 2.0)])
def test_detection_parameters_refused_for_a_task_without_events(name, value):
    from tests.conftest import resolve
    from xval.core.errors import ParameterError

    spec = {"architecture": "mlp", name: value}
    with pytest.raises(ParameterError, match=rf"instance 1: {name}={value} \(from instance 1\) "
                                             r"is a parameter of task_type='detection'; this "
                                             r"instance is 'classification': remove it"):
        resolve(1, spec, training_defaults=TrainingParams(), task_type="classification")
    spec["architecture"] = "crnn_detector"
    assert resolve(1, spec, training_defaults=TrainingParams(), task_type="detection")[name] \
        == value
