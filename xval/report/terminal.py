"""The summary table printed after a run and by `python -m xval report`: text, CSV or
Markdown, the selected instance marked with `*`, one line per invalid fold under it."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from pathlib import Path

from xval import tasks
from xval.config.loader import Config
from xval.core.hashing import FOLD_FIX
from xval.report.additions import added_notes
from xval.report.encoders import encoder_lines
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.tables import (
    SPLIT_NAMES,
    Selection,
    embedding_headline,
    selection_level,
    selection_lines,
    status_label,
    unselected,
)
from xval.report.views import task_notes

Column = tuple[str, str, str]
"""`(split, level, metric)`: one score column."""

FORMATS = ("text", "csv", "markdown")


def _columns(shown: list[InstanceResult], metric: str, level: str,
             split: str = "val") -> list[Column]:
    ranked = [(split, level, metric)] if split != "val" else []  # beside the validation one
    if level == "clip":
        columns = [("val", "clip", metric), *ranked, ("test", "clip", metric),
                   ("test", "segment", metric)]
    else:
        columns = [("val", "segment", metric), *ranked, ("test", "segment", metric)]
    extra = embedding_headline(shown, metric, level)
    if extra:  # the embedding classifier's test score beside the network's
        columns.append(("test", level, extra))
    return columns


def _cell(r: InstanceResult, split: str, level: str, name: str) -> str:
    mean, std = r.metric(name, split, level), r.metric(name, split, level, "std")
    if mean is None:
        return ""
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def _footer(results: ExperimentResults, selection: Selection, level: str,
            level_name: str) -> str:
    footer = "± = mean ± std over folds."
    best = selection.selected
    value = best.metric(selection.metric, "test", level) if best is not None else None
    if best is not None and value is not None:
        footer = (f"* selected on {SPLIT_NAMES[selection.split]} {selection.metric} "
                  f"({level_name} level): "
                  f"instance {best.id}; report its test {level_name} score {value:.4f}. "
                  f"{footer}")
    return "\n".join([footer, *selection_lines(results, selection)])


def invalid_lines(shown: list[InstanceResult]) -> list[str]:
    """One line per invalid fold: `instance 1 fold 2 invalid: <reason>; ...`."""
    return [f"instance {r.id} fold {i} invalid: {reason}; it is not counted: {FOLD_FIX}."
            for r in shown for i, reason in sorted(r.invalid.items())]


def late_epoch_lines(shown: list[InstanceResult]) -> list[str]:
    """One line per instance with folds whose best epoch came in the last 10 % of `epochs`
    (`FoldResult.late_best_epoch`): how many, and the fix (the run itself printed one line
    per such fold as it finished)."""
    lines = []
    for r in shown:
        late = [f.fold for f in r.folds if f.late_best_epoch]
        if late:
            lines.append(f"instance {r.id}: the best epoch came in the last 10% of epochs in "
                         f"{len(late)} of {len(r.folds)} folds ({', '.join(map(str, late))}): "
                         "still improving when training stopped; raise epochs (or the "
                         "learning rate).")
    return lines


def _text(header: list[str], rows: list[list[str]], footer: str) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join([*lines, footer])


def terminal_table(results: ExperimentResults | str | Path, config: Config | None = None,
                   only: Collection[int] | None = None, fmt: str = "text", *,
                   advice: bool = True) -> str:
    """The summary as text, CSV or Markdown, the selected instance marked with `*`.

    Each score reads "mean ± std over folds", and each column names its level (`val
    segment accuracy`). Where files are cut into segments, the clip scores come first
    (selection and headline) and the segment test score sits beside them.
    An instance with invalid folds reads e.g. `partial (1 invalid)`, and the text and
    Markdown tables end with one line per invalid fold, naming why it is not believed, and
    (with `advice`) one line per instance whose best epoch came late in some folds.

    Args:
        results: an `ExperimentResults` or its folder.
        config: a `Config` (for the selection metric), or `None`.
        only: instance ids to show; `None` shows all.
        fmt: `"text"`, `"csv"` or `"markdown"`. Defaults to `"text"`.
        advice: the lines of advice under the table (`late_epoch_lines`); `False` under
            `-q`, which prints results and errors only (the workbook's Folds sheet marks
            such folds either way). Defaults to `True`.

    Returns:
        The table as a string.
    """
    if not isinstance(results, ExperimentResults):
        results = ExperimentResults(results)
    selection = Selection.of(results, config)
    metric = selection.metric
    level = selection_level(results, metric, selection.split)
    shown = [r for r in results if only is None or r.id in only]
    columns = _columns(shown, metric, level, selection.split)
    names = tasks.get(results.task_type).level_names  # detection: window, recording
    header = ["", "id", "status"]
    header += [f"{split} {names[lvl]} {name}" for split, lvl, name in columns]
    header.append("comment")
    rows = [["*" if r.id == selection.id else "", str(r.id), status_label(r),
             *(_cell(r, *column) for column in columns),
             " / ".join(c for c in r.comments() if c)] for r in shown]
    footer = "\n".join(filter(None, [_footer(results, selection, level, names[level]),
                                     unselected(results, selection)]))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["selected"] + header[1:])
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    notes = "\n".join([footer, *added_notes(results, shown), *task_notes(shown),
                       *invalid_lines(shown),
                       *(late_epoch_lines(shown) if advice else []),
                       *encoder_lines(results, config)])
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join([*lines, f"\n{notes}"])
    return _text(header, rows, notes)
