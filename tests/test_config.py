import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from xval.config import schema
from xval.config.loader import find_config, load_config
from xval.core.errors import ConfigurationError


def test_load_config_project_file_types():
    config = load_config(ROOT / "config.ini")
    assert config.training["learning_rate"] == 0.001
    assert config.training["epochs"] == 60 and isinstance(config.training["epochs"], int)
    assert config.training["class_weights"] is False
    assert config.training["load_model"] is None
    assert config.features["fmax"] is None
    assert Path(config.paths["data_dir"]).is_absolute()
    assert config.data_dir == ROOT / "data"


def test_load_config_bool_false_string_is_false(tmp_path):
    path = write_config(tmp_path, training={"class_weights": "False"})
    assert load_config(path).training["class_weights"] is False


def test_load_config_relative_paths_resolve_against_file(tmp_path):
    path = write_config(tmp_path, paths={"data_dir": "stores"})
    assert load_config(path).data_dir == (tmp_path / "stores").resolve()


def test_load_config_unknown_key_suggests(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("learning_rate = ", "learnig_rate = "))
    with pytest.raises(ConfigurationError, match="learnig_rate.*Did you mean 'learning_rate'"):
        load_config(path)


def test_load_config_wrong_type_names_value(tmp_path):
    path = write_config(tmp_path, training={"epochs": "ten"})
    with pytest.raises(ConfigurationError, match=r"epochs = 'ten'.*expected int \(an integer"):
        load_config(path)


def test_load_config_bad_choice(tmp_path):
    path = write_config(tmp_path, backend={"backend": "theano"})
    with pytest.raises(ConfigurationError, match="theano.*tensorflow, torch, jax"):
        load_config(path)


def test_a_config_holds_only_what_differs(tmp_path):
    """Keys a config file leaves out take the package defaults; `source` says where each
    value came from; relative paths are relative to the file."""
    path = tmp_path / "config.ini"
    path.write_text("[paths]\ndata_dir = stores\n\n[training]\nepochs = 7\n")
    config = load_config(path)
    assert config.data_dir == (tmp_path / "stores").resolve()
    assert config.results_dir == (tmp_path / "results").resolve()
    assert config.training["epochs"] == 7 and config.training["patience"] == 10
    assert config.source("training", "epochs") == str(path)
    assert config.source("training", "patience") == "package default"
    assert config.backend["backend"] == "auto"


