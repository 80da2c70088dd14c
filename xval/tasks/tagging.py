"""Tagging: several labels per clip (multi-label), one sigmoid per label.

A tagging store keeps each row's labels in its `label` column as one text, the labels
sorted and joined by `TAG_SEPARATOR` (`dog;bark` reads `bark;dog`), and its `target` the
indices of those labels in the store's classes joined the same way (`0;3`); the model
sees them as 0/1 rows `(rows, classes)`. The head gives one logit per label (the layer
`tag_logits`); the loss is the binary cross-entropy, or with `class_weights=True` the
cross-entropy whose positives of label `c` weigh `negatives_c / positives_c` over the
fold's training rows (clipped to `[1, MAX_POSITIVE_WEIGHT]`, as detection weighs its
frames), or with `focal_gamma > 0` the binary focal cross-entropy.

Scoring (`xval.tasks.tag_metrics`): mAP (selection), lwlrap, macro ROC AUC and d-prime
need no threshold; micro and macro F1 are taken at one threshold per label, which each
fold chooses on its validation clips (the label's best F1 there, `tag_threshold=None`, the
default) and records as its post-processing, so that the test clips, `predict` and the
model card use the thresholds of the validation items only. A clip's scores are the mean
of its segments' probabilities; an ensemble of instances averages its members'
probabilities (`TagFusion`) and chooses its thresholds on its own fused validation clips.

The workbook's Labels sheet and the per-label AP figure read each fold's test predictions
(`label_table`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xval.core.errors import DatasetError, ParameterError
from xval.core.records import Postprocessing
from xval.tasks.base import (
    NO_CONTEXT,
    Context,
    Head,
    Params,
    Pooled,
    Scoring,
    StoreView,
    Targets,
    Task,
)
from xval.tasks.fusion import FLOOR, Fusion, Rows
from xval.tasks.metrics import sigmoid
from xval.tasks.registry import register
from xval.tasks.tag_metrics import (
    DEFAULT_THRESHOLD,
    average_precisions,
    choose_thresholds,
    f1_scores,
    logit,
    tagging_metrics,
    thresholds_of,
)
from xval.tasks.weights import positive_weights

if TYPE_CHECKING:
    import pandas as pd

TAG_SEPARATOR = ";"
"""How a tagging store joins the labels of one row (`label`) and their indices (`target`)."""
THRESHOLD = "tag_threshold"
"""The instance parameter each fold chooses on its validation clips."""


def split_tags(text: Any, separator: str = TAG_SEPARATOR) -> list[str]:
    """The labels of one text: split at `separator`, stripped, empty ones left out, each
    once, sorted.

    Example:
    >>> split_tags(" dog; bark ;dog")
    ['bark', 'dog']
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return sorted({part.strip() for part in str(text).split(separator) if part.strip()})


def join_tags(tags: Iterable[Any]) -> str:
    """One text of labels as a tagging store keeps them: sorted, each once, joined by
    `TAG_SEPARATOR`.

    Raises:
        DatasetError: for a label holding `TAG_SEPARATOR` itself.
    """
    names = sorted({str(t).strip() for t in tags if str(t).strip()})
    bad = [n for n in names if TAG_SEPARATOR in n]
    if bad:
        raise DatasetError(f"Label {bad[0]!r} holds {TAG_SEPARATOR!r}, which separates the "
                           "labels of a clip in a tagging store; rename it.")
    return TAG_SEPARATOR.join(names)


def multi_hot(targets: Iterable[Any], n_classes: int) -> np.ndarray:
    """0/1 rows from the `target` texts of a tagging store (`0;3`: classes 0 and 3).

    Returns:
        `np.ndarray [shape=(rows, n_classes)]`, float32.
    """
    texts = list(targets)
    out = np.zeros((len(texts), n_classes), dtype=np.float32)
    for row, text in enumerate(texts):
        for index in split_tags(text):
            out[row, int(index)] = 1.0
    return out


def _threshold_values(params: Mapping[str, Any] | None, n_labels: int) -> np.ndarray:
    """The per-label thresholds of `params` (`tag_threshold`; `DEFAULT_THRESHOLD` when
    absent or unset)."""
    value = params.get(THRESHOLD) if params is not None else None
    return thresholds_of(value, n_labels)


