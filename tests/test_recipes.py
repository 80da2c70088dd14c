"""The experiment scripts shipped in experiments/ declare valid instances (no training)."""

import importlib.util

import pytest

from tests.conftest import ROOT, resolve
from xval.config.loader import load_config

SCRIPTS = sorted((ROOT / "experiments").glob("exp*.py"))


def _load(path):
    spec = importlib.util.spec_from_file_location(f"recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # declarations only: main() runs under __main__
    return module.experiment


def test_recipes_exist():
    assert {p.stem for p in SCRIPTS} >= {"exp1", "exp2", "exp3", "exp4", "exp5"}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_recipe_instances_resolve(path):
    experiment = _load(path)
    defaults = load_config(ROOT / "config.ini").training
    assert len(experiment) >= 1
    for k, spec in experiment.instances.items():
        params = resolve(k, spec, training_defaults=defaults,
                         experiment_params=experiment.parameters,
                         task_type=experiment.task_type)
        assert params["architecture"]
