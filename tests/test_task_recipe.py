"""The recipe of docs/architecture.md, "Adding a task": a task defined in an experiment
folder, outside the library, on the `Task` base alone (no existing task subclassed), with a
parameter, a metric, a sheet and a figure of its own, cross-validated end to end. The
recipe's script is taken from the page as it stands, written into a fresh project folder, a
store of its task written, two instances trained with Keras, and the workbook read back with
openpyxl."""

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from preprocessing.store import write_store
from tests.conftest import ROOT, run_here, write_config
from xval import tasks

PAGE = ROOT / "docs" / "architecture.md"
SCRIPT = "experiments/exp_topk.py"
TASK = "topk"


def recipe() -> str:
    """The page's Python block that starts with `# experiments/exp_topk.py`."""
    blocks = re.findall(rf"```python\n(# {re.escape(SCRIPT)}\n.*?)```", PAGE.read_text(),
                        re.DOTALL)
    assert len(blocks) == 1, f"{PAGE} holds {len(blocks)} blocks of {SCRIPT}"
    return blocks[0]


def toy_store(path, task_type):
    """A learnable store of 3 classes over 6 items, each class lifting two bins of its own."""
    rng = np.random.default_rng(0)
    features, rows = [], []
    for i in range(6):
        for c in range(3):
            for k in range(4):
                x = rng.normal(0, 1, (8, 6)).astype(np.float32)
                x[:, 2 * c:2 * c + 2] += 2.5
                features.append(x)
                rows.append({"item": f"item{i}", "label": f"class{c}",
                             "clip": f"item{i}/c{c}_{k}"})
    return write_store(path, np.stack(features), pd.DataFrame(rows), task_type=task_type)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """`python experiments/exp_topk.py` in a project folder whose store is of its task."""
    from xval.cli.scripts import load_experiment

    root = tmp_path_factory.mktemp("recipe")
    write_config(root, report={"plots": True})
    script = root / SCRIPT
    script.parent.mkdir()
    script.write_text(recipe())
    assert TASK not in tasks.names()
    experiment = load_experiment(script)  # registers its task, as running the script does
    try:
        toy_store(root / "data" / "toy", experiment.task_type)
        proc = run_here(experiment.main, cwd=root, argv0=script)
        yield root / "results" / "toy" / "experiment_7", proc, experiment
    finally:
        tasks.TASKS.unregister(TASK)


def test_recipe_touches_no_library_file():
    """The task is the experiment's: no module of the library names it or its parameter,
    and it subclasses no task of the library."""
    spelt = [str(path.relative_to(ROOT)) for package in ("xval", "architectures",
                                                         "preprocessing", "augmentation")
             for path in (ROOT / package).rglob("*.py")
             if re.search(r"\btop_?k\b", path.read_text())]
    assert spelt == []
    assert not re.search(r"from xval\.tasks\.(classification|regression|representation|"
                         r"tagging|detection)", recipe())


def test_recipe_task_is_cross_validated_with_its_metric_sheet_and_figure(recipe_run):
    exp, proc, _ = recipe_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for instance in (1, 2):
        for fold in range(3):
            record = json.loads((exp / f"instance_{instance}" / f"fold_{fold}.json")
                                .read_text())
            test = record["metrics"]["test"]
            if instance == 1:  # top_k: 2, the task's default
                assert 0.0 <= test["accuracy"] <= test["topk_accuracy"] <= 1.0
            else:  # top_k: 1, the instance's own: top-1 accuracy is accuracy
                assert test["topk_accuracy"] == pytest.approx(test["accuracy"])
        plots = exp / f"instance_{instance}" / "plots"
        assert (plots / "recall.png").stat().st_size > 0  # its own figure
    params = json.loads((exp / "instance_2" / "params.json").read_text())
    assert params["params"]["top_k"] == 1, params  # recorded with the instance

    book = load_workbook(exp / "experiment_7.xlsx")
    names = book.sheetnames
    assert names.index("Statistics") < names.index("Recall") < names.index("Folds")
    rows = list(book["Recall"].iter_rows(values_only=True))
    assert rows[0] == ("ID", "class", "test recall (mean over folds)")
    body = [row for row in rows[1:] if row[0] is not None and row[1] is not None]
    assert [(r[0], r[1]) for r in body] == [(k, f"class{c}") for k in (1, 2) for c in range(3)]
    assert all(0.0 <= r[2] <= 1.0 for r in body)
    header = [str(v) for row in book["Summary"].iter_rows(max_row=3, values_only=True)
              for v in row]
    assert any("topk_accuracy" in v for v in header), header  # the headline: selected on it


