"""The scores of a detector's frame outputs (`Detection.evaluate`): the loss and frame
metrics, the segment and event metrics (sed_eval's) of the events the post-processing finds,
the kinds of event errors (`xval.tasks.detection.errors`), and for whole recordings PSDS1
and PSDS2 and why a PSDS2 is low."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from xval.tasks.detection.errors import error_metrics
from xval.tasks.detection.events import detection_metrics, event_metrics, frame_metrics
from xval.tasks.detection.psds import recording_psds
from xval.tasks.detection.rules import EventRules, frames, reference_events


def window_scores(y_true: Any, outputs: Any, num_outputs: int, post: EventRules,
                  frame_seconds: float | None, classes: Sequence[str] | None, *,
                  psds: bool = False) -> dict[str, Any]:
    """Detection metrics of windows, or of recordings of different lengths, each row (or
    list entry) scored as its own file.

    Args:
        y_true: `(rows, frames, classes)` 0/1 frame targets, or a list of
            `(frames_i, classes)` arrays (stitched recordings).
        outputs: the model's logits, in the same form.
        num_outputs: the number of event classes.
        post: the post-processing (threshold, median filter, shortest event and gap).
        frame_seconds: time between frames; without it, only the loss and frame metrics.
        classes: the event class names, or `None` (`class0`, `class1`, ...).
        psds: also PSDS1 and PSDS2 (whole recordings of the validation or test split).
            Defaults to `False`.

    Returns:
        dict of `loss`, `frame_*`, and with `frame_seconds` the segment and event metrics
        (`segment_f1`, `segment_error_rate`, `event_f1`, `onset_f1`, ...), the event error
        counts (`events_annotated`, `events_found`, `events_missed`, `events_merged`,
        `events_split`, `events_onset`, `events_offset`, `events_inserted`) and, with
        `psds`, `psds1`, `psds2` and `PSDS2_DIAGNOSIS`.
    """
    ys, probs, flat_y, flat_p = frames(y_true, outputs, num_outputs)
    eps = 1e-7
    bce = -(flat_y * np.log(flat_p + eps) + (1 - flat_y) * np.log(1 - flat_p + eps))
    out: dict[str, Any] = {"loss": float(bce.mean())}
    out.update(frame_metrics(flat_y, flat_p, post.detection_threshold))
    if frame_seconds is None:
        return out
    names = list(classes) if classes else [f"class{i}" for i in range(num_outputs)]
    reference, durations = reference_events(ys, frame_seconds, names)
    estimated = post.file_events(probs, frame_seconds, names)
    out.update(detection_metrics(reference, estimated, files=list(durations),
                                 classes=names, durations=durations))
    out["onset_f1"] = event_metrics(reference, estimated, files=list(durations),
                                    classes=names, evaluate_offset=False)["event_f1"]
    out.update(error_metrics(reference, estimated, files=list(durations), classes=names))
    if psds:
        out.update(recording_psds(
            reference, {f"file{i}": p for i, p in enumerate(probs)}, durations,
            frame_seconds=frame_seconds, classes=names,
            median_filter_frames=post.median_frames(frame_seconds),
            min_event_seconds=post.min_event_seconds,
            min_gap_seconds=post.min_gap_seconds))
    return {k: (float(v) if v is not None else float("nan")) for k, v in out.items()}