def test_a_config_with_only_paths_works(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text("[paths]\ndata_dir = data\nresults_dir = results\n")
    config = load_config(path)
    assert config.to_dict()["training"] == {**schema.defaults()["training"]}
    assert config.features["n_mels"] == 64


def test_package_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.path is None and config.data_dir == (tmp_path / "data").resolve()


def test_an_empty_path_is_refused(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text("[paths]\nresults_dir =\n")
    with pytest.raises(ConfigurationError, match="results_dir = '': expected a folder"):
        load_config(path)


def test_an_empty_or_off_compile_cache_is_refused(tmp_path, monkeypatch):
    """Not the current directory's `jax`, nor a folder named `off`: the key, the value, what
    is expected and the fix; `none` keeps no cache, `./off` is a folder of that name."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.ini"
    for value, fix in (("", "write compile_cache = none, or a folder"),
                       ("off", "write compile_cache = none to keep none (or ./off for a folder"),
                       ("False", "(or ./False for a folder")):
        path.write_text(f"[backend]\ncompile_cache = {value}\n")
        with pytest.raises(ConfigurationError) as raised:
            load_config(path)
        assert str(raised.value).startswith(
            f"[backend] compile_cache = {value!r}: expected a folder (e.g. '~/.cache/xval', "
            "relative to the config file), or none to keep no compiled programs; ")
        assert fix in str(raised.value)
    path.write_text("[backend]\ncompile_cache = none\n")
    assert load_config(path).backend.compile_cache is None
    path.write_text("[backend]\ncompile_cache = ./off\n")
    assert load_config(path).backend.compile_cache == str(tmp_path / "off")
    assert list(tmp_path.iterdir()) == [path]  # nothing made


@pytest.mark.parametrize("section, key", [("backend", "compile_cache"),
                                          ("paths", "results_dir")])
def test_a_tilde_of_no_user_is_refused(tmp_path, section, key):
    """`~nosuchuser/...` (no such user to expand it for): a ConfigurationError naming the
    key, the value and the fix, not `Path.expanduser`'s RuntimeError."""
    path = tmp_path / "config.ini"
    path.write_text(f"[{section}]\n{key} = ~xval_nosuchuser/cache\n")
    with pytest.raises(ConfigurationError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"[{section}] {key} = '~xval_nosuchuser/cache': no user 'xval_nosuchuser' to "
        "expand ~xval_nosuchuser for; write the path itself.")


@pytest.mark.parametrize("key", ["results_dir", "data_dir"])
@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_path_that_is_not_a_folder_is_refused(tmp_path, key, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("precious\n")
    else:
        os.mkfifo(target)
    path = tmp_path / "config.ini"
    path.write_text(f"[paths]\n{key} = target\n")
    with pytest.raises(ConfigurationError, match=f"{key} = 'target': .* is a file, not a folder"):
        load_config(path)


def test_a_folder_given_as_config_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="is a folder"):
        load_config(tmp_path)


def test_load_config_unknown_section(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text() + "\n[trainig]\nx = 1\n")
    with pytest.raises(ConfigurationError, match="Unknown section 'trainig'"):
        load_config(path)


def test_load_config_fraction_out_of_range(tmp_path):
    path = write_config(tmp_path, folds={"val_fraction": "1.5"})
    with pytest.raises(ConfigurationError, match="val_fraction = 1.5"):
        load_config(path)


def test_load_config_swapped_range(tmp_path):
    path = write_config(tmp_path, augmentation={"min_rate": "1.3"})
    with pytest.raises(ConfigurationError, match="min_rate = 1.3 is greater than max_rate"):
        load_config(path)


def test_config_replace_checks_keys(config):
    assert config.replace(training={"epochs": 3}).training["epochs"] == 3
    assert config.training["epochs"] == 30
    with pytest.raises(ConfigurationError, match="Unknown key 'epoch'"):
        config.replace(training={"epoch": 3})


def test_find_config_prefers_env(tmp_path, monkeypatch):
    path = write_config(tmp_path)
    monkeypatch.setenv("XVAL_CONFIG", str(path))
    assert find_config() == path


def test_find_config_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("XVAL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="No config.ini found"):
        find_config(tmp_path / "experiments" / "x.py")


@pytest.mark.parametrize("section,key,value,match", [
    ("report", "selection_metric", "nonsense",
     r"\[report\] selection_metric = 'nonsense'.*expected one of auto, loss, accuracy, f1"),
    ("report", "alpha", "7", r"\[report\] alpha = 7.0.*expected a number in \(0, 1\)"),
    ("training", "seed", "-1", r"\[training\] seed = -1.*expected an integer in \[0, "),
    ("training", "verbose", "7", r"verbose = 7.*expected an integer in \[0, 2\]"),
    ("training", "learning_rate", "nan", r"learning_rate = nan.*\(finite\)"),
    ("training", "generator_workers", "-3", r"generator_workers = -3.*expected an integer in \[0, 256\]"),
    ("training", "freeze_layers", "-5", "freeze_layers = -5.*expected an integer >= -1"),
    ("features", "n_mels", "0", r"n_mels = 0.*expected an integer in \[1, 2048\]"),
    ("features", "dtype", "int8", "dtype = 'int8'.*expected one of auto, float32, float16"),
    ("features", "fmax", "9000", r"fmax = 9000.0.*at most sample_rate / 2 = 8000"),
    ("features", "fmin", "8000", "fmin = 8000.0.*expected less than fmax = 8000"),
    ("features", "silence_threshold_db", "3", "silence_threshold_db = 3.0.*<= 0"),
    ("augmentation", "p_noise", "1.5", r"p_noise = 1.5.*expected a number in \[0, 1\]"),
    ("augmentation", "workers", "-2", r"workers = -2.*expected an integer in \[0, 1024\]"),
    ("backend", "jobs_per_gpu", "0", r"jobs_per_gpu = 0.*expected an integer in \[1, 64\]"),
])
def test_load_config_every_value_checked(tmp_path, section, key, value, match):
    path = write_config(tmp_path, **{section: {key: value}})
    with pytest.raises(ConfigurationError, match=match):
        load_config(path)


def test_load_config_no_interpolation(tmp_path):
    path = write_config(tmp_path, paths={"data_dir": "data_%(x)s"})
    assert load_config(path).data_dir.name == "data_%(x)s"


def test_load_config_binary_file_is_clear(tmp_path):
    path = tmp_path / "config.ini"
    path.write_bytes(b"\xff\xfe\x00binary")  # a UTF-16 byte-order mark, then bytes
    with pytest.raises(ConfigurationError, match="UTF-16 text; save it as UTF-8"):
        load_config(path)


def test_find_config_env_pointing_at_missing_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XVAL_CONFIG", str(tmp_path / "missing.ini"))
    with pytest.raises(ConfigurationError, match="XVAL_CONFIG=.*missing.ini' is not a file"):
        find_config(ROOT / "experiments" / "exp1.py")


def test_config_replace_checks_values(config):
    with pytest.raises(ConfigurationError, match="n_mels = 0"):
        config.replace(features={"n_mels": 0})