def test_recipe_task_parameter_is_checked_and_the_tasks_own(recipe_run):
    """`top_k`, declared in the script with `setting(...)`: an instance of the task has it
    (checked against its range), the dry run shows it, another task's instance is refused
    it, naming the task."""
    from tests.conftest import resolve
    from xval.core.errors import ParameterError
    from xval.core.parameters import TrainingParams

    exp, _, experiment = recipe_run
    mlp = {"architecture": "mlp", "reshaping_type": "none"}
    assert resolve(1, mlp, training_defaults=TrainingParams(), task_type=TASK)["top_k"] == 2
    with pytest.raises(ParameterError, match=r"instance 1: top_k=0: expected an integer in "
                                             r"\[1, 10\]"):
        resolve(1, {**mlp, "top_k": 0}, training_defaults=TrainingParams(), task_type=TASK)
    with pytest.raises(ParameterError, match=r"instance 1: top_k=3 \(from instance 1\) is a "
                                             r"parameter of task_type='topk'; this instance "
                                             r"is 'classification': remove it"):
        resolve(1, {**mlp, "top_k": 3}, training_defaults=TrainingParams(),
                task_type="classification")
    root = exp.parents[2]
    proc = run_here(experiment.main, "1", "2", "--dry-run", cwd=root, argv0=root / SCRIPT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"top_k = 1 +# instance 2", proc.stdout), proc.stdout


# -- a task of an experiment folder, where it goes wrong ----------------------------------

def _unregistered(monkeypatch):
    """The task registry as a fresh process has it, for one test: without its task (the
    module's run registered it); restored afterwards."""
    from xval.tasks import registry

    monkeypatch.setattr(registry, "TASKS", registry.TASKS.copy())
    if TASK in registry.TASKS:
        registry.TASKS.unregister(TASK)
    return registry


def _variant(tmp_path, monkeypatch, old, new):
    """The recipe with `old` replaced by `new`, one instance of one epoch, run in a fresh
    project (its task registered for the run only)."""
    from xval.cli.scripts import load_experiment

    _unregistered(monkeypatch)
    text = recipe()
    assert old in text
    text = text.replace(old, new).replace('"epochs": 3', '"epochs": 1')
    text = text[:text.index("experiment[2] =")] + text[text.index('if __name__'):]
    write_config(tmp_path)
    script = tmp_path / SCRIPT
    script.parent.mkdir()
    script.write_text(text)
    experiment = load_experiment(script)
    toy_store(tmp_path / "data" / "toy", experiment.task_type)
    return run_here(experiment.main, cwd=tmp_path, argv0=script)


SCORED = '"topk_accuracy": float((best_k == y[:, None]).any(axis=1).mean())}'


