"""Repeated cross-validation (`num_repeats`): declared or given with `--set`, every repeat in
`folds.json`, a run killed and resumed, the workbook read back, `compare` and the CIs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from openpyxl import load_workbook
from scipy import stats

from tests.conftest import run_here, run_script_here, tiny_store, write_script
from tests.manifests import record_text
from xval import Experiment, Output
from xval.core.errors import ConfigurationError, ResultsConflictError
from xval.core.hashing import json_digest
from xval.core.layout import ExperimentLayout
from xval.core.records import FoldResult, FoldsManifest, InstanceSummary, Status
from xval.core.storage import ResultsStore
from xval.folds import ItemKFold, fold_manifest
from xval.report.comparison import FoldsMismatchError, Target, compare, fold_grid, fold_scores
from xval.report.results import ExperimentResults
from xval.report.stats import corrected_repeated_ttest, fold_test_train_ratio

MLP = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8, "num_layers": 1,
       "batch_size": 8, "comment_1": "mlp", "comment_2": ""}

SCRIPT = """
from xval import Experiment
experiment = Experiment(description="repeats", dataset="tiny", number=1, num_folds=2,
                        config={config!r})
experiment[1] = {spec!r}
if __name__ == "__main__":
    experiment.main()
"""


def quiet(*args):
    return None


def _items(fold):
    return {*fold["train"], *fold["val"], *fold["test"]}


def _kill_after_second_fold(script, tmp_path, exp_dir):
    """Starts `script --set num_repeats=2` and kills it (SIGKILL) once fold 1 is recorded."""
    args = [sys.executable, str(script), "--set", "num_repeats=2", "-q"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    target = exp_dir / "instance_1" / "fold_1.json"
    deadline = time.monotonic() + 300
    while not target.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (exp_dir / "instance_1").glob("fold_*.json"))
    assert 2 <= len(done) < 4, done


def _check_report(exp_dir, items):
    """folds.json holds both repeats; the summary's CI, the Folds and Statistics sheets."""
    manifest = json.loads((exp_dir / "folds.json").read_text())
    assert manifest["num_repeats"] == 2 and manifest["num_folds"] == 4
    folds = manifest["folds"]
    for repeat in (folds[:2], folds[2:]):  # each repeat tests every item exactly once
        assert sorted(i for fold in repeat for i in fold["test"]) == items
        assert all(sorted(_items(fold)) == items for fold in repeat)
    assert [f["test"] for f in folds[:2]] != [f["test"] for f in folds[2:]]
    r = ExperimentResults(exp_dir)[1]
    assert r.status == "complete" and r.summary.num_repeats == 2
    acc = {f.fold: f.metrics["test"]["accuracy"] for f in r.folds}
    means = [np.mean([acc[0], acc[2]]), np.mean([acc[1], acc[3]])]
    stat = r.summary.metrics["segment"]["test"]["accuracy"]
    assert stat.n == 4 and stat.mean == pytest.approx(np.mean(list(acc.values())))
    assert stat.ci95 == pytest.approx(stats.t.ppf(0.975, 1) * np.std(means, ddof=1)
                                      / np.sqrt(2))
    book = load_workbook(exp_dir / "experiment_1.xlsx")
    fold_rows = [row for row in book["Folds"].iter_rows(min_row=2, values_only=True)
                 if row[0] == 1]
    assert sorted(row[1] for row in fold_rows) == [0, 1, 2, 3]
    notes = [c.value for row in book["Statistics"].iter_rows() for c in row
             if isinstance(c.value, str)]
    assert any("Bouckaert & Frank" in n and "2 repeats" in n for n in notes)
    return manifest["hash"]


