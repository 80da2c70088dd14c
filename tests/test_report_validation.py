"""Results that cannot lie (issue 25, item 1): every fold file is checked as the report reads
it. A real results folder (a tiny experiment) is edited the way a hostile user or a bad disk
would; the report names the fold and the reason, never counts or selects it, and never
prints a traceback."""

import json
import math
import re
import shutil
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from tests.conftest import ROOT, tiny_store, write_config
from xval import Experiment, ExperimentResults, Output
from xval.core.hashing import seal
from xval.report.listeners import PlotWriter, WorkbookWriter
from xval.report.terminal import terminal_table
from xval.report.workbook import build_workbook

INSTANCE = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two complete instances of three folds each (`experiment_1`)."""
    from xval.config.loader import load_config

    folder = tmp_path_factory.mktemp("validation")
    config = load_config(write_config(folder, report={"plots": True}))
    tiny_store(config.data_dir)
    exp = Experiment(description="validation", dataset="tiny", number=1, num_folds=3,
                     parameters={"epochs": 2, "batch_size": 16}, config=str(config.path))
    exp[1] = {**INSTANCE, "comment_1": "one", "comment_2": ""}
    exp[2] = {**INSTANCE, "comment_1": "two", "comment_2": "", "learning_rate": 0.005}
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0
    return config, config.results_dir / "tiny" / "experiment_1"


@pytest.fixture
def copy(tiny_run, tmp_path):
    """A fresh copy of the experiment folder to edit."""
    config, exp_dir = tiny_run
    target = tmp_path / exp_dir.name
    shutil.copytree(exp_dir, target)
    return config, target


def _edit_fold(exp_dir, change, instance=1, fold=1):
    """Edits a fold record and seals it again, as a deliberate edit would (the seal is a
    checksum anyone can recompute: docs/reliability.md), so that the checks of its values
    are what answers (the seal's own check: tests/test_sealed_records.py)."""
    path = exp_dir / f"instance_{instance}" / f"fold_{fold}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(seal(data)))


def _set_test(name, value):
    def change(data):
        data["metrics"]["test"][name] = value
    return change


def _no_metrics(exp_dir):
    _edit_fold(exp_dir, lambda d: d.pop("metrics"))


def _history_string(exp_dir):
    _edit_fold(exp_dir, lambda d: d.update(history="loss went down"))


def _other_fold_number(exp_dir):
    _edit_fold(exp_dir, lambda d: d.update(fold=2))


def _metrics_not_a_dict(exp_dir):
    _edit_fold(exp_dir, lambda d: d["metrics"].update(test="0.9"))


def _not_a_dict(exp_dir):
    (exp_dir / "instance_1" / "fold_1.json").write_text("[1, 2, 3]")


def _truncated_fold(exp_dir):
    path = exp_dir / "instance_1" / "fold_1.json"
    path.write_text(path.read_text()[:40])


def _fold_of_other_instance(exp_dir):
    for suffix in ("json", "keras"):
        shutil.copy(exp_dir / "instance_2" / f"fold_1.{suffix}",
                    exp_dir / "instance_1" / f"fold_1.{suffix}")


def _params_of_other_instance(exp_dir):
    shutil.copy(exp_dir / "instance_2" / "params.json", exp_dir / "instance_1" / "params.json")


def _params_hash_of_other_instance(exp_dir):
    """Instance 2's parameters and their hash in instance 1's record: a consistent record
    the folds were not trained with."""
    path = exp_dir / "instance_1" / "params.json"
    record = json.loads(path.read_text())
    other = json.loads((exp_dir / "instance_2" / "params.json").read_text())
    record["hash"], record["params"] = other["hash"], other["params"]
    path.write_text(json.dumps(seal(record)))  # sealed again: the parameter hash tells


def _edited_params(exp_dir):
    """A parameter changed by hand, the hash left as it was."""
    path = exp_dir / "instance_1" / "params.json"
    record = json.loads(path.read_text())
    record["params"]["learning_rate"] = 0.5
    path.write_text(json.dumps(seal(record)))  # sealed again: the parameter hash tells


def _truncated_params(exp_dir):
    path = exp_dir / "instance_1" / "params.json"
    path.write_text(path.read_text()[:25])


def _deleted_model(exp_dir):
    (exp_dir / "instance_1" / "fold_1.keras").unlink()


def _swapped_model(exp_dir):
    shutil.copy(exp_dir / "instance_2" / "fold_1.keras", exp_dir / "instance_1" / "fold_1.keras")


def _corrupted_model(exp_dir):
    path = exp_dir / "instance_1" / "fold_1.keras"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))