def test_task_metric_of_nan_says_why_no_instance_is_selected(tmp_path, monkeypatch):
    """A task's own metric that returns NaN was stored as null, the instance "complete",
    no instance selected, and nothing said why."""
    proc = _variant(tmp_path, monkeypatch, SCORED, '"topk_accuracy": float("nan")}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = " ".join(proc.stdout.split())
    assert ("No instance is selected: the selection metric, topk_accuracy, is undefined on "
            "the validation items (NaN, recorded as null) in every fold of the complete "
            "instance(s) 1. Its function returned NaN") in said


def test_task_metric_outside_its_range_fails_the_fold_saying_a_rerun_scores_the_same(
        tmp_path, monkeypatch):
    """A metric outside its task's declared range made every fold invalid, and the fix
    offered ("rerun") discarded the same folds again: the fold fails when it is scored,
    naming the task, the metric and the range."""
    proc = _variant(tmp_path, monkeypatch, SCORED, '"topk_accuracy": 1.5}')
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert ("the task 'topk' scored train topk_accuracy = 1.5, outside the range it "
            "declares for it, [0.0, 1.0] (Task.metric_ranges), so the fold could never be "
            "believed; a rerun scores the same. Fix the task") in proc.stderr


def test_report_of_a_script_task_names_it_and_reads_it_with_script(recipe_run, tmp_path,
                                                                   monkeypatch):
    """`xval report` and `xval compare` in a process that does not know the task said
    "task_type='topk': expected one of ...", as if the results were wrong; they name the
    task and the script, and `--script` reads it first."""
    from xval.cli.main import main

    exp, *_ = recipe_run
    script = exp.parents[2] / SCRIPT
    registry = _unregistered(monkeypatch)  # a fresh process: the script not read
    for command in (["report", str(exp), "--no-workbook"],
                    ["compare", f"{exp}:1", f"{exp}:2", "--no-workbook"]):
        proc = run_here(main, *command, cwd=exp.parents[2])
        assert proc.returncode == 2 and "expected one of" not in proc.stderr, proc.stderr
        assert ("its results are of the task 'topk', which is not registered in this "
                "process") in proc.stderr and f"--script {script}" in proc.stderr
        proc = run_here(main, *command, "--script", script, cwd=exp.parents[2])
        assert proc.returncode == 0, proc.stderr
        registry.TASKS.unregister(TASK)  # the script registered it again
    assert "test topk_accuracy mean" in proc.stdout  # compare's table of the two


def test_report_of_a_task_sheet_that_raises_keeps_the_workbook(recipe_run, tmp_path,
                                                                monkeypatch):
    """A task's sheet whose rows function raises lost the whole workbook with "a bug ...
    report it", naming no sheet: the other sheets are written, the sheet holds the error,
    and one line names it; the table is printed either way."""
    from xval.cli.main import main

    exp, *_ = recipe_run
    copy = tmp_path / "experiment_7"
    shutil.copytree(exp, copy)
    task = type(tasks.get(TASK))

    def boom(instance):
        raise ValueError("boom")

    monkeypatch.setattr(task, "sheets", (dataclasses.replace(task.sheets[0], rows=boom),))
    proc = run_here(main, "report", copy, cwd=exp.parents[2])
    assert proc.returncode == 2 and "selected on validation topk_accuracy" in proc.stdout
    assert ("experiment_7.xlsx was written, but not its sheet(s) 'Recall' (ValueError: "
            "boom)") in proc.stderr and "a bug" not in proc.stderr
    book = load_workbook(copy / "experiment_7.xlsx")
    assert book["Recall"]["A1"].value == "This sheet could not be written: ValueError: boom"
    assert book["Summary"].max_row > 3


def test_report_that_cannot_write_its_workbook_still_prints_the_table(recipe_run, tmp_path):
    """`xval report` on a folder where the workbook cannot be written (read-only: here a
    folder stands where the workbook belongs) printed only the error; the table is printed,
    and the error offers --no-workbook."""
    from xval.cli.main import main

    exp, *_ = recipe_run
    copy = tmp_path / "experiment_7"
    shutil.copytree(exp, copy)
    (copy / "experiment_7.xlsx").unlink()
    (copy / "experiment_7.xlsx").mkdir()
    proc = run_here(main, "report", copy, cwd=exp.parents[2])
    assert proc.returncode == 2 and "selected on validation topk_accuracy" in proc.stdout
    assert "(`--no-workbook` prints it alone, writing nothing)" in proc.stderr


@pytest.mark.slow
def test_script_task_runs_in_worker_processes_over_a_complete_instance(tmp_path, monkeypatch):
    """`--executor process --overwrite` on a task of the script set the complete instance
    aside, then every fold failed in the workers, which never read the script: each job
    now carries the script, a worker imports it, and the instance is trained again with the
    task's own metric."""
    from xval.cli.scripts import load_experiment

    first = _variant(tmp_path, monkeypatch, SCORED, SCORED)
    assert first.returncode == 0, first.stderr[-2000:]
    exp = tmp_path / "results" / "toy" / "experiment_7" / "instance_1"
    before = {f: json.loads((exp / f"fold_{f}.json").read_text()) for f in range(3)}
    _unregistered(monkeypatch)
    experiment = load_experiment(tmp_path / SCRIPT)  # as `python SCRIPT` reads it
    proc = run_here(experiment.main, "1", "1", "--executor", "process", "--overwrite",
                    cwd=tmp_path, argv0=tmp_path / SCRIPT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "FAILED" not in proc.stdout
    for fold in range(3):
        record = json.loads((exp / f"fold_{fold}.json").read_text())
        assert record["status"] == before[fold]["status"] == "ok"
        assert record["pid"] not in (before[fold]["pid"], os.getpid())  # in a worker
        assert 0.0 <= record["metrics"]["test"]["topk_accuracy"] <= 1.0
