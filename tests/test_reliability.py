"""Reliability: no garbage reported as a result, clear errors, nothing lost (issue 9)."""

import json
import re

import pytest

from tests.conftest import run_script, run_script_here, write_script
from xval import Experiment, Output
from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.files import lock
from xval.core.hashing import seal
from xval.report.results import ExperimentResults

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1", "comment_2": "c2",
        "hidden_units": 8, "num_layers": 1, "epochs": 3, "batch_size": 16}
DIVERGE = {"learning_rate": 1e6, "optimizer": "sgd", "save_model_metric": "val_accuracy",
           "epochs": 2}


def experiment(config_path, instances=None, **kwargs):
    exp = Experiment(description="reliability", dataset="tiny", number=1,
                     num_folds=kwargs.pop("num_folds", 3), config=str(config_path), **kwargs)
    for k, extra in (instances or {1: {}}).items():
        exp[k] = {**BASE, **extra}
    return exp


def inst_dir(config, k=1):
    return config.results_dir / "tiny" / "experiment_1" / f"instance_{k}"


def quiet(*args):
    return None


# -- 1. diverged training is never a result ------------------------------------------------

def test_diverged_training_is_a_failed_fold_never_selected(config_path, config, store):
    exp = experiment(config_path, {1: {}, 2: DIVERGE})
    outcome = exp.run(config=config, output=Output(out=quiet))
    assert outcome.exit_code == 1 and outcome.failed == [2]
    fold = json.loads((inst_dir(config, 2) / "fold_0.json").read_text())
    assert fold["status"] == "failed" and "diverged" in fold["message"]
    assert "non-finite" in fold["message"] or "loss is" in fold["message"]
    assert not (inst_dir(config, 2) / "fold_0.keras").exists()
    results = ExperimentResults(inst_dir(config).parent)
    assert results.best("accuracy").id == 1
    assert results[2].status == "failed"


# -- 5. GPU ids ----------------------------------------------------------------------------

SCRIPT = """
from xval import Experiment
experiment = Experiment(description="cli", dataset="tiny", number=1,
                        config={config!r}{extra})
experiment[1] = {base!r}
{more}
if __name__ == "__main__":
    experiment.main()
"""


def script(tmp_path, config_path, extra=", num_folds=3", more="", base=None):
    return write_script(tmp_path, SCRIPT.format(config=str(config_path), extra=extra,
                                                more=more, base=base or BASE))


