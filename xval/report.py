"""The experiment workbook (`experiment_<N>.xlsx`) and the terminal table.

Everything here is derived from the result files (`params.json`, `fold_<i>.json`,
`summary.json`); it can be rebuilt at any time, and is written under a lock, atomically.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from xval.errors import XvalError
from xval.params import metric_direction
from xval.results import ExperimentResults, lock
from xval.stats import corrected_resampled_ttest, mean_ci

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
BEST_FILL = "C6EFCE"
SELECTED_FILL = "FFEB9C"
FAILED_FONT = "9C0006"


def selection_metric(config, task_type):
    """The validation metric that selects the best instance (`[report] selection_metric`)."""
    name = config.report["selection_metric"] if config is not None else "auto"
    if name == "auto":
        return "accuracy" if task_type == "classification" else "rmse"
    return name


def task_type_of(results):
    """`"classification"` or `"regression"`, from the first finished fold."""
    for r in results:
        for fold in r.folds:
            if fold.get("status") == "ok":
                return "classification" if "accuracy" in fold["metrics"]["test"] \
                    else "regression"
    return "classification"


def _levels(results):
    levels = ["segment"]
    if any("clip" in r.summary.get("metrics", {}) for r in results):
        levels.append("clip")
    return levels


def _metric_names(results, level):
    for r in results:
        block = r.summary.get("metrics", {}).get(level, {}).get("test")
        if block:
            return list(block)
    return []


def _differing_params(results):
    names = sorted({k for r in results for k in r.params} - {"comment_1", "comment_2"})
    out = []
    for name in names:
        values = {repr(r.params.get(name)) for r in results if r.params}
        if len(values) > 1:
            out.append(name)
    return out


def summary_table(results, config=None):
    """The Summary sheet as rows of plain values.

    Returns:
        `(columns, rows, selected_id, metric)`: `columns` is a list of dicts with `name`,
        `group`, and for metric columns `level`, `split`, `metric`, `stat`.
    """
    task = task_type_of(results)
    metric = selection_metric(config, task)
    selected = results.best(metric, "val")
    params = _differing_params(results)
    columns = [{"name": "ID", "group": "instance"}, {"name": "status", "group": "instance"},
               {"name": "selected", "group": "instance"},
               {"name": "comment_1", "group": "instance"},
               {"name": "comment_2", "group": "instance"}]
    columns += [{"name": p, "group": "parameters that differ", "param": p} for p in params]
    for level in _levels(results):
        for split in ("train", "val", "test"):
            for name in _metric_names(results, level):
                for stat in ("mean", "std"):
                    columns.append({"name": f"{name} {stat}", "level": level, "split": split,
                                    "metric": name, "stat": stat,
                                    "group": f"{SPLIT_NAMES[split]} ({level})"})
    columns.append({"name": "folds", "group": "run"})
    columns.append({"name": "message", "group": "run"})
    rows = []
    for r in results:
        row = []
        for c in columns:
            if c["name"] == "ID":
                row.append(r.id)
            elif c["name"] == "status":
                row.append(r.status)
            elif c["name"] == "selected":
                row.append("selected" if selected is not None and r.id == selected.id else "")
            elif c["name"] in ("comment_1", "comment_2"):
                row.append(r.params.get(c["name"], ""))
            elif "param" in c:
                value = r.params.get(c["param"])
                row.append(value if isinstance(value, (int, float, str, type(None)))
                           else repr(value))
            elif "metric" in c:
                row.append(r.metric(c["metric"], c["split"], c["level"], c["stat"]))
            elif c["name"] == "folds":
                row.append(f"{r.summary.get('folds_done', 0)}/{r.summary.get('num_folds', '?')}")
            else:
                row.append(r.summary.get("message", ""))
        rows.append(row)
    return columns, rows, (selected.id if selected is not None else None), metric


def statistics_table(results, config=None):
    """Per instance: 95% CI of the selection metric, and the corrected resampled t-test
    against the selected instance over the same folds (on test scores).

    Returns:
        `(header, rows, selected_id, metric)`.
    """
    task = task_type_of(results)
    metric = selection_metric(config, task)
    alpha = config.report["alpha"] if config is not None else 0.05
    selected = results.best(metric, "val")

    def scores(r, split):
        return {f["fold"]: f["metrics"][split][metric] for f in r.folds
                if f.get("status") == "ok"}

    def ratio(r):
        values = [f["n_rows"]["test"] / max(f["n_rows"]["train"], 1) for f in r.folds
                  if f.get("status") == "ok"]
        return float(np.mean(values)) if values else float("nan")

    header = ["ID", "status", "folds", f"val {metric} mean", "val 95% CI ±",
              f"test {metric} mean", "test 95% CI ±", f"test diff vs {selected.id}"
              if selected else "test diff", "t", "p", "verdict"]
    rows = []
    for r in results:
        val = scores(r, "val")
        test = scores(r, "test")
        val_mean, val_ci = mean_ci(list(val.values()))
        test_mean, test_ci = mean_ci(list(test.values()))
        diff = t = p = None
        verdict = ""
        if selected is not None and r.id == selected.id:
            verdict = "selected"
        elif selected is not None and test:
            ref = scores(selected, "test")
            common = sorted(set(ref) & set(test))
            if len(common) >= 2:
                a = np.array([test[i] for i in common])
                b = np.array([ref[i] for i in common])
                t, p = corrected_resampled_ttest(a, b, ratio(r))
                diff = float(np.mean(a - b))
                verdict = ("not significantly different" if p >= alpha
                           else "significantly different") + f" (alpha {alpha})"
            else:
                verdict = "too few common folds"
        rows.append([r.id, r.status, len(test), val_mean, val_ci, test_mean, test_ci, diff,
                     t, p, verdict])
    return header, rows, (selected.id if selected is not None else None), metric


def folds_table(results):
    """One row per (instance, fold)."""
    names = []
    for r in results:
        for f in r.folds:
            if f.get("status") == "ok":
                names = [n for n in f["metrics"]["test"] if n != "confusion_matrix"]
                break
        if names:
            break
    header = ["ID", "fold", "status", "test items", "validation items", "best epoch",
              "epochs run", "seconds"] + [f"{s} {n}" for s in ("train", "val", "test")
                                          for n in names] + ["message"]
    rows = []
    for r in results:
        for f in r.folds:
            ok = f.get("status") == "ok"
            row = [r.id, f.get("fold"), f.get("status"), ", ".join(f["items"]["test"]),
                   ", ".join(f["items"]["val"]), f.get("best_epoch"), f.get("epochs_run"),
                   f.get("timings", {}).get("total_seconds")]
            row += [f["metrics"][s].get(n) if ok else None for s in ("train", "val", "test")
                    for n in names]
            row.append(f.get("message", ""))
            rows.append(row)
    return header, rows


def parameters_table(results):
    names = sorted({k for r in results for k in r.params})
    header = ["ID"] + names
    rows = []
    for r in results:
        row = [r.id]
        for n in names:
            v = r.params.get(n)
            row.append(v if isinstance(v, (int, float, str, type(None))) else repr(v))
        rows.append(row)
    return header, rows


def build_workbook(exp_dir, config=None, path=None):
    """Rebuilds `experiment_<N>.xlsx` from the result files, under a lock, atomically.

    Args:
        exp_dir: the `experiment_<N>` folder.
        config: a `Config` (selection metric, alpha), or `None` for the defaults.
        path: where to write; defaults to `exp_dir/experiment_<N>.xlsx`.

    Returns:
        The path of the workbook.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise XvalError(f"{exp_dir} is not an experiment folder.")
    path = Path(path) if path else exp_dir / f"{exp_dir.name}.xlsx"
    with lock(path):
        results = ExperimentResults(exp_dir)
        wb = Workbook()
        bold = Font(bold=True)
        header_fill = PatternFill("solid", fgColor="DDEBF7")
        best_fill = PatternFill("solid", fgColor=BEST_FILL)
        selected_fill = PatternFill("solid", fgColor=SELECTED_FILL)
        thin = Side(style="thin", color="999999")

        # -- Summary --
        ws = wb.active
        ws.title = "Summary"
        columns, rows, selected_id, metric = summary_table(results, config)
        groups = []
        for j, c in enumerate(columns, start=1):
            if groups and groups[-1][0] == c["group"]:
                groups[-1][2] = j
            else:
                groups.append([c["group"], j, j])
        for name, start, end in groups:
            cell = ws.cell(row=1, column=start, value=name)
            cell.font = bold
            cell.alignment = Alignment(horizontal="center")
            cell.fill = header_fill
            if end > start:
                ws.merge_cells(start_row=1, start_column=start, end_row=1, end_column=end)
        for j, c in enumerate(columns, start=1):
            cell = ws.cell(row=2, column=j, value=c["name"])
            cell.font = bold
            cell.fill = header_fill
            cell.border = Border(bottom=thin)
            cell.alignment = Alignment(horizontal="center", wrap_text=True)
        for i, row in enumerate(rows, start=3):
            for j, value in enumerate(row, start=1):
                cell = ws.cell(row=i, column=j, value=value)
                if "metric" in columns[j - 1] and value is not None:
                    cell.number_format = "0.0000"
            status = row[1]
            if status != "complete":
                for j in range(1, len(columns) + 1):
                    ws.cell(row=i, column=j).font = Font(color=FAILED_FONT if status == "failed"
                                                         else "7F7F7F", italic=True)
            link = ws.cell(row=i, column=1)
            link.hyperlink = f"instance_{row[0]}/"
            link.style = "Hyperlink"
        complete = [i for i, row in enumerate(rows) if row[1] == "complete"]
        for j, c in enumerate(columns, start=1):
            if "metric" not in c:
                continue
            direction = "min" if c["stat"] == "std" else metric_direction(c["metric"])
            values = [(rows[i][j - 1], i) for i in complete if rows[i][j - 1] is not None]
            if not values:
                continue
            target = (min if direction == "min" else max)(v for v, _ in values)
            for v, i in values:
                if v == target:
                    cell = ws.cell(row=i + 3, column=j)
                    cell.fill = best_fill
                    cell.font = Font(bold=True)
        if selected_id is not None:
            i = next(k for k, row in enumerate(rows) if row[0] == selected_id) + 3
            for j in range(1, 6):
                ws.cell(row=i, column=j).fill = selected_fill
            note_row = len(rows) + 4
            sel = results[selected_id]
            test_mean = sel.metric(metric, "test")
            test_std = sel.metric(metric, "test", stat="std")
            ws.cell(row=note_row, column=1, value=(
                f"Selected: instance {selected_id}, best validation {metric} "
                f"({sel.metric(metric, 'val'):.4f}). Report its test {metric}: "
                f"{test_mean:.4f} ± {test_std:.4f} (mean ± std over folds)."))
            ws.cell(row=note_row, column=1).font = bold
        ws.cell(row=len(rows) + 5, column=1, value=(
            "Green: best value of each column among complete instances (max for accuracy, "
            "F1, precision, recall, R²; min for loss, RMSE, MAE and every std). Yellow: the "
            "selected instance. Instance IDs link to their folders."))
        ws.freeze_panes = ws.cell(row=3, column=6)
        if rows:
            ws.auto_filter.ref = f"A2:{get_column_letter(len(columns))}{len(rows) + 2}"
        for j, c in enumerate(columns, start=1):
            width = 10 if "metric" in c else max(
                [len(str(c["name"]))] + [len(str(r[j - 1] or "")) for r in rows]) + 2
            ws.column_dimensions[get_column_letter(j)].width = min(max(width, 6), 45)
        ws.row_dimensions[2].height = 30

        # -- Statistics, Folds, Parameters --
        def table_sheet(title, header, body, number_columns=()):
            sheet = wb.create_sheet(title)
            for j, name in enumerate(header, start=1):
                cell = sheet.cell(row=1, column=j, value=name)
                cell.font = bold
                cell.fill = header_fill
            for i, row in enumerate(body, start=2):
                for j, value in enumerate(row, start=1):
                    if isinstance(value, float) and not np.isfinite(value):
                        value = None
                    cell = sheet.cell(row=i, column=j, value=value)
                    if isinstance(value, float) and (j - 1) in number_columns:
                        cell.number_format = "0.0000"
            sheet.freeze_panes = "B2"
            if body:
                sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(body) + 1}"
            for j, name in enumerate(header, start=1):
                width = max([len(str(name))] + [len(str(r[j - 1] if r[j - 1] is not None
                                                        else "")) for r in body]) + 2
                sheet.column_dimensions[get_column_letter(j)].width = min(max(width, 6), 50)
            return sheet

        header, body, _, _ = statistics_table(results, config)
        stats_sheet = table_sheet("Statistics", header, body, number_columns=range(3, 10))
        for i, row in enumerate(body, start=2):
            if row[-1].startswith("not significantly") or row[-1] == "selected":
                stats_sheet.cell(row=i, column=len(header)).fill = selected_fill
        note = len(body) + 3
        stats_sheet.cell(row=note, column=1, value=(
            "Corrected resampled t-test (Nadeau & Bengio, 2003) of each instance's test "
            f"{metric} against the selected instance over the same folds; yellow: not "
            "significantly different from the selected one."))
        header, body = folds_table(results)
        table_sheet("Folds", header, body, number_columns=range(7, len(header)))
        header, body = parameters_table(results)
        table_sheet("Parameters", header, body)

        for sheet in wb.worksheets[1:]:  # printable: landscape, one page wide
            sheet.page_setup.orientation = "landscape"
            sheet.page_setup.fitToWidth = 1
            sheet.page_setup.fitToHeight = 0
            sheet.sheet_properties.pageSetUpPr.fitToPage = True
        # The Summary is too wide for one page: print it across pages, repeating the
        # instance columns and the two header rows on each.
        ws.page_setup.orientation = "landscape"
        ws.page_setup.fitToWidth = max(1, -(-len(columns) // 20))
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_title_cols = "A:E"
        ws.print_title_rows = "1:2"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".xlsx", dir=path.parent)
        os.close(fd)
        try:
            wb.save(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return path


def terminal_table(results, config=None, only=None, fmt="text"):
    """The summary as text, CSV or Markdown, the selected instance marked with `*`.

    Args:
        results: an `ExperimentResults` or its folder.
        config: a `Config` (for the selection metric), or `None`.
        only: instance ids to show; `None` shows all.
        fmt: `"text"`, `"csv"` or `"markdown"`. Defaults to `"text"`.

    Returns:
        The table as a string.
    """
    if not isinstance(results, ExperimentResults):
        results = ExperimentResults(results)
    metric = selection_metric(config, task_type_of(results))
    best = results.best(metric, "val")
    header = ["", "id", "status", f"val {metric}", f"test {metric}", "comment"]
    rows = []

    def cell(r, split):
        mean, std = r.metric(metric, split), r.metric(metric, split, stat="std")
        return "" if mean is None else f"{mean:.4f} ± {std:.4f}"

    for r in results:
        if only is not None and r.id not in only:
            continue
        comment = " / ".join(c for c in (r.params.get("comment_1", ""),
                                         r.params.get("comment_2", "")) if c)
        rows.append(["*" if best is not None and r.id == best.id else "", str(r.id), r.status,
                     cell(r, "val"), cell(r, "test"), comment])
    footer = ""
    if best is not None:
        footer = (f"* selected on validation {metric}: instance {best.id}; report its test "
                  f"score {best.metric(metric, 'test'):.4f}.")
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["selected"] + header[1:])
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines + ([f"\n{footer}"] if footer else []))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(lines + ([footer] if footer else []))