def check_label_sets(sets: Sequence[Sequence[str]], where: str = "the rows") -> None:
    """Refuses labels a tagging store cannot learn: a row without a label, a single label
    set everywhere, or one label per row everywhere (that is classification).

    Args:
        sets: the labels of every row (`split_tags`).
        where: the rows, for the message.

    Raises:
        DatasetError: naming the row or the labels, and the fix.
    """
    empty = [i for i, tags in enumerate(sets) if not tags]
    if empty:
        raise DatasetError(
            f"{len(empty)} of {len(sets)} rows of {where} have no label (the first: row "
            f"{empty[0] + 1}); a tagging clip needs one label at least: label it, leave it "
            "out, or give it a class of its own (--empty-label none).")
    distinct = {tuple(tags) for tags in sets}
    if len(distinct) < 2:
        shown = TAG_SEPARATOR.join(next(iter(distinct), ()))
        raise DatasetError(f"Every row of {where} has the labels {shown!r}: there is nothing "
                           "to learn; a tagging store needs clips with different labels.")
    if all(len(tags) == 1 for tags in sets):
        raise DatasetError(
            f"Every row of {where} has a single label ({len(distinct)} different ones): this "
            "is classification. Use task_type='classification' (no label separator), or "
            "check the separator if the clips do hold several labels.")


