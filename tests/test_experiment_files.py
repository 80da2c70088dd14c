"""The experiment-level files of a run: the command line and `--set` values of every run, in
`code/commands.json` and on the workbook's Summary sheet (issue 38)."""

import json
import shlex

from openpyxl import load_workbook

from tests.conftest import run_script, run_script_here, write_script
from xval import Experiment, Output

INSTANCE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
            "comment_2": "", "hidden_units": 8}

SCRIPT = """
from xval import Experiment

experiment = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                        parameters={{"epochs": 1, "batch_size": 16}}, config={config!r})
experiment[1] = {instance!r}
experiment[2] = {instance!r}

if __name__ == "__main__":
    experiment.main()
"""


def test_run_command_and_set_values_in_code_and_on_the_summary_sheet(config, store, tmp_path):
    script = write_script(tmp_path, SCRIPT.format(config=str(config.path), instance=INSTANCE))
    env = {"KERAS_BACKEND": "torch"}
    first = run_script(script, "1", "1", "--set", "hidden_units=4", "-q", env=env)
    assert first.returncode == 0, first.stderr
    # The second run in this process, its sys.argv as Python sets it for a script.
    second = run_script_here(script, "--instances", "2", "--set", "learning_rate=0.02", "-q")
    assert second.returncode == 0, second.stderr
    exp = config.results_dir / "tiny" / "experiment_1"
    log = json.loads((exp / "code" / "commands.json").read_text())
    typed = shlex.join(["python", str(script)])  # sys.argv[0] as the command gave it
    assert [run["command"] for run in log["runs"]] == [
        f"{typed} 1 1 --set hidden_units=4 -q",
        f"{typed} --instances 2 --set learning_rate=0.02 -q"]
    assert [run["overrides"] for run in log["runs"]] == [{"hidden_units": 4},
                                                        {"learning_rate": 0.02}]
    assert [run["instances"] for run in log["runs"]] == [[1], [2]]
    assert not (exp / "code" / "runs").exists()  # the same code: one snapshot
    summary = load_workbook(exp / "experiment_1.xlsx")["Summary"]
    texts = [c.value for c in summary["A"] if isinstance(c.value, str)]
    heading = texts.index("Runs, latest first (command line; every run in code/commands.json)")
    latest, earlier = texts[heading + 1], texts[heading + 2]
    assert latest.endswith(f": {typed} --instances 2 --set learning_rate=0.02 -q "
                           "(instances 2; --set values: learning_rate=0.02)")
    assert earlier.endswith(f": {typed} 1 1 --set hidden_units=4 -q "
                            "(instances 1; --set values: hidden_units=4)")


def test_run_command_of_a_python_caller(config, store):
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                     parameters={"epochs": 1, "batch_size": 16}, config=str(config.path))
    exp[1] = dict(INSTANCE)
    exp.run(config=config, overrides={"hidden_units": 4}, output=Output(out=lambda *a: None))
    log = json.loads((config.results_dir / "tiny" / "experiment_1" / "code" /
                      "commands.json").read_text())
    (run,) = log["runs"]
    assert run["command"].startswith("Experiment.run from ")
    assert run["overrides"] == {"hidden_units": 4} and run["instances"] == [1]