# (name, edit, the folds it invalidates, the reason's pattern)
CASES = [
    ("no metrics", _no_metrics, [1], r"it has no test metrics"),
    ("accuracy NaN", lambda d: _edit_fold(d, _set_test("accuracy", math.nan)), [1],
     r"its test accuracy is nan, not a finite number"),
    ("accuracy inf", lambda d: _edit_fold(d, _set_test("accuracy", math.inf)), [1],
     r"its test accuracy is inf, not a finite number"),
    ("test loss inf", lambda d: _edit_fold(d, _set_test("loss", math.inf)), [1],
     r"its test loss is inf, not a finite number"),
    ("accuracy 7.5", lambda d: _edit_fold(d, _set_test("accuracy", 7.5)), [1],
     r"its test accuracy is 7\.5, outside the valid range \[0\.0, 1\.0\]"),
    ("accuracy -3", lambda d: _edit_fold(d, _set_test("accuracy", -3)), [1],
     r"its test accuracy is -3, outside the valid range \[0\.0, 1\.0\]"),
    ("accuracy a string", lambda d: _edit_fold(d, _set_test("accuracy", "0.99")), [1],
     r"its test accuracy is '0\.99', not a finite number"),
    ("history a string", _history_string, [1],
     r"fold_1\.json is not a record of its kind: its 'history' is str"),
    ("metrics not a dict", _metrics_not_a_dict, [1],
     r"fold_1\.json is not a record of its kind: its metrics\['test'\] is str"),
    ("not a dict", _not_a_dict, [1],
     r"fold_1\.json is not a record of its kind: it holds list, not a fold record"),
    ("truncated fold file", _truncated_fold, [1], r"fold_1\.json is not valid JSON"),
    ("another fold's number", _other_fold_number, [1],
     r"it says fold 2 but is the file of fold 1"),
    ("another instance's fold", _fold_of_other_instance, [1],
     r"it says instance 2 but is in the folder of instance 1"),
    ("another instance's params.json", _params_of_other_instance, [0, 1, 2],
     r"the instance's params\.json is instance 2's, not instance 1's, so the parameters it "
     r"was trained with cannot be checked"),
    ("another instance's parameter hash", _params_hash_of_other_instance, [0, 1, 2],
     r"it was trained with other parameters than the instance's params\.json"),
    ("edited params.json", _edited_params, [0, 1, 2],
     r"the instance's params\.json was edited after it was written: its parameters hash to "
     r"\w+, not to the recorded \w+, so the parameters it was trained with cannot be checked"),
    ("truncated params.json", _truncated_params, [0, 1, 2],
     r"the instance's params\.json is not valid JSON .*, so the parameters it was trained "
     r"with cannot be checked"),
    ("deleted model", _deleted_model, [1], r"fold_1\.keras is missing"),
    ("swapped model", _swapped_model, [1],
     r"fold_1\.keras (does not match its recorded SHA-256|has \d+ bytes, not the recorded)"),
    ("corrupted model", _corrupted_model, [1],
     r"fold_1\.keras does not match its recorded SHA-256"),
]


@pytest.mark.parametrize("name, edit, folds, reason", CASES, ids=[c[0] for c in CASES])
def test_report_names_an_invalid_fold_and_never_counts_it(copy, name, edit, folds, reason):
    config, exp_dir = copy
    before = ExperimentResults(exp_dir)[1]
    assert before.status == "complete" and not before.invalid
    edit(exp_dir)
    results = ExperimentResults(exp_dir)
    inst = results[1]
    assert sorted(inst.invalid) == folds, inst.invalid
    assert re.search(reason, inst.invalid[folds[-1]]), inst.invalid
    # Not counted: the summary is over the folds believed, and the instance is partial.
    assert inst.status == "partial"
    assert inst.summary.folds_done == 3 - len(folds)
    assert sorted(f.fold for f in inst.folds) == sorted(set(range(3)) - set(folds))
    kept = [f.metrics["test"]["accuracy"] for f in inst.folds]
    expected = sum(kept) / len(kept) if kept else None
    assert inst.metric("accuracy", "test") == (pytest.approx(expected) if kept else None)
    # Never selected: the other instance is, whatever the edited file claims.
    assert results.best("accuracy", "val", level="auto").id == 2
    # The terminal table marks it and names each invalid fold with its reason.
    table = terminal_table(results, config=config)
    row = next(line for line in table.splitlines() if line.split()[:1] == ["1"])
    assert f"partial ({len(folds)} invalid)" in row
    lines = [line for line in table.splitlines() if line.startswith("instance 1 fold ")]
    assert [int(line.split()[3]) for line in lines] == folds
    assert re.search(reason, lines[-1])
    assert "* selected on validation accuracy" in table and "instance 2;" in table
    # The workbook: status and message on the Summary, a row per invalid fold on Folds.
    book = load_workbook(build_workbook(exp_dir, config=config))
    summary = book["Summary"]
    header = [c.value for c in summary[2]]
    cells = {header[j]: c.value for j, c in enumerate(summary[3])}
    assert cells["ID"] == 1 and cells["status"] == f"partial ({len(folds)} invalid)"
    assert cells["selected"] == "" or cells["selected"] is None
    assert cells["folds"] == f"{3 - len(folds)}/3"
    assert re.search(reason, cells["message"]) and "a rerun trains" in cells["message"]
    sheet = book["Folds"]
    names = [c.value for c in sheet[1]]
    rows = [dict(zip(names, (c.value for c in row))) for row in sheet.iter_rows(min_row=2)
            if row[0].value == 1]
    assert [r["status"].removesuffix(" (late)") for r in rows] == ["invalid" if i in folds else "ok"
                                           for i in range(3)]
    assert re.search(reason, rows[folds[-1]]["message"])
    assert all(rows[i]["test segment accuracy"] is None for i in folds)