def _check_compare(exp_dir, two_dir, tmp_path):
    """Two experiments on the same repeated folds: paired over 2 x 2 folds."""
    comparison = compare([Target(exp_dir), Target(two_dir)])
    (pair,) = comparison.pairs
    r, other = ExperimentResults(exp_dir)[1], ExperimentResults(two_dir)[1]
    a, b = (fold_scores(x, comparison.metric, "test", comparison.level) for x in (r, other))
    first, second, used = fold_grid(a, b, 2, 4)
    assert first.shape == (2, 2) and used == [0, 1, 2, 3] and pair.folds == 4
    ratio = fold_test_train_ratio([*r.folds, *other.folds])
    assert pair.p == pytest.approx(corrected_repeated_ttest(first, second, ratio).p)
    from xval.cli.main import main

    proc = run_here(main, "compare", exp_dir, two_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tiny/experiment_1:1" in proc.stdout and "tiny/experiment_2:1" in proc.stdout


@pytest.mark.slow
def test_num_repeats_from_set_runs_resumes_after_a_kill_and_reports(tmp_path, config_path,
                                                                     config, store):
    """`--set num_repeats=2` on a 2-fold experiment: 4 folds, repeat by repeat; killed after
    its second fold, the same command resumes; the workbook, the summary's CI, refit and
    compare (against the same folds declared in Python, and against one repeat) see it."""
    spec = {**MLP, "epochs": 15, "patience": 15}
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), spec=spec))
    exp_dir = config.results_dir / "tiny" / "experiment_1"
    _kill_after_second_fold(script, tmp_path, exp_dir)
    again = run_script_here(script, "--set", "num_repeats=2")  # the resume, in this process
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming at fold" in again.stdout
    assert "Folds: 2 requested x 2 repeats (4 folds)" in again.stdout
    folds_hash = _check_report(exp_dir, sorted(set(map(str, store.items))))
    refit = run_script_here(script, "--refit", "1")  # plans with the repeats of folds.json
    assert refit.returncode == 0, refit.stdout + refit.stderr
    assert (exp_dir / "instance_1" / "final.keras").exists()

    two = Experiment(description="repeats b", dataset="tiny", number=2, num_folds=2,
                     num_repeats=2, config=str(config_path))  # the same folds, from Python
    two[1] = {**MLP, "epochs": 2, "patience": 2, "comment_1": "short"}
    assert two.run(config=config, output=Output(out=quiet)).exit_code == 0
    two_dir = config.results_dir / "tiny" / "experiment_2"
    assert json.loads((two_dir / "folds.json").read_text())["hash"] == folds_hash
    _check_compare(exp_dir, two_dir, tmp_path)

    one = Experiment(description="one repeat", dataset="tiny", number=3, num_folds=2,
                     config=str(config_path))  # one repeat: other folds, not paired
    one[1] = {**MLP, "epochs": 1, "patience": 1}
    assert one.run(config=config, output=Output(out=quiet)).exit_code == 0
    with pytest.raises(FoldsMismatchError, match="different fold manifests"):
        compare([Target(exp_dir), Target(config.results_dir / "tiny" / "experiment_3")])