class TagTargets(Targets):
    """The set of the store's classes each row holds, as 0/1 rows."""

    def encode(self, meta: pd.DataFrame,
               classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        sets = [split_tags(text) for text in meta["label"].tolist()]
        check_label_sets(sets)
        found = sorted({tag for tags in sets for tag in tags})
        classes = list(classes) if classes else found
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DatasetError(f"Labels {unknown[:5]} are not among the classes {classes}.")
        index = {c: i for i, c in enumerate(classes)}
        meta["label"] = [join_tags(tags) for tags in sets]
        meta["target"] = [TAG_SEPARATOR.join(str(i) for i in sorted(index[t] for t in tags))
                          for tags in sets]
        return meta, [str(c) for c in classes]

    def of_meta(self, meta: pd.DataFrame) -> np.ndarray:
        """0/1 rows as wide as the largest class index present (`of_store` knows the
        classes: use it)."""
        width = max((int(i) for text in meta["target"] for i in split_tags(text)), default=-1)
        return multi_hot(meta["target"], width + 1)

    def of_store(self, store: StoreView) -> np.ndarray:
        return multi_hot(store.meta["target"], len(store.classes))

    def of_files(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        sets = [split_tags(text) for text in labels]
        unknown = sorted({t for tags in sets for t in tags} - set(classes))
        if unknown:
            raise DatasetError(f"Label(s) {unknown} are not classes of the model, whose "
                               f"classes are {list(classes)}. Relabel or leave out those "
                               "files.")
        index = {c: i for i, c in enumerate(classes)}
        return multi_hot([TAG_SEPARATOR.join(str(index[t]) for t in tags) for tags in sets],
                         len(classes))

    def labels_of(self, y: np.ndarray, classes: Sequence[str] | None) -> list[Any]:
        """`y` of 0/1 rows (`[shape=(n, classes)]`) as label texts; `classes` name the
        columns (their indices without)."""
        rows = np.atleast_2d(np.asarray(y))
        names = list(classes) if classes is not None else [str(i) for i in
                                                          range(rows.shape[1])]
        return [join_tags(names[i] for i in np.flatnonzero(row > 0.5)) for row in rows]

    def stratify(self, store: StoreView) -> np.ndarray | None:
        """The 0/1 rows: the splitter keeps every label's share (`MultilabelItemKFold`)."""
        return self.of_store(store)

    def num_outputs(self, store: StoreView) -> int:
        return len(store.classes)

    def for_keras(self, y: np.ndarray, params: Params, num_outputs: int) -> np.ndarray:
        return np.asarray(y, dtype=np.float32)


class TagHead(Head):
    """One logit per label, trained with the binary cross-entropy (weighted, or focal)."""

    def loss(self, params: Params, train_targets: np.ndarray | None = None) -> Any:
        """The binary cross-entropy on logits (with `label_smoothing`); with
        `class_weights=True`, positives weighted per label by `positive_weights` of the
        fold's training rows; with `focal_gamma > 0`, the binary focal cross-entropy.

        Raises:
            ValueError: when `class_weights` is set and `train_targets` is not given.
        """
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        smoothing = float(params.label_smoothing)
        if params.focal_gamma:
            return keras.losses.BinaryFocalCrossentropy(
                gamma=float(params.focal_gamma), from_logits=True, label_smoothing=smoothing)
        if not params.class_weights:
            return keras.losses.BinaryCrossentropy(from_logits=True,
                                                   label_smoothing=smoothing)
        if train_targets is None:
            raise ValueError("class_weights=True: the tagging loss weights positives from "
                             "the fold's training rows; pass train_targets=.")
        from xval.tasks.losses import WeightedFrameCrossentropy  # noqa: PLC0415  (keras)

        return WeightedFrameCrossentropy(positive_weights(train_targets),
                                         name="weighted_tag_crossentropy")

    def metrics(self, params: Params) -> list[Any]:
        # Keras's AUC(multi_label=True), counted without waiting for the host.
        from xval.tasks.losses import MultiLabelAUC  # noqa: PLC0415  (imports keras)

        return [MultiLabelAUC(from_logits=True, name="auc")]

    @property
    def scores_activation(self) -> str | None:
        return "sigmoid"


class TagFusion(Fusion):
    """Label probabilities: a clip's are the mean of its segments'; an ensemble's the
    weighted mean of its members'."""

    objective = "binary log loss"

    def read(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])

    def targets(self, rows: Rows, classes: Sequence[str]) -> np.ndarray:
        return multi_hot([r["target"] for r in rows], len(classes))

    def loss(self, targets: np.ndarray, scores: np.ndarray) -> float:
        p = np.clip(scores, FLOOR, 1 - FLOOR)
        return float(-np.mean(targets * np.log(p) + (1 - targets) * np.log1p(-p)))

    def outputs(self, scores: np.ndarray) -> np.ndarray:
        return logit(scores)

    def decide(self, scores: Mapping[str, float], params: Mapping[str, Any] | None = None
               ) -> Any:
        names = list(scores)
        thresholds = _threshold_values(params, len(names))
        return join_tags(n for n, t in zip(names, thresholds) if scores[n] >= t)


class TagScoring(Scoring):
    """mAP, lwlrap, AUC and d-prime of the probabilities; F1 at per-label thresholds."""

    fusion = TagFusion()

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 context: Context = NO_CONTEXT) -> dict[str, Any]:
        return tagging_metrics(y_true, outputs, _threshold_values(context.params,
                                                                  num_outputs))

    def pool_by_clip(self, outputs: np.ndarray, targets: np.ndarray, clips: np.ndarray,
                     starts: Sequence[float] | np.ndarray | None = None,
                     frame_seconds: float | None = None) -> Pooled | None:
        """A clip's probabilities are the mean of its segments' (returned as logits)."""
        clips = np.asarray(clips).astype(str)
        ids, first, inverse = np.unique(clips, return_index=True, return_inverse=True)
        order = np.argsort(first)
        sums = np.zeros((len(ids), outputs.shape[1]), dtype=np.float64)
        np.add.at(sums, inverse, sigmoid(np.asarray(outputs, dtype=np.float64)))
        means = sums / np.bincount(inverse, minlength=len(ids))[:, None]
        return ids[order], logit(means[order]), np.asarray(targets)[first][order]

    def choose_postprocessing(self, y_true: Any, outputs: Any, num_outputs: int,
                              context: Context = NO_CONTEXT) -> Postprocessing | None:
        """Each label's threshold of best F1 on the given (validation) clips
        (`choose_thresholds`), unless the instance sets `tag_threshold`.

        Returns:
            A `Postprocessing` of `tag_threshold` (one per label, `split="val"`, its score
            the macro F1 there), or `None` when the instance sets it.
        """
        if context.params is not None and context.params.get(THRESHOLD) is not None:
            return None
        probabilities = sigmoid(np.asarray(outputs, dtype=np.float64))
        chosen = choose_thresholds(y_true, probabilities)
        _, macro = f1_scores(y_true, probabilities, chosen)
        return Postprocessing(values={THRESHOLD: [float(t) for t in chosen]},
                              classes=list(context.classes or []),
                              score=None if math.isnan(macro) else round(macro, 6))

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           context: Context = NO_CONTEXT) -> dict[str, Any]:
        """`predicted` (the labels at or over their thresholds), then `p_<label>`."""
        probs = sigmoid(np.asarray(outputs, dtype=np.float64))
        thresholds = _threshold_values(context.params, len(classes))
        columns: dict[str, Any] = {"predicted": [
            join_tags(c for c, p, t in zip(classes, row, thresholds) if p >= t)
            for row in probs]}
        for i, name in enumerate(classes):
            columns[f"p_{name}"] = probs[:, i].round(6)
        return columns

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str], context: Context = NO_CONTEXT
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Each segment's probabilities and `predicted` labels (those at or over their
        thresholds: the folds' choice, see `xval.inference.predict`); the clip's
        probabilities are their mean, with its `predicted` labels and the `thresholds`
        used."""
        probs = sigmoid(np.asarray(outputs, dtype=np.float64))
        clip = probs.mean(axis=0)
        thresholds = _threshold_values(context.params, len(classes))
        def over(p: np.ndarray) -> str:
            return join_tags(c for c, v, t in zip(classes, p, thresholds) if v >= t)

        segments = [{"start": start, "scores": dict(zip(classes, p.tolist())),
                     "predicted": over(p)} for start, p in zip(starts, probs)]
        return segments, {"scores": dict(zip(classes, clip.tolist())), "predicted": over(clip),
                          "thresholds": dict(zip(classes, thresholds.tolist()))}

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        scores = tagging_metrics(y_true, outputs, np.full(len(classes), DEFAULT_THRESHOLD))
        return {k: v for k, v in scores.items() if k != "loss"}


def label_table(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """Per label: its average precision (NaN without a positive clip) and its support (the
    clips that hold it), for the Labels sheet and the per-label AP figure.

    Args:
        y_true: 0/1 targets of clips, `np.ndarray [shape=(clips, labels)]`.
        probabilities: their probabilities, same shape.

    Returns:
        `{"ap": [shape=(labels,)], "support": [shape=(labels,)]}`.
    """
    y = np.asarray(y_true)
    return {"ap": average_precisions(y, probabilities),
            "support": y.sum(axis=0).astype(int)}


@register
class Tagging(Task):
    """Multi-label tagging: every clip holds a set of the store's classes."""

    name = "tagging"
    parts = (TagTargets, TagHead, TagScoring)
    head_name = "tag_logits"
    history_metrics = ("loss", "auc")
    metric_names = ("loss", "map", "lwlrap", "auc", "dprime", "f1_micro", "f1_macro")
    maximize = ("map", "lwlrap", "auc", "dprime", "f1_micro", "f1_macro")
    metric_ranges = {"loss": (0.0, math.inf), "dprime": (-math.inf, math.inf),
                     **{name: (0.0, 1.0) for name in ("map", "lwlrap", "auc", "f1_micro",
                                                      "f1_macro")}}
    selection_metric = "map"
    headline = (("segment", "map", "mAP"), ("segment", "lwlrap", "lwlrap"),
                ("segment", "dprime", "d-prime"), ("segment", "f1_macro", "macro F1"))
    has_classes = True
    multi_label = True
    chosen_on_validation = (THRESHOLD,)
    own_params = ("tag_threshold", "focal_gamma", "union_mix")
    training_defaults = {"label_smoothing": 0.0}
    """Label smoothing (a classification default) would push every absent label of every
    clip to 0.05: tagging trains on plain 0/1 targets unless an instance names it."""
    figures = ("per_label_ap",)

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        """mAP, lwlrap, d-prime and macro F1 of the clips (where files were cut into
        segments; then the segments' mAP too), else of the rows."""
        rows = list(self.headline or ())
        if not clips:
            return rows
        return [("clip", m, f"clip {label}") for _, m, label in rows] + rows[:1]

    def check_params(self, params: Params, where: str) -> None:
        super().check_params(params, where)
        if params.focal_gamma and params.class_weights:
            raise ParameterError(
                f"{where}: focal_gamma={params.focal_gamma} and class_weights=True are two "
                "answers to rare labels; choose one (focal_gamma=0 or class_weights=False).")
