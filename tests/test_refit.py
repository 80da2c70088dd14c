"""`--refit` after any run: the instance's recorded `--set` values are reused, and a real
change is refused by name (recorded value, present value), never with `--overwrite`."""

import json

import pytest

from tests.conftest import run_script, run_script_here, write_config, write_script
from xval import Experiment, Output
from xval.config.loader import load_config
from xval.core.errors import ResultsConflictError

INSTANCE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
            "comment_2": "", "hidden_units": 8}

SCRIPT = """
from xval import Experiment

experiment = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                        parameters={{"epochs": 2, "batch_size": 16}}, config={config!r})
experiment[1] = {instance!r}

if __name__ == "__main__":
    experiment.main()
"""


def _experiment(config):
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                     parameters={"epochs": 2, "batch_size": 16}, config=str(config.path))
    exp[1] = dict(INSTANCE)
    return exp


@pytest.mark.slow
def test_refit_reuses_the_set_values_recorded_with_the_run(config, store, tmp_path):
    script = write_script(tmp_path, SCRIPT.format(config=str(config.path), instance=INSTANCE))
    env = {"KERAS_BACKEND": "torch"}
    # The run and the refusal in this process; the refit in its own (--refit's real process).
    run = run_script_here(script, "--set", "hidden_units=4", "--set", "learning_rate=0.02",
                          "-q")
    assert run.returncode == 0, run.stderr
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    params = json.loads((inst / "params.json").read_text())
    assert params["overrides"] == {"hidden_units": 4, "learning_rate": 0.02}
    assert params["params"]["hidden_units"] == 4

    refit = run_script(script, "--refit", "1", env=env)
    assert refit.returncode == 0, refit.stderr
    assert "--overwrite" not in refit.stdout + refit.stderr
    final = json.loads((inst / "final.json").read_text())
    assert final["params_hash"] == params["hash"]

    # A real change (config.ini's patience) is refused, named with both values.
    changed = load_config(write_config(tmp_path, training={"patience": 7}))
    refused = run_script_here(script, "--refit", "1")
    assert refused.returncode == 2
    assert "patience: recorded" in refused.stderr and "now 7" in refused.stderr
    assert "--set hidden_units=4" in refused.stderr  # the recorded values were applied
    assert "--overwrite" not in refused.stderr
    with pytest.raises(ResultsConflictError, match=r"patience: recorded \d+, now 7") as error:
        _experiment(changed).refit(1, config=changed, output=Output(out=lambda *a: None))
    assert "overwrite" not in str(error.value)


def test_refit_takes_the_runs_recorded_set_values_again(config, store):
    exp = _experiment(config)
    exp.run(config=config, overrides={"hidden_units": 4}, output=Output(out=lambda *a: None))
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    record = json.loads((inst / "params.json").read_text())
    assert record["overrides"] == {"hidden_units": 4}
    path = exp.refit(1, config=config, output=Output(out=lambda *a: None))
    assert path.is_file()
    assert json.loads((inst / "final.json").read_text())["params_hash"] == record["hash"]
