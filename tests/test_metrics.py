import numpy as np
import pytest
from sklearn import metrics as skm

from xval.core.records import FoldResult, InstanceSummary
from xval.tasks.classification.metrics import classification_metrics
from xval.tasks.metrics import pool_by_clip, softmax
from xval.tasks.regression.metrics import regression_metrics


def test_classification_metrics_match_scikit_learn(rng):
    y = rng.integers(0, 3, 50)
    logits = rng.normal(size=(50, 3))
    pred = logits.argmax(1)
    m = classification_metrics(y, logits, 3)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro",
                                                               zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    probs = softmax(logits)
    assert m["loss"] == pytest.approx(skm.log_loss(y, probs, labels=[0, 1, 2]))


def test_confusion_matrix_rows_are_true_classes():
    y_true = np.array([0, 0, 0, 1])
    logits = np.eye(3)[[1, 1, 0, 1]]  # class 0 predicted as 1 twice
    cm = classification_metrics(y_true, logits, 3)["confusion_matrix"]
    assert cm == [[1, 2, 0], [0, 1, 0], [0, 0, 0]]


def test_regression_metrics():
    m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert m["loss"] == pytest.approx(4 / 3) and m["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert m["mae"] == pytest.approx(2 / 3) and m["r2"] == pytest.approx(1 - 4 / 2)


def test_pool_by_clip_averages_logits_in_order():
    outputs = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0]])
    ids, pooled, targets = pool_by_clip(outputs, np.array([0, 0, 1]), np.array(["b", "b", "a"]))
    assert ids.tolist() == ["b", "a"]
    np.testing.assert_allclose(pooled, [[2.0, 0.0], [0.0, 5.0]])
    assert targets.tolist() == [0, 1]


def test_summarize_status_and_pooled_confusion():
    fold = {"status": "ok", "best_epoch": 2, "timings": {"total_seconds": 1.0}, "format": 2,
            "metrics": {s: {"accuracy": 0.5, "loss": 1.0, "confusion_matrix": [[1, 0], [0, 1]]}
                        for s in ("train", "val", "test")}, "clip_metrics": None}
    two = [FoldResult.from_dict(dict(fold, instance=1, fold=i)) for i in range(2)]
    s = InstanceSummary.from_folds(two, 2).to_dict()
    assert s["status"] == "complete" and s["confusion_matrix"]["segment"] == [[2, 0], [0, 2]]
    assert s["metrics"]["segment"]["test"]["accuracy"] == {"mean": 0.5, "std": 0.0,
                                                           "ci95": 0.0, "n": 2}
    assert InstanceSummary.from_folds(two[:1], 2).status == "partial"
    boom = FoldResult.from_dict({"status": "failed", "message": "boom", "instance": 1,
                                 "fold": 1, "format": 2})
    failed = InstanceSummary.from_folds([two[0], boom], 2)
    assert failed.status == "failed" and failed.message == "boom"
