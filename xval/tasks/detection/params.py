"""The parameters only detection reads: the post-processing of frame probabilities into
events, event mixing, the weight of the frames near an event's bounds, and the hop windows
are read at."""

from __future__ import annotations

import dataclasses

from xval.core.settings import Settings, setting


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionParams(Settings):
    """Detection's own instance parameters (`[training]` keys of a detection experiment)."""

    detection_threshold: float | list[float] | None = setting(
        0.5, ("detection: a frame is active at this probability; none: chosen per class and fold "
              "on the validation recordings"), low=0, high=1, open_low=True, open_high=True,
        notes=("Detection only: post-processing of the frame probabilities into events. A frame "
               "is active at detection_threshold; decisions are median-filtered over "
               "median_filter_seconds (0: no filter); gaps shorter than min_gap_seconds are "
               "bridged, then events shorter than min_event_seconds dropped. A detection "
               "instance that does not name one of the four (or names none) has it chosen per "
               "fold (xval.tasks.detection.choice): min_gap_seconds and min_event_seconds "
               "default to half the shortest gap and event of each class in the fold's "
               "training annotations, the median filter is kept shorter than would erase "
               "either, and each class's threshold, gap bridging and shortest event, and the "
               "median filter, are chosen on the validation recordings' event F1."))
    median_filter_seconds: float | None = setting(
        0.0, ("detection: median filter of the frame decisions (seconds, at most 10: a filter "
              "erases every event shorter than half its length; 0: none; none: chosen per fold "
              "on the validation recordings)"), low=0, high=10)
    min_event_seconds: float | list[float] | None = setting(
        0.0, ("detection: shorter detected events are dropped (seconds; none: per class from "
              "the training annotations, chosen per fold)"), low=0)
    min_gap_seconds: float | list[float] | None = setting(
        0.0, ("detection: shorter gaps between two detected events of a class are bridged "
              "(seconds; none: per class from the training annotations, chosen per fold)"),
        low=0)
    event_mix: float = setting(
        0.0, ("detection: share of training windows that get an annotated event of another "
              "training window mixed in, every epoch (0: off)"), low=0, high=1,
        notes=("Detection only, training only (xval.tasks.detection.mixing): every epoch, this "
               "share of each batch's windows gets one annotated event of another window of "
               "the batch (the fold's training recordings only), its background subtracted, "
               "added at a random place and a gain of -6 to +6 dB on the window's magnitudes, "
               "its frames marked active. Stores of mel, stft or cqt magnitudes (db, log, "
               "power or no compression)."))
    boundary_weight: float = setting(
        2.0, ("detection: extra loss weight of the frames within 3 frames of an annotated "
              "onset or offset (0: off)"), low=0, high=100,
        notes=("Detection only: frames within 3 frames (60 ms on a detection store's 20 ms "
               "frames) of an onset or an offset of the targets weigh 1 + boundary_weight in "
               "the frame cross-entropy, so that the bounds of events, and short events (all "
               "bound), count more (xval.tasks.losses.WeightedFrameCrossentropy); the "
               "recorded loss metrics stay unweighted. 2 by default (measured: on recordings "
               "and backgrounds the folds never trained on, the mean test event F1, PSDS1 "
               "and event recall rose on both synthetic sets of docs/results.md)."))
    prediction_hop: float = setting(
        1.0, ("detection: hop between the windows a recording is read through at evaluation "
              "and prediction, as a fraction of the window (1: side by side)"), low=0, high=1,
        open_low=True,
        notes=("Detection only: recordings are scored (fold evaluation, detect, evaluate "
               "--annotations) through windows every prediction_hop windows, their frame "
               "probabilities averaged where they overlap, so that an event on a window's "
               "edge is also read whole (0.5: twice the windows to predict)."))
