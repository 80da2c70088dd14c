"""Per-instance plots with matplotlib: learning curves, confusion matrix, per-class F1,
predicted against true values, detection activity."""

import warnings
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fold_band(curves):
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
        table[i, :len(c)] = np.asarray(c, dtype=float)
    table[~np.isfinite(table)] = np.nan
    n = np.sum(~np.isnan(table), axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs
        mean, low, high = (np.nanmean(table, axis=0), np.nanmin(table, axis=0),
                           np.nanmax(table, axis=0))
    return np.arange(1, length + 1), mean, low, high, n


def learning_curves(folds, path, metric=None):
    """Learning curves readable with many folds: one panel per split (train, validation)
    and metric (loss, then `metric`, e.g. accuracy or RMSE, when the history has it), each
    with every fold as a thin line, the mean over folds as a thick line and the min-max
    band; dots mark each fold's best epoch."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    ok = [f for f in folds if f.get("status") == "ok" and f.get("history")]
    if not ok:
        return None
    history = ok[0]["history"]
    names = ["loss"] + ([metric] if metric and metric != "loss" and metric in history else [])
    splits = [("train", "")] + ([("validation", "val_")] if "val_loss" in history else [])
    fig, axes = plt.subplots(len(names), len(splits), figsize=(5.2 * len(splits),
                             3.4 * len(names)), squeeze=False, sharex=True)
    colours = {"train": "#1f77b4", "validation": "#d62728"}
    for r, name in enumerate(names):
        for c, (split, prefix) in enumerate(splits):
            ax = axes[r][c]
            key = prefix + name
            curves = [np.asarray(f["history"].get(key, []), dtype=float) for f in ok]
            colour = colours[split]
            for f, curve in zip(ok, curves):
                epochs = np.arange(1, len(curve) + 1)
                ax.plot(epochs, curve, color=colour, lw=0.6, alpha=0.35)
                best = f.get("best_epoch")
                if best and 1 <= best <= len(curve) and np.isfinite(curve[best - 1]):
                    ax.plot(best, curve[best - 1], "o", color=colour, ms=3, alpha=0.8)
            epochs, mean, low, high, n = fold_band(curves)
            ax.fill_between(epochs, low, high, color=colour, alpha=0.15, lw=0,
                            label="min–max over folds")
            # Past the epoch where most folds stopped early, the mean is of a few folds.
            few = 2 * n < len(ok)
            head = np.where(few, np.nan, mean)
            tail = np.where(few | np.roll(few, -1), mean, np.nan)  # joined to the head
            ax.plot(epochs, head, color=colour, lw=2.2, label=f"mean of {len(ok)} folds")
            if few.any():
                ax.plot(epochs, tail, color=colour, lw=1.6, ls=":",
                        label="mean, most folds stopped")
            ax.set_title(f"{split} {name}")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if r == len(names) - 1:
                ax.set_xlabel("epoch (dots: best epoch of each fold)")
            if r == 0 and c == len(splits) - 1:
                ax.legend(fontsize=7, loc="best")
    # Same y range within a metric, so train and validation compare at a glance.
    for r in range(len(names)):
        lows, highs = zip(*(axes[r][c].get_ylim() for c in range(len(splits))))
        for c in range(len(splits)):
            axes[r][c].set_ylim(min(lows), max(highs))
    fig.suptitle("Learning curves (history, training mode; thin lines: folds)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, plt)


def confusion_figure(matrix, classes, title="Test confusion matrix, pooled over folds"):
    """The confusion matrix figure: colour by row proportion, every cell showing its count
    and its proportion of the true class.

    Args:
        matrix: counts, rows true classes, `np.ndarray [shape=(n_classes, n_classes)]`.
        classes: class names.
        title: the title.

    Returns:
        The `matplotlib.figure.Figure` (the caller saves or closes it).
    """
    plt = _pyplot()
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.65 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), [f"{c} (n={int(t)})" for c, t in
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


def confusion_matrix(matrix, classes, path, title="Test confusion matrix, pooled over folds"):
    """Writes `confusion_figure` to `path`; returns the path."""
    plt = _pyplot()
    return _save(confusion_figure(matrix, classes, title), path, plt)


def f1_per_class(matrix):
    """F1 of every class from a confusion matrix (rows true classes); 0 where a class is
    neither true nor predicted.

    Args:
        matrix: `np.ndarray [shape=(n_classes, n_classes)]`.

    Returns:
        `np.ndarray [shape=(n_classes,)]`.
    """
    m = np.asarray(matrix, dtype=float)
    tp = np.diag(m)
    denominator = m.sum(axis=0) + m.sum(axis=1)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def per_fold_f1(folds):
    """Per-class test F1 of every finished fold, from its test confusion matrix.

    Returns:
        `np.ndarray [shape=(n_folds, n_classes)]`, or `None` without confusion matrices.
    """
    matrices = [f["metrics"]["test"].get("confusion_matrix") for f in folds
                if f.get("status") == "ok"]
    matrices = [m for m in matrices if m is not None]
    if not matrices:
        return None
    return np.stack([f1_per_class(m) for m in matrices])


def per_class_f1(f1, classes, path):
    """Per-class F1: bars at the mean over folds, error bars one std (over folds), dots
    the folds.

    Args:
        f1: per-fold F1 `np.ndarray [shape=(n_folds, n_classes)]` (see `per_fold_f1`).
        classes: class names.
        path: the PNG to write.
    """
    plt = _pyplot()
    f1 = np.atleast_2d(np.asarray(f1, dtype=float))
    mean = f1.mean(axis=0)
    std = f1.std(axis=0, ddof=1) if len(f1) > 1 else np.zeros_like(mean)
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(classes) + 2), 3.6))
    ax.bar(x, mean, color="#4878a8", alpha=0.85, yerr=std, capsize=3,
           error_kw={"elinewidth": 1, "ecolor": "black"}, label="mean ± std over folds")
    jitter = np.linspace(-0.2, 0.2, len(f1)) if len(f1) > 1 else np.zeros(1)
    for k, row in enumerate(f1):
        ax.plot(x + jitter[k], row, ".", color="black", ms=3, alpha=0.6,
                label="folds" if k == 0 else None)
    ax.set_xticks(x, classes, rotation=45, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("F1")
    ax.set_title(f"Per-class test F1 over {len(f1)} folds")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", ncol=2, frameon=False)
    fig.tight_layout()
    return _save(fig, path, plt)


def predicted_vs_true(true, predicted, path):
    """Scatter of regression predictions against targets, with the identity line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true, predicted, s=8, alpha=0.6)
    low, high = float(min(np.min(true), np.min(predicted))), \
        float(max(np.max(true), np.max(predicted)))
    ax.plot([low, high], [low, high], color="grey", lw=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Test predictions, all folds")
    fig.tight_layout()
    return _save(fig, path, plt)


def draw_activity(ax, times, activity, classes, *, events=(), reference=None,
                  threshold=None):
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
        threshold: the detection threshold, drawn dashed, or `None`.
    """
    times = np.asarray(times, dtype=float)
    activity = np.asarray(activity, dtype=float)
    colours = [f"C{i % 10}" for i in range(len(classes))]
    for onset, offset, _ in events:
        ax.axvspan(onset, offset, color="tab:green", alpha=0.15, lw=0)
    if reference is not None:
        reference = np.asarray(reference, dtype=float)
        for i, name in enumerate(classes):
            ax.fill_between(times, 0, reference[:, i], step="post", color=colours[i],
                            alpha=0.25, lw=0, label=f"{name} annotated")
    for i, name in enumerate(classes):
        ax.plot(times, activity[:, i], color=colours[i], lw=1,
                label=f"{name} predicted" if reference is not None else name)
    if threshold is not None:
        ax.axhline(threshold, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("probability")


def file_activity(times, activity, classes, events, path, title):
    """Writes a PNG of one file's frame probabilities with its detected events shaded
    (`python -m xval detect --plot`; see `draw_activity`).

    Returns:
        The path.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 2.5))
    draw_activity(ax, times, activity, classes, events=events)
    ax.set(xlabel="time (s)", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def activity_windows(data, path, title="Predicted activity against the annotation"):
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
    plt = _pyplot()
    windows = data["windows"]
    classes = data["classes"]
    hop = data.get("frame_seconds")
    fig, axes = plt.subplots(max(len(windows), 1), 1, figsize=(10, 2.2 * max(len(windows), 1)),
                             squeeze=False)
    for ax, window in zip(axes[:, 0], windows):
        activity = np.asarray(window["probability"], dtype=float)
        frames = np.arange(len(activity))
        times = window["start"] + frames * hop if hop else frames
        draw_activity(ax, times, activity, classes, events=window.get("events", ()),
                      reference=window["target"], threshold=data.get("threshold"))
        where = f"{Path(window['source']).name or 'row ' + str(window['row'])}"
        ax.set_title(f"{where} (item {window['item']}), from {window['start']:.2f} s",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)" if hop else "frame")
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=2)
    fig.suptitle(title + " (green: detected events)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, plt)


def _save(fig, path, plt):
    """Writes the figure as PNG atomically (a workbook being built beside it reads the old
    plot or the new one, never half of one)."""
    import io

    from xval.core.files import atomic_write_bytes

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
