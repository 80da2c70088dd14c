"""The experiment workbook (`experiment_<N>.xlsx`) and the terminal table.

Everything here is derived from the result files (`params.json`, `fold_<i>.json`,
`summary.json`, `folds.json`); it can be rebuilt at any time, and is written under a lock,
atomically.

Sheets: **Summary** (per instance the identifying columns and the headline metrics of the
task, validation and test, the selected instance marked, a note saying what to report, a
legend), **Metrics** (every metric, train/validation/test, segment and clip level),
**Statistics** (confidence intervals, corrected t-test against the selected instance),
**Folds** (one row per instance and fold; a `plots` column names each fold's own plots when
there are some), **Parameters** and **Plots** (the instances' PNG plots embedded: the
selected instance first, with its per-fold plots; at most `MAX_EMBEDDED_PLOTS`).
"""

import functools
import os
import re
from pathlib import Path

import numpy as np

from xval import tasks
from xval.config.selection import metric_direction, selection_metric
from xval.core.errors import ConfigurationError
from xval.core.files import make_temp_file
from xval.report.results import ExperimentResults, level_metrics, lock, read_json
from xval.report.stats import corrected_resampled_ttest, fold_test_train_ratio, mean_ci

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}

# One meaning per colour, on every sheet (the legend on the Summary sheet says the same).
HEADER_FILL = "DDEBF7"
"""Column headers."""
BEST_FILL = "C6EFCE"
"""Best mean of a metric column among complete instances (Summary and Metrics)."""
SELECTED_FILL = "FFEB9C"
"""The selected instance's row (best validation selection metric), on every sheet."""
TIED_FILL = "E4DFEC"
"""Statistics: not significantly different from the selected instance."""
FAILED_FONT = "9C0006"
"""Text of a failed instance."""
PENDING_FONT = "7F7F7F"
"""Text (italic) of a partial or pending instance."""
SELECTED_MARK = "★ selected"
MAX_EMBEDDED_PLOTS = 40
"""Plots embedded in the Plots sheet at most (the others are named there, not shown): the
workbook stays small enough to mail."""
PLOT_WIDTH_PX = 480
"""Width an embedded plot is shown at, at least: a wider plot (many classes) is shown at
half its width up to `MAX_PLOT_WIDTH_PX`; the height keeps the aspect ratio, at most
`MAX_PLOT_HEIGHT_PX`."""
MAX_PLOT_WIDTH_PX = 1200
MAX_PLOT_HEIGHT_PX = 1200


def plot_display_size(width, height):
    """The size `(width, height)` in pixels a `width` x `height` plot is shown at in the
    Plots sheet (see `PLOT_WIDTH_PX`)."""
    shown = min(max(PLOT_WIDTH_PX, width / 2), MAX_PLOT_WIDTH_PX)
    scale = min(shown / max(width, 1), MAX_PLOT_HEIGHT_PX / max(height, 1))
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)

TRAIN_METRICS_NOTE = (
    "Train metrics are computed after training, in inference mode, with the best epoch's "
    "weights, over all training rows. The training curves (history) average each batch's "
    "metric over an epoch while the weights change, with dropout active and BatchNorm "
    "using batch statistics (training mode); so the two differ, the train metrics here "
    "usually being better.")

_FORMULA_PREFIXES = ("=", "+", "-", "@")