def test_num_repeats_set_on_the_command_line_changes_the_folds(config_path, config, store):
    """`--set num_repeats` is an experiment setting: the dry run plans every repeat, and the
    declaration itself is left as declared."""
    exp = Experiment(description="d", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp[1] = {**MLP, "epochs": 1}
    lines = []
    exp.run(config=config, overrides={"num_repeats": 3}, dry_run=True, output=Output(out=lines.append))
    assert exp.num_repeats == 1
    assert "n_repeats=3" in lines[2]  # the splitter, in the folds line
    assert sum(line.startswith("  fold ") for line in lines) == 9
    assert "  fold 8 (repeat 2, fold 2):" in "\n".join(lines)
    assert not config.results_dir.exists()


@pytest.mark.parametrize("overrides, match", [
    ({"num_repeats": 0}, r"num_repeats=0: expected an integer >= 1"),
    ({"num_repeats": "2"}, r"num_repeats='2': expected int"),
])
def test_num_repeats_bad_values_fail_before_anything_runs(overrides, match, config_path,
                                                          config, store):
    exp = Experiment(description="d", dataset="tiny", number=1, num_folds=2,
                     config=str(config_path))
    exp[1] = {**MLP, "epochs": 1}
    with pytest.raises(ConfigurationError, match=match):
        exp.run(config=config, overrides=overrides, output=Output(out=quiet))
    assert not config.results_dir.exists()


def test_num_repeats_checked_and_its_earlier_name_gone():
    settings = {"description": "d", "dataset": "tiny", "number": 1}
    assert Experiment(**settings, num_repeats=3).num_repeats == 3
    with pytest.raises(TypeError, match="n_repeats"):
        Experiment(**settings, n_repeats=3)
    with pytest.raises(ConfigurationError, match="num_repeats=0: expected an integer >= 1"):
        Experiment(**settings, num_repeats=0)


def test_num_repeats_on_predefined_splits_is_refused(config_path, config):
    tiny_store(config.data_dir, "split", split=lambda i: ("train", "train", "train", "val",
                                                          "test", "test")[i])
    exp = Experiment(description="d", dataset="split", number=1, num_folds=1,
                     num_repeats=2, config=str(config_path))
    exp[1] = {**MLP, "epochs": 1}
    with pytest.raises(ConfigurationError,
                       match=r"num_repeats=2: dataset 'split' has predefined .* set "
                             "num_repeats=1"):
        exp.run(config=config, output=Output(out=quiet))
    assert not config.results_dir.exists()


def test_num_repeats_command_line_error_is_one_line(tmp_path, config_path, store):
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path),
                                                  spec={**MLP, "epochs": 1}))
    proc = run_script_here(script, "--set", "num_repeats=-1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: num_repeats=-1: expected an integer >= 1."]


def test_fold_manifest_records_repeats_and_keeps_old_hashes(tmp_path):
    groups = np.repeat([f"s{i}" for i in range(6)], 3)
    one = ItemKFold(3)
    body = fold_manifest(one, one.split_items(groups), "abc")
    old = {"splitter": body["splitter"], "dataset_hash": "abc", "folds": body["folds"]}
    assert body["num_repeats"] == 1 and body["hash"] == json_digest(old)  # as before repeats
    two = ItemKFold(3, n_repeats=2)
    body = fold_manifest(two, two.split_items(groups), "abc")
    manifest = FoldsManifest.from_dict(body)
    assert manifest.num_repeats == 2 and manifest.num_folds == 6
    assert manifest.repeat_of(4) == (1, 1) and manifest.content_hash() == manifest.hash
    layout = ExperimentLayout(tmp_path)
    layout.folds_file.write_text(record_text({**body, "num_repeats": 4}))
    with pytest.raises(ResultsConflictError, match="does not divide its 6 folds"):
        ResultsStore().manifest(layout)
    layout.folds_file.write_text(record_text({**body, "num_repeats": 1}))
    with pytest.raises(ResultsConflictError, match="edited"):
        ResultsStore().manifest(layout)


def test_summary_ci_of_repeats_is_over_fold_order_means():
    scores = [0.6, 0.7, 0.8, 0.5, 0.65, 0.9]  # 2 repeats x 3 folds

    def fold(i, value):
        return FoldResult(instance=1, fold=i, status=Status.OK,
                          metrics={"test": {"accuracy": value}})

    folds = [fold(i, v) for i, v in enumerate(scores)]
    stat = InstanceSummary.from_folds(folds, 6, num_repeats=2).metrics["segment"]["test"][
        "accuracy"]
    means = [np.mean(scores[f::3]) for f in range(3)]
    assert stat.ci95 == pytest.approx(stats.t.ppf(0.975, 2) * np.std(means, ddof=1)
                                      / np.sqrt(3))
    assert stat.mean == pytest.approx(np.mean(scores)) and stat.n == 6
    assert stat.std == pytest.approx(np.std(scores, ddof=1))
    plain = InstanceSummary.from_folds(folds, 6).metrics["segment"]["test"]["accuracy"]
    assert plain.ci95 == pytest.approx(stats.t.ppf(0.975, 5) * np.std(scores, ddof=1)
                                       / np.sqrt(6))
