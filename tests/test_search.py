"""Search: Optuna trials as instances, scored on fold-averaged validation, pruned by fold."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import resolve, run_script_here, write_script
from xval import Experiment, Output
from xval.config.space import Categorical, Float, Int, Search
from xval.core.errors import ConfigurationError, ParameterError

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install -e '.[search]')")

BASE = {"architecture": "mlp", "reshaping_type": "none", "num_layers": 1, "epochs": 4,
        "patience": 4, "batch_size": 32}
SPACE = {"learning_rate": Float(1e-3, 3e-2, log=True), "hidden_units": Int(8, 24, step=8)}


def quiet(*args):
    return None


def experiment(config_path, search, declared=True):
    exp = Experiment(description="search", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    if declared:
        exp[1] = {**BASE, "comment_1": "hand-written", "comment_2": "",
                  "learning_rate": 0.01, "hidden_units": 16}
    exp.search = search
    return exp


@pytest.mark.parametrize("space, match", [
    ({"learning_rate": Float(0.1, 0.1)}, "learning_rate: empty range"),
    ({"learning_rate": Float(0.0, 0.1, log=True)}, "log range must be positive"),
    ({"learning_rate": Float(-1e-3, 1e-2, log=True)}, "crosses or touches zero"),
    ({"hidden_units": Int(8, 4)}, "empty range"),
    ({"hidden_units": Int(4.0, 8)}, "must be integers"),
    ({"dropout_rate": Float(0.0, 0.5)}, "unknown parameter 'dropout_rate'"),
    ({"hidden_units": Float(4.0, 8.0)}, "hidden_units=4.0 is a float; expected a int"),
    ({"architecture": Categorical(["mlp", "nope"])}, "nope"),
    ({"optimizer": Categorical([])}, "non-empty list"),
    ({}, "non-empty dict"),
])
def test_bad_search_spaces_are_errors_before_training(space, match, config_path, config,
                                                      store):
    exp = experiment(config_path, Search(base=BASE, space=space))
    with pytest.raises((ConfigurationError, ParameterError), match=match):
        exp.run(config=config, search=True, output=Output(out=quiet))
    assert not config.results_dir.exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"space": {"optimizer": Categorical(["adam", "sgd", "adam"])}}, "'adam' is given twice"),
    ({"space": {"hidden_units": Int(8, 12, step=16)}}, "step=16 is larger than the range"),
    ({"space": {"hidden_units": Int(8, 20, step=8)}}, "not a whole number of steps"),
    ({"space": {"learning_rate": Float(1e-3, 1e300, log=True)}}, "beyond"),
    ({"space": {"hidden_units": Int(8, 10 ** 30)}}, "beyond"),
    ({"enqueue": [{"learning_rate": 1e-2, "dropout": 0.3}]}, "'dropout' is not a dimension"),
    ({"enqueue": [{"learning_rate": 0.5}]}, "learning_rate=0.5 is outside"),
    ({"enqueue": [{"hidden_units": 12}]}, "hidden_units=12 is outside"),
    ({"enqueue": ["learning_rate=0.01"]}, "expected a dict"),
    ({"startup_trials": -1}, "startup_trials=-1"),
])
def test_search_declarations_that_cannot_be_searched_fail_the_dry_run(kwargs, match,
                                                                       config_path, config,
                                                                       store):
    search = Search(base=BASE, **{"space": SPACE, **kwargs})
    with pytest.raises(ConfigurationError, match=match):
        experiment(config_path, search).run(config=config, search=True, dry_run=True,
                                            output=Output(out=quiet))
    assert not config.results_dir.exists()


def test_search_budget_and_options_are_checked(config_path, config, store):
    for kwargs, match in (({"n_trials": 0}, "n_trials=0"), ({"sampler": "grid"}, "sampler"),
                          ({"pruner": "hyperband"}, "pruner")):
        exp = experiment(config_path, Search(base=BASE, space=SPACE, **kwargs))
        with pytest.raises(ConfigurationError, match=match):
            exp.run(config=config, search=True, output=Output(out=quiet))
    with pytest.raises(ConfigurationError, match="declares no search"):
        experiment(config_path, None).run(config=config, search=True, output=Output(out=quiet))


def _resolver(config):
    return lambda k, spec: resolve(k, spec, training_defaults=config.training)


def test_conditional_space_applies_to_its_architecture_only(config_path, config, store):
    space = {"architecture": Categorical(["mlp", "example_cnn"]),
             "reshaping_type": Categorical(["none"], when={"architecture": "mlp"}),
             "hidden_units": Int(8, 16, step=8, when={"architecture": "mlp"}),
             "filters": Int(4, 8, step=4, when={"architecture": "example_cnn"})}
    base = {"reshaping_type": "conv", "epochs": 2}
    Search(base=base, space=space).check(_resolver(config))
    bad = {**space, "filters": Int(4, 8, step=4, when={"architecture": "mlp"})}
    with pytest.raises(ParameterError, match="unknown parameter 'filters'"):
        Search(base=base, space=bad).check(_resolver(config))


def test_dry_run_shows_the_space(tmp_path, config_path, store):
    lines = []
    exp = experiment(config_path, Search(base=BASE, space=SPACE, n_trials=7))
    assert exp.run(search=True, dry_run=True, output=Output(out=lines.append)).exit_code == 0
    text = "\n".join(lines)
    assert "Search: 7 trial(s), sampler tpe (seed 0), pruner median" in text
    assert "trials become instances 2, 3, ..." in text
    assert "learning_rate: float in [0.001, 0.03] (log)" in text


def test_trials_become_instances_with_a_search_sheet(config_path, config, store):
    from openpyxl import load_workbook

    exp = experiment(config_path, Search(base=BASE, space=SPACE, n_trials=3, pruner="none"))
    exp.run(config=config, output=Output(out=quiet))  # the declared instance first
    outcome = exp.run(config=config, search=True, output=Output(out=quiet))
    assert outcome.exit_code == 0
    assert sorted(outcome.results.instances) == [1, 2, 3, 4]
    exp_dir = config.results_dir / "tiny" / "experiment_1"
    study = optuna.load_study(study_name="experiment_1", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp_dir / "search.journal"))))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    for t in study.trials:
        k = 2 + t.number
        inst = outcome.results[k]
        assert inst.status == "complete" and len(inst.folds) == 3
        trial = json.loads((exp_dir / f"instance_{k}" / "trial.json").read_text())
        assert trial["state"] == "complete" and trial["params"] == t.params
        # The objective is the mean over folds of the validation metric, never test.
        # (at clip level: the tiny store cuts every clip into two segments)
        assert t.value == pytest.approx(inst.metric("accuracy", "val", level="clip"))
        assert inst.params["learning_rate"] == t.params["learning_rate"]
    wb = load_workbook(exp_dir / "experiment_1.xlsx")
    ws = wb["Search"]
    header = [c.value for c in ws[1]]
    assert header[:5] == ["trial", "ID", "state", "objective: mean validation accuracy",
                          "pruned at fold"]
    assert [ws.cell(row=r, column=2).value for r in (2, 3, 4)] == [2, 3, 4]
    assert (exp_dir / "search" / "optimization_history.png").stat().st_size > 0
    assert (exp_dir / "search" / "param_importances.png").stat().st_size > 0
    # Rerunning with the same budget trains nothing new.
    again = exp.run(config=config, search=True, output=Output(out=quiet))
    assert again.exit_code == 0 and len(study.trials) == 3


def test_pruning_stops_a_bad_trial_before_its_last_fold(config_path, config, store):
    good = {"learning_rate": 0.02, "hidden_units": 16}
    bad = {"learning_rate": 1e-6, "hidden_units": 8}  # learns nothing in 4 epochs
    search = Search(base=BASE, space={"learning_rate": Float(1e-6, 3e-2, log=True),
                                      "hidden_units": Int(8, 24, step=8)},
                    n_trials=3, pruner="median", startup_trials=2,
                    enqueue=[good, {**good, "hidden_units": 24}, bad])
    exp = experiment(config_path, search, declared=False)
    outcome = exp.run(config=config, search=True, output=Output(out=quiet))
    assert outcome.exit_code == 0
    results = outcome.results
    assert [results[k].status for k in (1, 2)] == ["complete", "complete"]
    assert results[3].status == "pruned"
    trial = results[3].trial
    assert trial.state == "pruned" and trial.pruned_at_fold == 0
    assert [f.fold for f in results[3].folds] == [0]  # its finished fold is kept
    from openpyxl import load_workbook

    ws = load_workbook(config.results_dir / "tiny" / "experiment_1" / "experiment_1.xlsx")[
        "Search"]
    assert (ws.cell(row=4, column=3).value, ws.cell(row=4, column=5).value) == ("pruned", 0)


SCRIPT = """
from xval import Experiment
from xval.config.space import Float, Int, Search
experiment = Experiment(description="search", dataset="tiny", number=1, num_folds=3,
                        config={config!r})
