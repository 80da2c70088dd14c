"""Results that cannot be edited unseen (issue 45, point 1).

The recorder seals every record it writes (`fold_<i>.json`, `params.json`, ...) with the
hash of its content (`content_sha256`); the reader checks it, so an edited metric, model or
parameter file is named, with the fix, by the report, `compare`, `export` and a resumed
run. Real runs (one epoch, an MLP) on a tiny store."""

import json
import re
import shutil

import openpyxl
import pytest

from xval import Experiment, Output
from xval.cli.main import main
from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.hashing import CONTENT_KEY, seal, seal_problem
from xval.core.records import FoldResult, Status
from xval.core.storage import FOLD_FIX, ResultsStore
from xval.inference.models import resolve_models
from xval.report.compare_output import format_comparison
from xval.report.comparison import Target, compare
from xval.report.results import ExperimentResults
from xval.report.terminal import invalid_lines

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1", "comment_2": "c2",
        "hidden_units": 8, "num_layers": 1, "epochs": 1, "batch_size": 32}


def quiet(*args):
    return None


def _experiment(config_path):
    exp = Experiment(description="sealed", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp[1] = dict(BASE)
    exp[2] = {**BASE, "hidden_units": 4}
    return exp


@pytest.fixture
def done(config_path, config, store):
    """An experiment with instances 1 and 2 complete."""
    exp = _experiment(config_path)
    assert exp.run(config=config, output=Output(out=quiet)).exit_code == 0
    return exp, config.results_dir / "tiny" / "experiment_1"


def _edit(path, change):
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the SHA-256 tells
    path.write_bytes(bytes(data))


def test_seal_problem_names_an_edit_and_a_missing_seal():
    sealed = seal({"a": 1, "b": [0.5, None]})
    assert seal_problem(sealed) == ""
    assert seal_problem({"a": 1, "format": 2}).startswith("lost its content_sha256")
    assert seal_problem({"a": 1}, required=False) == ""  # a derived file written unsealed
    assert seal_problem({"a": 1}).startswith("has no format: this release did not write it")
    assert seal_problem([1, 2]) == ""
    assert "was edited after it was written" in seal_problem({**sealed, "a": 2})


def test_reader_refuses_an_edited_record_and_one_without_format(tmp_path):
    record = FoldResult(instance=1, fold=0, status=Status.FAILED, message="m")
    path = tmp_path / "fold_0.json"
    old = {k: v for k, v in record.to_dict().items() if k != "format"}
    path.write_text(json.dumps(seal(old)))
    found, why = ResultsStore().read_record(path, FoldResult.from_dict)
    assert found is None and why == (
        "is not a record of its kind: it has no format: a fold record this release did not "
        "write (the instance's results are rerun with --overwrite)")
    path.write_text(json.dumps({**seal(record.to_dict()), "status": "ok"}))
    found, why = ResultsStore().read_record(path, FoldResult.from_dict)
    assert found is None and why.startswith("was edited after it was written")


def test_recorder_seals_every_fold_and_params_file(done):
    _, folder = done
    for name in ("params.json", "fold_0.json", "fold_2.json"):
        data = json.loads((folder / "instance_1" / name).read_text())
        assert CONTENT_KEY in data and seal_problem(data) == ""


def test_edited_metric_model_and_params_are_each_named_with_the_fix(done, capsys):
    _, folder = done
    one, two = folder / "instance_1", folder / "instance_2"
    _edit(one / "fold_1.json", lambda r: r["metrics"]["test"].update(accuracy=0.999))
    _flip_a_byte(one / "fold_0.keras")
    _edit(two / "params.json", lambda r: r.update(task_type="regression"))

    results = ExperimentResults(folder)
    first, second = results[1].invalid, results[2].invalid
    assert first[1].startswith("fold_1.json was edited after it was written")
    assert first[0] == "fold_0.keras does not match its recorded SHA-256"
    assert set(second) == {0, 1, 2}
    assert all("params.json was edited after it was written" in w for w in second.values())
    lines = "\n".join(invalid_lines(list(results)))
    assert "instance 1 fold 1 invalid: fold_1.json was edited" in lines
    assert FOLD_FIX in lines

    text = format_comparison(compare([Target(folder)]))
    assert "experiment_1:1 fold 0 left out: fold_0.keras does not match" in text
    assert "experiment_1:1 fold 1 left out: fold_1.json was edited" in text

    assert main(["export", str(one), "--format", "keras", "--out",
                 str(folder.parent / "exported")]) == 2
    err = capsys.readouterr().err
    assert "instance_1 has folds whose files cannot be believed" in err
    assert "fold_0.keras does not match" in err and "fold_1.json was edited" in err
    assert "restore the file" in err and not (folder.parent / "exported").exists()

    assert main(["report", str(folder)]) == 0  # the workbook's fold sheet names each file
    sheet = openpyxl.load_workbook(folder / "experiment_1.xlsx")["Folds"]
    cells = " ".join(str(c) for row in sheet.iter_rows(values_only=True) for c in row)
    assert "fold_0.keras does not match its recorded SHA-256" in cells
    assert "fold_1.json was edited after it was written" in cells
    assert "params.json was edited after it was written" in cells

    # A fold model given alone (export, predict) is checked against its record too: here a
    # valid model of another fold, and a model whose record was edited.
    shutil.copy(one / "fold_2.keras", one / "fold_0.keras")
    with pytest.raises(ConfigurationError, match=r"fold_0\.keras is not the model fold 0 "
                                                 r"trained .*fold_0\.json"):
        resolve_models(one / "fold_0.keras")
    with pytest.raises(ConfigurationError, match=r"its fold record fold_1\.json cannot be "
                                                 r"believed \(was edited after it was written"):
        resolve_models(one / "fold_1.keras")
    capsys.readouterr()
    assert main(["export", str(one / "fold_0.keras"), "--format", "keras", "--out",
                 str(folder.parent / "exported")]) == 2
    assert "is not the model fold 0 trained" in capsys.readouterr().err
    assert not (folder.parent / "exported").exists()


def test_resume_names_the_edited_files_and_retrains_their_folds(done, config):
    exp, folder = done
    one = folder / "instance_1"
    _edit(one / "fold_1.json", lambda r: r["metrics"]["test"].update(accuracy=0.999))
    shutil.copy(one / "fold_2.keras", one / "fold_0.keras")  # a valid model, not fold 0's
    kept = (one / "fold_2.json").read_text()
    lines = []
    assert exp.run(config=config, output=Output(out=lines.append)).exit_code == 0
    text = "\n".join(map(str, lines))
    assert "instance 1 fold 1: fold_1.json was edited after it was written" in text
    assert re.search(r"instance 1 fold 0: .*fold_0\.keras (has \d+ bytes, not the recorded|"
                     r"does not match its recorded SHA-256).*it will be rerun", text)
    assert (one / "fold_0.keras").read_bytes() != (one / "fold_2.keras").read_bytes()
    assert seal_problem(json.loads((one / "fold_1.json").read_text())) == ""
    assert (one / "fold_2.json").read_text() == kept
    assert ExperimentResults(folder)[1].status == "complete"


def test_resume_refuses_an_edited_params_file_naming_it(done, config):
    exp, folder = done
    params = folder / "instance_2" / "params.json"
    _edit(params, lambda r: r.update(overrides={"epochs": 9}))
    (folder / "instance_2" / "fold_2.json").unlink()
    with pytest.raises(ResultsConflictError, match=r"params\.json was edited after it was "
                                                   r"written.*--overwrite"):
        exp.run(config=config, output=Output(out=quiet))


def test_a_record_whose_seal_was_removed_is_refused_by_name(done, config):
    # Issue 54: deleting the content_sha256 of a format-2 record made report and compare
    # read it as an old unsealed record, the edited figure believed.
    exp, folder = done
    one, two = folder / "instance_1", folder / "instance_2"

    def unsealed(record):
        record["metrics"]["test"]["accuracy"] = 0.999
        del record[CONTENT_KEY]

    _edit(one / "fold_1.json", unsealed)
    _edit(two / "params.json", lambda r: r.pop(CONTENT_KEY))
    results = ExperimentResults(folder)
    assert results[1].invalid[1].startswith(
        "fold_1.json lost its content_sha256: a record is always written with the hash of "
        "its content")
    assert 0.999 not in [f.metrics["test"]["accuracy"] for f in results[1].folds
                         if f.metrics]
    assert all("params.json lost its content_sha256" in w for w in results[2].invalid.values())
    text = format_comparison(compare([Target(folder)]))
    assert "experiment_1:1 fold 1 left out: fold_1.json lost its content_sha256" in text
    with pytest.raises(ResultsConflictError, match=r"params\.json lost its content_sha256"):
        exp.run(config=config, output=Output(out=quiet))
    lines = []
    assert exp.run(config=config, instances=[1], output=Output(out=lines.append)).exit_code == 0
    assert "instance 1 fold 1: fold_1.json lost its content_sha256" in "\n".join(map(str, lines))
    assert seal_problem(json.loads((one / "fold_1.json").read_text())) == ""  # trained again


def test_the_derived_summary_is_read_without_a_seal(done):
    # summary.json is derived and written unsealed: reading it (the number of folds of an
    # instance whose last fold file is gone) is no seal problem.
    from xval.core.layout import InstanceLayout
    from xval.core.storage import TaskRules

    _, folder = done
    layout = InstanceLayout(folder / "instance_1", 1)
    (layout.root / "fold_2.json").unlink()
    (layout.root / "fold_2.keras").unlink()
    files = ResultsStore().instance(layout, None, lambda task: TaskRules())
    assert files.unreadable == [] and files.num_folds == 3


def test_predictions_are_sealed_in_their_fold_record(done):
    """What an ensemble or a figure reads of a fold (its predictions, its plot data) is as
    sealed as its metrics (issue 64, point 1): the fold record keeps each file's SHA-256,
    and a file edited by hand, or one that no fold wrote, is refused naming it and the fix;
    a fold record written before the hashes were kept has its files read as they are."""
    from xval.core.layout import InstanceLayout
    from xval.core.storage import RESULTS_STORE

    _, root = done
    layout = InstanceLayout(root / "instance_1", 1)
    record = json.loads(layout.fold_file(0).read_text())
    assert sorted(record["outputs_sha256"]) == ["predictions_fold_0.csv",
                                               "val_predictions_fold_0.csv"]
    rows = RESULTS_STORE.predictions(layout, 0)
    assert rows and RESULTS_STORE.val_predictions(layout, 0)
    path = layout.predictions(0)
    path.write_text(path.read_text().replace("0.", "0.9", 1))
    with pytest.raises(ResultsConflictError, match=re.escape(
            f"{path} was changed after fold 0 wrote it (its content differs from the SHA-256 "
            "recorded in fold_0.json), so it cannot be believed; restore it from a backup, "
            "or write it again: rerun the instance with --overwrite")):
        RESULTS_STORE.predictions(layout, 0)
    extra = layout.plot_data(0)
    extra.write_text("{}")
    with pytest.raises(ResultsConflictError, match=re.escape(
            f"{extra} is not a file fold 0 wrote (fold_0.json records the SHA-256 of "
            "predictions_fold_0.csv, val_predictions_fold_0.csv only)")):
        RESULTS_STORE.plot_data(layout, 0)
    older = layout.fold_file(1)  # as written before the hashes were kept
    _edit(older, lambda r: r.pop("outputs_sha256"))
    RESULTS_STORE.write(older, FoldResult.from_dict(json.loads(older.read_text())))
    assert json.loads(older.read_text())["outputs_sha256"] == {}
    edited = layout.predictions(1)
    edited.write_text(edited.read_text().replace("0.", "0.9", 1))
    assert RESULTS_STORE.predictions(layout, 1)  # nothing to check it against
