"""The recipe of docs/architecture.md, "Adding a task": a task defined in an experiment
folder, outside the library, on the `Task` base alone (no existing task subclassed), with a
parameter, a metric, a sheet and a figure of its own, cross-validated end to end. The
recipe's script is taken from the page as it stands, written into a fresh project folder, a
store of its task written, two instances trained with Keras, and the workbook read back with
openpyxl."""

import json
import re

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
