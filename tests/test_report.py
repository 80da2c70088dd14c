"""The workbook read back with openpyxl, plots, statistics and the report command."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from openpyxl import load_workbook

from tests.conftest import ROOT, tiny_store
from tests.manifests import manifest_text, params_text, record_text
from xval import Experiment, ExperimentResults, Output
from xval.config.selection import metric_direction
from xval.core.errors import ConfigurationError
from xval.core.records import FoldResult, InstanceSummary, Status
from xval.report.bayesian import correlated_bayesian_ttest
from xval.report.stats import corrected_resampled_ttest, fold_test_train_ratio, holm, mean_ci
from xval.report.tables import Selection, report_note, selection_level
from xval.report.terminal import terminal_table
from xval.report.workbook import (
    BEST_FILL,
    FAILED_FONT,
    HEADER_FILL,
    LATE_FILL,
    PENDING_FONT,
    SELECTED_FILL,
    TIED_FILL,
    build_workbook,
)

BASE = ['architecture="example_cnn"', 'reshaping_type="conv"', "filters=4"]
# Item names, comments and parameter values that a spreadsheet would take for formulas.
RENAMED = {"item0": "=item0", "item1": "-item1", "item2": "+item2", "item3": "@item3"}


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    from preprocessing.store import write_store
    from tests.conftest import write_config
    from xval.config.loader import load_config

    folder = tmp_path_factory.mktemp("report")
    config = load_config(write_config(folder, report={"plots": True}))
    store = tiny_store(config.data_dir)
    meta = store.meta.copy()
    meta["item"] = meta["item"].replace(RENAMED)
    write_store(store.path, np.asarray(store.features), meta, overwrite=True)
    exp = Experiment(description="report test", dataset="tiny", number=3, num_folds=3,
                     parameters={"epochs": 3, "patience": 3, "batch_size": 16},
                     config=str(config.path))
    exp[1] = BASE + ['comment_1="slow"', 'comment_2="a"', "learning_rate=0.001"]
    exp[2] = BASE + ['comment_1="fast"', 'comment_2="b"', "learning_rate=0.02"]
    exp[3] = BASE + ['comment_1="broken"', 'comment_2="c"',  # training diverges
                     "learning_rate=1e6", 'optimizer="sgd"', 'save_model_metric="val_accuracy"']
    exp[4] = BASE + ['comment_1="=1+1"', 'comment_2="@SUM(A1)"', "learning_rate=0.005"]
    lines = []
    outcome = exp.run(config=config, output=Output(out=lines.append))
    exp_dir = config.results_dir / "tiny" / "experiment_3"
    return config, exp_dir, outcome, "\n".join(lines)


def write_manifest(exp_dir, num_folds):
    """A `folds.json` of `num_folds` folds, as the planner writes it."""
    folds = [{"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]}] * num_folds
    (exp_dir / "folds.json").write_text(manifest_text(folds))


def _fill(cell):
    return (cell.fill.fgColor.rgb or "")[-6:] if cell.fill and cell.fill.fill_type else ""


def _font_colour(cell):
    return (cell.font.color.rgb or "")[-6:] if cell.font and cell.font.color else ""


def _columns(ws, groups=False):
    """Header name -> first column holding it (row 2); with `groups`, (group, name) -> column,
    the group being the merged row-1 header above it."""
    cols, group = {}, None
    for j in range(1, ws.max_column + 1):
        group = ws.cell(row=1, column=j).value or group
        name = ws.cell(row=2, column=j).value
        cols.setdefault((group, name) if groups else name, j)
    return cols


def _rows_by_id(ws):
    return {ws.cell(row=i, column=1).value: i for i in range(3, 7)}


def _find(ws, prefix):
    for row in ws.iter_rows(min_col=1, max_col=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith(prefix):
                return cell
    return None


def test_workbook_summary_shows_headline_metrics(classification_run):
    config, exp_dir, outcome, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx")
    assert wb.sheetnames == ["Summary", "Metrics", "Statistics", "Folds", "Parameters",
                             "Data", "Plots"]
    ws = wb["Summary"]
    assert ws.freeze_panes == "F3"
    assert ws.auto_filter.ref.startswith("A2:")
    header = [ws.cell(row=2, column=j).value for j in range(1, ws.max_column + 1)]
    assert header[:5] == ["ID", "status", "selected", "comment_1", "comment_2"]
    assert "learning_rate" in header and "batch_size" not in header  # only differing params
    # Every label names its level (issue 38): clip first (the headline), then segment.
    metric_headers = ["clip accuracy mean", "clip accuracy std", "segment accuracy mean",
                      "segment accuracy std", "segment macro F1 mean", "segment macro F1 std"]
    assert header[header.index("clip accuracy mean"):][:12] == metric_headers * 2  # val, test
    assert header[-2:] == ["folds", "message"]
    assert "loss mean" not in header and "precision mean" not in header  # Metrics sheet
    cols = _columns(ws, groups=True)
    results = ExperimentResults(exp_dir)
    for instance_id, i in _rows_by_id(ws).items():
        instance = results[instance_id]
        assert ws.cell(row=i, column=1).hyperlink.target == f"instance_{instance.id}/"
        assert ws.cell(row=i, column=2).value == instance.status
        for group, split in (("validation", "val"), ("test", "test")):
            for name, metric, level in (("segment accuracy mean", "accuracy", "segment"),
                                        ("segment macro F1 std", "f1", "segment"),
                                        ("clip accuracy mean", "accuracy", "clip")):
                cell = ws.cell(row=i, column=cols[(group, name)])
                stat = name.rsplit(" ", 1)[1]
                expected = instance.metric(metric, split, level, stat)
                assert cell.value == (pytest.approx(expected) if expected is not None
                                      else None), (instance_id, group, name)
                if expected is not None:
                    assert cell.number_format == "0.0000"


def test_workbook_metrics_sheet_has_every_metric(classification_run):
    _, exp_dir, _, _ = classification_run
    ws = load_workbook(exp_dir / "experiment_3.xlsx")["Metrics"]
    groups = [ws.cell(row=1, column=j).value for j in range(1, ws.max_column + 1)]
    for group in ("instance", "parameters that differ", "train (segment)",
                  "validation (segment)", "test (segment)", "train (clip)", "test (clip)"):
        assert group in groups
    cols = _columns(ws, groups=True)
    results = ExperimentResults(exp_dir)
    for instance_id, i in _rows_by_id(ws).items():
        instance = results[instance_id]
        for split, group in (("train", "train (segment)"), ("test", "test (clip)")):
            for name in ("loss", "accuracy", "f1", "precision", "recall"):
                cell = ws.cell(row=i, column=cols[(group, f"{name} mean")])
                expected = instance.metric(name, split, group.split("(")[1][:-1])
                assert cell.value == (pytest.approx(expected) if expected is not None
                                      else None)
    # The train columns explain why they differ from the training curves.
    for j, group in enumerate(groups, start=1):
        if group and group.startswith("train"):
            comment = ws.cell(row=1, column=j).comment
            assert comment is not None and "inference mode" in comment.text
            assert "dropout" in comment.text and "BatchNorm" in comment.text


def test_workbook_highlights_best_mean_only(classification_run):
    _, exp_dir, _, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx")
    checked = 0
    for sheet in ("Summary", "Metrics"):
        ws = wb[sheet]
        rows = _rows_by_id(ws)
        complete = [i for i in rows.values() if ws.cell(row=i, column=2).value == "complete"]
        for j in range(6, ws.max_column + 1):
            name = ws.cell(row=2, column=j).value or ""
            if not (name.endswith(" mean") or name.endswith(" std")):
                continue
            label, stat = name.rsplit(" ", 1)
            metric = {"segment macro F1": "f1", "clip accuracy": "accuracy",
                      "segment accuracy": "accuracy"}.get(label, label)
            values = {i: ws.cell(row=i, column=j).value for i in complete}
            target = (min if metric_direction(metric) == "min" else max)(values.values())
            for i in rows.values():
                highlighted = _fill(ws.cell(row=i, column=j)) == BEST_FILL
                expected = stat == "mean" and i in complete and values[i] == target
                assert highlighted == expected, (sheet, name, i)
            checked += 1
    assert checked == 2 * 3 * 2 + 2 * 3 * 5 * 2  # Summary: 12 columns, Metrics: 60


def test_workbook_selected_row_note_and_legend(classification_run):
    config, exp_dir, outcome, text = classification_run
    ws = load_workbook(exp_dir / "experiment_3.xlsx")["Summary"]
    results = ExperimentResults(exp_dir)
    best = Selection.of(results, config).selected  # clip level: the store has clips
    rows = _rows_by_id(ws)
    selected = rows[best.id]
    assert ws.cell(row=selected, column=3).value == "★ selected"
    assert [ws.cell(row=i, column=3).value for i in rows.values()].count("★ selected") == 1
    for j in range(1, ws.max_column + 1):  # the whole row: yellow, or green where best
        cell = ws.cell(row=selected, column=j)
        assert _fill(cell) in (SELECTED_FILL, BEST_FILL) and cell.font.bold, j
    for instance_id, i in rows.items():
        if instance_id != best.id:
            assert SELECTED_FILL not in {_fill(ws.cell(row=i, column=j))
                                         for j in range(1, ws.max_column + 1)}
    failed = rows[3]
    assert ws.cell(row=failed, column=2).value == "failed"
    assert _font_colour(ws.cell(row=failed, column=2)) == FAILED_FONT
    assert "diverged" in ws.cell(row=failed, column=ws.max_column).value
    assert outcome.exit_code == 1 and outcome.failed == [3]
    assert f"* selected on validation accuracy (clip level): instance {best.id}" in text
    # The note: which level and metric to report, with the value.
    note = _find(ws, "Selected:").value
    test_clip = best.metric("accuracy", "test", "clip")
    assert note.startswith(f"Selected: instance {best.id}, ")
    assert f"Report its test accuracy at clip level: {test_clip:.4f} ± " in note
    # The legend: one swatch per colour meaning.
    legend = _find(ws, "Legend").row
    entries = [(ws.cell(row=r, column=1), ws.cell(row=r, column=2).value)
               for r in range(legend + 1, legend + 7)]
    swatches = {_fill(cell): text for cell, text in entries if _fill(cell)}
    assert set(swatches) == {HEADER_FILL, BEST_FILL, SELECTED_FILL, TIED_FILL}
    assert "selected" in swatches[SELECTED_FILL] and "Best mean" in swatches[BEST_FILL]
    assert "not significantly different" in swatches[TIED_FILL]
    fonts = {_font_colour(cell): text for cell, text in entries if not _fill(cell)}
    assert fonts[FAILED_FONT].startswith("Failed") and "Partial" in fonts[PENDING_FONT]


def test_workbook_warns_single_item_validation(classification_run):
    _, exp_dir, _, _ = classification_run
    ws = load_workbook(exp_dir / "experiment_3.xlsx")["Summary"]
    # 6 items, 3 folds: 4 training-side items, 20% of them -> one validation item per fold.
    fold = json.loads((exp_dir / "instance_1" / "fold_0.json").read_text())
    assert len(fold["items"]["val"]) == 1
    warning = _find(ws, "Warning:")
    assert warning is not None and _font_colour(warning) == FAILED_FONT
    assert "3 of 3 folds have a single validation item" in warning.value
    assert "model selection (best epoch, selected instance) rests on one item per fold" \
        in warning.value


def test_workbook_formula_like_strings_stay_text(classification_run):
    _, exp_dir, _, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx", data_only=False)
    seen = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                    assert cell.data_type == "s", (ws.title, cell.coordinate, cell.value)
                    seen.setdefault(ws.title, set()).add(cell.value)
    assert {"=1+1", "@SUM(A1)"} <= seen["Summary"] and {"=1+1"} <= seen["Metrics"]
    assert "=1+1" in seen["Parameters"]
    folds = " ".join(seen["Folds"])
    assert all(name in folds for name in RENAMED.values())  # item names, first in a list


def test_workbook_statistics_sheet(classification_run):
    config, exp_dir, _, _ = classification_run
    ws = load_workbook(exp_dir / "experiment_3.xlsx")["Statistics"]
    results = ExperimentResults(exp_dir)
    best = Selection.of(results, config).selected
    header = [c.value for c in ws[1]]
    # The store has several segments per clip: selection and tests use clip scores.
    assert header == ["ID", "status", "folds", "val clip accuracy mean",
                      "val 95% CI ± (plain t)", "test clip accuracy mean",
                      "test 95% CI ± (plain t)",
                      f"test diff vs {best.id}", "diff 95% CI low (corrected)",
                      "diff 95% CI high (corrected)", "t (corrected)", "p (corrected)",
                      "p (Holm)", "P(better) rope 0.01", "P(equivalent)", "P(worse)",
                      "verdict"]
    ref = [f.clip_metrics["test"]["accuracy"] for f in best.folds]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2, max_row=5)]
    tested = [v for v in rows if v[11] is not None]
    assert len(tested) >= 2  # a family of comparisons: Holm scales the smallest p
    expected_holm = holm([v[11] for v in tested])
    for values, adjusted in zip(tested, expected_holm):
        assert values[12] == pytest.approx(adjusted) and values[12] >= values[11]
    for row in ws.iter_rows(min_row=2, max_row=5):
        values = [c.value for c in row]
        r = results[values[0]]
        if r.status != "complete":
            assert values[2] == 0
            continue
        test = [f.clip_metrics["test"]["accuracy"] for f in r.folds]
        mean, half = mean_ci(test)
        assert values[5] == pytest.approx(mean) and values[6] == pytest.approx(half)
        if r.id == best.id:
            assert values[16] == "selected"
            assert all(_fill(c) == SELECTED_FILL for c in row)
            continue
        ratio = np.mean([f.n_rows["test"] / f.n_rows["train_original"]
                         for f in r.folds + best.folds])
        result = corrected_resampled_ttest(test, ref, ratio)
        for k, expected in zip(range(7, 12), (result.mean_difference, result.ci_low,
                                              result.ci_high, result.t, result.p)):
            assert values[k] == (pytest.approx(expected) if np.isfinite(expected) else None)
        bayes = correlated_bayesian_ttest(np.array(test), np.array(ref), 0.01, ratio)
        assert values[13:16] == pytest.approx(list(bayes))
        assert sum(values[13:16]) == pytest.approx(1.0)
        assert ("not significantly" in values[16]) == (result.p >= 0.05)
        assert (_fill(row[16]) == TIED_FILL) == (result.p >= 0.05)
    note = _find(ws, "Test accuracy of each instance").value
    assert "same corrected variance" in note and "plain t" in note


def test_workbook_folds_and_parameters_sheets(classification_run):
    _, exp_dir, _, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx")
    folds = [r for r in wb["Folds"].iter_rows(min_row=2, values_only=True)
             if isinstance(r[0], int)]  # notes under the table aside
    assert len(folds) == 3 * 3 + 1  # three complete instances, one failed fold
    header = [c.value for c in wb["Folds"][1]]
    first = json.loads((exp_dir / "instance_1" / "fold_0.json").read_text())
    row = next(r for r in folds if r[0] == 1 and r[1] == 0)
    assert row[3] == ", ".join(first["items"]["test"])
    assert row[header.index("test segment accuracy")] == pytest.approx(
        first["metrics"]["test"]["accuracy"])
    assert row[header.index("test clip accuracy")] == pytest.approx(
        first["clip_metrics"]["test"]["accuracy"])
    assert row[header.index("best epoch")] == first["best_epoch"]
    assert row[header.index("train rows (original)")] == first["n_rows"]["train_original"]
    params = wb["Parameters"]
    names = [c.value for c in params[1]]
    assert {"learning_rate", "batch_size", "architecture"} <= set(names)
    assert len(list(params.iter_rows(min_row=2))) == 4


def test_instance_plots_written(classification_run):
    _, exp_dir, _, _ = classification_run
    plots = exp_dir / "instance_1" / "plots"
    for name in ("learning_curves.png", "confusion_matrix.png", "per_class_f1.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"


def test_workbook_embeds_the_plots_selected_instance_first(classification_run, tmp_path,
                                                           monkeypatch):
    import io

    from PIL import Image

    from xval.report.workbook import plots as report

    _, exp_dir, _, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx")
    sheet = wb["Plots"]
    best = Selection.of(ExperimentResults(exp_dir), classification_run[0]).selected
    assert sheet["A1"].value.startswith(f"instance {best.id} ★ selected")
    pngs = sorted(exp_dir.glob("instance_*/plots/*.png"))
    assert 0 < len(pngs) <= report.MAX_EMBEDDED_PLOTS
    assert len(sheet._images) == len(pngs)
    embedded = []
    for image in sheet._images:
        embedded.append(image._data())  # readable once
        with Image.open(io.BytesIO(embedded[-1])) as png:  # a real, readable image
            assert png.format == "PNG" and png.mode == "P"  # 256 colours
            shown = report.plot_display_size(png.width, png.height)
        assert (image.anchor.ext.width, image.anchor.ext.height) == \
            (shown[0] * 9525, shown[1] * 9525)  # EMU
    # The engine writes its plots as 256-colour PNGs: the workbook embeds the files as
    # they are, with no second conversion.
    assert sorted(embedded) == sorted(p.read_bytes() for p in pngs)
    links = {c.hyperlink.target for row in sheet.iter_rows() for c in row if c.hyperlink}
    assert links == {f"{p.parent.parent.name}/plots/{p.name}" for p in pngs}
    # Past the cap, the remaining plots are named instead of embedded; so is a broken one.
    copy = tmp_path / exp_dir.name
    shutil.copytree(exp_dir, copy)
    broken = sorted(copy.glob("instance_*/plots"))[-1] / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    # A plot cut short (its header reads, its end is missing) is unreadable too.
    cut = broken.with_name("zz_cut.png")
    cut.write_bytes(pngs[0].read_bytes()[:-20])
    monkeypatch.setattr(report, "MAX_EMBEDDED_PLOTS", 2)
    capped = load_workbook(build_workbook(copy, path=tmp_path / "capped.xlsx"))["Plots"]
    assert len(capped._images) == 2
    note = _find(capped, "Not embedded (at most 2 plots): ")
    assert note is not None and note.value.count(".png") == len(pngs) - 2 + 2
    monkeypatch.setattr(report, "MAX_EMBEDDED_PLOTS", 100)
    sheet = load_workbook(build_workbook(copy, path=tmp_path / "all.xlsx"))["Plots"]
    assert len(sheet._images) == len(pngs)
    note = _find(sheet, "Not embedded (unreadable PNG): ")
    folder = f"{broken.parent.parent.name}/plots"
    assert note.value.endswith(f"{folder}/broken.png, {folder}/zz_cut.png")


def test_a_sheet_registered_outside_the_package_is_built(classification_run, tmp_path):
    """Where to add a workbook sheet: one module + `@register_sheet` (here, this test)."""
    from xval.report.workbook import register_sheet, registered_sheets, unregister_sheet

    config, exp_dir, _, _ = classification_run

    @register_sheet("Seconds", order=45)  # between Folds (40) and Parameters (50)
    def seconds(sheet, context):
        sheet.append(["ID", "status", "seconds", "selected"])
        for r in context.results:
            sheet.append([r.id, r.status, r.summary.seconds, r.id == context.selected_id])

    try:
        assert register_sheet("Seconds", order=45)(seconds) is seconds  # the same: no-op
        with pytest.raises(ValueError, match="'Seconds' is already registered"):
            register_sheet("Seconds", order=1)(lambda sheet, context: None)
        with pytest.raises(ValueError, match="expected 1 to 31 characters"):
            register_sheet("a/b", order=1)
        book = load_workbook(build_workbook(exp_dir, config=config,
                                            path=tmp_path / "toy.xlsx"))
    finally:
        unregister_sheet("Seconds")
    assert book.sheetnames == ["Summary", "Metrics", "Statistics", "Folds", "Seconds",
                               "Parameters", "Data", "Plots"]
    rows = list(book["Seconds"].iter_rows(values_only=True))
    results = ExperimentResults(exp_dir)
    best = Selection.of(results, classification_run[0]).selected
    assert rows[0] == ("ID", "status", "seconds", "selected")
    assert rows[1:] == [(r.id, r.status, pytest.approx(r.summary.seconds), r.id == best.id)
                        for r in results]
    assert "Seconds" not in [spec.name for spec in registered_sheets()]
    with pytest.raises(ValueError, match=r"sheet='Seconds': expected one of Data, Encoders, Folds, "
                                         r".*Summary \(the workbook sheets registered in "
                                         r"xval.report.workbook\)"):
        unregister_sheet("Seconds")


def test_plot_display_size_half_of_wide_plots_capped():
    from xval.report.workbook import plot_display_size

    assert plot_display_size(950, 850) == (480, 429)  # at least 480 px wide
    assert plot_display_size(1600, 800) == (800, 400)  # half of a wide one
    assert plot_display_size(3550, 3000) == (1200, 1014)  # at most 1200 px wide
    assert plot_display_size(300, 20000) == (18, 1200)  # and 1200 px high


def test_per_fold_f1_matches_scikit_learn(classification_run):
    import pandas as pd
    from sklearn.metrics import f1_score

    from xval.report.figures import per_fold_f1

    _, exp_dir, _, _ = classification_run
    instance = ExperimentResults(exp_dir)[1]
    f1 = per_fold_f1(list(instance.folds))
    classes = instance.folds[0].classes
    assert f1.shape == (3, len(classes))
    for fold, row in zip(instance.folds, f1, strict=True):
        table = pd.read_csv(exp_dir / "instance_1" / f"predictions_fold_{fold.fold}.csv")
        expected = f1_score(table["label"], table["predicted"], labels=classes, average=None,
                            zero_division=0)
        np.testing.assert_allclose(row, expected)


def test_confusion_figure_shows_counts_and_proportions():
    from xval.report.figures import confusion_figure

    fig = confusion_figure([[3, 1], [0, 4]], ["cat", "dog"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3\n0.75", "1\n0.25", "0\n0.00", "4\n1.00"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["cat (n=4)", "dog (n=4)"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_fold_band_over_unequal_folds():
    from xval.report.figures import fold_band

    epochs, mean, low, high, n = fold_band([[1.0, 0.5, 0.25], [3.0, 1.5], [2.0, None]])
    assert epochs.tolist() == [1, 2, 3] and n.tolist() == [3, 2, 1]
    np.testing.assert_allclose(mean, [2.0, 1.0, 0.25])
    np.testing.assert_allclose(low, [1.0, 0.5, 0.25])
    np.testing.assert_allclose(high, [3.0, 1.5, 0.25])


def test_workbook_rebuild_racing_another_runner(classification_run, tmp_path):
    config, exp_dir, _, _ = classification_run
    code = ("import sys\nfrom xval.report import build_workbook\n"
            "for _ in range(6):\n    build_workbook(sys.argv[1])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(exp_dir)]) for _ in range(3)]
    for _ in range(6):
        build_workbook(exp_dir, config=config)
        wb = load_workbook(exp_dir / "experiment_3.xlsx")  # never half-written
        assert wb["Summary"].cell(row=2, column=1).value == "ID"
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    assert not list(exp_dir.glob(".experiment_3.xlsx.*"))  # no temporary files left


def test_report_command_formats(classification_run):
    config, exp_dir, _, _ = classification_run
    run = [sys.executable, "-m", "xval", "report", str(exp_dir), "--config", str(config.path)]
    text = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert text.returncode == 0 and "Rebuilt" in text.stdout and "failed" in text.stdout
    csv = subprocess.run(run + ["--format", "csv"], capture_output=True, text=True, cwd=ROOT)
    assert csv.stdout.splitlines()[0] == ("selected,id,status,val clip accuracy,"
                                          "test clip accuracy,test segment accuracy,comment")
    md = subprocess.run(run + ["--format", "markdown", "--no-workbook"], capture_output=True,
                        text=True, cwd=ROOT)
    assert md.stdout.startswith("| ") and "|---|" in md.stdout
    assert terminal_table(exp_dir, config=config, fmt="csv") == csv.stdout.strip()


def test_workbook_opens_in_libreoffice(classification_run, tmp_path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    _, exp_dir, _, _ = classification_run
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    # csv: comma-separated, double quotes, UTF-8 (LibreOffice's filter options 44,34,76).
    for target in ("pdf", "csv:Text - txt - csv (StarCalc):44,34,76"):
        proc = subprocess.run([soffice, "--headless", "--convert-to", target, "--outdir",
                               str(tmp_path), str(exp_dir / "experiment_3.xlsx")],
                              capture_output=True, text=True, timeout=180, env=env)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "experiment_3.pdf").read_bytes()[:4] == b"%PDF"
    # The Summary sheet as LibreOffice computes it: formula-like text stays text.
    import csv

    rows = list(csv.reader((tmp_path / "experiment_3.csv").read_text(encoding="utf-8")
                           .splitlines()))
    assert rows[1][:5] == ["ID", "status", "selected", "comment_1", "comment_2"]
    by_id = {row[0]: row for row in rows[2:6]}
    assert by_id["4"][3:5] == ["=1+1", "@SUM(A1)"]  # not evaluated to 2 or an error
    best = Selection.of(ExperimentResults(exp_dir), classification_run[0]).selected
    assert by_id[str(best.id)][2] == "★ selected"
    assert any(row and row[0].startswith(f"Selected: instance {best.id}") for row in rows)


def test_regression_workbook_and_plot(tmp_path):
    from tests.conftest import write_config
    from xval.config.loader import load_config

    # val_fraction 0.5: two validation items per fold, so no single-item warning.
    config = load_config(write_config(tmp_path, folds={"val_fraction": "0.5"},
                                      report={"plots": True}))
    tiny_store(config.data_dir, "reg", task_type="regression")
    exp = Experiment(description="reg", dataset="reg", number=1, num_folds=3,
                     task_type="regression", config=str(config.path),
                     parameters={"epochs": 2, "batch_size": 16, "save_model_metric": "val_rmse"})
    exp[1] = BASE + ['comment_1="a"', 'comment_2="b"']
    exp[2] = BASE + ['comment_1="c"', 'comment_2="d"', "learning_rate=0.01"]
    exp.run(config=config, output=Output(out=lambda *a: None))
    exp_dir = config.results_dir / "reg" / "experiment_1"
    ws = load_workbook(exp_dir / "experiment_1.xlsx")["Summary"]
    header = [ws.cell(row=2, column=j).value for j in range(1, ws.max_column + 1)]
    assert [h for h in header if h.endswith(" mean")] == [
        "clip RMSE mean", "segment RMSE mean", "segment MAE mean", "segment R² mean"] * 2
    results = ExperimentResults(exp_dir)
    leader = results.best("rmse", "val", level="auto")  # ranked at clip level
    assert leader.id == min(results, key=lambda r: r.metric("rmse", "val", "clip")).id
    selection = Selection.of(results, config)  # the leader, or the order among its ties
    best = selection.selected
    assert leader.id in (best.id, *(r.id for r in selection.tied))
    assert ws.cell(row=2 + best.id, column=3).value == "★ selected"
    cols = _columns(ws, groups=True)
    rmse = ws.cell(row=2 + best.id, column=cols[("test", "segment RMSE mean")])
    assert rmse.value == pytest.approx(best.metric("rmse", "test"))
    assert (_fill(rmse) == BEST_FILL) == (best.metric("rmse", "test") == min(
        r.metric("rmse", "test") for r in results))
    clip_rmse = best.metric("rmse", "test", "clip")
    assert f"Report its test rmse at clip level: {clip_rmse:.4f}" in _find(ws, "Selected:").value
    assert _find(ws, "Warning:") is None
    assert (exp_dir / "instance_1" / "plots" / "predicted_vs_true.png").exists()


def test_report_note_segment_level_without_clips(tmp_path):
    folder = tmp_path / "experiment_1" / "instance_1"
    folder.mkdir(parents=True)
    # Two folds whose accuracies have mean 0.5 and std 0.1; the summary is computed from them.
    for i, value in enumerate((0.5 - 0.1 / 2 ** 0.5, 0.5 + 0.1 / 2 ** 0.5)):
        fold = {"instance": 1, "fold": i, "status": "ok",
                "items": {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]},
                "metrics": {s: {"accuracy": value} for s in ("train", "val", "test")}}
        (folder / f"fold_{i}.json").write_text(record_text(fold))
    write_manifest(tmp_path / "experiment_1", 2)
    results = ExperimentResults(tmp_path / "experiment_1")
    assert "Report its test accuracy at segment level: 0.5000 ± 0.1000 (mean ± std over 2 " \
        "folds)" in report_note(results)


def _clip_results(tmp_path):
    """Two instances: 1 is better per segment, 2 is better per clip (validation and test)."""
    for instance, (segment, clip) in {1: (0.8, 0.85), 2: (0.7, 0.95)}.items():
        folder = tmp_path / "experiment_1" / f"instance_{instance}"
        folder.mkdir(parents=True)
        for i, delta in enumerate((-0.01, 0.01)):
            fold = {"instance": instance, "fold": i, "status": "ok",
                    "items": {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]},
                    "metrics": {s: {"accuracy": segment + delta} for s in ("train", "val",
                                                                           "test")},
                    "clip_metrics": {s: {"accuracy": clip + delta} for s in ("train", "val",
                                                                             "test")}}
            (folder / f"fold_{i}.json").write_text(record_text(fold))
    write_manifest(tmp_path / "experiment_1", 2)
    return ExperimentResults(tmp_path / "experiment_1")


def test_best_auto_level_selects_on_clips_when_there_are_clips(tmp_path):
    results = _clip_results(tmp_path)
    assert results.best("accuracy", "val").id == 1  # segment level, as asked
    assert results.best("accuracy", "val", level="auto").id == 2
    assert results.best("accuracy", "val", level="clip").id == 2


def test_report_note_selects_and_reports_at_clip_level(tmp_path):
    note = report_note(_clip_results(tmp_path))
    assert note.startswith("Selected: instance 2, best validation accuracy (0.9500, clip level)")
    assert "Report its test accuracy at clip level: 0.9500 ± 0.0141 (mean ± std over 2 " \
        "folds), segment level beside it: 0.7000 ± 0.0141." in note


def test_report_one_row_per_clip_instance_is_compared_at_clip_level(tmp_path):
    """Instance 1 cuts files into segments (segment 0.92, clip 0.95); instance 3 reads an
    embedding store, one row per clip (0.93, no clip level apart): its score is a clip
    score, so the two are compared per clip (1 wins) and no note says 3 lacks clips."""
    splits = ("train", "val", "test")
    for instance, (segment, clip) in {1: (0.92, 0.95), 3: (0.93, None)}.items():
        folder = tmp_path / "experiment_1" / f"instance_{instance}"
        folder.mkdir(parents=True)
        for i, delta in enumerate((-0.01, 0.01)):
            fold = {"instance": instance, "fold": i, "status": "ok",
                    "task_type": "classification", "n_rows": {"train": 20, "test": 10},
                    "items": {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]},
                    "metrics": {s: {"accuracy": segment + delta} for s in splits}}
            if clip is not None:
                fold["clip_metrics"] = {s: {"accuracy": clip + delta} for s in splits}
            (folder / f"fold_{i}.json").write_text(record_text(fold))
    write_manifest(tmp_path / "experiment_1", 2)
    results = ExperimentResults(tmp_path / "experiment_1")
    assert results[3].metric("accuracy", "val", "clip") == pytest.approx(0.93)
    assert results.without_clip_level("accuracy") == []
    assert results.auto_level("accuracy") == "clip"
    assert results.best("accuracy", "val", level="auto").id == 1
    note = report_note(results)
    assert "no clip-level scores" not in note and "rerun" not in note
    assert "Instance(s) 3 have one row per clip (an embedding store): their " \
        "segment scores are their clip scores." in note
    ws = load_workbook(build_workbook(results, path=tmp_path / "w.xlsx"))["Summary"]
    header = [c.value for c in ws[2]]
    row = next(r for r in ws.iter_rows(min_row=3, values_only=True) if r[0] == 3)
    assert row[header.index("clip accuracy mean")] == pytest.approx(0.93)


def _wide_results(tmp_path):
    """Four instances whose parameters differ, 5 folds, segment and clip levels (instance 2
    one row per clip): a Summary of 22 columns, as a real experiment's."""
    exp, splits = tmp_path / "experiment_1", ("train", "val", "test")
    for inst, (seg, clip) in {1: (0.61, 0.66), 2: (0.55, None), 3: (0.58, 0.63),
                              4: (0.52, 0.57)}.items():
        folder = exp / f"instance_{inst}"
        folder.mkdir(parents=True)
        params = {"architecture": "embedding_mlp" if inst == 2 else "example_cnn",
                  "learning_rate": 0.001 * inst, "dropout": 0.1 * inst,
                  "comment_1": f"instance {inst} first comment"}
        (folder / "params.json").write_text(params_text(inst, params,
                                                        task_type="classification"))
        for i in range(5):
            fold = {"instance": inst, "fold": i, "status": "ok", "task_type": "classification",
                    "n_rows": {"train": 200, "test": 50},
                    "params_hash": json.loads(params_text(inst, params))["hash"],
                    "items": {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]},
                    "metrics": {s: {"accuracy": seg + i / 100, "f1": seg - 0.02}
                                for s in splits}}
            if clip is not None:
                fold["clip_metrics"] = {s: {"accuracy": clip + i / 100, "f1": clip - 0.03}
                                        for s in splits}
            (folder / f"fold_{i}.json").write_text(record_text(fold))
    write_manifest(exp, 5)
    return build_workbook(ExperimentResults(exp), path=tmp_path / "wide.xlsx")


