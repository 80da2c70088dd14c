"""Sound event detection: which event classes are active in every feature frame.

A detection store (`python -m preprocessing detection`) keeps, beside `features.npy`, the
frame-level targets `frame_targets.npy`, a `(rows, frames, classes)` array of 0/1 aligned to
the feature frames. A detector (`fast_detector`, the stock one; `resnet_detector`,
`crnn_detector`, `gru_detector`, `conformer_detector`) gives one logit per frame and class; training
minimises the per-frame binary cross-entropy (multi-label: several classes may be active
at once), with the frames within 3 frames of an onset or offset weighted 1 +
`boundary_weight` (2 by default; `xval.tasks.losses`). Its own parameters
(`DetectionParams`) are the post-processing, event mixing, the boundary weight and the hop
recordings are read at.

Evaluation turns the frame probabilities into events (`xval.tasks.detection.events
.activity_to_events`: threshold, median filter, shortest event and gap, all instance
parameters) and scores them
against the events of the frame targets with the metrics of sed_eval, the DCASE reference
implementation, computed by the project (`xval.tasks.detection.metrics`):
segment-based F1 and error rate over 1 s segments, and event-based F1 with a 200 ms onset
collar (offsets within 200 ms or half the event's length). Frame-level F1, precision and
recall come from scikit-learn. Two levels, as for classification's segments and clips:
each window (row) scored as its own file (the "segment" level, `window event F1`), and, where
recordings were cut into several windows, each recording stitched back from its windows
(`pool_by_clip`: probabilities averaged where windows overlap) and scored whole (the "clip"
level, `recording event F1`: the headline, and what instances are selected on). At the
window level an event cut by a window border counts twice; at the recording level once.

Rare events: with `class_weights=True` the per-frame cross-entropy weights every active
frame of class `c` by `negatives_c / positives_c`, counted over the fold's training rows
only and clipped to `[1, MAX_POSITIVE_WEIGHT]` (`positive_weights`); inactive frames
weigh 1 (`xval.tasks.losses.WeightedFrameCrossentropy`). The recorded `loss` metrics stay the
unweighted cross-entropy, comparable between instances; the history's `loss` and
`val_loss` are the weighted one that training minimises (with the default boundary weight,
always).

Per fold, the first `PLOT_WINDOWS` test windows holding an annotated event (the first
windows when none does) are kept with their frame probabilities (`fold_plot_data`), and
the report draws them against the annotation as `plots/activity_fold_<i>.png`
(`xval.report.plots`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xval.core.errors import ConfigurationError, DatasetError
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
    switched_off,
)
from xval.tasks.detection.choice import CHOSEN_ON_VALIDATION, choose_rules
from xval.tasks.detection.errors import COUNTS
from xval.tasks.detection.events import Event, stitch_windows
from xval.tasks.detection.mixing import EventMixer, event_mixer
from xval.tasks.detection.overlap import Windows, overlap_windows
from xval.tasks.detection.params import DetectionParams
from xval.tasks.detection.psds import PSDS2_DIAGNOSIS
from xval.tasks.detection.recordings import recording_metrics
from xval.tasks.detection.rules import EventRules, stitch_recordings
from xval.tasks.detection.scores import window_scores
from xval.tasks.detection.views import EVENTS, event_lines
from xval.tasks.detection.windows import store_defaults
from xval.tasks.metrics import sigmoid
from xval.tasks.parts import FeatureCatalog
from xval.tasks.registry import register
from xval.tasks.weights import positive_weights

if TYPE_CHECKING:
    import pandas as pd

EVENT, BACKGROUND = "event", "background"
PLOT_WINDOWS = 4
"""Test windows drawn per fold in `plots/activity_fold_<i>.png`."""
DETECTOR_EVALUATION = (
    "A detector is scored on annotated recordings: give the annotation CSV with "
    "--annotations and the folder of its recordings as SOURCE (`python -m xval evaluate "
    "MODEL RECORDINGS --annotations annotations.csv`)."
)


def _param(params: Mapping[str, Any] | None, name: str, default: Any) -> Any:
    """`params[name]` (instance parameters, or a saved `params.json`'s), `default` where
    absent or unset."""
    try:
        value = params[name] if params is not None else None
    except KeyError:
        value = None
    return default if value is None else value


def postprocessing(params: Mapping[str, Any] | None) -> EventRules:
    """The post-processing of `params` (instance parameters, a saved `params.json`'s, or
    either with a fold's choice applied: `Postprocessing.apply`), the defaults of
    `POSTPROCESSING` where absent or unset (`None`): `EventRules.of`."""
    return EventRules.of(params)


class FrameTargets(Targets):
    """Per-frame 0/1 targets of every event class (`frame_targets.npy`); a row's label says
    whether the window holds an event."""

    def encode(self, meta: pd.DataFrame,
               classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        if not classes:
            raise DatasetError("A detection store needs its event classes (classes=[...]).")
        labels = set(meta["label"].astype(str))
        if not labels <= {EVENT, BACKGROUND}:
            raise DatasetError(
                f"Detection rows are labelled {EVENT!r} or {BACKGROUND!r} (whether a window "
                f"holds an event); got {sorted(labels - {EVENT, BACKGROUND})[:5]}."
            )
        meta["target"] = (meta["label"].astype(str) == EVENT).astype(int)
        return meta, list(classes)

    def of_meta(self, meta: pd.DataFrame) -> np.ndarray:
        return meta["target"].to_numpy(np.int64)

    def of_store(self, store: StoreView) -> np.ndarray:
        path = store.path / "frame_targets.npy"
        if not path.is_file():
            raise DatasetError(f"{store.path} is a detection store without frame_targets.npy; "
                               "rebuild it with `python -m preprocessing detection`.")
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def of_files(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        raise ConfigurationError(DETECTOR_EVALUATION)

    def stratify(self, store: StoreView) -> np.ndarray | None:
        return store.meta["label"].to_numpy(str)

    def num_outputs(self, store: StoreView) -> int:
        return len(store.classes)

    def for_keras(self, y: np.ndarray, params: Params, num_outputs: int) -> np.ndarray:
        return np.asarray(y, dtype=np.float32)

    def mixer(self, params: Params, feature_params: Mapping[str, Any] | None,
              features: FeatureCatalog, seed: int) -> EventMixer | None:
        """Event mixing (`event_mix`, `xval.tasks.detection.mixing`), or `None` at 0."""
        rate = float(DetectionParams.of(params).event_mix or 0.0)
        return event_mixer(rate, params, feature_params, features, seed)


class FrameHead(Head):
    """One logit per frame and class, trained with per-frame binary cross-entropy."""

    exported = None  # frames, read by `detect`

    def loss(self, params: Params, train_targets: np.ndarray | None = None) -> Any:
        """Per-frame binary cross-entropy on logits; with `class_weights=True`, active
        frames weighted per class by `positive_weights(train_targets)`; with
        `boundary_weight`, the frames near an onset or offset weighted more
        (`xval.tasks.losses.WeightedFrameCrossentropy`).

        Args:
            params: the instance parameters.
            train_targets: frame targets of the fold's training rows, `np.ndarray
                [shape=(rows, frames, classes)]`; needed when `params.class_weights`.

        Raises:
            ValueError: when `class_weights` is set and `train_targets` is not given.
        """
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        boundary = float(_param(params, "boundary_weight", 0.0))
        if not params.class_weights and not boundary:
            return keras.losses.BinaryCrossentropy(from_logits=True)
        if train_targets is None:
            raise ValueError("class_weights=True or boundary_weight: the detection loss "
                             "weights frames from the fold's training rows; pass "
                             "train_targets=.")
        from xval.tasks.losses import WeightedFrameCrossentropy  # noqa: PLC0415  (imports keras)

        weights = positive_weights(train_targets) if params.class_weights \
            else [1.0] * int(train_targets.shape[-1])
        return WeightedFrameCrossentropy(weights, boundary_weight=boundary)

    def metrics(self, params: Params) -> list[Any]:
        import keras  # noqa: PLC0415  (keras: the backend is chosen by then)

        return [keras.metrics.BinaryAccuracy(name="frame_accuracy", threshold=0.0)]


class EventScoring(Scoring):
    """Events found in the frame probabilities, scored as sed_eval scores them and by PSDS."""

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 context: Context = NO_CONTEXT) -> dict[str, Any]:
        """Detection metrics of windows, or of recordings of different lengths.

        Args:
            y_true: `(rows, frames, classes)` 0/1 frame targets, or a list of
                `(frames_i, classes)` arrays (stitched recordings, see `pool_by_clip`).
            outputs: the model's logits, in the same form.
            num_outputs: the number of event classes.
            context: the instance's parameters (post-processing, see `postprocessing`),
                the time between frames (without it, only the loss and frame metrics), the
                event class names, the split, and whether each row (or list entry) is a
                whole recording.

        Returns:
            dict of `loss`, `frame_*`, and with `frame_seconds` the segment and event metrics
            (`segment_f1`, `segment_error_rate`, `event_f1`, ...), each row or recording
            scored as its own file; and for whole recordings of the validation and test
            splits `psds1` and `psds2` (`xval.psds`, recording level; not on the training
            split, whose 50 operating points would only cost time).
        """
        return window_scores(y_true, outputs, num_outputs, postprocessing(context.params),
                             context.frame_seconds, context.classes,
                             psds=context.whole_files and context.split != "train")

    def choose_postprocessing(self, y_true: Any, outputs: Any, num_outputs: int,
                              context: Context = NO_CONTEXT
                              ) -> Postprocessing | None:
        """The post-processing of `xval.tasks.detection.choice`: gap bridging and shortest
        event from the training annotations (`context.training_targets`; the validation
        rows' own without them), each class's threshold, gap bridging and shortest event
        and the median filter chosen on the given (validation) rows' event F1.

        Only the parameters of `CHOSEN_ON_VALIDATION` that `context.params` leaves unset
        (`None`) are chosen.

        Returns:
            A `Postprocessing` of the chosen values (`split="val"`, `chosen_on` saying
            what on), or `None` when the instance sets them all or `frame_seconds` is
            unknown.
        """
        return choose_rules(y_true, outputs, num_outputs, context.params,
                            context.frame_seconds, context.classes,
                            context.training_targets)

    def pool_by_clip(self, outputs: np.ndarray, targets: np.ndarray, clips: np.ndarray,
                     starts: Sequence[float] | np.ndarray | None = None,
                     frame_seconds: float | None = None) -> Pooled | None:
        """Recordings stitched from their windows: the clip level of detection
        (`xval.tasks.detection.rules.stitch_recordings`: probabilities averaged where windows
        overlap, targets merged, so that an event cut by a window border counts once, as in
        the annotation); `None` without window starts and the hop."""
        return stitch_recordings(outputs, targets, clips, starts, frame_seconds)

    def overlap_windows(self, features: np.ndarray, targets: np.ndarray, clips: np.ndarray,
                        starts: Sequence[float] | None, context: Context = NO_CONTEXT
                        ) -> Windows | None:
        """The windows between each recording's stored windows at a hop of
        `prediction_hop` windows (`xval.tasks.detection.overlap`), or `None` (a hop of 1,
        no window starts or hop)."""
        hop = float(_param(context.params, "prediction_hop", 1.0))
        if starts is None or context.frame_seconds is None or hop >= 1:
            return None
        return overlap_windows(features, targets, clips, starts, context.frame_seconds, hop)

    def fold_plot_data(self, y_true: np.ndarray, outputs: np.ndarray, meta: pd.DataFrame,
                       context: Context = NO_CONTEXT) -> dict[str, Any] | None:
        y_true = np.asarray(y_true)
        if y_true.ndim != 3 or not len(y_true):
            return None
        with_events = np.flatnonzero(y_true.any(axis=(1, 2)))
        picked = (with_events if len(with_events) else np.arange(len(y_true)))[:PLOT_WINDOWS]
        prob = sigmoid(np.asarray(outputs, dtype=np.float64)[picked])
        names = list(context.classes or [f"class{i}" for i in range(y_true.shape[2])])
        post, hop = postprocessing(context.params), context.frame_seconds
        meta = meta.reset_index(drop=True)
        windows = []
        for k, i in enumerate(picked.tolist()):
            record = meta.iloc[i]
            start = float(record["start"]) if "start" in meta and \
                np.isfinite(float(record["start"])) else 0.0
            events = post.events(prob[k], hop, names, offset_s=start) if hop else []
            windows.append({
                "row": int(record["row"]) if "row" in meta else int(i),
                "item": str(record["item"]),
                "source": str(record["source"]) if "source" in meta else "",
                "start": start,
                "target": y_true[i].astype(int).tolist(),
                "probability": prob[k].round(3).tolist(),
                "events": [[round(a, 3), round(b, 3), c] for a, b, c in events],
            })
        return {"classes": names, "frame_seconds": hop,
                "threshold": post.detection_threshold, "windows": windows,
                "with_events": bool(len(with_events))}

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           context: Context = NO_CONTEXT) -> dict[str, Any]:
        post = postprocessing(context.params)
        prob = sigmoid(np.asarray(outputs, dtype=np.float64))
        hop = context.frame_seconds or 0.01
        events = [json.dumps([[round(a, 3), round(b, 3), c] for a, b, c in
                              post.events(p, hop, classes)]) for p in prob]
        return {"predicted": events, "max_probability": prob.max(axis=(1, 2)).round(4)}

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str], context: Context = NO_CONTEXT
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        post = postprocessing(context.params)
        prob = sigmoid(np.asarray(outputs, dtype=np.float64))
        hop = context.frame_seconds or 0.01
        segments: list[dict[str, Any]] = []
        events: list[Event] = []
        for p, start in zip(prob, starts):
            events += post.events(p, hop, classes, offset_s=start)
            segments.append({"start": start,
                             "scores": {c: float(p[:, i].max()) for i, c in enumerate(classes)}})
        return segments, {"scores": {"events": float(len(events))},
                          "predicted": "; ".join(f"{a:.2f}-{b:.2f} {c}" for a, b, c in events)
                          or "no event"}

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        raise ConfigurationError(DETECTOR_EVALUATION)

    def event_rules(self, params: Mapping[str, Any] | None) -> EventRules:
        return postprocessing(params)

    def reading_hop(self, params: Mapping[str, Any] | None) -> float:
        """`prediction_hop` windows."""
        return float(_param(params, "prediction_hop", 1.0))

    def recording_activity(self, outputs: np.ndarray, starts: Sequence[float],
                           frame_seconds: float) -> np.ndarray:
        """The windows' probabilities laid on the recording's time line, averaged where
        windows overlap (`xval.tasks.detection.events.stitch_windows`)."""
        return stitch_windows(sigmoid(np.asarray(outputs, dtype=np.float64)), starts,
                              frame_seconds)

    def score_recordings(self, events: pd.DataFrame, found: Mapping[str, Mapping[str, Any]],
                         classes: list[str], durations: Mapping[str, float],
                         grid: Mapping[str, int]) -> dict[str, Any]:
        """Event F1 (200 ms collar), onset-only event F1, segment F1 and error rate, frame
        F1 at the chosen thresholds, PSDS1 and PSDS2, event F1 per class
        (`xval.tasks.detection.recordings`)."""
        return recording_metrics(events, found, classes, durations, grid)

    def format_level(self, data: dict[str, Any]) -> list[str]:
        """The overall metrics of annotated recordings (the event error counts as whole
        numbers), then event F1 per class."""
        overall = {k: v for k, v in data.items() if k != "class_f1"}
        lines = [", ".join(f"{k} {v:.0f}" if k.startswith("events_") else f"{k} {v:.4f}"
                           for k, v in overall.items())]
        return lines + [f"  {c}: event_f1 {v:.4f}" for c, v in data.get("class_f1", {}).items()]

    def level_records(self, level: str, data: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
        """`(level, label, metric, value)` rows: the overall metrics (empty label), then
        `event_f1` per class."""
        rows = [(level, "", k, v) for k, v in data.items() if k != "class_f1"]
        return rows + [(level, c, "event_f1", v) for c, v in data.get("class_f1", {}).items()]


@register
class Detection(Task):
    """Frame-level multi-label detection of event classes in windows of recordings."""

    name = "detection"
    parts = (FrameTargets, FrameHead, EventScoring)
    head_name = "frame_logits"
    output = "frames"
    history_metrics = ("loss", "frame_accuracy")
    metric_names = ("loss", "event_f1", "onset_f1", "event_precision", "event_recall",
                    "segment_f1", "segment_error_rate", "frame_f1", "frame_precision",
                    "frame_recall", "psds1", "psds2")
    maximize = ("event_f1", "onset_f1", "event_precision", "event_recall", "segment_f1",
                "frame_f1", "frame_precision", "frame_recall", "frame_accuracy", "psds1",
                "psds2")
    metric_ranges = {"loss": (0.0, math.inf), "segment_error_rate": (0.0, math.inf),
                     **{name: (0.0, 1.0) for name in (*maximize, *PSDS2_DIAGNOSIS)},
                     **{f"events_{name}": (0.0, math.inf) for name in COUNTS}}
    selection_metric = "event_f1"
    has_classes = False  # the store's classes are event classes, not one label per row
    extra_arrays = ("frame_targets.npy",)
    clip_is_segment_without_clips = False  # a window's score is not its recording's
    level_names = {"segment": "window", "clip": "recording"}
    chosen_on_validation = CHOSEN_ON_VALIDATION
    training_defaults = {"learning_rate": 0.003,
                         **switched_off("time_masks", "freq_masks", "mixup_alpha")}
    """Measured on two synthetic sets (docs/results.md, detection): with `resnet_detector`
    (and `crnn_detector` with `freq_pool=2`), 0.003 fits the training recordings where the
    shared 0.001 underfits. SpecAugment stays off: measured on detection's three sets
    (docs/results.md, "Events as the annotator draws them"), frequency masks gained on
    one-class calls and lost on three spoken digits, and time masks with them gained on
    neither of the other two; the shared frequency warp, which gained on both, is kept
    (`xval.config.options.fit_defaults`). Mixup was measured on classification."""
    parameters = DetectionParams
    figures = ("activity",)
    sheets = (EVENTS,)
    notes = (event_lines,)

    def feature_defaults(self, sample_rate: int,
                         segment_seconds: float | None = None) -> dict[str, Any]:
        """5 s windows without overlap, 20 ms frames (`detection_windows`)."""
        return store_defaults(sample_rate, segment_seconds)

    @property
    def weights_classes(self) -> bool:
        """`class_weights=True` weights active frames (see the module)."""
        return True

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        if clips:  # windows cut from longer recordings: the stitched recording first
            return [("clip", "event_f1", "recording event F1"),
                    ("clip", "segment_f1", "recording segment F1"),
                    ("clip", "psds1", "recording PSDS1"), ("clip", "psds2", "recording PSDS2"),
                    ("segment", "event_f1", "window event F1"),
                    ("segment", "frame_f1", "frame F1")]
        return [("segment", "event_f1", "event F1"), ("segment", "segment_f1", "segment F1"),
                ("segment", "psds1", "PSDS1"), ("segment", "psds2", "PSDS2"),
                ("segment", "frame_f1", "frame F1")]
