"""Detection post-processing chosen per fold on the validation recordings, never on the test
recordings: recorded in the fold record, applied to the fold's test scoring and by `detect`;
an instance value still wins."""

import json

import numpy as np
import pandas as pd
import pytest

from preprocessing.store import FeatureStore, write_store
from tests.conftest import resolve
from xval import tasks
from xval.config.loader import load_config
from xval.core.hashing import seal
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, Postprocessing, RecordError, Status
from xval.inference.detect import chosen_postprocessing
from xval.inference.models import ModelSet
from xval.tasks.detection.choice import MEDIAN_GRID_SECONDS
from xval.tasks.detection.task import postprocessing
from xval.training.evaluation import evaluate_splits

FRAMES, WINDOWS, FRAME_SECONDS = 50, 4, 0.02
ITEMS = {"train": ["train0", "train1"], "val": ["val"], "test": ["test"]}


def logit(p):
    return float(np.log(p / (1 - p)))


def _recording(item, event_p, bump_p, rng, clip="rec"):
    """One recording of `WINDOWS` windows: a 15-frame event at probability `event_p` in
    every window, and (with `bump_p`) an unannotated 6-frame bump at `bump_p`. Feature
    channel 0 is the logit the model outputs (`logit_model`)."""
    feats, targets, rows = [], [], []
    for w in range(WINDOWS):
        x = np.full((FRAMES, 2), logit(0.05), np.float32)
        x[:, 1] = rng.normal(size=FRAMES)
        y = np.zeros((FRAMES, 1), np.float32)
        y[5:20] = 1
        x[5:20, 0] = logit(event_p)
        if bump_p:
            x[32:38, 0] = logit(bump_p)
        feats.append(x)
        targets.append(y)
        rows.append({"item": item, "label": "event", "clip": f"{item}/{clip}",
                     "source": f"{item}.wav", "start": w * FRAMES * FRAME_SECONDS})
    return feats, targets, rows


@pytest.fixture
def store(tmp_path):
    """Validation events at 0.35 (only threshold 0.3 finds them; three recordings, 12 events:
    enough to choose on, `MIN_EVENTS`); test events at 0.8 with
    unannotated bumps at 0.35 (threshold 0.3, or a long median filter, would be the test's
    own worst choice: threshold 0.5 and no filter are its best)."""
    rng = np.random.default_rng(0)
    feats, targets, rows = [], [], []
    for item, event_p, bump_p, clip in (("train0", 0.8, 0.0, "rec"), ("train1", 0.8, 0.0, "rec"),
                                        *(("val", 0.35, 0.0, f"rec{i}") for i in range(3)),
                                        ("test", 0.8, 0.35, "rec")):
        f, t, r = _recording(item, event_p, bump_p, rng, clip)
        feats += f
        targets += t
        rows += r
    write_store(tmp_path / "sed", np.stack(feats), pd.DataFrame(rows), task_type="detection",
                classes=["call"], overwrite=True,
                info={"feature_params": {"hop_length": 160, "sample_rate": 8000}},
                arrays={"frame_targets.npy": np.stack(targets)})
    return FeatureStore(tmp_path / "sed")


def logit_model():
    """A Keras model (no weights) whose logits are feature channel 0."""
    import keras

    inputs = keras.Input((FRAMES, 2))
    return keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1])(inputs))


def evaluate(store, params):
    meta = store.meta
    rows = {k: np.flatnonzero(meta["item"].isin(v).to_numpy()) for k, v in ITEMS.items()}
    return evaluate_splits(
        logit_model(), tasks.get("detection"), store, params=params,
        splits=("train", "val", "test"), rows=rows,
        source={k: (store.features, v) for k, v in rows.items()}, n_outputs=1,
        train_original=rows["train"], target_fn=None, batch_size=64)


def test_choice_comes_from_validation_even_where_test_would_choose_differently(store):
    free = {"detection_threshold": None, "median_filter_seconds": None,
            "min_gap_seconds": 0.0, "min_event_seconds": 0.0}
    chosen = evaluate(store, free)
    post = chosen.postprocessing
    assert post is not None and post.split == "val" and post.level == "clip"
    # Validation events sit at 0.35: only 0.3 finds them; every median ties, the shortest wins.
    assert post.values == {"detection_threshold": [0.3], "median_filter_seconds": 0.0}
    assert post.score == pytest.approx(1.0)
    # The test recordings would have chosen 0.5 (their bumps at 0.35 become false events).
    fixed = evaluate(store, {**free, "detection_threshold": 0.5, "median_filter_seconds": 0.0})
    assert fixed.clip_metrics["test"]["event_f1"] == pytest.approx(1.0)
    assert chosen.clip_metrics["test"]["event_f1"] < 0.9
    as_chosen = evaluate(store, {**free, "detection_threshold": 0.3,
                                 "median_filter_seconds": 0.0})
    assert chosen.clip_metrics["test"] == as_chosen.clip_metrics["test"]
    # The choice is what the test predictions and the plot data were made with.
    assert chosen.context.params["detection_threshold"] == [0.3]


