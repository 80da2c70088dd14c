"""Figures of an instance with matplotlib: learning curves, the confusion matrix, per-class
F1, predicted against true values (the activity of a detector is `xval.report.activity`).

Figures are made with matplotlib's object API (`matplotlib.figure.Figure`): no global
backend switch and no pyplot state, so drawing is safe in any process (a worker, a
notebook with its own backend). The report layer draws them (`xval.report.plots`); nothing
below it imports matplotlib.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from xval.core.files import atomic_write_bytes
from xval.core.records import FoldResult, Status
from xval.report.png import palette_png
from xval.tasks.metrics import f1_per_class

PathLike = str | os.PathLike[str]


def shown(text: object) -> str:
    """A label, a file or an item name as a figure shows it: as written, never read as
    matplotlib mathtext (`$x^$`, a tagging label, would fail the figure)."""
    return str(text).replace("$", r"\$")


def fold_band(curves: Sequence[Sequence[float] | np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max per epoch over folds of unequal length (early stopping).

    Args:
        curves: one sequence of values per fold.

    Returns:
        `(epochs, mean, low, high, n)`, `np.ndarray [shape=(max_epochs,)]` each; epoch `e`
        is summarised over the `n[e]` folds that reached it (non-finite values ignored).
    """
    length = max((len(c) for c in curves), default=0)
    table = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        values = np.asarray(c, dtype=float)
        table[i, :len(values)] = values
    table[~np.isfinite(table)] = np.nan
    n = np.sum(~np.isnan(table), axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs
        mean, low, high = (np.nanmean(table, axis=0), np.nanmin(table, axis=0),
                           np.nanmax(table, axis=0))
    return np.arange(1, length + 1), mean, low, high, n


def _curve_panel(ax: Axes, folds: Sequence[FoldResult], key: str, colour: str) -> None:
    """One panel of `learning_curves`: the history `key` of every fold (thin lines, dots at
    the best epochs), the mean over folds and the min-max band."""
    curves = [np.asarray((f.history or {}).get(key, []), dtype=float) for f in folds]
    for f, curve in zip(folds, curves):
        ax.plot(np.arange(1, len(curve) + 1), curve, color=colour, lw=0.6, alpha=0.35)
        best = f.best_epoch
        if best and 1 <= best <= len(curve) and np.isfinite(curve[best - 1]):
            ax.plot(best, curve[best - 1], "o", color=colour, ms=3, alpha=0.8)
    epochs, mean, low, high, n = fold_band(curves)
    ax.fill_between(epochs, low, high, color=colour, alpha=0.15, lw=0,
                    label="min–max over folds")
    # Past the epoch where most folds stopped early, the mean is of a few folds.
    few = 2 * n < len(folds)
    head = np.where(few, np.nan, mean)
    tail = np.where(few | np.roll(few, -1), mean, np.nan)  # joined to the head
    ax.plot(epochs, head, color=colour, lw=2.2, label=f"mean of {len(folds)} folds")
    if few.any():
        ax.plot(epochs, tail, color=colour, lw=1.6, ls=":", label="mean, most folds stopped")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def learning_curves(folds: Sequence[FoldResult], path: PathLike,
                    metric: str | None = None) -> Path | None:
    """Learning curves readable with many folds: one panel per split (train, validation)
    and metric (loss, then `metric`, e.g. accuracy or RMSE, when the history has it), each
    with every fold as a thin line, the mean over folds as a thick line and the min-max
    band; dots mark each fold's best epoch.

    Args:
        folds: the instance's fold records; those trained (`ok`) with a history are drawn.
        path: the PNG to write.
        metric: the metric drawn below the loss, or `None`. Defaults to `None`.

    Returns:
        The path, or `None` when no fold has a history (nothing written).
    """
    ok = [f for f in folds if f.status == Status.OK and f.history]
    if not ok:
        return None
    history = ok[0].history or {}
    names = ["loss"] + ([metric] if metric and metric != "loss" and metric in history else [])
    splits = [("train", "")] + ([("validation", "val_")] if "val_loss" in history else [])
    fig = Figure(figsize=(5.2 * len(splits), 3.4 * len(names)))
    axes = fig.subplots(len(names), len(splits), squeeze=False, sharex=True)
    colours = {"train": "#1f77b4", "validation": "#d62728"}
    for r, name in enumerate(names):
        for c, (split, prefix) in enumerate(splits):
            ax = axes[r][c]
            _curve_panel(ax, ok, prefix + name, colours[split])
            ax.set_title(f"{split} {name}")
            ax.set_ylabel(name)
            if r == len(names) - 1:
                ax.set_xlabel("epoch (dots: best epoch of each fold)")
            if r == 0 and c == len(splits) - 1:
                ax.legend(fontsize=7, loc="best")
    # Same y range within a metric, so train and validation compare at a glance.
    for r in range(len(names)):
        lows, highs = zip(*(axes[r][c].get_ylim() for c in range(len(splits))))
        for c in range(len(splits)):
            axes[r][c].set_ylim(min(lows), max(highs))
    fig.suptitle("Learning curves, segment level (history: the training rows, training "
                 "mode; thin lines: folds)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def confusion_figure(matrix: Sequence[Sequence[float]] | np.ndarray, classes: Sequence[str],
                     title: str = "Test confusion matrix, pooled over folds") -> Figure:
    """The confusion matrix figure: colour by row proportion, every cell showing its count
    and its proportion of the true class.

    Args:
        matrix: counts, rows true classes, `np.ndarray [shape=(n_classes, n_classes)]`.
        classes: class names.
        title: the title.

    Returns:
        The `matplotlib.figure.Figure` (the caller saves or closes it).
    """
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.65 * len(classes) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), [shown(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), [f"{shown(c)} (n={int(t)})" for c, t in
                                        zip(classes, m.sum(axis=1))])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    small = 7 if len(classes) > 8 else 8
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(m[i, j])}\n{norm[i, j]:.2f}", ha="center", va="center",
                    fontsize=small, color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="proportion of the true class")
    ax.set_title(f"{title}\n(count, proportion of the row)", fontsize=10)
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: Sequence[Sequence[float]] | np.ndarray, classes: Sequence[str],
                     path: PathLike,
                     title: str = "Test confusion matrix, pooled over folds") -> Path:
    """Writes `confusion_figure` to `path`; returns the path."""
    return save(confusion_figure(matrix, classes, title), path)


