"""The workbook read back with openpyxl, plots, statistics and the report command."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from openpyxl import load_workbook

from tests.conftest import ROOT, tiny_store
from xval import Experiment, ExperimentResults
from xval.params import metric_direction
from xval.report import BEST_FILL, SELECTED_FILL, build_workbook, terminal_table
from xval.stats import corrected_resampled_ttest, mean_ci

BASE = ['architecture="example_cnn"', 'reshaping_type="conv"', "filters=4"]


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    from tests.conftest import write_config
    from xval.config import load_config

    folder = tmp_path_factory.mktemp("report")
    config = load_config(write_config(folder))
    tiny_store(config.data_dir)
    exp = Experiment(description="report test", dataset="tiny", number=3, num_folds=3,
                     parameters={"epochs": 3, "patience": 3, "batch_size": 16},
                     config=str(config.path))
    exp[1] = BASE + ['comment_1="slow"', 'comment_2="a"', "learning_rate=0.001"]
    exp[2] = BASE + ['comment_1="fast"', 'comment_2="b"', "learning_rate=0.02"]
    exp[3] = BASE + ['comment_1="broken"', 'comment_2="c"',
                     'load_model="/nonexistent/model.keras"']
    exp[4] = BASE + ['comment_1="mid"', 'comment_2="d"', "learning_rate=0.005"]
    lines = []
    outcome = exp.run(config=config, out=lines.append)
    exp_dir = config.results_dir / "tiny" / "experiment_3"
    return config, exp_dir, outcome, "\n".join(lines)


def _fill(cell):
    return (cell.fill.fgColor.rgb or "")[-6:] if cell.fill and cell.fill.fill_type else ""


def _summary_columns(ws):
    """Header name -> first column holding it (metric names repeat once per split)."""
    cols = {}
    for j in range(1, ws.max_column + 1):
        cols.setdefault(ws.cell(row=2, column=j).value, j)
    return cols


def test_workbook_summary_cells_match_result_files(classification_run):
    config, exp_dir, outcome, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx")
    assert wb.sheetnames == ["Summary", "Statistics", "Folds", "Parameters"]
    ws = wb["Summary"]
    assert ws.freeze_panes == "F3"
    assert ws.auto_filter.ref.startswith("A2:")
    groups = [ws.cell(row=1, column=j).value for j in range(1, ws.max_column + 1)]
    assert "instance" in groups and "test (segment)" in groups and "test (clip)" in groups
    assert "parameters that differ" in groups
    assert any(str(r).startswith("A1:") for r in ws.merged_cells.ranges)
    cols = _summary_columns(ws)
    assert "learning_rate" in cols and "batch_size" not in cols  # only differing params
    results = ExperimentResults(exp_dir)
    for i in range(3, 7):
        instance = results[ws.cell(row=i, column=1).value]
        assert ws.cell(row=i, column=1).hyperlink.target == f"instance_{instance.id}/"
        assert ws.cell(row=i, column=cols["status"]).value == instance.status
        assert ws.cell(row=i, column=cols["comment_1"]).value == instance.params["comment_1"]
        if instance.status == "complete":
            acc = ws.cell(row=i, column=cols["accuracy mean"])
            train_start = groups.index("train (segment)") + 1
            val_start = groups.index("validation (segment)") + 1
            assert train_start <= cols["accuracy mean"] < val_start
            assert acc.value == pytest.approx(instance.metric("accuracy", "train"))
            assert acc.number_format == "0.0000"


def test_workbook_highlights_best_by_direction(classification_run):
    _, exp_dir, _, _ = classification_run
    ws = load_workbook(exp_dir / "experiment_3.xlsx")["Summary"]
    statuses = {i: ws.cell(row=i, column=2).value for i in range(3, 7)}
    complete = [i for i, s in statuses.items() if s == "complete"]
    checked = 0
    for j in range(6, ws.max_column + 1):
        name = ws.cell(row=2, column=j).value or ""
        if not (name.endswith(" mean") or name.endswith(" std")):
            continue
        metric, stat = name.rsplit(" ", 1)
        values = {i: ws.cell(row=i, column=j).value for i in complete}
        direction = "min" if stat == "std" else metric_direction(metric)
        target = (min if direction == "min" else max)(values.values())
        for i in range(3, 7):
            highlighted = _fill(ws.cell(row=i, column=j)) == BEST_FILL
            assert highlighted == (i in complete and values[i] == target), (name, i)
        checked += 1
    assert checked >= 2 * 3 * 2 * 5  # mean+std, 3 splits, 2 levels, 5 metrics


def test_workbook_selected_and_failed_instance(classification_run):
    config, exp_dir, outcome, text = classification_run
    ws = load_workbook(exp_dir / "experiment_3.xlsx")["Summary"]
    cols = _summary_columns(ws)
    results = ExperimentResults(exp_dir)
    best = results.best("accuracy", "val")
    rows = {ws.cell(row=i, column=1).value: i for i in range(3, 7)}
    assert ws.cell(row=rows[best.id], column=cols["selected"]).value == "selected"
    assert _fill(ws.cell(row=rows[best.id], column=1)) == SELECTED_FILL
    failed = rows[3]
    assert ws.cell(row=failed, column=cols["status"]).value == "failed"
    assert "no such .keras file" in ws.cell(row=failed, column=cols["message"]).value
    assert ws.cell(row=failed, column=cols["accuracy mean"]).value is None
    note = ws.cell(row=8, column=1).value
    assert note.startswith(f"Selected: instance {best.id}") and "Report its test" in note
    assert outcome.exit_code == 1 and outcome.failed == [3]
    assert f"* selected on validation accuracy: instance {best.id}" in text


def test_workbook_statistics_sheet(classification_run):
    config, exp_dir, _, _ = classification_run
    ws = load_workbook(exp_dir / "experiment_3.xlsx")["Statistics"]
    results = ExperimentResults(exp_dir)
    best = results.best("accuracy", "val")
    header = [c.value for c in ws[1]]
    assert header[:5] == ["ID", "status", "folds", "val accuracy mean", "val 95% CI ±"]
    ref = [f["metrics"]["test"]["accuracy"] for f in best.folds]
    for row in ws.iter_rows(min_row=2, max_row=5, values_only=True):
        r = results[row[0]]
        if r.status != "complete":
            assert row[2] == 0
            continue
        test = [f["metrics"]["test"]["accuracy"] for f in r.folds]
        mean, half = mean_ci(test)
        assert row[5] == pytest.approx(mean) and row[6] == pytest.approx(half)
        if r.id == best.id:
            assert row[10] == "selected"
        else:
            ratio = np.mean([f["n_rows"]["test"] / f["n_rows"]["train"] for f in r.folds])
            t, p = corrected_resampled_ttest(test, ref, ratio)
            assert row[9] == pytest.approx(p) if np.isfinite(p) else row[9] is None
            assert ("not significantly" in row[10]) == (p >= 0.05)


def test_workbook_folds_and_parameters_sheets(classification_run):
    _, exp_dir, _, _ = classification_run
    wb = load_workbook(exp_dir / "experiment_3.xlsx")
    folds = list(wb["Folds"].iter_rows(min_row=2, values_only=True))
    assert len(folds) == 3 * 3 + 1  # three complete instances, one failed fold
    header = [c.value for c in wb["Folds"][1]]
    first = json.loads((exp_dir / "instance_1" / "fold_0.json").read_text())
    row = next(r for r in folds if r[0] == 1 and r[1] == 0)
    assert row[3] == ", ".join(first["items"]["test"])
    assert row[header.index("test accuracy")] == pytest.approx(
        first["metrics"]["test"]["accuracy"])
    assert row[header.index("best epoch")] == first["best_epoch"]
    params = wb["Parameters"]
    names = [c.value for c in params[1]]
    assert {"learning_rate", "batch_size", "architecture"} <= set(names)
    assert len(list(params.iter_rows(min_row=2))) == 4


def test_instance_plots_written(classification_run):
    _, exp_dir, _, _ = classification_run
    plots = exp_dir / "instance_1" / "plots"
    for name in ("learning_curves.png", "confusion_matrix.png", "per_class_f1.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"


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
    assert csv.stdout.splitlines()[0] == "selected,id,status,val accuracy,test accuracy,comment"
    md = subprocess.run(run + ["--format", "markdown", "--no-workbook"], capture_output=True,
                        text=True, cwd=ROOT)
    assert md.stdout.startswith("| ") and "|---|" in md.stdout
    assert terminal_table(exp_dir, config=config, fmt="csv") == csv.stdout.strip()


def test_workbook_opens_in_libreoffice(classification_run, tmp_path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    _, exp_dir, _, _ = classification_run
    proc = subprocess.run([soffice, "--headless", "--convert-to", "pdf", "--outdir",
                           str(tmp_path), str(exp_dir / "experiment_3.xlsx")],
                          capture_output=True, text=True, timeout=180,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "experiment_3.pdf").read_bytes()[:4] == b"%PDF"


def test_regression_workbook_and_plot(tmp_path):
    from tests.conftest import write_config
    from xval.config import load_config

    config = load_config(write_config(tmp_path))
    tiny_store(config.data_dir, "reg", task_type="regression")
    exp = Experiment(description="reg", dataset="reg", number=1, num_folds=3,
                     task_type="regression", config=str(config.path),
                     parameters={"epochs": 2, "batch_size": 16, "save_model_metric": "val_rmse"})
    exp[1] = BASE + ['comment_1="a"', 'comment_2="b"']
    exp[2] = BASE + ['comment_1="c"', 'comment_2="d"', "learning_rate=0.01"]
    exp.run(config=config, out=lambda *a: None)
    exp_dir = config.results_dir / "reg" / "experiment_1"
    ws = load_workbook(exp_dir / "experiment_1.xlsx")["Summary"]
    cols = _summary_columns(ws)
    assert "rmse mean" in cols and "r2 mean" in cols
    results = ExperimentResults(exp_dir)
    best = results.best("rmse", "val")
    assert best.id == min(results, key=lambda r: r.metric("rmse", "val")).id
    assert ws.cell(row=2 + best.id, column=cols["selected"]).value == "selected"
    assert (exp_dir / "instance_1" / "plots" / "predicted_vs_true.png").exists()


def test_corrected_resampled_ttest_values():
    a = np.array([0.8, 0.82, 0.79, 0.85, 0.81])
    b = np.array([0.78, 0.80, 0.80, 0.80, 0.79])
    t, p = corrected_resampled_ttest(a, b, 0.25)
    d = a - b
    expected_t = d.mean() / np.sqrt((1 / 5 + 0.25) * d.var(ddof=1))
    assert t == pytest.approx(expected_t)
    plain_t = d.mean() / np.sqrt(d.var(ddof=1) / 5)
    assert abs(t) < abs(plain_t)  # the correction widens the variance
    assert 0 < p < 1
    assert corrected_resampled_ttest(a, a, 0.25) == (0.0, 1.0)
    assert np.isnan(corrected_resampled_ttest([1.0], [0.5], 0.2)[0])


def test_mean_ci():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302652729 * 1 / np.sqrt(3))
    assert mean_ci([1.0]) == (1.0, None)
