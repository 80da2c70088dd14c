"""Per-instance plots with matplotlib: learning curves, confusion matrix, per-class F1,
predicted against true values."""

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(folds, path):
    """Training and validation loss (and accuracy or RMSE) per epoch, every fold."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    ok = [f for f in folds if f.get("status") == "ok"]
    if not ok:
        return None
    main = "accuracy" if "accuracy" in ok[0]["history"] else "rmse"
    panels = ["loss"] + ([main] if main in ok[0]["history"] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    colors = plt.cm.tab10.colors
    for ax, name in zip(axes[0], panels):
        for f in ok:
            c = colors[f["fold"] % 10]
            epochs = np.arange(1, len(f["history"][name]) + 1)
            ax.plot(epochs, f["history"][name], color=c, lw=1.2, label=f"fold {f['fold']} train")
            if f"val_{name}" in f["history"]:
                ax.plot(epochs, f["history"][f"val_{name}"], color=c, lw=1.2, ls="--",
                        label=f"fold {f['fold']} val")
            ax.axvline(f["best_epoch"], color=c, lw=0.6, alpha=0.5)
        ax.set_xlabel("epoch (vertical lines: best epoch of each fold)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(f"{name}: train (solid), validation (dashed)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, path, plt)


def confusion_matrix(matrix, classes, path, title="Test confusion matrix, pooled over folds"):
    """Row-normalised confusion matrix with class names on the axes."""
    plt = _pyplot()
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path, plt)


def per_class_f1(matrix, classes, path):
    """F1 of every class from the pooled confusion matrix."""
    plt = _pyplot()
    m = np.asarray(matrix, dtype=float)
    tp = np.diag(m)
    f1 = np.divide(2 * tp, m.sum(axis=0) + m.sum(axis=1), out=np.zeros_like(tp),
                   where=(m.sum(axis=0) + m.sum(axis=1)) > 0)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(classes) + 2), 3.5))
    ax.bar(range(len(classes)), f1, color="#4878a8")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title("Per-class test F1, pooled over folds")
    ax.grid(axis="y", alpha=0.3)
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


def _save(fig, path, plt):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def instance_plots(instance_dir, folds, summary):
    """Writes every plot of one instance into its `plots/` folder.

    Returns:
        list of written paths.
    """
    import pandas as pd

    instance_dir = Path(instance_dir)
    plots = instance_dir / "plots"
    written = []
    if learning_curves(folds, plots / "learning_curves.png"):
        written.append(plots / "learning_curves.png")
    classes = next((f.get("classes") for f in folds if f.get("classes")), None)
    matrix = summary.get("confusion_matrix", {}).get("segment")
    if classes and matrix is not None:
        written.append(confusion_matrix(matrix, classes, plots / "confusion_matrix.png"))
        written.append(per_class_f1(matrix, classes, plots / "per_class_f1.png"))
    elif not classes:
        tables = [pd.read_csv(p) for p in sorted(instance_dir.glob("predictions_fold_*.csv"))]
        if tables:
            table = pd.concat(tables)
            written.append(predicted_vs_true(table["target"].to_numpy(float),
                                             table["predicted"].to_numpy(float),
                                             plots / "predicted_vs_true.png"))
    return written