def test_workbook_summary_headers_fit_and_print_one_page_wide(tmp_path):
    ws = load_workbook(_wide_results(tmp_path))["Summary"]
    header = [c.value for c in ws[2]]
    assert len(header) == 22 and "segment macro F1 mean" in header
    # Three wrapped lines (`clip` / `accuracy` / `mean`) need three lines of height.
    assert ws.row_dimensions[2].height >= 45
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.print_title_rows == "$1:$2"
    # The note is wrapped across the table's columns, not one cell running off the page.
    note = _find(ws, "Selected:")
    assert note.alignment.wrap_text and f"A{note.row}:V{note.row}" in \
        {str(r) for r in ws.merged_cells.ranges}
    assert ws.row_dimensions[note.row].height >= 30


def test_workbook_summary_prints_on_one_page_width_in_libreoffice(tmp_path):
    office, to_text = shutil.which("soffice"), shutil.which("pdftotext")
    if office is None or to_text is None:
        pytest.skip("LibreOffice (soffice) or pdftotext not installed: apt-get install -y "
                    "libreoffice-calc-nogui poppler-utils")
    book = _wide_results(tmp_path)
    subprocess.run([office, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path),
                    str(book)], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "HOME": str(tmp_path)})
    page = subprocess.run([to_text, "-f", "1", "-l", "1", str(tmp_path / "wide.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    lines = [line.strip() for line in page.splitlines()]
    # Page 1 holds every column (the test metrics landed on page 2 before) and the whole
    # note (it ran off the page's right edge).
    for shown in ("validation", "test", "learning_rate", "folds", "message"):
        assert shown in lines, (shown, lines[:80])
    assert lines.count("clip") == 4  # clip accuracy mean and std, validation and test
    assert "their clip scores." in " ".join(page.split())


def test_detection_windows_never_stand_in_for_recordings(tmp_path):
    """Detection instance 1 was scored before recordings were (windows only, the better
    window score); instance 2 has both. A window score is not a recording score: instance 1
    has no clip level, and the instances are compared on windows, with a note saying so."""
    def fold(i, window, recording=None, instance=1):
        out = {"instance": instance, "fold": i, "status": "ok", "task_type": "detection",
               "format": 2,
               "items": {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]},
               "metrics": {s: {"event_f1": window} for s in ("train", "val", "test")}}
        if recording is not None:
            out["clip_metrics"] = {s: {"event_f1": recording} for s in ("train", "val",
                                                                          "test")}
        return out

    for instance, scores in {1: [(0.96, None)] * 2, 2: [(0.9, 0.76)] * 2}.items():
        folder = tmp_path / "experiment_1" / f"instance_{instance}"
        folder.mkdir(parents=True)
        for i, (window, recording) in enumerate(scores):
            (folder / f"fold_{i}.json").write_text(record_text(fold(i, window, recording,
                                                                   instance)))
    write_manifest(tmp_path / "experiment_1", 2)
    results = ExperimentResults(tmp_path / "experiment_1")
    assert results[1].metric("event_f1", "val", "clip") is None
    assert results.auto_level("event_f1") == "segment" == selection_level(results, "event_f1")
    assert results.best("event_f1", "val", level="auto").id == 1
    assert results.without_clip_level("event_f1") == [1]
    assert "Compared at window level: instance(s) 1 have no recording-level scores" in \
        report_note(results)
    # Once every instance has recording scores, they are the headline, named as such.
    for i in range(2):
        path = tmp_path / "experiment_1" / "instance_1" / f"fold_{i}.json"
        path.write_text(record_text(fold(i, 0.96, 0.7)))
    table = terminal_table(ExperimentResults(tmp_path / "experiment_1"))
    assert table.splitlines()[0].split()[1:] == [
        "status", "val", "recording", "event_f1", "test", "recording", "event_f1", "test",
        "window", "event_f1", "comment"]
    assert "* selected on validation event_f1 (recording level): instance 2" in table
    # An instance with folds of both kinds gets no clip level (not a mix of the two).
    folds = [FoldResult.from_dict(fold(0, 0.5)), FoldResult.from_dict(fold(1, 0.6, 0.9))]
    mixed = InstanceSummary.from_folds(folds, 2, clip_falls_back=False)  # detection's
    assert "clip" not in mixed.metrics and "segment" in mixed.metrics
    # Classification keeps its fallback: one segment per clip is the same score.
    plain = InstanceSummary.from_folds(folds, 2, clip_falls_back=True)
    assert plain.metric("event_f1", "val", "clip") == pytest.approx(0.7)
    for i in range(2):  # as the report reads them: the task recorded in the fold files
        path = tmp_path / "experiment_1" / "instance_2" / f"fold_{i}.json"
        path.write_text(record_text({**fold(i, 0.5 + i / 10, 0.9 if i else None, 2),
                                    "task_type": "classification"}))
    reread = ExperimentResults(tmp_path / "experiment_1")[2]
    assert reread.metric("event_f1", "val", "clip") == pytest.approx(0.7)


def test_terminal_table_clip_score_first_and_std_labelled(tmp_path):
    table = terminal_table(_clip_results(tmp_path))
    lines = table.splitlines()
    assert lines[0].split() == ["id", "status", "val", "clip", "accuracy", "test", "clip",
                                "accuracy", "test", "segment", "accuracy", "comment"]
    selected = next(line for line in lines if line.startswith("*"))
    assert selected.split()[1:6] == ["2", "complete", "0.9500", "±", "0.0141"]
    assert selected.split()[9:12] == ["0.7000", "±", "0.0141"]
    footer = lines.index("* selected on validation accuracy (clip level): instance 2; report "
                         "its test clip score 0.9500. ± = mean ± std over folds.")
    assert lines[footer + 1].startswith("Selection: instance 2 is ahead on validation clip "
                                        "accuracy")


def test_terminal_table_without_clips_labels_std(tmp_path):
    folder = tmp_path / "experiment_1" / "instance_1"
    folder.mkdir(parents=True)
    for i, value in enumerate((0.4, 0.6)):
        fold = {"instance": 1, "fold": i, "status": "ok",
                "items": {"train": ["a"], "val": ["c"], "test": ["e"]},
                "metrics": {s: {"accuracy": value} for s in ("train", "val", "test")}}
        (folder / f"fold_{i}.json").write_text(record_text(fold))
    table = terminal_table(ExperimentResults(tmp_path / "experiment_1"), fmt="markdown")
    assert table.splitlines()[0] == \
        "|  | id | status | val segment accuracy | test segment accuracy | comment |"
    assert table.endswith("report its test segment score 0.5000. ± = mean ± std over folds.")


def _embedding_results(tmp_path):
    """Instance 1: the network only (accuracy 0.8). Instance 2: network 0.7, and an
    embedding classifier at 0.9 (embedding_accuracy, as xval.embeddings records it)."""
    for instance, (network, embedding) in {1: (0.8, None), 2: (0.7, 0.9)}.items():
        folder = tmp_path / "experiment_1" / f"instance_{instance}"
        folder.mkdir(parents=True)
        for i, delta in enumerate((-0.01, 0.01)):
            block = {"accuracy": network + delta, "loss": 1.0}
            if embedding is not None:
                block.update({"embedding_accuracy": embedding + delta, "embedding_loss": 0.3})
            fold = {"instance": instance, "fold": i, "status": "ok",
                    "task_type": "classification",
                    "items": {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]},
                    "metrics": {s: dict(block) for s in ("train", "val", "test")}}
            (folder / f"fold_{i}.json").write_text(record_text(fold))
    write_manifest(tmp_path / "experiment_1", 2)
    return ExperimentResults(tmp_path / "experiment_1")


def test_embedding_metrics_shown_and_selectable(tmp_path, config_path):
    from tests.conftest import write_config
    from xval.config.loader import load_config

    results = _embedding_results(tmp_path)
    # Default selection (accuracy): the embedding classifier's test score sits beside it.
    lines = terminal_table(results).splitlines()
    assert lines[0].split()[-4:] == ["test", "segment", "embedding_accuracy", "comment"]
    assert lines[2].split()[:3] == ["*", "1", "complete"]
    assert "0.9000 ± 0.0141" in lines[3] and "0.9000" not in lines[2]
    # Selected on the embedding classifier: instance 2; the direction is max, loss min.
    assert (metric_direction("embedding_accuracy"), metric_direction("embedding_loss")) == \
        ("max", "min")
    config = load_config(write_config(tmp_path / "cfg",
                                      report={"selection_metric": "embedding_accuracy"}))
    table = terminal_table(results, config=config)
    assert table.splitlines()[0].split()[2:5] == ["val", "segment", "embedding_accuracy"]
    assert "instance 2; report its test segment score 0.9000" in table
    path = build_workbook(results.path, config=config)
    wb = load_workbook(path)
    summary = [c.value for c in wb["Summary"][2]]
    assert "segment embedding_accuracy mean" in summary
    row = _rows_by_id(wb["Summary"])[2]
    assert wb["Summary"].cell(row=row, column=summary.index("selected") + 1).value == \
        "★ selected"
    # The Metrics sheet has every instance's metrics, not only the first instance's.
    assert "embedding_accuracy mean" in [c.value for c in wb["Metrics"][2]]


def test_selection_metric_the_task_does_not_record_is_refused_before_training(tmp_path):
    from tests.conftest import write_config
    from xval import Experiment
    from xval.config.loader import load_config
    from xval.config.selection import check_selection_metric

    def config(metric):
        return load_config(write_config(tmp_path / metric, report={"selection_metric": metric}))

    assert check_selection_metric(config("embedding_f1"), "classification") == "embedding_f1"
    assert check_selection_metric(config("embedding_accuracy"), "representation")
    with pytest.raises(ConfigurationError, match="selection_metric = 'embedding_accuracy' is "
                       "not recorded by a 'regression' experiment.*rmse"):
        check_selection_metric(config("embedding_accuracy"), "regression")
    bad = config("rmse")
    tiny_store(bad.data_dir)
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=3,
                     config=str(tmp_path / "rmse" / "config.ini"))
    exp[1] = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
              "comment_2": "", "epochs": 1}
    with pytest.raises(ConfigurationError, match="selection_metric = 'rmse' is not recorded "
                       "by a 'classification' experiment.*accuracy"):
        exp.run(config=bad, output=Output(out=lambda *a: None))
    assert not (bad.results_dir / "tiny").exists()
    # An embedding classifier's metric, but no instance has a classifier.
    embedding = config("embedding_accuracy")
    tiny_store(embedding.data_dir)
    exp.config_path = tmp_path / "embedding_accuracy" / "config.ini"
    with pytest.raises(ConfigurationError, match="selection_metric = 'embedding_accuracy' is "
                       "an embedding classifier's metric, but no instance sets "
                       "embedding_classifier"):
        exp.run(config=embedding, output=Output(out=lambda *a: None))
    assert not (embedding.results_dir / "tiny").exists()
    exp[2] = {**exp.instances[1], "embedding_classifier": "svm"}
    assert exp.run(config=embedding, dry_run=True, output=Output(out=lambda *a: None)).exit_code == 0


