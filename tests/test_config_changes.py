"""What changed configurations meet: results made under other `[training]` defaults conflict
with the values to pin; flags of one store kind given to another name the fix."""

import ast
import re

import pytest

from tests.conftest import run_script_here, tiny_store, write_config, write_script
from xval.config import schema
from xval.config.loader import load_config

_EXPERIMENT = """
from xval import Experiment

experiment = Experiment(description="compat", dataset="tiny", number=1, num_folds=2)
experiment[1] = {"architecture": "example_cnn", "reshaping_type": "conv", "filters": 2,
                 "epochs": 1, "patience": 1, "comment_1": "", "comment_2": ""}

if __name__ == "__main__":
    experiment.main()
"""


def test_detection_flag_errors_name_the_fix(tmp_path, capsys):
    from xval.cli.preprocess import main

    config = write_config(tmp_path)
    (tmp_path / "audio").mkdir()
    main(["detection", str(tmp_path / "audio"), "--annotations", "x.csv", "--out", "d",
          "--config", str(config), "--task-type", "regression"])
    assert "--task-type cannot be used with `detection`" in capsys.readouterr().err
    main(["folders", str(tmp_path / "audio"), "--out", "d", "--config", str(config),
          "--task-type", "detection"])
    assert "build them with `python -m preprocessing detection" in capsys.readouterr().err
    assert not (tmp_path / "data" / "d").exists()


def test_results_made_under_the_earlier_defaults_conflict_with_a_hint(tmp_path):
    from xval.config.params import PLAIN_TRAINING

    plain = write_config(tmp_path)  # the plain (earlier) training options
    tiny_store(tmp_path / "data")
    script = write_script(tmp_path, _EXPERIMENT)
    assert run_script_here(script, "1", "1", "--config", plain, "-q").returncode == 0
    pinned = load_config(write_config(tmp_path / "pinned")).training  # what tests pin
    text = plain.read_text()
    for key in PLAIN_TRAINING:  # config.ini as shipped for these keys
        text = re.sub(rf"^{key} = .*$", f"{key} = {_shipped(key)}", text, flags=re.M)
    plain.write_text(text)
    assert load_config(plain).training["lr_schedule"] == "cosine" != pinned["lr_schedule"]
    proc = run_script_here(script, "1", "1", "--config", plain, "-q")
    assert proc.returncode != 0
    assert "Existing results were made with other parameters" in proc.stderr
    assert "If you changed nothing, config.ini's [training] defaults changed" in proc.stderr
    # The exact values the results were made with, ready to paste into the experiment.
    pin = re.search(r"parameters=(\{.*?\}) \(xval", proc.stderr).group(1)
    pin = ast.literal_eval(pin)
    assert pin["lr_schedule"] == "constant" and pin["mixup_alpha"] == 0.0
    assert all(pinned[k] == v for k, v in pin.items())
    body = _EXPERIMENT.replace("Experiment(", f"Experiment(parameters={pin!r}, ", 1)
    fixed = write_script(tmp_path, body, name="exp_pinned.py")
    proc = run_script_here(fixed, "1", "1", "--config", plain, "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]


def _shipped(key):
    spec = schema.SCHEMA["training"][key]
    return spec.text(spec.default)


# -- old import paths (before the layers): retired at 0.1 (issue 73, CHANGELOG.md) --------

RETIRED = ["xval.search", "xval.errors", "xval.results", "xval.jobs", "xval.predict",
           "xval.evaluate", "xval.events", "xval.losses", "xval.stats", "xval.logs",
           "xval.tracking"]
"""The flat package's module paths that earlier READMEs showed, retired with their shim."""


@pytest.mark.parametrize("old", ["xval.planner", "xval.schema", "xval.worker", "xval.data",
                                 *RETIRED])
def test_old_modules_are_gone(old):
    import importlib

    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_the_regularised_recipe_keeps_its_values():
    """The regularised instance keeps its values (experiments 4 and 5 resume their
    results)."""
    from xval.config import recipes

    regularised = recipes.audio_cnn_recipe(60, 10)[2]
    assert {k: regularised[k] for k in ("time_masks", "freq_masks", "mixup_alpha",
                                        "label_smoothing")} == \
        {"time_masks": 2, "freq_masks": 2, "mixup_alpha": 0.2, "label_smoothing": 0.1}