def check_experiment_folder(exp_dir):
    """Checks that `exp_dir` holds an experiment's results, before anything is written.

    Raises:
        ConfigurationError: when it is missing, or has neither `folds.json` nor an
            `instance_<k>` folder (e.g. a feature store).
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise ConfigurationError(
            f"{exp_dir} is not a folder; pass an experiment's results folder, "
            "results/<dataset>/experiment_<N>.")
    has_instances = any(p.is_dir() and re.fullmatch(r"instance_\d+", p.name)
                        for p in exp_dir.iterdir())
    if not (exp_dir / "folds.json").is_file() and not has_instances:
        raise ConfigurationError(
            f"{exp_dir} is not an experiment folder (no folds.json, no instance_<k> "
            "folders); pass an experiment's results folder, results/<dataset>/experiment_<N>.")


def _levels(results):
    levels = ["segment"]
    if any("clip" in r.summary.get("metrics", {}) for r in results):
        levels.append("clip")
    return levels


def _metric_names(results, level):
    """Every metric some instance records at `level`, in the order first seen (instances
    with an embedding classifier add `embedding_*` metrics that others lack)."""
    names = {}
    for r in results:
        names.update(dict.fromkeys(r.summary.get("metrics", {}).get(level, {}).get("test") or ()))
    return list(names)


def _embedding_headline(results, metric, level):
    """The embedding classifier's headline metric (`embedding_accuracy`) when some instance
    records it at `level` and the selection metric is not already one of its metrics."""
    from xval.config import embedding

    name = f"{embedding.PREFIX}{tasks.get(embedding.TASK).selection_metric}"
    if metric.startswith(embedding.PREFIX):
        return None
    return name if any(r.metric(name, "test", level) is not None for r in results) else None


def _differing_params(results):
    names = sorted({k for r in results for k in r.params} - {"comment_1", "comment_2"})
    out = []
    for name in names:
        values = {repr(r.params.get(name)) for r in results if r.params}
        if len(values) > 1:
            out.append(name)
    return out


def headline_metrics(results, config=None):
    """The metrics the Summary sheet shows, as `(level, metric, label)`.

    The task of the results chooses them (`Task.headline_metrics`); where files are cut
    into segments, the clip score comes first (the headline). E.g. classification:
    accuracy and macro F1; regression: RMSE, MAE and R² (segment level). A selection metric
    set in `[report]` that the task does not show is added first, and the embedding
    classifier's accuracy after them when some instance has one.
    """
    clips = "clip" in _levels(results)
    out = tasks.get(results.task_type).headline_metrics(clips)
    metric = selection_metric(config, results.task_type)
    levels = ["clip", "segment"] if clips else ["segment"]
    shown = {(lvl, name) for lvl, name, _ in out}
    out = [(lvl, metric, f"clip {metric}" if lvl == "clip" else metric)
           for lvl in levels if (lvl, metric) not in shown
           and any(r.metric(metric, "val", lvl) is not None for r in results)] + out
    extra = _embedding_headline(results, metric, levels[0])
    if extra:
        out += [(lvl, extra, f"clip {extra}" if lvl == "clip" else extra) for lvl in levels]
    return out


def _instance_columns(params):
    columns = [{"name": "ID", "group": "instance"}, {"name": "status", "group": "instance"},
               {"name": "selected", "group": "instance"},
               {"name": "comment_1", "group": "instance"},
               {"name": "comment_2", "group": "instance"}]
    return columns + [{"name": p, "group": "parameters that differ", "param": p}
                      for p in params]


def _rows(results, columns, selected):
    rows = []
    for r in results:
        row = []
        for c in columns:
            if c["name"] == "ID":
                row.append(r.id)
            elif c["name"] == "status":
                row.append(r.status)
            elif c["name"] == "selected":
                row.append(SELECTED_MARK if selected is not None and r.id == selected.id
                           else "")
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
    return rows


def summary_table(results, config=None):
    """The Summary sheet as rows of plain values: identifying columns, then the mean and
    std over folds of the headline metrics (`headline_metrics`), validation then test.

    Returns:
        `(columns, rows, selected_id, metric)`: `columns` is a list of dicts with `name`,
        `group`, and for metric columns `level`, `split`, `metric`, `stat`.
    """
    metric = selection_metric(config, results.task_type)
    selected = results.best(metric, "val", level="auto")
    columns = _instance_columns(_differing_params(results))
    for split in ("val", "test"):
        for level, name, label in headline_metrics(results, config):
            for stat in ("mean", "std"):
                columns.append({"name": f"{label} {stat}", "level": level, "split": split,
                                "metric": name, "stat": stat, "group": SPLIT_NAMES[split]})
    columns.append({"name": "folds", "group": "run"})
    columns.append({"name": "message", "group": "run"})
    return columns, _rows(results, columns, selected), \
        (selected.id if selected is not None else None), metric


def metrics_table(results, config=None):
    """The Metrics sheet: every metric's mean and std over folds, train/validation/test,
    segment and clip level.

    Returns:
        `(columns, rows, selected_id, metric)`, as `summary_table`.
    """
    metric = selection_metric(config, results.task_type)
    selected = results.best(metric, "val", level="auto")
    columns = _instance_columns(_differing_params(results))
    for level in _levels(results):
        for split in ("train", "val", "test"):
            for name in _metric_names(results, level):
                for stat in ("mean", "std"):
                    columns.append({"name": f"{name} {stat}", "level": level, "split": split,
                                    "metric": name, "stat": stat,
                                    "group": f"{SPLIT_NAMES[split]} ({level})"})
    columns.append({"name": "folds", "group": "run"})
    columns.append({"name": "message", "group": "run"})
    return columns, _rows(results, columns, selected), \
        (selected.id if selected is not None else None), metric


def report_level(instance, metric):
    """`"clip"` when the instance has clip-level test values of `metric`, else `"segment"`."""
    return "clip" if instance.metric(metric, "test", "clip") is not None else "segment"


def selection_level(results, metric):
    """The level the selection metric is read at: `"clip"` when the complete instances have
    clip-level validation values of `metric` (files cut into segments), else `"segment"`
    (`ExperimentResults.auto_level`)."""
    return results.auto_level(metric, "val")


def report_note(results, config=None):
    """The sentence saying which instance was selected and which test value to report.

    Returns:
        The note, or `None` when no instance is complete.
    """
    metric = selection_metric(config, results.task_type)
    sel = results.best(metric, "val", level="auto")
    if sel is None:
        return None
    level = report_level(sel, metric)
    chosen = selection_level(results, metric)
    names = tasks.get(results.task_type).level_names  # detection: window, recording
    n = sel.summary.get("folds_done", len(sel.folds))
    note = (f"Selected: instance {sel.id}, best validation {metric} "
            f"({sel.metric(metric, 'val', chosen):.4f}, {names[chosen]} level). Report its "
            f"test {metric} at {names[level]} level: {sel.metric(metric, 'test', level):.4f} "
            f"± {sel.metric(metric, 'test', level, 'std'):.4f} (mean ± std over {n} folds)")
    if level == "clip":
        note += (f", {names['segment']} level beside it: {sel.metric(metric, 'test'):.4f} ± "
                 f"{sel.metric(metric, 'test', stat='std'):.4f}")
    note += ". Choose on validation, report test."
    lacking = results.without_clip_level(metric, "val")
    if lacking:
        note += (f" Compared at {names['segment']} level: instance(s) "
                 f"{', '.join(map(str, lacking))} have no {names['clip']}-level scores "
                 "(trained before this version scored them); rerun them with --overwrite to "
                 f"compare all at {names['clip']} level.")
    return note


def single_item_validation_warning(results, exp_dir=None):
    """A warning when validation sets hold a single item, or `None`.

    Reads `items.val` of the fold files (and of `folds.json` when there are none yet).
    """
    val_sets = {}
    for r in results:
        for fold in r.folds:
            if "items" in fold and "fold" in fold:
                val_sets[fold["fold"]] = fold["items"]["val"]
    if not val_sets and exp_dir is not None and (Path(exp_dir) / "folds.json").is_file():
        try:
            manifest = read_json(Path(exp_dir) / "folds.json")
            val_sets = {i: f["val"] for i, f in enumerate(manifest.get("folds", []))}
        except (OSError, ValueError, KeyError, TypeError):
            val_sets = {}
    single = sorted(i for i, items in val_sets.items() if len(items) == 1)
    if not single:
        return None
    return (f"Warning: {len(single)} of {len(val_sets)} folds have a single validation item, "
            "so model selection (best epoch, selected instance) rests on one item per fold. "
            "Use fewer folds or a larger [folds] val_fraction if there are enough items.")


def _safe(cell, value):
    """Writes `value`; a string that looks like a formula stays text, NaN/inf become empty."""
    if isinstance(value, float) and not np.isfinite(value):
        value = None
    cell.value = value
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        cell.data_type = "s"
    return cell


def statistics_table(results, config=None):
    """Per instance: plain 95% CIs of the selection metric, and the corrected resampled
    t-test against the selected instance over the same folds (test scores), with the
    corrected 95% CI of the difference.

    Returns:
        `(header, rows, selected_id, metric)`.
    """
    task = results.task_type
    metric = selection_metric(config, task)
    alpha = config.report["alpha"] if config is not None else 0.05
    selected = results.best(metric, "val", level="auto")

    def ok(r):
        return {f["fold"]: f for f in r.folds if f.get("status") == "ok"}

    chosen = selection_level(results, metric)
    key = "clip_metrics" if chosen == "clip" else "metrics"

    def scores(r, split):
        found = {i: level_metrics(f, chosen) for i, f in ok(r).items()}
        return {i: m[split][metric] for i, m in found.items()
                if m and metric in m.get(split, {})}

    ref_id = selected.id if selected else "selected"
    level = f"{100 * (1 - alpha):g}%"
    label = f"clip {metric}" if key == "clip_metrics" else metric
    header = ["ID", "status", "folds", f"val {label} mean", "val 95% CI ± (plain t)",
              f"test {label} mean", "test 95% CI ± (plain t)",
              f"test diff vs {ref_id}", f"diff {level} CI low (corrected)",
              f"diff {level} CI high (corrected)", "t (corrected)", "p (corrected)",
              "verdict"]
    rows = []
    for r in results:
        val = scores(r, "val")
        test = scores(r, "test")
        val_mean, val_ci = mean_ci(list(val.values()))
        test_mean, test_ci = mean_ci(list(test.values()))
        diff = low = high = t = p = None
        verdict = ""
        if selected is not None and r.id == selected.id:
            verdict = "selected"
        elif selected is not None and test:
            ref = scores(selected, "test")
            common = sorted(set(ref) & set(test))
            if len(common) >= 2:
                a = np.array([test[i] for i in common])
                b = np.array([ref[i] for i in common])
                folds = [ok(r)[i] for i in common] + [ok(selected)[i] for i in common]
                result = corrected_resampled_ttest(a, b, fold_test_train_ratio(folds),
                                                   confidence=1 - alpha)
                t, p, diff, low, high = result
                verdict = ("not significantly different" if p >= alpha
                           else "significantly different") + f" (alpha {alpha})"
            else:
                verdict = "too few common folds"
        rows.append([r.id, r.status, len(test), val_mean, val_ci, test_mean, test_ci, diff,
                     low, high, t, p, verdict])
    return header, rows, (selected.id if selected is not None else None), metric


def fold_plots(instance_dir, fold):
    """The per-fold plots of a fold (`plots/*_fold_<i>.png`, e.g. the detection activity
    plots), as paths relative to the experiment folder."""
    instance_dir = Path(instance_dir)
    return [f"{instance_dir.name}/plots/{p.name}"
            for p in sorted((instance_dir / "plots").glob(f"*_fold_{fold}.png"))]


def folds_table(results):
    """One row per (instance, fold); a last column `plots` names each fold's own plots
    (relative to the experiment folder) when some fold has any."""
    names = []
    for r in results:
        for f in r.folds:
            if f.get("status") == "ok":
                names = [n for n in f["metrics"]["test"] if n != "confusion_matrix"]
                break
        if names:
            break
    header = ["ID", "fold", "status", "test items", "validation items", "best epoch",
              "epochs run", "seconds", "train rows (original)", "test rows"] + \
        [f"{s} {n}" for s in ("train", "val", "test") for n in names] + ["message"]
    rows = []
    for r in results:
        for f in r.folds:
            ok = f.get("status") == "ok"
            n_rows = f.get("n_rows", {})
            items = f.get("items", {})
            row = [r.id, f.get("fold"), f.get("status"), ", ".join(items.get("test", [])),
                   ", ".join(items.get("val", [])), f.get("best_epoch"), f.get("epochs_run"),
                   f.get("timings", {}).get("total_seconds"),
                   n_rows.get("train_original", n_rows.get("train")), n_rows.get("test")]
            row += [f["metrics"][s].get(n) if ok else None for s in ("train", "val", "test")
                    for n in names]
            row.append(f.get("message", ""))
            row.append(", ".join(fold_plots(r.path, f.get("fold"))) if ok else "")
            rows.append(row)
    if any(row[-1] for row in rows):
        header.append("plots")
    else:
        rows = [row[:-1] for row in rows]
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


def search_table(results):
    """The Search sheet: one row per trial (instances made by `--search`), in trial order.

    Returns:
        `(header, rows)`; no rows when the experiment ran no search.
    """
    trials = sorted(((r.trial, r) for r in results if r.trial is not None),
                    key=lambda pair: pair[0].get("trial", 0))
    names = sorted({n for t, _ in trials for n in t.get("params", {})})
    metric = next((t.get("metric") for t, _ in trials if t.get("metric")), "objective")
    header = ["trial", "ID", "state", f"objective: mean validation {metric}",
              "pruned at fold", "folds done", f"test {metric} mean"] + names
    rows = []
    for t, r in trials:
        pruned = t.get("pruned_at_fold")
        rows.append([t.get("trial"), r.id, t.get("state"), t.get("objective"),
                     pruned, r.summary.get("folds_done"), r.metric(metric, "test")]
                    + [t.get("params", {}).get(n) for n in names])
    return header, rows


class _Styles:
    """openpyxl styles of the workbook, one per colour meaning."""

    def __init__(self):
        from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

        self.Font = Font
        self.bold = Font(bold=True)
        self.header = PatternFill("solid", fgColor=HEADER_FILL)
        self.best = PatternFill("solid", fgColor=BEST_FILL)
        self.selected = PatternFill("solid", fgColor=SELECTED_FILL)
        self.tied = PatternFill("solid", fgColor=TIED_FILL)
        self.center = Alignment(horizontal="center", wrap_text=True)
        self.wrap = Alignment(wrap_text=True, vertical="top")
        self.bottom = Border(bottom=Side(style="thin", color="999999"))

    def status_font(self, status, bold=False):
        if status == "failed":
            return self.Font(color=FAILED_FONT, italic=True, bold=bold)
        if status != "complete":
            return self.Font(color=PENDING_FONT, italic=True, bold=bold)
        return self.Font(bold=bold)


def _instance_sheet(ws, columns, rows, selected_id, st):
    """Writes a two-header-row instance sheet (Summary, Metrics); returns the header
    cell of every group as `{group: cell}`."""
    from openpyxl.utils import get_column_letter

    groups = []
    for j, c in enumerate(columns, start=1):
        if groups and groups[-1][0] == c["group"]:
            groups[-1][2] = j
        else:
            groups.append([c["group"], j, j])
    group_cells = {}
    for name, start, end in groups:
        cell = _safe(ws.cell(row=1, column=start), name)
        cell.font = st.bold
        cell.alignment = st.center
        cell.fill = st.header
        group_cells[name] = cell
        if end > start:
            ws.merge_cells(start_row=1, start_column=start, end_row=1, end_column=end)
    for j, c in enumerate(columns, start=1):
        cell = _safe(ws.cell(row=2, column=j), c["name"])
        cell.font = st.bold
        cell.fill = st.header
        cell.border = st.bottom
        cell.alignment = st.center
    for i, row in enumerate(rows, start=3):
        is_selected = row[0] == selected_id
        for j, value in enumerate(row, start=1):
            cell = _safe(ws.cell(row=i, column=j), value)
            if "metric" in columns[j - 1] and cell.value is not None:
                cell.number_format = "0.0000"
            cell.font = st.status_font(row[1], bold=is_selected)
            if is_selected:
                cell.fill = st.selected
        link = ws.cell(row=i, column=1)
        link.hyperlink = f"instance_{row[0]}/"
        link.font = st.Font(color="0563C1", underline="single", bold=is_selected)
    complete = [i for i, row in enumerate(rows) if row[1] == "complete"]
    for j, c in enumerate(columns, start=1):
        if c.get("stat") != "mean":
            continue  # the smallest std is not "best": a uniformly bad model has it
        values = [(rows[i][j - 1], i) for i in complete if rows[i][j - 1] is not None]
        if not values:
            continue
        pick = min if metric_direction(c["metric"]) == "min" else max
        target = pick(v for v, _ in values)
        for v, i in values:
            if v == target:
                cell = ws.cell(row=i + 3, column=j)
                cell.fill = st.best
                cell.font = st.Font(bold=True)
    ws.freeze_panes = ws.cell(row=3, column=6)
    if rows:
        ws.auto_filter.ref = f"A2:{get_column_letter(len(columns))}{len(rows) + 2}"
    for j, c in enumerate(columns, start=1):
        width = 11 if "metric" in c else max(
            [len(str(c["name"]))] + [len(str(r[j - 1] or "")) for r in rows]) + 2
        ws.column_dimensions[get_column_letter(j)].width = min(max(width, 6), 45)
    ws.row_dimensions[2].height = 30
    return group_cells


def _legend(ws, first_row, metric, alpha, st):
    """The colour legend, below the Summary table."""
    from openpyxl.styles import Font

    _safe(ws.cell(row=first_row, column=1), "Legend").font = st.bold
    entries = [
        (st.header, None, "Column headers."),
        (st.best, None, "Best mean of the column among complete instances (max for accuracy, "
                        "F1, precision, recall, R²; min for loss, RMSE, MAE). Summary and "
                        "Metrics sheets. Standard deviations are not highlighted."),
        (st.selected, None, f"{SELECTED_MARK}: the selected instance (best validation "
                            f"{metric}), on every sheet."),
        (st.tied, None, "Statistics sheet: not significantly different from the selected "
                        f"instance (corrected resampled t-test, alpha {alpha})."),
        (None, Font(color=FAILED_FONT, italic=True), "Failed instance (reason in 'message')."),
        (None, Font(color=PENDING_FONT, italic=True), "Partial or pending instance."),
    ]
    for k, (fill, font, text) in enumerate(entries, start=first_row + 1):
        swatch = ws.cell(row=k, column=1, value="text" if font is not None else None)
        if fill is not None:
            swatch.fill = fill
        if font is not None:
            swatch.font = font
        _safe(ws.cell(row=k, column=2), text)
    _safe(ws.cell(row=first_row + len(entries) + 1, column=1),
          "Values are mean and std over folds. Instance IDs link to their folders; the "
          "Metrics sheet has every metric (train, validation, test; segment and clip level).")


def plot_files(results, selected_id):
    """The PNG plots the Plots sheet embeds, per instance.

    Returns:
        list of `(instance, [Path, ...])`: the selected instance first with its
        instance plots then its per-fold plots, then every other instance (by id) with its
        instance plots only; instances without plots are left out.
    """
    order = sorted(results, key=lambda r: (r.id != selected_id, r.id))
    out = []
    for r in order:
        pngs = sorted((r.path / "plots").glob("*.png"))
        per_fold = [p for p in pngs if re.search(r"_fold_\d+$", p.stem)]
        shown = [p for p in pngs if p not in per_fold]
        if r.id == selected_id:
            shown += sorted(per_fold, key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        if shown:
            out.append((r, shown))
    return out


def _thumbnail(path):
    """The plot as a 256-colour PNG at most twice `MAX_PLOT_WIDTH_PX` wide (sharp on
    high-DPI screens, about a third of the plot file's size), as a `BytesIO`.

    The workbook is rebuilt after every instance with every instance's plots: each plot
    file is converted once per process (cached on its path, size and modification time).
    """
    import io

    stat = path.stat()
    return io.BytesIO(_thumbnail_bytes(str(path), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=2 * MAX_EMBEDDED_PLOTS)
def _thumbnail_bytes(path, size, mtime_ns):
    import io

    from PIL import Image as PILImage

    del size, mtime_ns  # with the path, the cache key: the same file, unchanged
    with PILImage.open(io.BytesIO(Path(path).read_bytes())) as image:
        image = image.convert("RGB")
    if image.width > 2 * MAX_PLOT_WIDTH_PX:
        height = int(round(image.height * 2 * MAX_PLOT_WIDTH_PX / image.width))
        image = image.resize((2 * MAX_PLOT_WIDTH_PX, max(height, 1)), PILImage.LANCZOS)
    out = io.BytesIO()
    image.quantize(256, method=PILImage.Quantize.FASTOCTREE).save(out, format="PNG")
    return out.getvalue()


def _plots_sheet(wb, results, selected_id, st):
    """The Plots sheet: each instance's plots as images (`plot_display_size`), a row of
    images per instance under a title line."""
    from openpyxl.drawing.image import Image
    from openpyxl.utils import get_column_letter
    from PIL import Image as PILImage

    groups = plot_files(results, selected_id)
    if not groups:
        return None
    sheet = wb.create_sheet("Plots")
    row, embedded, left_out, unreadable = 1, 0, [], []
    for r, files in groups:
        mark = f" {SELECTED_MARK}" if r.id == selected_id else ""
        comments = " / ".join(str(r.params.get(k, "")) for k in ("comment_1", "comment_2")
                              if r.params.get(k))
        title = _safe(sheet.cell(row=row, column=1),
                      f"instance {r.id}{mark}" + (f": {comments}" if comments else ""))
        title.font = st.bold
        if mark:
            title.fill = st.selected
        row += 1  # a line of file names (linked), the images under them
        tallest, column = 0, 1
        for path in files:
            relative = f"{r.path.name}/plots/{path.name}"
            if embedded >= MAX_EMBEDDED_PLOTS:
                left_out.append(relative)
                continue
            try:
                image = Image(_thumbnail(path))
            except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError):
                unreadable.append(relative)  # not a PNG, cut short, or being replaced
                continue
            width, height = plot_display_size(image.width, image.height)
            image.width, image.height = width, height
            name = _safe(sheet.cell(row=row, column=column), path.name)
            name.hyperlink = relative
            name.font = st.Font(color="0563C1", underline="single")
            sheet.add_image(image, f"{get_column_letter(column)}{row + 1}")
            tallest = max(tallest, height)
            column += int(np.ceil(width / 64)) + 1  # columns of the default width (64 px)
            embedded += 1
        row += int(np.ceil(tallest / 20)) + 3  # default rows are 20 px high
    for label, names in ((f"Not embedded (at most {MAX_EMBEDDED_PLOTS} plots)", left_out),
                         ("Not embedded (unreadable PNG)", unreadable)):
        if names:
            _safe(sheet.cell(row=row, column=1), f"{label}: " + ", ".join(names))
            row += 1
    return sheet


def build_workbook(exp_dir, config=None, path=None):
    """Rebuilds `experiment_<N>.xlsx` from the result files, under a lock, atomically.

    Args:
        exp_dir: the `experiment_<N>` folder.
        config: a `Config` (selection metric, alpha), or `None` for the defaults.
        path: where to write; defaults to `exp_dir/experiment_<N>.xlsx`.

    Returns:
        The path of the workbook.

    Raises:
        ConfigurationError: when `exp_dir` is not an experiment folder (nothing is written).
    """
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.utils import get_column_letter

    exp_dir = Path(exp_dir)
    check_experiment_folder(exp_dir)
    path = Path(path) if path else exp_dir / f"{exp_dir.name}.xlsx"
    alpha = config.report["alpha"] if config is not None else 0.05
    with lock(path):
        results = ExperimentResults(exp_dir)
        wb = Workbook()
        st = _Styles()

        # -- Summary: headline metrics, the note, the legend --
        ws = wb.active
        ws.title = "Summary"
        columns, rows, selected_id, metric = summary_table(results, config)
        _instance_sheet(ws, columns, rows, selected_id, st)
        next_row = len(rows) + 4
        note = report_note(results, config)
        if note:
            _safe(ws.cell(row=next_row, column=1), note).font = st.bold
            next_row += 1
        warning = single_item_validation_warning(results, exp_dir)
        if warning:
            _safe(ws.cell(row=next_row, column=1), warning).font = \
                st.Font(bold=True, color=FAILED_FONT)
            next_row += 1
        _legend(ws, next_row + 1, metric, alpha, st)

        # -- Metrics: everything, train columns explained --
        mcols, mrows, _, _ = metrics_table(results, config)
        metrics_sheet = wb.create_sheet("Metrics")
        group_cells = _instance_sheet(metrics_sheet, mcols, mrows, selected_id, st)
        for name, cell in group_cells.items():
            if name.startswith("train"):
                cell.comment = Comment(TRAIN_METRICS_NOTE, "xval", width=360, height=160)

        # -- Statistics, Folds, Parameters --
        def table_sheet(title, header, body, number_columns=()):
            sheet = wb.create_sheet(title)
            for j, name in enumerate(header, start=1):
                cell = _safe(sheet.cell(row=1, column=j), name)
                cell.font = st.bold
                cell.fill = st.header
            for i, row in enumerate(body, start=2):
                for j, value in enumerate(row, start=1):
                    cell = _safe(sheet.cell(row=i, column=j), value)
                    if isinstance(cell.value, float) and (j - 1) in number_columns:
                        cell.number_format = "0.0000"
                if row[0] == selected_id:
                    sheet.cell(row=i, column=1).fill = st.selected
            sheet.freeze_panes = "B2"
            if body:
                sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(body) + 1}"
            for j, name in enumerate(header, start=1):
                width = max([len(str(name))] + [len(str(r[j - 1] if r[j - 1] is not None
                                                        else "")) for r in body]) + 2
                sheet.column_dimensions[get_column_letter(j)].width = min(max(width, 6), 50)
            return sheet

        header, body, _, _ = statistics_table(results, config)
        stats_sheet = table_sheet("Statistics", header, body, number_columns=range(3, 12))
        for i, row in enumerate(body, start=2):
            if row[0] == selected_id:
                for j in range(1, len(header) + 1):
                    stats_sheet.cell(row=i, column=j).fill = st.selected
            elif row[-1].startswith("not significantly"):
                stats_sheet.cell(row=i, column=len(header)).fill = st.tied
        _safe(stats_sheet.cell(row=len(body) + 3, column=1), (
            f"Test {metric} of each instance against the selected one, over the same folds: "
            "corrected resampled t-test (Nadeau & Bengio, 2003), whose variance "
            "(1/k + n_test/n_train) · var(differences) counts original training rows only "
            "(augmented copies add no independent data); the difference's confidence "
            "interval uses the same corrected variance, so it excludes 0 exactly when "
            f"p < {alpha}. The per-instance '95% CI ± (plain t)' treats folds as "
            "independent and is too narrow; compare instances with the corrected columns."))
        header, body = folds_table(results)
        folds_sheet = table_sheet("Folds", header, body, number_columns=range(10, len(header)))
        if header[-1] == "plots":  # link a fold's single plot (several: the text names them)
            for i, row in enumerate(body, start=2):
                if row[-1] and "," not in row[-1]:
                    cell = folds_sheet.cell(row=i, column=len(header))
                    cell.hyperlink = row[-1]
                    cell.font = st.Font(color="0563C1", underline="single")
        header, body = parameters_table(results)
        table_sheet("Parameters", header, body)
        header, body = search_table(results)
        if body:
            search_sheet = table_sheet("Search", header, body, number_columns=(3, 6))
            search_sheet.cell(row=len(body) + 3, column=1, value=(
                "Trials proposed by Optuna (search.journal). The objective is the mean over "
                "folds of the validation metric, never test; pruned trials stopped early and "
                "keep their finished folds. Plots: search/optimization_history.png, "
                "search/param_importances.png."))
        _plots_sheet(wb, results, selected_id, st)

        for sheet in wb.worksheets[2:]:  # printable: landscape, one page wide
            sheet.page_setup.orientation = "landscape"
            sheet.page_setup.fitToWidth = 1
            sheet.page_setup.fitToHeight = 0
            sheet.sheet_properties.pageSetUpPr.fitToPage = True
        # Summary and Metrics may be too wide for one page: print them across pages,
        # repeating the instance columns and the two header rows on each.
        for sheet, cols in ((ws, columns), (metrics_sheet, mcols)):
            sheet.page_setup.orientation = "landscape"
            sheet.page_setup.fitToWidth = max(1, -(-len(cols) // 20))
            sheet.page_setup.fitToHeight = 0
            sheet.sheet_properties.pageSetUpPr.fitToPage = True
            sheet.print_title_cols = "A:E"
            sheet.print_title_rows = "1:2"
        fd, tmp = make_temp_file(path.parent, prefix=f".{path.name}.", suffix=".xlsx")
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

    Each score reads "mean ± std over folds". Where files are cut into segments, the clip
    scores come first (selection and headline) and the segment test score sits beside them.

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
    metric = selection_metric(config, results.task_type)
    best = results.best(metric, "val", level="auto")
    level = selection_level(results, metric)
    shown = [r for r in results if only is None or r.id in only]
    if level == "clip":
        columns = [("val", "clip", metric), ("test", "clip", metric), ("test", "segment", metric)]
    else:
        columns = [("val", "segment", metric), ("test", "segment", metric)]
    extra = _embedding_headline(shown, metric, level)
    if extra:  # the embedding classifier's test score beside the network's
        columns.append(("test", level, extra))
    names = tasks.get(results.task_type).level_names  # detection: window, recording
    header = ["", "id", "status"]
    header += [f"{split} {names[lvl] + ' ' if level == 'clip' else ''}{name}"
               for split, lvl, name in columns]
    header.append("comment")
    rows = []

    def cell(r, split, lvl, name):
        mean, std = r.metric(name, split, lvl), r.metric(name, split, lvl, "std")
        return "" if mean is None else f"{mean:.4f} ± {std:.4f}"

    for r in shown:
        comment = " / ".join(c for c in (r.params.get("comment_1", ""),
                                         r.params.get("comment_2", "")) if c)
        rows.append(["*" if best is not None and r.id == best.id else "", str(r.id), r.status,
                     *(cell(r, *column) for column in columns), comment])
    footer = "± = mean ± std over folds."
    if best is not None:
        footer = (f"* selected on validation {metric} ({names[level]} level): instance "
                  f"{best.id}; report its test {names[level]} score "
                  f"{best.metric(metric, 'test', level):.4f}. {footer}")
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
