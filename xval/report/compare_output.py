"""What `python -m xval compare` prints and writes: the tables of a `Comparison` as text,
Markdown or CSV, and `compare.xlsx` with the experiment workbooks' colours.

Colours mean what they mean in `experiment_<N>.xlsx` (`xval.report.workbook.cells`):
header blue, the best mean of the metric green, "not significantly different" purple (here:
after Holm's correction), failed or partial instances in red or grey italics.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from xval.report.comparison import Comparison
from xval.report.tables import status_label
from xval.report.workbook.builder import save_workbook
from xval.report.workbook.cells import Styles, one_page_wide, safe, table_sheet

Table = tuple[list[str], list[list[Any]]]
"""`(header, rows)`."""
FORMATS = ("text", "markdown", "csv")


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-4 or value == 0 else f"{value:.1e}"
    return str(value)


def instances_table(comparison: Comparison) -> Table:
    """One row per instance compared: label, comments, status, folds, mean and std."""
    name = _metric_label(comparison)
    header = ["instance", "comment", "status", "folds", f"test {name} mean",
              f"test {name} std"]
    rows = [[e.label, " / ".join(c for c in e.instance.comments() if c), status_label(e.instance),
             len(e.scores), e.mean, e.std] for e in comparison.entries]
    return header, rows


def pairs_table(comparison: Comparison) -> Table:
    """One row per pair: the difference, the corrected test, Holm, the Bayesian test."""
    header = ["A", "B", "folds", "mean A - B", "CI low", "CI high", "t", "p", "p (Holm)",
              "P(A better)", "P(equivalent)", "P(B better)", "verdict"]
    rows = [[p.a, p.b, p.folds if p.paired else f"{p.folds} (unpaired)", p.difference,
             p.ci_low, p.ci_high, p.t, p.p, p.p_holm, p.better, p.equivalent, p.worse,
             p.verdict] for p in comparison.pairs]
    return header, rows


def ranking_table(comparison: Comparison) -> Table | None:
    """The ranking over datasets (Friedman + Nemenyi), or `None`."""
    ranking = comparison.ranking
    if ranking is None:
        return None
    header = ["rank", "instance", "mean rank"]
    rows: list[list[Any]] = [[k, name, rank] for k, (name, rank)
                             in enumerate(zip(ranking.names, ranking.mean_ranks), start=1)]
    return header, rows


def _metric_label(comparison: Comparison) -> str:
    return f"clip {comparison.metric}" if comparison.level == "clip" else comparison.metric


def notes(comparison: Comparison) -> list[str]:
    """The sentences under the tables: what was tested and how to read it."""
    c = comparison
    direction = "higher" if c.higher_is_better else "lower"
    lines = [
        f"Test {_metric_label(c)} ({direction} is better) over the same folds; mean A - B "
        f"with its {100 * (1 - c.alpha):g}% CI and p from the corrected resampled t-test "
        "(Nadeau & Bengio 2003; Bouckaert & Frank 2004 for repeated folds); p (Holm): "
        f"adjusted over the {len(c.pairs)} pair(s) compared (Holm 1979), significant below "
        f"{c.alpha}; P(A better), P(equivalent), P(B better): Bayesian correlated t-test "
        f"(Benavoli et al. 2017) with a ROPE of ±{c.rope:g}."]
    if c.ranking is not None:
        r = c.ranking
        groups = "; ".join("{" + ", ".join(g) + "}" for g in r.groups) or "none"
        lines.append(f"Ranking over datasets: Friedman chi2 {_num(r.statistic)}, p "
                     f"{_num(r.p)}; Nemenyi critical difference {_num(r.critical_difference)} "
                     f"(alpha {c.alpha}); not significantly different: {groups}.")
    return lines + c.notes


def _text(table: Table) -> list[str]:
    header, rows = table
    cells = [[_num(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return lines


def _markdown(table: Table) -> list[str]:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_num(v).replace("|", "\\|") for v in row) + " |"
                    for row in rows]


def format_comparison(comparison: Comparison, fmt: str = "text") -> str:
    """The comparison as text (the terminal), Markdown, or CSV (the pairs table alone, one
    row per pair, full precision).

    Raises:
        ValueError: for a format not in `FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {', '.join(FORMATS)}.")
    if fmt == "csv":
        header, rows = pairs_table(comparison)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None or (isinstance(v, float) and not math.isfinite(v))
                           else v for v in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    render = _markdown if fmt == "markdown" else _text
    tables = [("Instances", instances_table(comparison)),
              ("Pairs", pairs_table(comparison)),
              ("Ranking over datasets", ranking_table(comparison))]
    out: list[str] = []
    for title, table in tables:
        if table is not None:
            out += [f"## {title}" if fmt == "markdown" else f"{title}:", *render(table), ""]
    bullet = "- " if fmt == "markdown" else ""
    return "\n".join(out + [bullet + line for line in notes(comparison)])


def _sheet(sheet: Worksheet, table: Table, styles: Styles, numbers: range) -> None:
    header, rows = table
    table_sheet(sheet, header, rows, styles, None, number_columns=numbers)
    one_page_wide(sheet)


def write_compare_workbook(comparison: Comparison, path: str | Path) -> Path:
    """Writes `compare.xlsx` atomically: the sheets Instances, Pairs, Ranking (when there
    is one) and Notes.

    Returns:
        The path written.
    """
    path = Path(path)
    styles = Styles()
    book = Workbook()
    sheet = book.active
    sheet.title = "Instances"
    table = instances_table(comparison)
    _sheet(sheet, table, styles, range(4, 6))
    means = [e.mean for e in comparison.entries if e.mean is not None]
    best = (max if comparison.higher_is_better else min)(means) if means else None
    for i, (entry, row) in enumerate(zip(comparison.entries, table[1]), start=2):
        font = styles.status_font(entry.instance.status)
        for j in range(1, len(row) + 1):
            sheet.cell(row=i, column=j).font = font
        if best is not None and entry.mean == best:
            sheet.cell(row=i, column=5).fill = styles.best
    sheet = book.create_sheet("Pairs")
    table = pairs_table(comparison)
    _sheet(sheet, table, styles, range(3, 12))
    for i, pair in enumerate(comparison.pairs, start=2):
        if pair.verdict.startswith("no significant"):
            sheet.cell(row=i, column=len(table[0])).fill = styles.tied
    ranked = ranking_table(comparison)
    if ranked is not None:
        _sheet(book.create_sheet("Ranking"), ranked, styles, range(2, 3))
    sheet = book.create_sheet("Notes")
    legend = [(styles.best, "Best mean test score among the instances compared."),
              (styles.tied, "Pairs: no significant difference after Holm's correction.")]
    for k, (fill, text) in enumerate(legend, start=1):
        sheet.cell(row=k, column=1).fill = fill
        safe(sheet.cell(row=k, column=2), text)
    for k, line in enumerate(notes(comparison), start=len(legend) + 2):
        safe(sheet.cell(row=k, column=2), line).alignment = styles.wrap
    sheet.column_dimensions["A"].width = 12
    sheet.column_dimensions["B"].width = 100
    save_workbook(book, path)
    return path


def is_compare_workbook(path: str | Path) -> bool:
    """Whether `path` is a workbook `write_compare_workbook` wrote (its Instances and Pairs
    sheets): the only file `compare` replaces (the output rule, `xval.core.outputs`)."""
    try:
        book = load_workbook(path, read_only=True)
    except Exception:  # noqa: BLE001  (not a workbook at all: not ours)
        return False
    try:
        return book.sheetnames[:2] == ["Instances", "Pairs"]
    finally:
        book.close()
