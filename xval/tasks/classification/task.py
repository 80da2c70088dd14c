"""Classification: one class per row, a softmax over the store's classes.

Targets are class indices (`int64`); the head gives logits (the layer `logits`); the loss is
sparse categorical cross-entropy, or categorical cross-entropy on one-hot targets when
`label_smoothing` or `mixup_alpha` is above 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xval.core.errors import DatasetError
from xval.tasks.base import NO_CONTEXT, Context, Head, Params, Scoring, StoreView, Targets, Task
from xval.tasks.classification.metrics import classification_metrics
from xval.tasks.fusion import FLOOR, Fusion, Rows, pooled
from xval.tasks.metrics import f1_per_class, softmax
from xval.tasks.registry import register
from xval.tasks.views import ClassScores, Instance
from xval.tasks.weights import balanced_weights

if TYPE_CHECKING:
    import pandas as pd


def _one_hot(params: Params) -> bool:
    """Whether the loss takes one-hot targets (label smoothing or mixup)."""
    return params.label_smoothing > 0 or params.mixup_alpha > 0


class ClassTargets(Targets):
    """Class indices into the store's classes."""

    def encode(self, meta: pd.DataFrame,
               classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        meta["label"] = meta["label"].astype(str)
        if classes is None:
            classes = sorted(set(meta["label"]))
        unknown = sorted(set(meta["label"]) - set(classes))
        if unknown:
            raise DatasetError(f"Labels {unknown[:5]} are not among the classes {classes}.")
        index = {c: i for i, c in enumerate(classes)}
        meta["target"] = meta["label"].map(index).astype(int)
        return meta, list(classes)

    def of_meta(self, meta: pd.DataFrame) -> np.ndarray:
        return meta["target"].to_numpy(np.int64)

    def check_labels(self, labels: Sequence[Any], where: str) -> None:
        if len(set(labels)) < 2:
            raise DatasetError(f"Only one class ({labels[0]!r}) was found in {where}; "
                               "classification needs two or more.")

    def of_files(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise DatasetError(
                f"Label(s) {unknown} are not classes of the model, whose classes are "
                f"{classes}. Relabel or leave out those files (--label-map maps codes)."
            )
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[v] for v in labels])

    def stratify(self, store: StoreView) -> np.ndarray | None:
        return store.meta["label"].to_numpy(str)

    def num_outputs(self, store: StoreView) -> int:
        return len(store.classes)

    def for_keras(self, y: np.ndarray, params: Params, num_outputs: int) -> np.ndarray:
        """Class indices, or one-hot rows (float32) when `label_smoothing` or
        `mixup_alpha` is above 0."""
        if _one_hot(params):
            return np.eye(num_outputs, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
        return y

    def sample_weights(self, y: np.ndarray, params: Params) -> np.ndarray | None:
        """scikit-learn's "balanced" weights (`xval.tasks.weights.balanced_weights`) when
        `class_weights` is set; `None` otherwise."""
        return balanced_weights(y) if params.class_weights else None


class SoftmaxHead(Head):
    """Logits, trained with (sparse) categorical cross-entropy."""

    def loss(self, params: Params, train_targets: np.ndarray | None = None) -> Any:
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        if _one_hot(params):
            return keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=float(params.label_smoothing))
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @property
    def scores_activation(self) -> str | None:
        return "softmax"

    exported = "class probabilities (softmax), (batch, classes)"

    def metrics(self, params: Params) -> list[Any]:
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        if _one_hot(params):
            return [keras.metrics.CategoricalAccuracy(name="accuracy")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


class ClassFusion(Fusion):
    """Class probabilities: a clip's are the softmax of the mean of its segments'
    log-probabilities (the softmax of their mean logits, as the member's own clip level)."""

    objective = "log loss"

    def read(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.log(np.maximum(np.array([[float(r[f"p_{c}"]) for c in classes]
                                           for r in rows]), FLOOR))

    def pool(self, means: np.ndarray) -> np.ndarray:
        return softmax(means)

    def targets(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.array([r["target"] for r in rows]).astype(int)

    def loss(self, targets: np.ndarray, scores: np.ndarray) -> float:
        picked = scores[np.arange(len(targets)), targets]
        return float(-np.log(np.maximum(picked, FLOOR)).mean())

    def outputs(self, scores: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(scores, FLOOR))  # log-probabilities as logits

    def decide(self, scores: Mapping[str, float], params: Mapping[str, Any] | None = None
               ) -> Any:
        return max(scores, key=scores.__getitem__)


class ClassScoring(Scoring):
    """Accuracy, macro F1, precision and recall, the confusion matrix; softmax scores."""

    fusion = ClassFusion()
    clip_rule = (
        "A clip's scores: softmax(mean over its windows of log(scores)), which equals the "
        "softmax of the mean of the logits; predict leaves out windows that are silence or "
        "padding when the file has others.")
    ensemble_clip_rule = (
        "A clip's scores (as `predict` gives an ensemble's): for each member m, softmax(mean "
        "over the clip's windows of log(member_scores[:, m])), then their mean weighted by "
        "the members' weights; the `scores` output is the weighted mean per window.")

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 context: Context = NO_CONTEXT) -> dict[str, Any]:
        return classification_metrics(y_true, outputs, num_outputs)

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           context: Context = NO_CONTEXT) -> dict[str, Any]:
        probs = softmax(outputs)
        columns: dict[str, Any] = {"predicted": [classes[i] for i in probs.argmax(axis=1)]}
        for i, name in enumerate(classes):
            columns[f"p_{name}"] = probs[:, i].round(6)
        return columns

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str],
                       context: Context = NO_CONTEXT
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        probs = softmax(outputs)
        clip = softmax(outputs.mean(axis=0, keepdims=True))[0]
        segments = [{"start": start, "scores": dict(zip(classes, p.tolist()))}
                    for start, p in zip(starts, probs)]
        return segments, {"scores": dict(zip(classes, clip.tolist())),
                          "predicted": classes[int(clip.argmax())]}

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        from sklearn import metrics as skm  # noqa: PLC0415  (scikit-learn: when scoring)

        y_true = np.asarray(y_true, int)
        y_pred = outputs.argmax(axis=1)
        labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
        names = [classes[i] for i in labels]
        report = {"labels": labels, "target_names": names, "zero_division": 0}
        return {
            "accuracy": float(skm.accuracy_score(y_true, y_pred)),
            "f1_macro": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro",
                                           zero_division=0)),
            "report": skm.classification_report(y_true, y_pred, **report, output_dict=True),
            "report_text": skm.classification_report(y_true, y_pred, **report, digits=3),
            "labels": names,
            "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        }

    def format_level(self, data: dict[str, Any]) -> list[str]:
        import pandas as pd  # noqa: PLC0415  (pandas: when an evaluation is printed)

        matrix = pd.DataFrame(data["confusion_matrix"], index=data["labels"],
                              columns=data["labels"])
        return [f"accuracy {data['accuracy']:.3f}, macro F1 {data['f1_macro']:.3f}",
                data["report_text"].rstrip(),
                "Confusion matrix (rows: true, columns: predicted):",
                matrix.to_string()]

    def level_records(self, level: str, data: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
        records = [(level, "", "accuracy", data["accuracy"]),
                   (level, "", "f1_macro", data["f1_macro"])]
        for label, values in data["report"].items():
            if isinstance(values, dict):
                records += [(level, label, k, v) for k, v in values.items()]
        for label, row in zip(data["labels"], data["confusion_matrix"]):
            records += [(level, label, f"predicted_{other}", n)
                        for other, n in zip(data["labels"], row)]
        return records


@register
class Classification(Task):
    """Single-label classification over the store's classes."""

    name = "classification"
    parts = (ClassTargets, SoftmaxHead, ClassScoring)
    head_name = "logits"
    history_metrics = ("loss", "accuracy")
    metric_names = ("loss", "accuracy", "f1", "precision", "recall")
    metric_ranges = {"loss": (0.0, math.inf), "accuracy": (0.0, 1.0), "f1": (0.0, 1.0),
                     "precision": (0.0, 1.0), "recall": (0.0, 1.0), "auc": (0.0, 1.0)}
    maximize = ("accuracy", "f1", "precision", "recall", "auc")
    selection_metric = "accuracy"
    headline = (("segment", "accuracy", "accuracy"), ("segment", "f1", "macro F1"))
    has_classes = True
    labelled_rows = True
    figures = ("confusion_matrix", "per_class_f1")
    class_scores = ClassScores("F1", lambda instance: clip_f1(instance))


def clip_f1(instance: Instance) -> np.ndarray | None:
    """Each class's test F1 per fold at the clip level (the folds' test predictions pooled
    to clips as the task pools them), `[shape=(folds, classes)]`, or `None` without test
    predictions."""
    n = len(instance.classes)
    found = []
    for fold in instance.folds:
        if not fold.predictions:
            continue
        clips = pooled(fold.predictions, instance.task, instance.classes)
        matrix = np.zeros((n, n))
        np.add.at(matrix, (np.asarray(clips.targets, int), clips.scores.argmax(axis=1)), 1)
        found.append(f1_per_class(matrix))
    return np.stack(found) if found else None
