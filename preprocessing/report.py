"""Dataset report: counts per item and label, durations, sample rates, warnings."""

import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from preprocessing.store import FeatureStore
from xval import tasks

MIN_ROWS_PER_ITEM = 5


def dataset_report(store: FeatureStore | str | os.PathLike[str], *,
                   plot_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Describes a feature store and warns about items that will fold badly.

    Args:
        store: a `FeatureStore` or its folder.
        plot_path: where to write a sample-rate histogram PNG, or `None`.

    Returns:
        dict with `counts` (item x label table as nested dict), `rows_per_item`,
        `clips`, `duration_seconds` (total, min, mean, max per clip), `sample_rates`
        (original rate -> clip count), and `warnings` (list of strings).
    """
    if not isinstance(store, FeatureStore):
        store = FeatureStore(store)
    meta = store.meta[~store.meta["augmented"].astype(bool)]
    per_clip = meta.drop_duplicates("clip")
    # A clip counts once for each class its label names (`Targets.classes_in`).
    classes_in = tasks.get(store.task_type).targets.classes_in
    labelled = per_clip.assign(label=per_clip["label"].map(classes_in)).explode("label")
    counts = labelled.groupby(["item", "label"]).size().unstack(fill_value=0)
    report: dict[str, Any] = {
        "rows": int(len(store)),
        "augmented_rows": int(store.augmented.sum()),
        "items": int(meta["item"].nunique()),
        "clips": int(len(per_clip)),
        "classes": store.classes,
        # clips per item and label
        "counts": {item: {label: int(n) for label, n in row.items()}
                   for item, row in counts.iterrows()},
        "rows_per_item": {k: int(v) for k, v in meta.groupby("item").size().items()},
        "warnings": [],
    }
    if "duration" in per_clip:
        d = per_clip["duration"].to_numpy(float)
        report["duration_seconds"] = {"total": float(d.sum()), "min": float(d.min()),
                                      "mean": float(d.mean()), "max": float(d.max())}
    if "orig_sr" in per_clip:
        rates = per_clip["orig_sr"].value_counts().sort_index()
        report["sample_rates"] = {int(k): int(v) for k, v in rates.items()}
    if tasks.get(store.task_type).has_classes:
        for item, row in counts.iterrows():
            present = [label for label, n in row.items() if n > 0]
            if len(present) == 1 and len(store.classes) > 1:
                report["warnings"].append(
                    f"item {item!r} has a single class ({present[0]!r}): its test fold "
                    "measures one class only."
                )
    for item, n in report["rows_per_item"].items():
        if n < MIN_ROWS_PER_ITEM:
            report["warnings"].append(
                f"item {item!r} has only {n} row(s) (fewer than {MIN_ROWS_PER_ITEM})."
            )
    skipped = store.info.skipped
    if skipped:
        report["warnings"].append(f"{len(skipped)} file(s) were skipped when building the store.")
    if plot_path is not None and "sample_rates" in report:
        _plot_sample_rates(report["sample_rates"], store.path.name, Path(plot_path))
    return report


def _plot_sample_rates(rates: dict[int, int], name: str, path: Path) -> None:
    """Writes a bar chart of clips per original sample rate (matplotlib's object API: no
    global backend or figure state)."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.bar([str(k) for k in rates], list(rates.values()), color="#4878a8")
    ax.set_xlabel("original sample rate (Hz)")
    ax.set_ylabel("clips")
    ax.set_title(f"Sample rates of {name}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def format_report(report: dict[str, Any]) -> str:
    """The report as text for the terminal."""
    lines = [f"{report['rows']} rows ({report['augmented_rows']} augmented), "
             f"{report['clips']} clips, {report['items']} items, "
             f"{len(report['classes'])} classes"]
    if "duration_seconds" in report:
        d = report["duration_seconds"]
        lines.append(f"durations: total {d['total']:.1f}s, clip min {d['min']:.2f}s, "
                     f"mean {d['mean']:.2f}s, max {d['max']:.2f}s")
    if "sample_rates" in report:
        lines.append("original sample rates: " + ", ".join(
            f"{k} Hz x{v}" for k, v in report["sample_rates"].items()))
    labels = sorted({label for row in report["counts"].values() for label in row})
    width = max([len(str(i)) for i in report["counts"]] + [4])
    lines.append("clips per item (rows) and label (columns):")
    lines.append(f"{'item':<{width}} " + " ".join(f"{lab[:8]:>8}" for lab in labels))
    for item, row in report["counts"].items():
        lines.append(f"{item:<{width}} " + " ".join(f"{row.get(lab, 0):>8}" for lab in labels))
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)


__all__ = ["dataset_report", "format_report"]