@pytest.mark.parametrize("args, match", [
    (["1", "1", "abc"], "GPU id 'abc': expected a GPU number"),
    (["1", "1", "1.5"], "GPU id '1.5': expected a GPU number"),
    (["--gpus", ","], "--gpus ',': expected comma-separated GPU numbers"),
    (["--gpus", "0,x"], "--gpus '0,x'"),
    (["--instances", ","], "--instances ',': expected comma-separated integers"),
    (["--instances", "1,,2"], "--instances '1,,2'"),
    (["--executor", "threads"], "invalid choice: 'threads'"),
])
def test_bad_command_line_values_are_one_line_errors(args, match, tmp_path, config_path,
                                                      store):
    # In this process: the parsing of the command line (its process: the declaration
    # errors below, and test_entry.py).
    proc = run_script_here(script(tmp_path, config_path), *args, "--dry-run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert match in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_gpu_id_validation_in_python():
    from xval.core.backend import normalize_gpu

    assert normalize_gpu(None) is None and normalize_gpu(1) == "1"
    assert normalize_gpu("cpu") == "-1" and normalize_gpu(-1) == "-1"
    for bad in ("abc", 1.5, "", "-2", True):
        with pytest.raises(ConfigurationError, match="expected a GPU number"):
            normalize_gpu(bad)


# -- 6. errors while declaring the experiment -----------------------------------------------

@pytest.mark.parametrize("extra, more, match", [
    (", num_folds_x=1", "", "unexpected keyword"),
    (", num_folds=0", "", "num_folds=0: expected an integer >= 1"),
    (", task_type='nope'", "", "task_type='nope': expected one of"),
    (", num_folds=3", "experiment['x'] = []", "Instance id 'x': expected an integer"),
])
def test_declaration_errors_are_one_line_on_stderr_exit_2(extra, more, match, tmp_path,
                                                           config_path, store):
    proc = run_script(script(tmp_path, config_path, extra=extra, more=more))
    if match == "unexpected keyword":  # a Python TypeError, not ours: a traceback is right
        assert proc.returncode == 1
        return
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: ") and match in proc.stderr
    assert proc.stdout == ""


def test_declaration_errors_raise_when_imported():
    with pytest.raises(ConfigurationError, match="num_folds=0"):
        Experiment(description="d", dataset="tiny", number=1, num_folds=0)


# -- 7. corrupt result files -----------------------------------------------------------------

def test_unreadable_fold_files_are_rerun(config_path, config, store):
    experiment(config_path).run(config=config, output=Output(out=quiet))
    d = inst_dir(config)
    good = json.loads((d / "fold_2.json").read_text())
    (d / "fold_0.json").write_text('{"status": "ok", "metr')  # truncated
    with open(d / "fold_1.keras", "ab") as f:  # the model no longer matches its hash
        f.write(b"garbage")
    (d / "summary.json").write_text(json.dumps({"status": "complete", "metrics": {}}))
    results = ExperimentResults(d.parent)
    assert results[1].unreadable == ["fold_0.json"]
    assert results[1].status == "partial"  # recomputed from the fold files, not summary.json
    lines = []
    outcome = experiment(config_path).run(config=config, output=Output(out=lines.append))
    assert outcome.exit_code == 0
    text = "\n".join(lines)
    assert re.search(r"instance 1 fold 0: fold_0\.json is not valid JSON \(JSONDecodeError: "
                     r"[^\n]*\); it will be rerun", text), text
    assert "fold_1.keras does not match its recorded SHA-256" in text or \
        "fold_1.keras has" in text
    assert "folds [2] already done; resuming at fold 0" in text
    assert json.loads((d / "fold_2.json").read_text()) == good  # untouched
    assert ExperimentResults(d.parent)[1].status == "complete"


def test_fold_files_that_cannot_be_believed_are_named_and_rerun(config_path, config, store):
    """A fold file is a claim (issue 25): a metric out of its range, a missing or swapped
    model, another fold's number: each fold is invalid, said on one line, left out of the
    summary, and trained again on the next run; the believable folds are kept."""
    from xval.core.layout import ExperimentLayout
    from xval.core.storage import RESULTS_STORE
    from xval.running.recorder import Recorder

    exp = experiment(config_path, {1: {}, 2: {}})
    assert exp.run(config=config, output=Output(out=quiet)).exit_code == 0
    one, two = inst_dir(config, 1), inst_dir(config, 2)
    fold = json.loads((one / "fold_0.json").read_text())
    fold["metrics"]["test"]["accuracy"] = 7.5
    # Sealed again, as a deliberate edit would be: the range check answers.
    (one / "fold_0.json").write_text(json.dumps(seal(fold)))
    (one / "fold_1.keras").unlink()
    kept = (one / "fold_2.json").read_text()
    models = [(two / f"fold_{i}.keras").read_bytes() for i in (0, 1)]
    (two / "fold_0.keras").write_bytes(models[1])
    (two / "fold_1.keras").write_bytes(models[0])
    (two / "fold_2.json").write_text((two / "fold_0.json").read_text())  # says fold 0

    layout = ExperimentLayout(inst_dir(config).parent)
    summary = Recorder(layout, config, 3, task_type="classification",
                       results_store=RESULTS_STORE).finish_instance(1)
    assert summary.status == "partial" and summary.folds_done == 1
    assert set(summary.invalid) == {0, 1} and "outside the valid range" in summary.invalid[0]
    saved = json.loads((one / "summary.json").read_text())
    assert set(saved["invalid"]) == {"0", "1"}
    assert saved["metrics"]["segment"]["test"]["accuracy"]["n"] == 1

    lines = []
    assert exp.run(config=config, output=Output(out=lines.append)).exit_code == 0
    said = [line for line in lines if line.endswith("it will be rerun.")]
    assert len(said) == 5, said
    text = "\n".join(said)
    assert "instance 1 fold 0: fold_0.json is invalid: its test accuracy is 7.5, outside " \
        "the valid range [0.0, 1.0]; it will be rerun." in text
    assert "instance 1 fold 1: fold_1.json is invalid: fold_1.keras is missing" in text
    for i in (0, 1):
        assert re.search(rf"instance 2 fold {i}: fold_{i}.json is invalid: fold_{i}.keras "
                         r"(does not match its recorded SHA-256|has \d+ bytes, not the "
                         r"recorded \d+)", text), text
    assert "instance 2 fold 2: fold_2.json is invalid: it says fold 0 but is the file of " \
        "fold 2" in text
    assert "instance 1: folds [2] already done; resuming at fold 0." in lines
    assert (one / "fold_2.json").read_text() == kept  # the believable fold is kept
    results = ExperimentResults(inst_dir(config).parent)
    assert results[1].status == results[2].status == "complete"
    for k in (1, 2):
        summary = json.loads((inst_dir(config, k) / "summary.json").read_text())
        assert summary["status"] == "complete" and summary["invalid"] == {}
        assert json.loads((inst_dir(config, k) / "fold_0.json").read_text())[
            "metrics"]["test"]["accuracy"] <= 1.0


@pytest.mark.parametrize("name, match", [
    ("params.json", "instance_1/params.json is not valid JSON .*--overwrite"),
    ("folds.json", "folds.json is not valid JSON .*Restore it"),
])
def test_truncated_params_or_folds_file_is_a_clear_error(name, match, config_path, config,
                                                         store):
    experiment(config_path).run(config=config, output=Output(out=quiet))
    path = inst_dir(config) / name if name == "params.json" else \
        inst_dir(config).parent / name
    path.write_text(path.read_text()[:25])
    with pytest.raises(ResultsConflictError, match=match):
        experiment(config_path).run(config=config, output=Output(out=quiet))


def test_report_names_a_truncated_folds_file(tmp_path, config_path, config, store):
    import subprocess
    import sys

    from tests.conftest import ROOT

    experiment(config_path).run(config=config, output=Output(out=quiet))
    folds = inst_dir(config).parent / "folds.json"
    folds.write_text("{")
    proc = subprocess.run([sys.executable, "-m", "xval", "report", str(folds.parent),
                           "--config", str(config_path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2 and "folds.json is not valid JSON" in proc.stderr


# -- 8. exit codes ---------------------------------------------------------------------------

def test_runner_that_skipped_instances_held_elsewhere_exits_3(tmp_path, config_path, config,
                                                              store):
    path = script(tmp_path, config_path, more=f"experiment[2] = {BASE!r}")
    exp_dir = inst_dir(config).parent
    exp_dir.mkdir(parents=True)
    held = lock(exp_dir / "instance_2")
    held.acquire()
    try:
        proc = run_script(path)
    finally:
        held.release()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "instance 2: running in another runner; skipped here." in proc.stdout
    assert "instance(s) [2] are running in another runner" in proc.stderr
    assert json.loads((exp_dir / "instance_1" / "summary.json").read_text())["status"] == \
        "complete"


# -- 9. --overwrite keeps the old results until the new ones exist ----------------------------

def test_overwrite_keeps_old_results_aside_until_the_new_ones_complete(config_path, config,
                                                                      store):
    experiment(config_path).run(config=config, output=Output(out=quiet))
    d = inst_dir(config)
    old = {p.name: p.read_bytes() for p in d.glob("fold_*.json")}
    aside = d.with_name("instance_1.previous")
    # An overwrite whose new results fail keeps the old ones, complete, aside.
    outcome = experiment(config_path, {1: DIVERGE}).run(config=config, overwrite=True,
                                                         output=Output(out=quiet))
    assert outcome.exit_code == 1
    assert {p.name: p.read_bytes() for p in aside.glob("fold_*.json")} == old
    assert ExperimentResults(d.parent)[1].status == "failed"
    # A second overwrite keeps that same complete copy aside (not the failed attempt), and
    # drops it once the new results complete.
    lines = []
    outcome = experiment(config_path, {1: {"learning_rate": 0.003}}).run(
        config=config, overwrite=True, output=Output(out=lines.append))
    assert outcome.exit_code == 0 and not aside.exists()
    assert any("moved to instance_1.previous" in line for line in lines)
    assert ExperimentResults(d.parent)[1].params["learning_rate"] == 0.003


# -- 11. code snapshot -----------------------------------------------------------------------

def test_snapshot_only_when_the_code_changed(tmp_path, config_path, store):
    path = script(tmp_path, config_path)
    for _ in range(2):  # the script read again each time, as a new process reads it
        assert run_script_here(path).returncode == 0
    code = tmp_path / "results" / "tiny" / "experiment_1" / "code"
    assert not (code / "runs").exists()  # a rerun that trains nothing adds no snapshot
    path.write_text(path.read_text().replace('"cli"', '"cli, edited"'))
    for _ in range(2):
        assert run_script_here(path).returncode == 0
    runs = list((code / "runs").iterdir())
    assert len(runs) == 1 and "cli, edited" in (runs[0] / path.name).read_text()
