"""Tagging: several labels per clip (multi-label), one sigmoid per label.

A tagging store keeps each row's labels in its `label` column as one text, the labels
sorted and joined by `TAG_SEPARATOR` (`dog;bark` reads `bark;dog`), and its `target` the
indices of those labels in the store's classes joined the same way (`0;3`); the model
sees them as 0/1 rows `(rows, classes)`. The head gives one logit per label (the layer
`tag_logits`); the loss is the binary cross-entropy, or with `class_weights=True` the
cross-entropy whose positives of label `c` weigh `negatives_c / positives_c` over the
fold's training rows (clipped to `[1, MAX_POSITIVE_WEIGHT]`, as detection weighs its
frames), or with `focal_gamma > 0` the binary focal cross-entropy.

Scoring (`xval.tasks.tagging.metrics`): mAP (selection), lwlrap, macro ROC AUC and d-prime
need no threshold; micro and macro F1 are taken at one threshold per label, which each
fold chooses on its validation clips (the label's best F1 there, `tag_threshold=None`, the
default) and records as its post-processing, so that the test clips, `predict` and the
model card use the thresholds of the validation items only. A clip's scores are the mean
of its segments' probabilities; an ensemble of instances averages its members'
probabilities (`TagFusion`) and chooses its thresholds on its own fused validation clips.

The workbook's Labels sheet and the per-label AP figure read each fold's test predictions
(`xval.tasks.tagging.views`). Its own parameters (`TaggingParams`) are the threshold, the
focal loss and label-union mixing (`xval.tasks.tagging.mixing`); its data checks count each
label's rows per fold (`xval.tasks.tagging.checks`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
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
from xval.tasks.parts import Folds, Mixing
from xval.tasks.registry import register
from xval.tasks.tagging.checks import (
    fold_label_lines,
    label_indicators,
    missing_label_warnings,
    set_summary,
)
from xval.tasks.tagging.labels import (
    TAG_SEPARATOR,
    check_label_sets,
    join_tags,
    multi_hot,
    split_tags,
)
from xval.tasks.tagging.metrics import (
    DEFAULT_THRESHOLD,
    choose_thresholds,
    f1_scores,
    logit,
    tagging_metrics,
    thresholds_of,
)
from xval.tasks.tagging.mixing import union_draws, unite
from xval.tasks.tagging.params import TaggingParams
from xval.tasks.tagging.views import LABEL_AP, LABELS, PER_LABEL_AP, THRESHOLD
from xval.tasks.weights import positive_weights

if TYPE_CHECKING:
    import pandas as pd



def _threshold_values(params: Mapping[str, Any] | None, n_labels: int) -> np.ndarray:
    """The per-label thresholds of `params` (`tag_threshold`; `DEFAULT_THRESHOLD` when
    absent or unset)."""
    value = params.get(THRESHOLD) if params is not None else None
    return thresholds_of(value, n_labels)


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

    def classes_in(self, label: Any) -> list[str]:
        return split_tags(label)

    def check_labels(self, labels: Sequence[Any], where: str) -> None:
        check_label_sets([split_tags(text) for text in labels], where)

    def stratify(self, store: StoreView) -> np.ndarray | None:
        """The 0/1 rows: the splitter keeps every label's share (a 0/1 matrix takes
        `MultilabelItemKFold`)."""
        return self.of_store(store)

    def mixing(self, params: Params) -> Mixing | None:
        """Label-union mixing of a share `union_mix` of a batch's rows, or `None` at 0."""
        share = float(TaggingParams.of(params).union_mix or 0.0)
        return (unite, functools.partial(union_draws, share=share)) if share > 0 else None

    def fold_checks(self, meta: pd.DataFrame, classes: Sequence[str], folds: Folds,
                    n_items: int) -> tuple[list[str], list[str]] | None:
        """The rows of each label, each label's rows on every fold's test side, and a
        warning for every fold side without a row of a label (`xval.tasks.tagging.checks`)."""
        sets = label_indicators(meta, classes, self.classes_in)
        return ([set_summary(meta, sets, n_items), *fold_label_lines(meta, sets, folds)],
                missing_label_warnings(meta, sets, folds))

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
        gamma = float(TaggingParams.of(params).focal_gamma or 0.0)
        if gamma:
            return keras.losses.BinaryFocalCrossentropy(
                gamma=gamma, from_logits=True, label_smoothing=smoothing)
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

    exported = "label probabilities (sigmoid, one per label), (batch, classes)"


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
    clip_rule = (
        "A clip's scores: the mean over its windows of their label probabilities (sigmoid); "
        "its labels: those whose probability reaches the label's threshold (`tag_threshold`).")
    ensemble_clip_rule = (
        "A clip's scores (as `predict` gives an ensemble's): for each member m, the mean over "
        "the clip's windows of member_scores[:, m] (label probabilities), then their mean "
        "weighted by the members' weights; its labels: those at or over the thresholds the "
        "ensemble chose on its validation clips (`tag_threshold`); the `scores` output is the "
        "weighted mean per window.")

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

    def clip_thresholds(self, chosen: Mapping[str, Any],
                        classes: Sequence[str]) -> list[float] | None:
        value = chosen.get(THRESHOLD)
        if isinstance(value, dict):
            return [float(value.get(c, DEFAULT_THRESHOLD)) for c in classes]
        return [float(value) if value is not None else DEFAULT_THRESHOLD] * len(classes)

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        scores = tagging_metrics(y_true, outputs, np.full(len(classes), DEFAULT_THRESHOLD))
        return {k: v for k, v in scores.items() if k != "loss"}


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
    chosen_on_validation = (THRESHOLD,)
    parameters = TaggingParams
    training_defaults = {"label_smoothing": 0.0}
    """Label smoothing (a classification default) would push every absent label of every
    clip to 0.05: tagging trains on plain 0/1 targets unless an instance names it."""
    encoder_head = {"regularization_lambda": 0.01}
    """An L2 weight of 0.01 on the head's kernels: without it the head sat 0.05 to 0.07 mAP
    below the linear probe on its own embeddings on the digit overlays (a regression whose
    `C` is chosen per fold regularises better than an MLP stopped early on 240 clips); with
    it, within 0.011 of the probe on both tagging sets and both encoders, and better than
    before on all six stores (docs/results.md, "The head against the linear probe")."""
    sheets = (LABELS,)
    figures = (PER_LABEL_AP,)
    class_scores = LABEL_AP

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        """mAP, lwlrap, d-prime and macro F1 of the clips (where files were cut into
        segments; then the segments' mAP too), else of the rows."""
        rows = list(self.headline or ())
        if not clips:
            return rows
        return [("clip", m, f"clip {label}") for _, m, label in rows] + rows[:1]

    def fit_defaults(self, params: Params) -> dict[str, Any]:
        """Its defaults, and no default mixup under label-union mixing (which replaces it)."""
        off = {"mixup_alpha": 0.0} if TaggingParams.of(params).union_mix else {}
        return {**super().fit_defaults(params), **off}

    def check_params(self, params: Params, where: str) -> None:
        super().check_params(params, where)
        own = TaggingParams.of(params)
        if own.focal_gamma and params.class_weights:
            raise ParameterError(
                f"{where}: focal_gamma={own.focal_gamma} and class_weights=True are two "
                "answers to rare labels; choose one (focal_gamma=0 or class_weights=False).")
        if own.union_mix and params.mixup_alpha:
            raise ParameterError(
                f"{where}: mixup_alpha={params.mixup_alpha} and union_mix={own.union_mix} are "
                "two mixings of the training rows; choose one (mixup_alpha=0 for label-union "
                "mixing, or union_mix=0).")
