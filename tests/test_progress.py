"""Progress you can see: the bar over all jobs, per-epoch lines, -q and -v."""

import re

import pytest

from tests.conftest import run_script, run_script_here, run_script_in_terminal, write_script
from xval import Output

SCRIPT = """
from xval import Experiment
experiment = Experiment(description="progress", dataset="tiny", number=1, num_folds=3,
                        config={config!r})
experiment[1] = {{"architecture": "mlp", "reshaping_type": "none", "comment_1": "a",
                 "comment_2": "b", "hidden_units": 8, "num_layers": 1, "epochs": 3,
                 "patience": 3, "batch_size": 32}}
if __name__ == "__main__":
    experiment.main()
"""


def executors():
    import importlib.util

    return ["inline", "process", pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="ray is not installed")])]


@pytest.mark.slow
@pytest.mark.parametrize("executor", executors())
def test_progress_bar_and_labelled_epoch_lines(executor, tmp_path, config_path, store,
                                               request):
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path)))
    # Through Ray, the session's local Ray (tests/conftest.py `local_ray`), joined by address.
    joined = ["--ray-address", request.getfixturevalue("local_ray")] if executor == "ray" \
        else []
    code, stdout, stderr = run_script_in_terminal(script, "--executor", executor, "-v",
                                                  *joined)
    assert code == 0, stdout + stderr
    # The bar (stderr, a terminal): jobs done out of all jobs, the current fold and epoch,
    # elapsed/ETA.
    assert "folds: 100%" in stderr and "3/3" in stderr
    assert "epoch 3/3" in stderr and "<" in stderr
    # -v: one line per epoch, labelled with instance and fold, streamed from the workers too.
    for fold in range(3):
        for epoch in range(1, 4):
            assert f"instance 1 fold {fold} epoch {epoch}/3: accuracy" in stdout
    # The suite's KERAS_BACKEND is torch: said once, with what compiles the steps.
    assert stdout.count("note: the torch backend runs each training step eagerly") == 1
    if executor == "inline":
        lines = stdout.splitlines()  # the data checks first, then the slow import, said
        assert lines[0].startswith("Data: ")
        assert lines.index("Importing Keras (torch backend)...") < \
            next(i for i, line in enumerate(lines) if line.startswith("instance 1 fold"))


def test_without_a_terminal_one_line_per_fold_with_the_eta(tmp_path, config_path, store):
    """Issue 26: stderr in a log file gets no bar (no carriage-return redraws); each fold's
    line says how many folds are done, the elapsed time and the ETA."""
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path)))
    proc = run_script_here(script)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "folds:" not in proc.stderr
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith("instance 1 fold") and " train " in line]
    assert len(lines) == 3
    for done, line in enumerate(lines, start=1):
        assert f"[{done}/3 folds, " in line and " elapsed, ETA " in line
    assert lines[-1].endswith("ETA 0:00]")


def test_quiet_prints_nothing_but_errors(tmp_path, config_path, store):
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path)))
    proc = run_script(script, "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    # Without -v, TensorFlow (which Keras imports to save models) prints nothing either.
    code, _, stderr = run_script_in_terminal(script, "--overwrite")
    assert code == 0 and "folds: 100%" in stderr
    assert "oneDNN" not in stderr and "absl" not in stderr
    bad = run_script_here(script, "-q", "-v")  # the command line's refusal: no process needed
    assert bad.returncode == 2 and "not both" in bad.stderr


def _run_in_process(config_path, config, **kwargs):
    """Instance 1 of SCRIPT (3 folds, 3 epochs) run in this process with progress on and
    stderr not a terminal (pytest captures it), as a batch job's log sees it."""
    from xval import Experiment

    exp = Experiment(description="progress", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "a",
              "comment_2": "b", "hidden_units": 8, "num_layers": 1, "epochs": 3,
              "patience": 3, "batch_size": 32}
    lines = []
    outcome = exp.run(config=config, output=Output(progress=True, out=lines.append), **kwargs)
    assert outcome.exit_code == 0
    return lines


def test_without_a_terminal_epoch_lines_at_most_every_interval(config_path, config, store,
                                                               monkeypatch):
    """Issue 38: a log is never silent for a whole fold. Without -v: the run's first epoch,
    then an epoch's end at most every EPOCH_LINE_SECONDS (30 s: none more in a run this
    short); with the interval at 0, every epoch."""
    from xval.running import scheduler

    epoch = re.compile(r"instance 1 fold (\d) epoch (\d)/3: .*accuracy \d\.\d{4}.* "
                       r"\[\d+:\d\d elapsed\]$")
    lines = _run_in_process(config_path, config)
    said = [epoch.match(line).groups() for line in lines if epoch.match(line)]
    assert said == [("0", "1")]
    monkeypatch.setattr(scheduler, "EPOCH_LINE_SECONDS", 0.0)
    lines = _run_in_process(config_path, config, overwrite=True)
    said = [epoch.match(line).groups() for line in lines if epoch.match(line)]
    assert said == [(str(f), str(e)) for f in range(3) for e in range(1, 4)]


def test_fold_lines_and_table_name_the_level(config_path, config, store):
    """Issue 38: the fold line's scores are the clip level's (the headline, where files are
    cut into segments), named, with the segment test score beside them; the table names the
    level of every column."""
    from xval import ExperimentResults

    lines = _run_in_process(config_path, config)
    folds = [line for line in lines if re.match(r"instance 1 fold \d: \D+ train ", line)]
    assert len(folds) == 3
    fold = re.compile(r"instance 1 fold (\d): clip accuracy train (\S+) val (\S+) test (\S+); "
                      r"segment test (\S+) \(best epoch")
    results = ExperimentResults(config.results_dir / "tiny" / "experiment_1")[1]
    for line, record in zip(folds, results.folds, strict=True):
        i, train, val, test, segment = fold.match(line).groups()
        assert int(i) == record.fold
        assert float(test) == pytest.approx(record.clip_metrics["test"]["accuracy"], abs=5e-4)
        assert float(val) == pytest.approx(record.clip_metrics["val"]["accuracy"], abs=5e-4)
        assert float(segment) == pytest.approx(record.metrics["test"]["accuracy"], abs=5e-4)
    table = next(line for line in lines if line.lstrip().startswith("id"))
    header = table.splitlines()[0]
    assert header.split()[2:] == ["val", "clip", "accuracy", "test", "clip", "accuracy",
                                  "test", "segment", "accuracy", "comment"]