def level_title(what: str, level: str, rest: str = "") -> str:
    """A plot title naming its level: `Test confusion matrix, clip level, pooled over
    folds`."""
    return f"{what}, {level} level" + (f", {rest}" if rest else "")


def per_fold_f1(folds: Sequence[FoldResult], level: str = "segment") -> np.ndarray | None:
    """Per-class test F1 of every finished fold, from its test confusion matrix.

    Args:
        folds: fold records; those trained (`ok`) with test metrics count.
        level: `"segment"` (the fold's `metrics`) or `"clip"` (its `clip_metrics`).
            Defaults to `"segment"`.

    Returns:
        `np.ndarray [shape=(n_folds, n_classes)]`, or `None` without confusion matrices.
    """
    matrices = [((f.clip_metrics if level == "clip" else f.metrics) or {}).get("test", {})
                .get("confusion_matrix") for f in folds if f.status == Status.OK]
    found = [m for m in matrices if m is not None]
    if not found:
        return None
    return np.stack([f1_per_class(m) for m in found])


def per_class_f1(f1: np.ndarray, classes: Sequence[str], path: PathLike,
                 title: str | None = None) -> Path:
    """Per-class F1: bars at the mean over folds, error bars one std (over folds), dots
    the folds.

    Args:
        f1: per-fold F1 `np.ndarray [shape=(n_folds, n_classes)]` (see `per_fold_f1`).
        classes: class names.
        path: the PNG to write.
        title: the title; `None`: `Per-class test F1 over <n> folds`.
    """
    f1 = np.atleast_2d(np.asarray(f1, dtype=float))
    return per_class_scores(f1, classes, path, ylabel="F1",
                            title=title or f"Per-class test F1 over {len(f1)} folds")


MAX_WIDTH = 30.0
"""The widest per-class figure (inches): many classes get narrower bars."""


def per_class_scores(values: np.ndarray, classes: Sequence[str], path: PathLike, *,
                     ylabel: str, title: str) -> Path:
    """A score in [0, 1] per class over folds: bars at the mean, error bars one std (over
    folds), dots the folds; a fold without the class (NaN) is left out of its bar.

    Args:
        values: per-fold scores `np.ndarray [shape=(n_folds, n_classes)]`.
        classes: class names.
        path: the PNG to write.
        ylabel: the score's name.
        title: the title.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    counted = (~np.isnan(values)).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class no fold scored
        mean = np.where(counted > 0, np.nanmean(values, axis=0), 0.0)
        std = np.where(counted > 1, np.nanstd(values, axis=0, ddof=1), 0.0)
    x = np.arange(len(classes))
    fig = Figure(figsize=(min(MAX_WIDTH, max(4.0, 0.55 * len(classes) + 2)), 3.6))
    ax = fig.subplots()
    ax.bar(x, mean, color="#4878a8", alpha=0.85, yerr=std, capsize=3,
           error_kw={"elinewidth": 1, "ecolor": "black"}, label="mean ± std over folds")
    jitter = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else np.zeros(1)
    for k, row in enumerate(values):
        ax.plot(x + jitter[k], row, ".", color="black", ms=3, alpha=0.6,
                label="folds" if k == 0 else None)
    ax.set_xticks(x, [shown(c) for c in classes], rotation=45 if len(classes) <= 40 else 90,
                  ha="right",
                  fontsize=None if len(classes) <= 40 else 6)
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", ncol=2, frameon=False)
    fig.tight_layout()
    return save(fig, path)


def predicted_vs_true(true: np.ndarray, predicted: np.ndarray, path: PathLike) -> Path:
    """Scatter of regression predictions against targets, with the identity line."""
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.scatter(true, predicted, s=8, alpha=0.6)
    low, high = float(min(np.min(true), np.min(predicted))), \
        float(max(np.max(true), np.max(predicted)))
    ax.plot([low, high], [low, high], color="grey", lw=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Test predictions, segment level, all folds")
    fig.tight_layout()
    return save(fig, path)


def figure_title(fig: Figure) -> str:
    """The title of a figure: its suptitle, else its first axes' title (one line)."""
    title = fig.get_suptitle() or (fig.axes[0].get_title() if fig.axes else "")
    return " ".join(title.split())


def save(fig: Figure, path: PathLike) -> Path:
    """Writes the figure as a 256-colour PNG (`xval.report.png.palette_png`: the workbook
    embeds it as it is) atomically (a workbook being built beside it reads the old plot or
    the new one, never half of one), its title in the PNG's `Title` text
    (`PIL.Image.open(path).text["Title"]`).

    Args:
        fig: the figure.
        path: the PNG file to write.

    Returns:
        The path written.
    """
    out = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        atomic_write_bytes(out, palette_png(image, figure_title(fig)))
    return out