experiment.search = Search(base={base!r}, n_trials={n}, pruner="none",
                           space={{"learning_rate": Float(1e-3, 3e-2, log=True),
                                   "hidden_units": Int(8, 24, step=8)}})
if __name__ == "__main__":
    experiment.main()
"""


def _study(config):
    exp_dir = config.results_dir / "tiny" / "experiment_1"
    return optuna.load_study(study_name="experiment_1", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp_dir / "search.journal"))))


@pytest.mark.slow
def test_killed_search_resumes_without_repeating_trials(tmp_path, config_path, config, store):
    # The kill goes when trial 1's fold 0 is recorded: its folds 1 and 2 (6 epochs each)
    # are still to run.
    base = {**BASE, "epochs": 6, "patience": 6, "batch_size": 8}
    path = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=base, n=3))
    proc = subprocess.Popen([sys.executable, str(path), "--search", "-q"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    target = config.results_dir / "tiny" / "experiment_1" / "instance_2" / "fold_0.json"
    deadline = time.monotonic() + 300
    while not target.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-trial 1 (instance 2)
    proc.wait()
    assert [t.state.name for t in _study(config).trials][:2] == ["COMPLETE", "RUNNING"]
    again = run_script_here(path, "--search")  # the resume, in this process
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming trial 1 (instance 2)" in again.stdout
    trials = _study(config).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    exp_dir = config.results_dir / "tiny" / "experiment_1"
    assert sorted(p.name for p in exp_dir.glob("instance_*")) == [
        "instance_1", "instance_2", "instance_3"]


def test_two_runners_share_one_study_without_duplicates(tmp_path, config_path, config, store):
    path = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=BASE, n=4))
    procs = [subprocess.Popen([sys.executable, str(path), "--search", "-q"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    trials = _study(config).trials
    assert len(trials) == 4 and {t.state.name for t in trials} == {"COMPLETE"}
    params = [tuple(sorted(t.params.items())) for t in trials]
    exp_dir = config.results_dir / "tiny" / "experiment_1"
    records = [json.loads((exp_dir / f"instance_{1 + t.number}" / "trial.json").read_text())
               for t in trials]
    assert sorted(r["trial"] for r in records) == [0, 1, 2, 3]
    assert len(set(params)) == 4  # no trial proposed twice