def test_corrected_resampled_ttest_hand_computed():
    a = np.array([0.80, 0.82, 0.79, 0.85, 0.81])
    b = np.array([0.78, 0.80, 0.80, 0.80, 0.79])
    # d = [0.02, 0.02, -0.01, 0.05, 0.02]: mean 0.02, var (ddof 1) = 0.0018 / 4 = 0.00045;
    # corrected variance (1/5 + 0.25) * 0.00045 = 0.0002025, se = 0.01423025;
    # t = 0.02 / se = 1.405457; t(4, 0.975) = 2.776445, half-width 0.039509;
    # p = 2 * (1 - F_t4(1.405457)) = 0.232595.
    result = corrected_resampled_ttest(a, b, 0.25)
    assert result.mean_difference == pytest.approx(0.02)
    assert result.t == pytest.approx(1.405457, abs=1e-6)
    assert result.p == pytest.approx(0.232595, abs=1e-6)
    assert result.ci_low == pytest.approx(0.02 - 0.039509, abs=1e-6)
    assert result.ci_high == pytest.approx(0.02 + 0.039509, abs=1e-6)
    t, p, *_ = result
    plain_t = 0.02 / np.sqrt(0.00045 / 5)
    assert abs(t) < abs(plain_t)  # the correction widens the variance
    same = corrected_resampled_ttest(a, a, 0.25)
    assert (same.t, same.p, same.ci_low, same.ci_high) == (0.0, 1.0, 0.0, 0.0)
    assert np.isnan(corrected_resampled_ttest([1.0], [0.5], 0.2).t)
    ninety = corrected_resampled_ttest(a, b, 0.25, confidence=0.9)
    assert ninety.ci_high - ninety.ci_low < result.ci_high - result.ci_low
    with pytest.raises(ValueError, match="a has 5 scores but b has 4"):
        corrected_resampled_ttest(a, b[:4], 0.25)


