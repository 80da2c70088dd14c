"""MLflow tracking: runs logged by the recorder listener, read back with MlflowClient from a
real local MLflow store."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_script_here, tiny_store, write_config, write_script
from xval import Experiment, Output
from xval.report.tracking import MLflowListener, tracking_uri

pytest.importorskip("mlflow")

INSTANCE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
            "comment_2": "", "hidden_units": 8}


def _runs(store_folder):
    from mlflow import MlflowClient

    uri, _ = tracking_uri(store_folder)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("xval.kind") == "instance"]
    children = sorted((r for r in runs if r.data.tags.get("xval.kind") == "fold"),
                      key=lambda r: int(r.data.tags["xval.fold"]))
    return client, parents, children


def test_tracking_uri_folder_or_uri(tmp_path):
    uri, artifacts = tracking_uri(tmp_path / "ml")
    assert uri == f"sqlite:///{tmp_path / 'ml' / 'mlflow.db'}"
    assert artifacts == tmp_path / "ml" / "artifacts"
    assert tracking_uri("http://localhost:5000") == ("http://localhost:5000", None)
    assert tracking_uri(None)[0].endswith("/mlruns/mlflow.db")


def _check_fold_runs(client, children, parent, inst):
    """Each fold's child run holds its metrics, history and model, as its file says."""
    for i, child in enumerate(children):
        fold = json.loads((inst / f"fold_{i}.json").read_text())
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.run_name == f"experiment_1/instance_1/fold_{i}"
        for split in ("train", "val", "test"):
            assert child.data.metrics[f"{split}_accuracy"] == \
                pytest.approx(fold["metrics"][split]["accuracy"])
        history = client.get_metric_history(child.info.run_id, "history/loss")
        assert [m.step for m in history] == list(range(1, fold["epochs_run"] + 1))
        assert [m.value for m in history] == pytest.approx(fold["history"]["loss"])
        artifacts = client.list_artifacts(child.info.run_id)
        assert [(a.path, a.file_size) for a in artifacts] == \
            [(f"fold_{i}.keras", fold["model_size"])]


def test_mlflow_runs_read_back_and_reruns_do_not_duplicate(config, tmp_path):
    tiny_store(config.data_dir)
    store_folder = tmp_path / "mlruns"
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                     parameters={"epochs": 2, "batch_size": 16}, config=str(config.path))
    exp[1] = INSTANCE
    exp.run(config=config, output=Output(out=lambda *a: None, listeners=[MLflowListener(store_folder)]))
    client, parents, children = _runs(store_folder)
    assert [p.info.run_name for p in parents] == ["experiment_1/instance_1"]
    parent = parents[0]
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    assert parent.data.params["architecture"] == "mlp"
    assert parent.data.params["hidden_units"] == "8"
    summary = json.loads((inst / "summary.json").read_text())
    mean = summary["metrics"]["segment"]["test"]["accuracy"]["mean"]
    assert parent.data.metrics["test_accuracy"] == pytest.approx(mean)
    assert parent.data.metrics["test_accuracy_std"] == pytest.approx(
        summary["metrics"]["segment"]["test"]["accuracy"]["std"])
    assert parent.info.status == "FINISHED"
    assert len(children) == 2
    _check_fold_runs(client, children, parent, inst)
    # A rerun finds every fold done: no new runs.
    exp.run(config=config, output=Output(out=lambda *a: None, listeners=[MLflowListener(store_folder)]))
    _, parents2, children2 = _runs(store_folder)
    assert [p.info.run_id for p in parents2] == [parent.info.run_id]
    assert [c.info.run_id for c in children2] == [c.info.run_id for c in children]
    # The listener told again about a fold and an instance it logged adds nothing...
    from xval.core.records import FoldResult
    from xval.report.results import InstanceResult

    listener = MLflowListener(store_folder)
    listener.on_fold(FoldResult.from_dict(json.loads((inst / "fold_0.json").read_text())), inst)
    listener.on_instance(InstanceResult(inst))
    _, parents2, children2 = _runs(store_folder)
    assert [c.info.run_id for c in children2] == [c.info.run_id for c in children]
    assert len(client.get_metric_history(parent.info.run_id, "test_accuracy")) == 1
    # ...and a fold retrained on resume replaces its run under the same parent.
    (inst / "fold_1.json").unlink()
    exp.run(config=config, output=Output(out=lambda *a: None, listeners=[MLflowListener(store_folder)]))
    _, parents2, children2 = _runs(store_folder)
    assert [p.info.run_id for p in parents2] == [parent.info.run_id]
    assert children2[0].info.run_id == children[0].info.run_id
    new_sha = json.loads((inst / "fold_1.json").read_text())["model_sha256"]
    assert len(children2) == 2 and children2[1].data.tags["xval.fingerprint"] == new_sha
    assert children2[1].data.tags["mlflow.parentRunId"] == parent.info.run_id
    # An overwrite with other parameters replaces the runs instead of adding to them.
    exp.instances[1] = {**INSTANCE, "hidden_units": 4}  # the script edited
    exp.run(config=config, output=Output(out=lambda *a: None, listeners=[MLflowListener(store_folder)]), overwrite=True)
    _, parents3, children3 = _runs(store_folder)
    assert len(parents3) == 1 and parents3[0].info.run_id != parent.info.run_id
    assert parents3[0].data.params["hidden_units"] == "4"
    assert len(children3) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children3} == {parents3[0].info.run_id}


SCRIPT = """
from xval import Experiment

experiment = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                        parameters={{"epochs": 1, "batch_size": 16}}, config={config!r})
experiment[1] = {instance!r}

if __name__ == "__main__":
    experiment.main()
"""

# Runs the script with mlflow made unimportable.
WITHOUT_MLFLOW = """
import runpy, sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def test_mlflow_flag_logs_runs_and_needs_mlflow(tmp_path):
    config_path = write_config(tmp_path)
    tiny_store(tmp_path / "data")
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), instance=INSTANCE))
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    missing = subprocess.run([sys.executable, "-c", WITHOUT_MLFLOW, str(script), "--mlflow"],
                             capture_output=True, text=True, cwd=tmp_path, env=env)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"error: --mlflow needs mlflow, not installed: pip install -e '{ROOT}[mlflow]'. "
        "Nothing was trained or written.")
    assert not (tmp_path / "results").exists()  # refused before anything was written
    proc = run_script_here(script, "--mlflow")
    assert proc.returncode == 0, proc.stderr
    # The default store: mlruns/ in the current directory (the script's folder here).
    _, parents, children = _runs(tmp_path / "mlruns")
    assert [p.info.run_name for p in parents] == ["experiment_1/instance_1"]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
