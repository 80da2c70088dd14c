"""Optional packages a run needs are checked before anything trains, all at once: the dry
run and the start of a run name every missing one with its install line
(`xval.running.packages`, `xval.core.optional`). "Missing" is made in this process only:
`sys.modules[name] = None` blocks the import as an uninstalled package would fail it."""

import sys

import pytest

from tests.conftest import ROOT, run_script_here, write_script
from xval.core import optional
from xval.core.errors import ConfigurationError
from xval.running.packages import missing_packages
from xval.training.encoder import uses_encoder

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1", "comment_2": "c2",
        "hidden_units": 8, "num_layers": 1, "epochs": 1, "batch_size": 16}
SCRIPT = """
from xval import Experiment, Float, Search
experiment = Experiment(description="packages", dataset="tiny", number=1,
                        config={config!r}, num_folds=3)
experiment[1] = {base!r}
experiment.search = Search(base={base!r}, space={{"dropout": Float(0.0, 0.5)}},
                           n_trials=2)
if __name__ == "__main__":
    experiment.main()
"""


def block(monkeypatch, *names):
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("dry_run", [True, False])
def test_every_missing_package_is_named_at_once_before_anything_runs(
        dry_run, monkeypatch, tmp_path, config_path, store):
    block(monkeypatch, "optuna", "ray", "mlflow")
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=BASE))
    args = ["--search", "--executor", "ray", "--mlflow", str(tmp_path / "runs")]
    proc = run_script_here(script, *args, *(["--dry-run"] if dry_run else []))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "error: 3 optional packages are missing: --search needs optuna, not installed: "
        f"pip install -e '{ROOT}[search]'; --executor ray needs ray, not installed: pip "
        f"install -e '{ROOT}[ray]'; --mlflow needs mlflow, not installed: pip install -e "
        f"'{ROOT}[mlflow]'. Nothing was trained or written."]  # the checkout, run elsewhere
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()


def test_one_missing_package_is_one_plain_line(monkeypatch, tmp_path, config_path, store):
    block(monkeypatch, "ray")
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=BASE))
    proc = run_script_here(script, "--executor", "ray", "--dry-run")
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"error: --executor ray needs ray, not installed: pip install -e '{ROOT}[ray]'. "
        "Nothing was trained or written."]


def test_mlflow_connects_only_after_every_check(monkeypatch, tmp_path, config_path, store):
    # A dry run never opens the tracking store: nothing is made in its folder.
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=BASE))
    proc = run_script_here(script, "--mlflow", str(tmp_path / "runs"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "runs").exists()


def test_an_encoder_inside_the_model_needs_its_wheel(monkeypatch):
    from preprocessing.features import encoders
    from tests.conftest import resolve, training_defaults

    params = resolve(1, {**BASE, "front_end": "aisfx"}, training_defaults=training_defaults())
    assert uses_encoder(params)
    monkeypatch.setattr(encoders, "package_version",
                        lambda name: None if name == "aisfx" else "1.0")
    assert missing_packages({3: params}) == [
        f"instance 3: front_end='aisfx' needs aisfx, not installed: "
        f"{encoders.BUILT_IN['aisfx'].install}"]
    assert missing_packages({3: resolve(1, BASE, training_defaults=training_defaults())}) == []


def test_optional_names_what_is_missing_and_its_install_line(monkeypatch):
    block(monkeypatch, "onnxruntime")
    assert optional.missing("export") == ["onnxruntime"]
    monkeypatch.chdir(ROOT)  # in the checkout: `.`
    assert optional.need("--format onnx", "export") == (
        "--format onnx needs onnxruntime, not installed: pip install -e '.[export]'")
    assert optional.need("--format onnx", "search") == ""  # optuna is installed here
    with pytest.raises(ConfigurationError, match=r"^--format onnx needs onnxruntime"):
        optional.require("--format onnx", "export")
    assert optional.requirements(["", "a", "a"]) == "a"  # said once
    assert optional.missing_modules(["no_such_module_here", "numpy"]) == ["no_such_module_here"]
