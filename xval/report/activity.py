"""The activity of a detector, with matplotlib: frame probabilities per class over time,
detected events shaded, against the annotation when there is one (a fold's test windows,
`plots/activity_fold_<i>.png`), or alone (`python -m xval detect --plot`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from xval.report.figures import PathLike, save, shown


def draw_activity(ax: Axes, times: np.ndarray, activity: np.ndarray, classes: Sequence[str],
                  *, events: Iterable[tuple[float, float, str]] = (),
                  reference: Any = None,
                  threshold: float | Sequence[float] | None = None) -> None:
    """Draws frame probabilities on `ax`: one line per class, detected events shaded, and
    the annotation, when given, as a filled step per class under the lines.

    Args:
        ax: a matplotlib `Axes`.
        times: frame times (seconds), `np.ndarray [shape=(frames,)]`.
        activity: probabilities, `np.ndarray [shape=(frames, classes)]`.
        classes: class names.
        events: detected events `(onset_s, offset_s, label)`, shaded green. Defaults to
            none.
        reference: the annotation, 0/1 `np.ndarray [shape=(frames, classes)]`, or `None`.
        threshold: the detection threshold, drawn dashed: one for all classes (grey), one
            per class (a list, in the class's colour, as a fold chooses them on its
            validation recordings), or `None`.
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(activity, dtype=float)
    colours = [f"C{i % 10}" for i in range(len(classes))]
    names = [shown(name) for name in classes]
    for onset, offset, _ in events:
        ax.axvspan(onset, offset, color="tab:green", alpha=0.15, lw=0)
    if reference is not None:
        annotated = np.asarray(reference, dtype=float)
        for i, name in enumerate(names):
            ax.fill_between(times, 0, annotated[:, i], step="post", color=colours[i],
                            alpha=0.25, lw=0, label=f"{name} annotated")
    for i, name in enumerate(names):
        ax.plot(times, values[:, i], color=colours[i], lw=1,
                label=f"{name} predicted" if reference is not None else name)
    if threshold is not None:
        levels = np.broadcast_to(np.atleast_1d(np.asarray(threshold, dtype=float)),
                                 (len(classes),))  # one for all, or one per class
        if np.all(levels == levels[0]):
            ax.axhline(float(levels[0]), color="grey", lw=0.8, ls="--")
        else:
            for colour, level in zip(colours, levels):
                ax.axhline(float(level), color=colour, lw=0.8, ls="--")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("probability")


def activity_plot(result: Mapping[str, Any], path: PathLike) -> Path:
    """Writes a PNG of one file's frame probabilities with its detected events shaded
    (`python -m xval detect --plot`; see `draw_activity`).

    Args:
        result: one entry of `xval.inference.detect.detect_files` (`file`, `times`,
            `activity`, `classes`, `events`).
        path: the PNG to write.

    Returns:
        The path.
    """
    fig = Figure(figsize=(10, 2.5))
    ax = fig.subplots()
    draw_activity(ax, result["times"], result["activity"], result["classes"],
                  events=result["events"])
    ax.set(xlabel="time (s)",
           title=f"{shown(Path(result['file']).name)}: {len(result['events'])} event(s)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def activity_windows(data: Mapping[str, Any], path: PathLike,
                     title: str = "Predicted activity against the annotation") -> Path:
    """Writes a PNG with one panel per window: predicted activity per class over time
    against the annotation, detected events shaded (see `draw_activity`).

    Args:
        data: a detection fold's plot data (`Detection.fold_plot_data`): `classes`,
            `frame_seconds` (`None`: the x axis counts frames), `threshold` and `windows`,
            each with `target` and `probability` (`frames x classes` lists), `start`
            (seconds), `events`, `source` and `item`.
        path: the PNG to write.
        title: the figure's title.

    Returns:
        The path.
    """
    windows = data["windows"]
    classes = data["classes"]
    hop = data.get("frame_seconds")
    fig = Figure(figsize=(10, 2.2 * max(len(windows), 1)))
    axes = fig.subplots(max(len(windows), 1), 1, squeeze=False)
    for ax, window in zip(axes[:, 0], windows):
        activity = np.asarray(window["probability"], dtype=float)
        frames = np.arange(len(activity))
        times = window["start"] + frames * hop if hop else frames
        draw_activity(ax, times, activity, classes, events=window.get("events", ()),
                      reference=window["target"], threshold=data.get("threshold"))
        where = f"{Path(window['source']).name or 'row ' + str(window['row'])}"
        ax.set_title(f"{shown(where)} (item {shown(window['item'])}), from "
                     f"{window['start']:.2f} s",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)" if hop else "frame")
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=2)
    fig.suptitle(title + " (green: detected events)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)