def test_fold_test_train_ratio_counts_original_rows():
    def fold(**fields):
        return FoldResult.from_dict({"instance": 1, "fold": 0, "format": 2, **fields})

    new = fold(status="ok", n_rows={"train": 400, "train_original": 100, "val": 20,
                                    "test": 50})
    old = fold(status="ok", n_rows={"train": 200, "val": 20, "test": 50})
    failed = fold(status="failed")
    # --augment 3 quadruples "train"; the correction uses the 100 original rows.
    assert fold_test_train_ratio([new]) == pytest.approx(0.5)
    assert fold_test_train_ratio([old]) == pytest.approx(0.25)  # files without the field
    assert fold_test_train_ratio([new, old, failed]) == pytest.approx(0.375)
    assert np.isnan(fold_test_train_ratio([failed]))


def test_report_command_refuses_a_folder_that_is_not_an_experiment(tmp_path):
    store = tiny_store(tmp_path / "data")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for folder in (store.path, tmp_path / "missing"):
        proc = subprocess.run([sys.executable, "-m", "xval", "report", str(folder)],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        assert str(folder) in lines[0] and "results/<dataset>/experiment_<N>" in lines[0]
    assert "not an experiment folder" in proc.stderr or "is not a folder" in proc.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(ConfigurationError, match="is not an experiment folder"):
        build_workbook(store.path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_mean_ci():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302652729 * 1 / np.sqrt(3))
    assert mean_ci([1.0]) == (1.0, None)


def _fold_files(instance, folds, failed=()):
    instance.mkdir(parents=True)
    k = int(instance.name.split("_")[1])
    (instance / "params.json").write_text(
        params_text(k, {"comment_1": instance.parent.name}))
    for i, item, accuracy in folds:
        (instance / f"fold_{i}.json").write_text(record_text({
            "instance": k, "fold": i, "status": "failed" if i in failed else "ok",
            "items": {"train": ["a", "b"], "val": ["c"], "test": [item]},
            "n_rows": {"train": 100, "train_original": 100, "val": 25, "test": 25},
            "metrics": {"test": {"accuracy": accuracy, "recall": accuracy}}}))


def test_options_report_pairs_folds_by_their_test_items(tmp_path, capsys):
    from benchmarks import training_options

    base = tmp_path / "experiment_3" / "instance_12"
    _fold_files(base, [(0, "s1", 0.50), (1, "s2", 0.60), (2, "s3", 0.90)])
    # Another experiment on the same items, whose splitter ordered the folds differently.
    _fold_files(tmp_path / "experiment_8" / "instance_1",
                [(0, "s2", 0.72), (1, "s3", 0.98), (2, "s1", 0.60)])
    training_options.main([str(tmp_path / "experiment_8"), "--baseline-dir", str(base)])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("1 "))
    # Paired by test item the differences are 0.10, 0.12, 0.08; by fold index they would be
    # 0.22, 0.38, -0.30, with the same mean but a p-value near 0.7.
    expected = corrected_resampled_ttest([0.60, 0.72, 0.98], [0.50, 0.60, 0.90], 0.25)
    assert expected.p < 0.1
    accuracy = [f"{expected.mean_difference:+.3f}", f"{expected.p:.3f}"]
    assert row.split()[-4:] == accuracy * 2  # accuracy, then UAR (equal here)
    assert row.split()[2:4] == ["3", "3"]  # folds, paired
    with pytest.raises(SystemExit):
        training_options.main([str(tmp_path / "experiment_8"), "--baseline-dir",
                               str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        training_options.main([str(tmp_path / "experiment_8"), "--baseline-dir",
                               str(tmp_path / "experiment_3")])
    assert "is an experiment folder; pass one of its instance_<k> folders" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        training_options.main([str(tmp_path / "missing"), "--baseline-dir", str(base)])
    assert "has no instance_<k> folders" in capsys.readouterr().err


def test_options_report_keeps_repeats_apart_when_a_fold_failed(tmp_path, capsys):
    from benchmarks import training_options

    # Two repeats of 3 folds: every item is tested twice. Fold 0 of the instance failed;
    # its fold 3 (the second test of s1) must pair with the baseline's fold 3, not fold 0.
    tests = ["s1", "s2", "s3", "s1", "s2", "s3"]
    base = [0.50, 0.60, 0.70, 0.90, 0.55, 0.65]
    mine = [0.00, 0.70, 0.78, 1.00, 0.66, 0.74]
    for name, scores, failed in (("experiment_4", base, ()), ("experiment_9", mine, (0,))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "folds.json").write_text(manifest_text(
            [{"train": ["a"], "val": ["b"], "test": [t]} for t in tests]))
        _fold_files(tmp_path / name / "instance_1",
                    list(zip(range(6), tests, scores)), failed)
    training_options.main([str(tmp_path / "experiment_9"), "--baseline-dir",
                           str(tmp_path / "experiment_4" / "instance_1")])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("1 "))
    expected = corrected_resampled_ttest(mine[1:], base[1:], 0.25)
    assert row.split()[2:4] == ["5", "5"]  # folds, paired
    assert row.split()[-4:] == [f"{expected.mean_difference:+.3f}", f"{expected.p:.3f}"] * 2


def test_best_epoch_in_the_last_tenth_of_epochs():
    def fold(best, epochs, status=Status.OK):
        return FoldResult(instance=1, fold=0, status=status, best_epoch=best, epochs=epochs)

    assert not fold(54, 60).late_best_epoch and fold(55, 60).late_best_epoch
    assert fold(5, 5).late_best_epoch and not fold(4, 5).late_best_epoch
    assert not fold(5, None).late_best_epoch  # a record written before epochs was kept
    assert not fold(5, 5, Status.FAILED).late_best_epoch
    assert fold(4, 5).late_epoch_note() == ""
    assert fold(58, 60).late_epoch_note().startswith(
        "instance 1 fold 0: best epoch 58 of 60 is in the last 10% of epochs")


def test_late_best_epoch_said_in_the_terminal_and_marked_in_the_workbook(classification_run):
    from xval.report.workbook.folds import BEST_EPOCH_COLUMN, LATE_NOTE

    _, exp_dir, _, lines = classification_run
    records = [FoldResult.from_dict(json.loads(p.read_text()))
               for p in sorted(exp_dir.glob("instance_*/fold_*.json"))]
    ok = {(r.instance, r.fold): r for r in records if r.ok}
    assert {r.epochs for r in ok.values()} == {3}
    late = {key for key, r in ok.items() if r.best_epoch == 3}
    assert late, "a tiny model trained 3 epochs peaks at its last epoch in some fold"
    assert late == {key for key, r in ok.items() if r.late_best_epoch}
    sheet = load_workbook(exp_dir / "experiment_3.xlsx")["Folds"]
    seen = set()
    for i in range(2, sheet.max_row + 1):
        key = (sheet.cell(row=i, column=1).value, sheet.cell(row=i, column=2).value)
        if key in ok:
            seen.add(key)
            assert (_fill(sheet.cell(row=i, column=BEST_EPOCH_COLUMN)) == LATE_FILL) == \
                (key in late)
            assert str(sheet.cell(row=i, column=3).value).endswith("(late)") == (key in late)
    assert seen == set(ok)
    assert LATE_NOTE in [c.value for row in sheet.iter_rows() for c in row]
    table = terminal_table(exp_dir)
    for k, i in late:  # the run: one line per late fold as it finishes
        note = f"instance {k} fold {i}: best epoch 3 of 3 is in the last 10% of epochs"
        assert note in lines and note not in table
    for k in {k for k, _ in late}:  # the table: one line per instance
        folds = sorted(i for kk, i in late if kk == k)
        assert (f"instance {k}: the best epoch came in the last 10% of epochs in {len(folds)} "
                f"of ") in table and f"({', '.join(map(str, folds))}): still improving" in table


def test_quiet_report_and_ensemble_print_the_table_without_the_late_epoch_advice(
        classification_run, tmp_path):
    """`-q` prints results and errors only: the table, not the late-epoch advice under it
    (the Folds sheet still marks those folds)."""
    from tests.conftest import python_here

    config, exp_dir, _, _ = classification_run
    late = "in the last 10% of epochs"
    said = {flags: python_here("-m", "xval", "report", exp_dir, "--no-workbook", "--config",
                               config.path, *flags) for flags in ((), ("-q",))}
    assert {p.returncode for p in said.values()} == {0}, said[("-q",)].stderr
    loud, quiet = said[()].stdout, said[("-q",)].stdout
    assert late in loud and late not in quiet + said[("-q",)].stderr
    assert quiet.splitlines() == [line for line in loud.splitlines() if late not in line]
    copy = shutil.copytree(exp_dir, tmp_path / "experiment_3")  # the ensemble writes there
    proc = python_here("-m", "xval", "ensemble", copy, "1", "2", "--config", config.path, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "* selected on" in proc.stdout and late not in proc.stdout + proc.stderr


def test_workbook_every_metric_header_names_its_level(classification_run):
    """Issue 38: every number names its level, in the Summary, Statistics and Folds sheets
    (the Metrics sheet names it in each group: `test (clip)`)."""
    _, exp_dir, _, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx")
    summary = [c.value for c in wb["Summary"][2]]
    metrics = [h for h in summary if h and h.endswith((" mean", " std"))]
    assert metrics and all(h.split()[0] in ("clip", "segment") for h in metrics), metrics
    statistics = [c.value for c in wb["Statistics"][1]]
    assert [h for h in statistics if "accuracy" in h] == ["val clip accuracy mean",
                                                          "test clip accuracy mean"]
    folds = [c.value for c in wb["Folds"][1]]
    scored = [h for h in folds if h.split()[0] in ("train", "val", "test")
              and h not in ("test items", "test rows", "train rows (original)")]
    assert scored and all(h.split()[1] in ("clip", "segment") for h in scored), scored
    assert "test clip accuracy" in scored and "test segment accuracy" in scored
    groups = {c.value for c in wb["Metrics"][1]} - {None}
    assert {"test (clip)", "test (segment)"} <= groups


def test_plots_at_the_headline_level_titles_name_it(classification_run):
    """Issue 38: where files are cut into segments, the confusion matrix and per-class F1
    are at clip level (the headline), the segment level beside them; each title (the PNG's
    `Title` text, as the figure drew it) names its level."""
    from PIL import Image

    _, exp_dir, _, _ = classification_run
    plots = exp_dir / "instance_1" / "plots"

    def title(name):
        with Image.open(plots / name) as image:
            return image.text["Title"]

    assert title("confusion_matrix.png").startswith(
        "Test confusion matrix, clip level, pooled over folds")
    assert title("confusion_matrix_segment.png").startswith(
        "Test confusion matrix, segment level, pooled over folds")
    assert title("per_class_f1.png") == "Per-class test F1, clip level, over 3 folds"
    assert title("per_class_f1_segment.png") == "Per-class test F1, segment level, over 3 folds"
    assert title("learning_curves.png").startswith("Learning curves, segment level")
    # The clip-level plot counts clips: its matrix sums to the test clips of every fold.
    instance = ExperimentResults(exp_dir)[1]
    clip = np.asarray(instance.summary.confusion_matrix["clip"])
    segment = np.asarray(instance.summary.confusion_matrix["segment"])
    assert clip.sum() * 2 == segment.sum()  # the tiny store: 2 segments per clip


def test_figures_draw_labels_as_written_never_as_mathtext(tmp_path):
    """A label matplotlib would read as mathtext (`$x^$`, a tagging label) is drawn as it
    is written: the figure writer failed with a raw parse error naming no label, and the
    run turned every later plot off (issue 74)."""
    from PIL import Image

    from xval.report import figures
    from xval.report.activity import activity_plot, activity_windows

    classes = ["$x^$", "a $b$ c", "plain"]
    figures.confusion_matrix(np.eye(3) * 4, classes, tmp_path / "confusion.png")
    figures.per_class_scores(np.full((2, 3), 0.5), classes, tmp_path / "ap.png", ylabel="AP",
                             title="Per-label AP")
    frames = np.linspace(0, 1, 20)
    activity = np.tile(frames[:, None], (1, 3))
    activity_plot({"file": "$weird$.wav", "times": frames, "activity": activity,
                   "classes": classes, "events": [(0.2, 0.4, "$x^$")]}, tmp_path / "d.png")
    activity_windows({"classes": classes, "frame_seconds": 0.05, "threshold": 0.5,
                      "windows": [{"probability": activity.tolist(),
                                   "target": (activity > 0.5).astype(int).tolist(),
                                   "start": 0.0, "events": [], "source": "$s$.wav",
                                   "item": "$i^$"}]}, tmp_path / "w.png")
    for name in ("confusion", "ap", "d", "w"):
        assert Image.open(tmp_path / f"{name}.png").size[0] > 0
