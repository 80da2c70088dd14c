"""End to end: experiment scripts, validation before training, results, resume, runners."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import (
    ROOT,
    OutputWatcher,
    run_script,
    run_script_here,
    tiny_store,
    write_config,
    write_script,
)
from xval import Experiment, Output
from xval.core.errors import ConfigurationError, ParameterError, ResultsConflictError

FAST = {"epochs": 3, "patience": 2, "batch_size": 16}
BASE = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="c1"',
        'comment_2="c2"', "filters=4"]


def make_experiment(config_path, n_instances=2, **kwargs):
    settings = {"description": "test", "dataset": "tiny", "number": 1, "num_folds": 3,
                "parameters": FAST, "config": str(config_path)}
    settings.update(kwargs)
    exp = Experiment(**settings)
    for k in range(1, n_instances + 1):
        exp[k] = BASE + [f"learning_rate={0.01 * k}"]
    return exp


def exp_dir(config, number=1, dataset="tiny"):
    return config.results_dir / dataset / f"experiment_{number}"


def test_experiment_trains_and_writes_results(config_path, config, store):
    exp = make_experiment(config_path)
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0 and outcome.failed == []
    d = exp_dir(config)
    assert (d / "experiment_1_description.txt").read_text().startswith("test")
    manifest = json.loads((d / "folds.json").read_text())
    assert manifest["num_folds"] == 3 and len(manifest["hash"]) == 64
    tested = sorted(i for f in manifest["folds"] for i in f["test"])
    assert tested == sorted(set(store.items))
    for k in (1, 2):
        inst = d / f"instance_{k}"
        params = json.loads((inst / "params.json").read_text())
        assert params["params"]["learning_rate"] == pytest.approx(0.01 * k)
        assert len(params["hash"]) == 64
        for i in range(3):
            fold = json.loads((inst / f"fold_{i}.json").read_text())
            assert fold["status"] == "ok"
            assert set(fold["metrics"]) == {"train", "val", "test"}
            m = fold["metrics"]["test"]
            assert {"loss", "accuracy", "f1", "precision", "recall"} <= set(m)
            assert np.asarray(m["confusion_matrix"]).sum() == fold["n_rows"]["test"]
            assert fold["clip_metrics"]["test"]["accuracy"] >= 0  # 2 segments per clip
            assert len(fold["history"]["loss"]) == fold["epochs_run"]
            assert 1 <= fold["best_epoch"] <= fold["epochs_run"]
            assert (inst / f"fold_{i}.keras").is_file()
            assert not list(inst.glob("*.partial.keras"))
            preds = (inst / f"predictions_fold_{i}.csv").read_text().splitlines()
            assert preds[0].startswith("row,item,clip,label,target,predicted,p_class0")
            assert len(preds) - 1 == fold["n_rows"]["test"]
        summary = json.loads((inst / "summary.json").read_text())
        assert summary["status"] == "complete" and summary["folds_done"] == 3
        assert not (inst / "plots").exists()  # [report] plots = false (write_config's)
        acc = summary["metrics"]["segment"]["test"]["accuracy"]
        folds = [json.loads((inst / f"fold_{i}.json").read_text()) for i in range(3)]
        assert acc["mean"] == pytest.approx(np.mean([f["metrics"]["test"]["accuracy"]
                                                     for f in folds]))
        assert acc["std"] == pytest.approx(np.std([f["metrics"]["test"]["accuracy"]
                                                   for f in folds], ddof=1))
    code = d / "code"
    assert (code / "config.ini").is_file()
    assert (code / "xval" / "running" / "experiment.py").is_file()
    assert (code / "architectures" / "cnn.py").is_file()
    assert "keras==" in (code / "pip_freeze.txt").read_text()
    env = json.loads((code / "environment.json").read_text())
    assert env["backend"] == "torch" and env["keras"]
    assert not list(d.rglob("*.pkl")) and not list(d.rglob("*.pickle"))
    # The model learned something: well above chance (1/3) on held-out items.
    assert outcome.results[1].metric("accuracy", "test") > 0.5


def test_a_rerun_draws_missing_plots_only_with_plots_on(tmp_path, config_path, config, store):
    """`[report] plots = false` (write_config's): a rerun of a finished instance leaves it as
    it is (no plots, its summary not rewritten); with `plots = true` the rerun draws the
    plots it lacks, without training a fold again."""
    from xval.config.loader import load_config

    exp = make_experiment(config_path, n_instances=1)
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    inst = exp_dir(config) / "instance_1"
    stamps = {f: (inst / f).stat().st_mtime_ns for f in ("summary.json", "fold_0.json")}
    lines = []
    assert exp.run(config=config, output=Output(out=lines.append)).exit_code == 0
    assert "instance 1: all 3 folds already done; skipped." in lines
    assert not (inst / "plots").exists()
    assert (inst / "summary.json").stat().st_mtime_ns == stamps["summary.json"]
    plotting = load_config(write_config(tmp_path, report={"plots": True}))
    assert make_experiment(config_path, n_instances=1).run(
        config=plotting, output=Output(out=lambda *a: None)).exit_code == 0
    assert (inst / "plots" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (inst / "fold_0.json").stat().st_mtime_ns == stamps["fold_0.json"]


def test_experiment_fold_items_never_shared(config_path, config, store):
    exp = make_experiment(config_path, n_instances=1)
    exp.run(config=config, output=Output(out=lambda *a: None))
    for i in range(3):
        fold = json.loads((exp_dir(config) / "instance_1" / f"fold_{i}.json").read_text())
        sets = [set(fold["items"][k]) for k in ("train", "val", "test")]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


@pytest.mark.parametrize("spec,error,match", [
    (['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="a"',
      'comment_2="b"', "learning_rate=1e-3x"], ParameterError, "not a Python literal"),
    (BASE + ["learnig_rate=0.1"], ParameterError, "Did you mean learning_rate"),
    (BASE + ['epochs="3"'], ParameterError, "epochs='3' is a str; expected a int"),
    (BASE[1:4], ParameterError, "no architecture"),
])
def test_experiment_bad_instance_fails_before_training_and_writes_nothing(
        config_path, config, store, spec, error, match):
    exp = make_experiment(config_path, n_instances=1)
    exp[2] = spec
    with pytest.raises(error, match=match):
        exp.run(config=config, output=Output(out=lambda *a: None))
    assert not config.results_dir.exists()


@pytest.mark.parametrize("first,last,match", [
    (0, 2, r"range 0..2 is outside the declared instances 1..2"),
    (2, 5, r"range 2..5 is outside"),
    (2, 1, "FIRST > LAST"),
])
def test_experiment_range_outside_declared(config_path, first, last, match):
    with pytest.raises(ConfigurationError, match=match):
        make_experiment(config_path).select(first, last)


def test_experiment_select():
    exp = Experiment(description="d", dataset="x", number=1)
    for k in (1, 2, 3, 5):
        exp[k] = {}
    assert exp.select() == [1, 2, 3, 5]
    assert exp.select(2, 5) == [2, 3, 5]
    assert exp.select(3) == [3]
    assert exp.select(instances=[5, 1]) == [5, 1]
    with pytest.raises(ConfigurationError, match=r"\[4\] are not declared"):
        exp.select(instances=[4])


@pytest.mark.parametrize("kwargs,match", [
    ({"task_type": "clustering"}, "task_type='clustering'"),
    ({"num_folds": 0}, "num_folds=0"),
    ({"number": "1"}, "number='1': expected int"),
    ({"debug_mode": "yes"}, "debug_mode='yes': expected bool"),
])
def test_experiment_bad_settings(kwargs, match):
    settings = {"description": "d", "dataset": "x", "number": 1, **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        Experiment(**settings)


def test_experiment_missing_dataset(config_path, config):
    exp = make_experiment(config_path, dataset="nope")
    with pytest.raises(Exception, match="not a feature store.*missing features.npy"):
        exp.run(config=config, output=Output(out=lambda *a: None))
    assert not config.results_dir.exists()


def test_experiment_more_folds_than_items(config_path, config, store):
    exp = make_experiment(config_path, num_folds=9)
    with pytest.raises(ConfigurationError, match=r"num_folds=9 needs at least 9 items .*there are 6\. Use num_folds 1 or 2 or 3 or 4 or 5 or 6"):
        exp.run(config=config, output=Output(out=lambda *a: None))
    assert not config.results_dir.exists()


def test_experiment_dry_run_writes_nothing(config_path, config, store):
    lines = []
    outcome = make_experiment(config_path).run(config=config, dry_run=True, output=Output(out=lines.append))
    assert outcome.exit_code == 0
    text = "\n".join(lines)
    assert "fold 2:" in text and "learning_rate = 0.02" in text
    assert not config.results_dir.exists()


def test_dry_run_shows_what_was_set_and_where(tmp_path, store):
    """Issue 55: per instance, only the values set above the package defaults, each with
    its source (config.ini, the experiment, the instance, --set, or fitted to the instance);
    a config.ini value equal to the package default and every untouched default are left
    out, and `python -m xval config SCRIPT K` (named on one line) prints them all."""
    from xval.config.loader import load_config

    config_path = write_config(tmp_path, training={"min_epochs": 15, "lr_schedule": "plateau",
                                                   "optimizer": "adam"})
    config = load_config(config_path)
    tiny_store(config.data_dir)
    exp = make_experiment(config_path, n_instances=1, parameters={"epochs": 4, "patience": 2})
    lines = []
    exp.run(config=config, dry_run=True, output=Output(out=lines.append), overrides={"batch_size": 8})
    start = next(i for i, line in enumerate(lines) if line.startswith("Instance 1"))
    shown = {line.split("=")[0].strip(): line.split("#")[1].strip()
             for line in lines[start + 1:] if line.startswith("  ")}
    assert shown == {"architecture": "instance 1", "reshaping_type": "instance 1",
                     "comment_1": "instance 1", "comment_2": "instance 1",
                     "filters": "instance 1", "learning_rate": "instance 1",
                     "epochs": "experiment", "patience": "experiment", "batch_size": "--set",
                     "lr_schedule": "config.ini", "min_epochs": "fitted to the instance",
                     # write_config's plain values that differ from the package defaults
                     "time_masks": "config.ini", "freq_masks": "config.ini",
                     "mixup_alpha": "config.ini", "label_smoothing": "config.ini",
                     "freq_warp": "config.ini", "time_warp": "config.ini",
                     "warmup_epochs": "config.ini"}
    assert "  min_epochs = 2 " in "\n".join(lines)  # epochs // 2
    assert lines[start - 1].endswith("(all of them: `python -m xval config "
                                     "tests/test_experiment.py K`):")  # the declaring file


def test_dry_run_prints_the_data_checks(config_path, config):
    """Issue 26: items per class, the folds the items allow, single-item validation sets,
    a class a fold cannot learn, imbalance and a short run, before anything is written."""
    import pandas as pd

    from preprocessing.store import write_store

    rows = [{"item": f"item{i}", "label": "common", "clip": f"item{i}/{k}",
             "source": f"item{i}_{k}.wav", "start": 0.0, "augmented": False}
            for i in range(6) for k in range(8)]
    rows += [{"item": "item0", "label": "rare", "clip": "item0/rare", "source": "rare.wav",
              "start": 0.0, "augmented": False}]
    features = np.random.default_rng(0).normal(size=(len(rows), 8, 6)).astype(np.float32)
    write_store(config.data_dir / "tiny", features, pd.DataFrame(rows), overwrite=True)
    lines = []
    experiment = make_experiment(config_path, n_instances=1,
                                 parameters={"epochs": 3, "mixup_alpha": 0.2})
    outcome = experiment.run(config=config, dry_run=True, output=Output(out=lines.append))
    assert outcome.exit_code == 0
    text = "\n".join(lines)
    assert "Data: 49 rows, 6 items, 2 classes (items per class: common 6, rare 1)." in text
    assert "Folds: 3 requested; 6 items allow num_folds 1, 2, 3, ... 6" in text
    assert "folds have a single validation item" in text
    assert "has no training rows of class(es) 'rare': it cannot learn them" in text
    assert "the classes are imbalanced: 'common' has 48 rows, 'rare' 1 (48.0x)" in text
    assert "instance 1 trains at most 3 epochs" in text and "mixup_alpha" in text
    assert not config.results_dir.exists()


def test_dry_run_says_when_rank_split_is_rounded_to_whole_items(tmp_path):
    """`rank_split` cuts each fold's validation items in whole items: where that moves the
    share noticeably (0.5 of 3 items ranks 2), the data checks say so once per value,
    naming it, the counts and the share that results; an exact cut says nothing."""
    from xval.config.loader import load_config

    config_path = write_config(tmp_path, folds={"val_fraction": 0.3})
    config = load_config(config_path)
    tiny_store(config.data_dir, n_items=15, clips_per_class=1, segments=1)
    experiment = make_experiment(config_path, n_instances=0)
    experiment[1] = BASE + ["rank_split=0.5"]
    experiment[2] = BASE + ["rank_split=0.5", "learning_rate=0.02"]
    experiment[3] = BASE + ["rank_split=0.34"]
    lines = []
    assert experiment.run(config=config, dry_run=True, output=Output(out=lines.append)).exit_code == 0
    rounded = [line for line in lines if line.startswith("Rank split:")]
    assert rounded == ["Rank split: rank_split=0.5 (instance(s) 1, 2) is rounded to whole "
                       "validation items (the others pick the epoch): 2 of 3 rank (0.67) in "
                       "fold(s) 0, 1, 2."], "\n".join(lines)
    assert not config.results_dir.exists()


def test_experiment_resume_skips_done_and_refuses_changed_params(config_path, config, store):
    exp = make_experiment(config_path)
    exp.run(config=config, output=Output(out=lambda *a: None))
    d = exp_dir(config) / "instance_1"
    kept = (d / "fold_0.json").read_text()
    (d / "fold_2.json").unlink()  # as if the run had died during fold 2
    lines = []
    outcome = exp.run(config=config, output=Output(out=lines.append))
    text = "\n".join(lines)
    assert "instance 1: folds [0, 1] already done; resuming at fold 2" in text
    assert "instance 2: all 3 folds already done; skipped" in text
    assert "instance 1 fold 2:" in text and "instance 1 fold 0:" not in text
    assert (d / "fold_0.json").read_text() == kept
    assert outcome.exit_code == 0
    # Changed parameters are refused, naming them, and nothing is touched.
    exp.instances[1] = BASE + ["learning_rate=0.5"]  # as if the script had been edited
    with pytest.raises(ResultsConflictError, match=r"instance 1 \(learning_rate: 0.01 -> 0.5\)"):
        exp.run(config=config, output=Output(out=lambda *a: None))
    assert (d / "fold_0.json").read_text() == kept
    # ...unless overwriting.
    outcome = exp.run([1], config=config, overwrite=True, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0
    assert json.loads((d / "params.json").read_text())["params"]["learning_rate"] == 0.5
    assert (d / "fold_0.json").read_text() != kept


def test_experiment_comment_change_is_not_a_conflict(config_path, config, store):
    exp = make_experiment(config_path, n_instances=1)
    exp.run(config=config, output=Output(out=lambda *a: None))
    exp.instances[1] = [s.replace('"c1"', '"renamed"') for s in exp[1]]
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0


# Valid parameters that make training diverge: the fold fails in training.
DIVERGE = ["learning_rate=1e6", 'optimizer="sgd"', 'save_model_metric="val_accuracy"']


def test_experiment_failing_instance_recorded_and_run_goes_on(config_path, config, store):
    exp = make_experiment(config_path)
    exp.instances[1] = BASE + DIVERGE
    lines = []
    outcome = exp.run(config=config, output=Output(out=lines.append))
    assert outcome.exit_code == 1 and outcome.failed == [1]
    d = exp_dir(config)
    assert "diverged" in (d / "instance_1" / "error.txt").read_text()
    summary = json.loads((d / "instance_1" / "summary.json").read_text())
    assert summary["status"] == "failed" and "diverged" in summary["message"]
    assert json.loads((d / "instance_2" / "summary.json").read_text())["status"] == "complete"
    assert not (d / "instance_1" / "fold_1.json").exists()  # the failing instance stopped
    assert any("FAILED" in line for line in lines)


def test_a_failed_instance_says_why_on_stderr_even_with_quiet(config_path, config, store,
                                                              capsys):
    """Issue 59: with -q a failed run exited 1 printing nothing (its reason only in
    error.txt); one `error:` line on stderr now says which instance failed and why."""
    exp = make_experiment(config_path, n_instances=1)
    exp.instances[1] = BASE + DIVERGE
    with pytest.raises(SystemExit) as exited:
        exp.main(["-q"])
    err = capsys.readouterr().err
    assert exited.value.code == 1
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: 1 instance(s) failed: [1] (instance 1: ") and \
        "diverged" in line and line.endswith("see error.txt in their folders."), err


def test_experiment_debug_mode_stops_at_first_error(config_path, config, store):
    exp = make_experiment(config_path, debug_mode=True)
    exp.instances[1] = BASE + DIVERGE
    with pytest.raises(Exception, match="diverged"):
        exp.run(config=config, output=Output(out=lambda *a: None))
    assert not (exp_dir(config) / "instance_2" / "fold_0.json").exists()


def test_experiment_folds_change_refused(config_path, config, store):
    make_experiment(config_path, n_instances=1).run(config=config, output=Output(out=lambda *a: None))
    with pytest.raises(ResultsConflictError, match="folds.json holds other folds"):
        make_experiment(config_path, n_instances=1, num_folds=2).run(
            config=config, output=Output(out=lambda *a: None))


def test_experiment_regression(config_path, config):
    tiny_store(config.data_dir, "reg", task_type="regression")
    exp = make_experiment(config_path, n_instances=1, dataset="reg", task_type="regression",
                          parameters={**FAST, "save_model_metric": "val_rmse"})
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0
    fold = json.loads((exp_dir(config, dataset="reg") / "instance_1" / "fold_0.json")
                      .read_text())
    assert {"loss", "rmse", "mae", "r2"} == set(fold["metrics"]["test"])
    assert fold["monitor"] == "val_rmse" and fold["monitor_mode"] == "min"


def test_experiment_task_type_mismatch(config_path, config, store):
    exp = make_experiment(config_path, task_type="regression",
                          parameters={**FAST, "save_model_metric": "val_rmse"})
    with pytest.raises(ConfigurationError, match="is a classification store"):
        exp.run(config=config, output=Output(out=lambda *a: None))


def test_experiment_predefined_split(config_path, config):
    tiny_store(config.data_dir, "pre",
               split=lambda i: "train" if i < 4 else "validation" if i == 4 else "test")
    exp = make_experiment(config_path, n_instances=1, dataset="pre", num_folds=1)
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    manifest = json.loads((exp_dir(config, dataset="pre") / "folds.json").read_text())
    assert manifest["folds"] == [{"train": ["item0", "item1", "item2", "item3"],
                                  "val": ["item4"], "test": ["item5"]}]
    with pytest.raises(ConfigurationError, match="predefined.*set num_folds=1"):
        make_experiment(config_path, dataset="pre", num_folds=3, number=2).run(
            config=config, output=Output(out=lambda *a: None))


def test_experiment_augmented_rows_train_only(config_path, config):
    store = tiny_store(config.data_dir, "aug", augmented_copies=1)
    exp = make_experiment(config_path, n_instances=1, dataset="aug")
    exp.run(config=config, output=Output(out=lambda *a: None))
    d = exp_dir(config, dataset="aug") / "instance_1"
    aug = store.augmented
    for i in range(3):
        fold = json.loads((d / f"fold_{i}.json").read_text())
        preds = np.loadtxt(d / f"predictions_fold_{i}.csv", delimiter=",", skiprows=1,
                           usecols=0, dtype=int)
        assert not aug[preds].any()  # no augmented row was tested
        n_train_items = len(fold["items"]["train"])
        assert fold["n_rows"]["train"] == n_train_items * 24 * 2  # originals + copies
        assert fold["n_rows"]["val"] == len(fold["items"]["val"]) * 24  # originals only
        # Training scores are taken on the originals too: the copies only train.
        scored = np.asarray(fold["metrics"]["train"]["confusion_matrix"]).sum()
        assert scored == n_train_items * 24
        clips = np.asarray(fold["clip_metrics"]["train"]["confusion_matrix"]).sum()
        assert clips == n_train_items * 12  # two segments per original clip


def test_normalization_uses_training_originals_only(config):
    from xval.training.batches import fold_rows
    from xval.training.normalization import normalization_stats

    store = tiny_store(config.data_dir, "aug", augmented_copies=1)
    fold = {"train": ["item0", "item1"], "val": ["item2"], "test": ["item3"]}
    rows = fold_rows(store, fold)
    originals = rows["train"][~store.augmented[rows["train"]]]
    mean, var = normalization_stats(store.features, originals)
    expected = np.asarray(store.features[originals]).reshape(-1, 6)
    np.testing.assert_allclose(mean, expected.mean(0), rtol=1e-5)
    np.testing.assert_allclose(var, expected.var(0), rtol=1e-4)
    assert mean.max() < 50  # augmented rows (+100) did not leak into the statistics


def test_a_bin_constant_over_the_training_rows_is_centred_not_scaled():
    """A dead embedding unit (0 on every training row) gets variance 1, as scikit-learn's
    StandardScaler leaves it: a test row where it fires is not multiplied by 10,000."""
    from sklearn.preprocessing import StandardScaler

    from xval.training.normalization import normalization_stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3, 6)).astype(np.float32)
    x[..., 1] = 0.0  # dead unit
    x[..., 2] = 7.5  # constant
    x[..., 3] = np.float32(30000.7)  # constant far from 0: its sums cancel to rounding
    x[..., 4] = 5e-5 * x[..., 0]  # a small real spread: scaled, as StandardScaler does
    mean, var = normalization_stats(x, np.arange(40))
    scaler = StandardScaler().fit(x.reshape(-1, 6).astype(np.float64))
    np.testing.assert_allclose(mean, scaler.mean_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(var), scaler.scale_, rtol=1e-4)
    assert var[1] == var[2] == var[3] == 1.0


SCRIPT = """
from xval import Experiment

experiment = Experiment(description="script test", dataset="tiny", number=7, num_folds=3,
                        parameters={{"epochs": {epochs}, "patience": {epochs},
                                     "batch_size": 8}},
                        config={config!r})
for k in range(1, 5):
    experiment[k] = ['architecture="example_cnn"', 'reshaping_type="conv"',
                     'comment_1="c"', 'comment_2="d"', 'filters=4', f'seed={{k}}']

if __name__ == "__main__":
    experiment.main()
"""


def test_config_command_prints_every_value_of_an_instance_as_its_run_resolves_it(
        tmp_path, config_path, store):
    """`python -m xval config SCRIPT K`: the configuration and every
    parameter of instance K, each with its source, resolved as the dry run resolves it;
    the dry run shows the same sources for what it shows."""
    from tests.conftest import python_here

    script = write_script(tmp_path, SCRIPT.format(epochs=2, config=str(config_path)))
    shown = python_here("-m", "xval", "config", script, 3, "--set", "seed=9", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = dict(re.findall(r"^(\w+) = .*#\s*(.+)$", shown.stdout, re.MULTILINE))
    assert (rows["seed"], rows["epochs"], rows["filters"], rows["optimizer"],
            rows["dropout"]) == ("--set", "experiment", "instance 3", str(config_path),
                                 "architecture default")  # write_config writes every key
    assert "instance 3 (classification)" in shown.stdout
    dry = run_script_here(script, "3", "3", "--set", "seed=9", "--dry-run")
    assert re.search(r"^  seed = 9\s+# --set$", dry.stdout, re.MULTILINE), dry.stdout
    assert "optimizer" not in dry.stdout


@pytest.mark.slow
def test_main_marks_a_script_process_but_not_an_interactive_session(config_path, store,
                                                                   monkeypatch):
    """`experiment.main()` from the shell makes the process the engine's (TensorFlow kept
    out, the modules frozen for the collector at the first fold); run with `%run` in IPython
    or Jupyter (an interactive interpreter) it leaves the user's session as it is."""
    import xval.executors.job_process as job_process

    exp = make_experiment(config_path)
    monkeypatch.setattr(sys, "argv", ["exp_test.py", "--dry-run", "-q"])
    for interactive, marked in ((True, False), (False, True)):
        monkeypatch.setattr(job_process, "_JOB_PROCESS", False)
        if interactive:
            monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
        else:
            monkeypatch.delattr(sys, "ps1", raising=False)
        with pytest.raises(SystemExit) as exit_:
            exp.main()
        assert exit_.value.code == 0 and job_process.is_job_process() is marked