def test_a_null_metric_is_undefined_not_invalid(copy):
    """A metric the training could not define (an event F1 without events, R² of one row)
    is written as null: the fold is believed and the metric's mean leaves it out."""
    _, exp_dir = copy
    _edit_fold(exp_dir, _set_test("f1", None))
    inst = ExperimentResults(exp_dir)[1]
    assert inst.status == "complete" and not inst.invalid
    assert inst.summary.metrics["segment"]["test"]["f1"].n == 2
    assert inst.summary.metrics["segment"]["test"]["accuracy"].n == 3


def test_report_command_names_invalid_folds_without_a_traceback(copy):
    config, exp_dir = copy
    _deleted_model(exp_dir)
    _edit_fold(exp_dir, _set_test("accuracy", 7.5), instance=2, fold=0)
    proc = subprocess.run([sys.executable, "-m", "xval", "report", str(exp_dir), "--config",
                           str(config.path)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "instance 1 fold 1 invalid: fold_1.keras is missing" in proc.stdout
    assert "instance 2 fold 0 invalid: its test accuracy is 7.5, outside the valid range" \
        in proc.stdout
    assert proc.stdout.count("partial (1 invalid)") == 2
    assert "* selected" not in proc.stdout  # no instance is complete: none is selected


def test_listeners_write_the_plots_and_the_workbook(copy, tmp_path, capsys):
    config, exp_dir = copy
    inst = exp_dir / "instance_1"
    shutil.rmtree(inst / "plots")
    (exp_dir / "experiment_1.xlsx").unlink()
    # [report] plots = false: only an instance that has plots gets them redrawn.
    assert PlotWriter(existing_only=True).on_instance(ExperimentResults(exp_dir)[1]) == []
    assert not (inst / "plots").exists()
    written = PlotWriter().on_instance(ExperimentResults(exp_dir)[1])
    assert (inst / "plots" / "learning_curves.png") in written
    redrawn = PlotWriter(existing_only=True).on_instance(ExperimentResults(exp_dir)[1])
    assert sorted(redrawn) == sorted(written)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)
    lines = []
    writer = WorkbookWriter(config, out=lines.append)
    assert writer.on_results(exp_dir) == exp_dir / "experiment_1.xlsx"
    assert load_workbook(exp_dir / "experiment_1.xlsx").sheetnames[0] == "Summary"
    capsys.readouterr()
    assert writer.on_results(tmp_path / "nothing") is None  # reported, not raised
    err = capsys.readouterr().err  # on stderr, so that -q still says it
    assert err.count("error:") == 1 and "was not written" in err and writer.failure
    assert lines == []


def test_a_tie_on_the_selection_metric_is_shown_and_decided_by_the_order_not_the_loss(copy):
    """Instances tied on the selection metric are ranked by the lower validation loss
    (`ExperimentResults.ranked`), but the report selects by the declared order (by default
    the lower id), never by a loss the epoch was chosen on, and the terminal and the
    workbook say there was a tie."""
    config, exp_dir = copy
    for instance, loss in ((1, 0.9), (2, 0.4)):
        for fold in range(3):
            def change(data, loss=loss):
                for level in ("metrics", "clip_metrics"):  # the store cuts clips
                    data[level]["val"].update(accuracy=1.0, loss=loss)
            _edit_fold(exp_dir, change, instance=instance, fold=fold)
    results = ExperimentResults(exp_dir)
    assert [r.id for r in results.ranked("accuracy", "val")] == [2, 1]
    table = terminal_table(results, config=config)
    assert "selected on validation accuracy (clip level): instance 1;" in table
    assert "validation clip accuracy cannot tell instances 1, 2 apart" in table
    build_workbook(exp_dir, config=config)
    note = " ".join(str(c.value) for row in load_workbook(exp_dir / "experiment_1.xlsx")
                    ["Summary"].iter_rows() for c in row if c.value)
    assert "Tied on validation accuracy with instance(s) 2" in note


def test_without_a_loss_a_tie_goes_to_the_lower_id(copy):
    _, exp_dir = copy
    for instance in (1, 2):
        for fold in range(3):
            def change(data):
                for level in ("metrics", "clip_metrics"):
                    data[level]["val"].update(accuracy=0.5, loss=0.7)
            _edit_fold(exp_dir, change, instance=instance, fold=fold)
    results = ExperimentResults(exp_dir)
    assert results.best("accuracy", "val").id == 1
    assert results.best("loss", "val").id == 1  # the metric is the loss: the id decides