def test_instance_values_override_the_choice(store):
    result = evaluate(store, {"detection_threshold": 0.5, "median_filter_seconds": None,
                              "min_gap_seconds": 0.0, "min_event_seconds": 0.0})
    assert set(result.postprocessing.values) == {"median_filter_seconds"}
    assert result.postprocessing.values["median_filter_seconds"] in MEDIAN_GRID_SECONDS
    assert result.context.params["detection_threshold"] == 0.5
    assert result.clip_metrics["test"]["event_f1"] == pytest.approx(1.0)
    assert evaluate(store, {"detection_threshold": 0.4, "median_filter_seconds": 0.1,
                            "min_gap_seconds": 0.0, "min_event_seconds": 0.0}) \
        .postprocessing is None


def test_detection_defaults_leave_post_processing_to_validation(tmp_path):
    from tests.conftest import write_config

    config = load_config(write_config(tmp_path))
    spec = {"architecture": "crnn_detector", "reshaping_type": "conv", "comment_1": "",
            "comment_2": ""}
    params = resolve(1, spec, training_defaults=config.training, task_type="detection")
    assert params["detection_threshold"] is None and params["median_filter_seconds"] is None
    assert params["min_gap_seconds"] is None and params["min_event_seconds"] is None
    assert params["learning_rate"] == 0.003 and params["freq_pool"] == 2
    assert postprocessing(params)["detection_threshold"] == 0.5
    named = resolve(1, {**spec, "detection_threshold": 0.6, "learning_rate": 0.01},
                    training_defaults=config.training, task_type="detection")
    assert named["detection_threshold"] == 0.6 and named["learning_rate"] == 0.01
    assert named["median_filter_seconds"] is None
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": ""}
    other = resolve(1, spec, training_defaults=config.training)
    assert other["learning_rate"] == config.training["learning_rate"]
    with pytest.raises(KeyError):  # detection's own parameter: no other task's instance has it
        other["detection_threshold"]


def _fold_record(layout, fold, values):
    record = FoldResult(instance=1, fold=fold, status=Status.OK,
                        postprocessing=Postprocessing(values=values, classes=["a", "b"],
                                                      score=0.8))
    layout.fold_file(fold).write_text(json.dumps(seal(record.to_dict())))
    layout.fold_model(fold).write_bytes(b"")
    return record


def test_fold_record_carries_the_choice_to_detect(tmp_path):
    layout = InstanceLayout(tmp_path / "instance_1", 1)
    layout.root.mkdir()
    first = _fold_record(layout, 0, {"detection_threshold": [0.3, 0.6],
                                     "median_filter_seconds": 0.1})
    _fold_record(layout, 1, {"detection_threshold": [0.5, 0.7], "median_filter_seconds": 0.0})
    read = FoldResult.from_dict(json.loads(layout.fold_file(0).read_text()))
    assert read.postprocessing == first.postprocessing
    one = chosen_postprocessing(ModelSet([layout.fold_model(0)], "fold 0"))
    assert one.values == first.postprocessing.values
    both = chosen_postprocessing(ModelSet([layout.final_model], "final"))
    assert both.values == {"detection_threshold": [0.4, 0.65], "median_filter_seconds": 0.05}
    assert both.apply({"detection_threshold": 0.5, "median_filter_seconds": None}) == {
        "detection_threshold": 0.5, "median_filter_seconds": 0.05}
    assert chosen_postprocessing(ModelSet([tmp_path / "loose.keras"], "loose")) is None
    with pytest.raises(RecordError, match="'values'"):
        Postprocessing.from_dict({"classes": ["a"]})


def test_refit_with_val_scores_its_second_model_with_the_first_ones_choice(monkeypatch):
    from xval.core.records import Job
    from xval.training import fold as fold_module

    seen = {}

    def second(job, on_epoch):
        seen["params"] = job.params
        return FoldResult(instance=1, fold=0, status=Status.OK, metrics={"train": {},
                          "test": {"event_f1": 1.0}}, epochs_run=3,
                          n_rows={"train": 10, "train_original": 10}, timings={})

    monkeypatch.setattr(fold_module, "train_and_evaluate", second)
    job = Job(instance=1, fold=0, params={"detection_threshold": None,
                                          "median_filter_seconds": 0.1},
              items={"train": ["a"], "val": ["b"], "test": ["c"]}, task_type="detection",
              generator=False, store="/x")
    first = FoldResult(instance=1, fold=0, status=Status.OK, best_epoch=3,
                       metrics={"train": {}, "val": {}, "test": {}}, timings={},
                       postprocessing=Postprocessing(values={"detection_threshold": [0.4]}))
    result = fold_module.refit_with_val(job, first, None)
    # The job's parameters are the typed record (every name, its default where not given).
    assert (seen["params"]["detection_threshold"], seen["params"]["median_filter_seconds"]) \
        == ([0.4], 0.1)
    assert result.postprocessing.values == {"detection_threshold": [0.4]}
    assert result.metrics["test"] == {"event_f1": 1.0}