def test_script_cli_range_gpu_and_errors(tmp_path, config_path, config, store):
    # The script also says, as it exits, whether TensorFlow (installed beside torch here) was
    # imported: a script run from the shell keeps it out on torch (2 s, 400 MB).
    hook = ("import atexit, pathlib, sys\nif __name__ == '__main__':\n    atexit.register("
            "lambda: pathlib.Path(__file__).with_name('tf.txt').write_text("
            "str('tensorflow' in sys.modules)))\n")
    script = write_script(tmp_path, hook + SCRIPT.format(epochs=2, config=str(config_path)))
    proc = run_script(script, 2, 3, "-1", env={"KERAS_BACKEND": "torch"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "tf.txt").read_text() == "False"
    d = exp_dir(config, number=7)
    assert sorted(p.name for p in d.glob("instance_*")) == ["instance_2", "instance_3"]
    assert "selected on validation accuracy" in proc.stdout
    env = json.loads((d / "code" / "environment.json").read_text())
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert (d / "code" / script.name).is_file()
    # The refusals and the dry run: the same command line, in this process.
    bad = run_script_here(script, 3, 9)
    assert bad.returncode == 2 and "outside the declared instances 1..4" in bad.stderr
    bad = run_script_here(script, "--set", "learnin_rate=0.1")
    assert bad.returncode == 2 and "Did you mean learning_rate" in bad.stderr
    dry = run_script_here(script, "--instances", "1,4", "--set", "epochs=1", "--dry-run")
    assert dry.returncode == 0 and "epochs = 1" in dry.stdout
    assert not (d / "instance_1").exists()


@pytest.mark.slow
def test_script_two_concurrent_runners(tmp_path, config_path, config, store):
    script = write_script(tmp_path, SCRIPT.format(epochs=2, config=str(config_path)))
    procs = [subprocess.Popen([sys.executable, str(script), *r], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
             for r in (("1", "2"), ("3", "4"))]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    d = exp_dir(config, number=7)
    for k in range(1, 5):
        summary = json.loads((d / f"instance_{k}" / "summary.json").read_text())
        assert summary["status"] == "complete" and summary["folds_done"] == 3
    assert json.loads((d / "folds.json").read_text())["num_folds"] == 3


@pytest.mark.slow
def test_script_killed_mid_fold_resumes(tmp_path, config_path, config, store):
    # The kill lands in fold 1 right after its first epoch (seen on the -v epoch lines, read
    # as they are printed), with 7 epochs of that fold still to go.
    script = write_script(tmp_path, SCRIPT.format(epochs=8, config=str(config_path)))
    proc = subprocess.Popen([sys.executable, "-u", str(script), "1", "1", "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, start_new_session=True)
    watcher = OutputWatcher(proc)
    inst = exp_dir(config, number=7) / "instance_1"
    watcher.wait_for(r"^instance 1 fold 1 epoch 1/8: ")  # fold 1 is now under way
    os.killpg(proc.pid, signal.SIGKILL)
    watcher.finish()
    fold0 = (inst / "fold_0.json").read_text()
    assert not (inst / "fold_1.json").exists()  # killed during fold 1
    rerun = run_script_here(script, "1", "1")  # the resume, in this process
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming at fold 1" in rerun.stdout
    assert (inst / "fold_0.json").read_text() == fold0
    summary = json.loads((inst / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["folds_done"] == 3
    assert not list(inst.glob("*.partial.keras"))


@pytest.mark.tensorflow
def test_script_tensorflow_backend_end_to_end(tmp_path, config_path, config, store):
    """On TensorFlow, as a user runs it (no `TF_CPP_MIN_LOG_LEVEL` set): trained, and none
    of TensorFlow's own lines (its oneDNN notice on import, its C++ and Python logs)."""
    script = write_script(tmp_path, SCRIPT.format(epochs=2, config=str(config_path)))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(script), "1", "1", "--backend", "tensorflow"],
                          capture_output=True, text=True, env=env, timeout=600,
                          cwd=script.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("oneDNN", "absl::InitializeLog", "I0000", "E0000", "WARNING:tensorflow"):
        assert line not in proc.stdout + proc.stderr, proc.stderr
    d = exp_dir(config, number=7) / "instance_1"
    fold = json.loads((d / "fold_0.json").read_text())
    assert fold["backend"] == "tensorflow" and fold["status"] == "ok"
    assert json.loads((d / "summary.json").read_text())["status"] == "complete"


def test_import_xval_does_not_import_keras():
    code = "import sys, xval; from xval import Experiment; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_write_config_helper_changes_paths(tmp_path):
    path = write_config(tmp_path, training={"epochs": 2})
    assert "epochs = 2" in path.read_text()


def test_experiment_run_checks_instance_ids(config_path, config, store):
    with pytest.raises(ConfigurationError, match=r"\[9\] are not declared"):
        make_experiment(config_path).run([9], config=config, output=Output(out=lambda *a: None))
    assert not config.results_dir.exists()


def test_dry_run_names_few_items_and_counts_many():
    """A fold of hundreds of items is one short line in a dry run (folds.json holds them)."""
    from xval.running.planner import _some

    assert _some(["alice", "bob"]) == "['alice', 'bob']"
    many = [f"item{k:03d}" for k in range(70)]
    assert _some(many) == ("70 items ['item000', 'item001', 'item002', 'item003', 'item004', "
                           "'item005', ...]")
