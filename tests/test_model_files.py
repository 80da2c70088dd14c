"""Malformed model and dataset files are one `error:` line (exit 2), never a traceback: a
table of bad `.keras` archives and bad `--dataset-info` files, run through the real
`python -m xval predict` in a subprocess."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile as sf

from preprocessing.build import feature_params
from preprocessing.features import feature_shape
from tests.conftest import ROOT
from xval.config.loader import load_config

SR = 8000


def _params(**changes):
    values = {"sample_rate": SR, "n_fft": 256, "hop_length": 128, "n_mels": 16,
              "segment_seconds": 0.25, "segment_hop_seconds": 0.25, "fmin": 50.0,
              "n_bins": 24, **changes}
    return feature_params(load_config(ROOT / "config.ini").features, **values)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("models")
    params = _params()
    info = {"task_type": "classification", "classes": ["a", "b"],
            "feature_params": params.to_dict()}  # a `FeatureParams`: JSON through to_dict
    (folder / "dataset.json").write_text(json.dumps(info))
    model = keras.Sequential([keras.Input(shape=feature_shape(params)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    model.save(folder / "model.keras")
    rng = np.random.default_rng(0)
    sf.write(folder / "a.wav", (0.1 * rng.normal(size=SR)).astype(np.float32), SR)
    other = {**info, "feature_params": _params(n_mels=24).to_dict()}
    (folder / "other_store.json").write_text(json.dumps(other))
    (folder / "not_json.json").write_text("nope")
    (folder / "a_list.json").write_text("[]")
    (folder / "partial.json").write_text(json.dumps({"feature_params": {"sample_rate": SR}}))
    (folder / "bad_value.json").write_text(json.dumps(
        {**info, "feature_params": {**params, "n_fft": -3}}))
    (folder / "binary.json").write_bytes(os.urandom(64) + b"\xff")
    (folder / "a_folder.json").mkdir()
    for name, members in {"no_config.keras": {"metadata.json": "{}"},
                          "garbage_config.keras": {"config.json": "{{{"},
                          "list_config.keras": {"config.json": "[]"},
                          "os_system.keras": {"config.json": json.dumps(
                              {"module": "os", "class_name": "system",
                               "config": {"command": "touch PWNED"}})}}.items():
        with zipfile.ZipFile(folder / name, "w") as archive:
            for member, text in members.items():
                archive.writestr(member, text)
    (folder / "random.keras").write_bytes(os.urandom(2048))
    with zipfile.ZipFile(folder / "model.keras") as good, \
            zipfile.ZipFile(folder / "escape.keras", "w") as bad:
        for member in good.infolist():
            bad.writestr(member, good.read(member))
        bad.writestr("assets/../../escaped.txt", "written outside")
    with zipfile.ZipFile(folder / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("config.json", json.dumps({"class_name": "Sequential"}))
        with bomb.open("model.weights.h5", "w", force_zip64=True) as member:
            for _ in range(80):  # 80 MiB of zeros, packed into about 80 KiB
                member.write(bytes(1 << 20))
    (folder / "foreign").mkdir()  # a model beside the dataset.json of another store
    (folder / "foreign" / "model.keras").write_bytes((folder / "model.keras").read_bytes())
    (folder / "foreign" / "dataset.json").write_text(json.dumps(other))
    return folder


def _predict(folder, model, info):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"}
    return subprocess.run([sys.executable, "-m", "xval", "predict", str(folder / model),
                           str(folder / "a.wav"), "--dataset-info", str(folder / info)],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=300)


CASES = [
    ("model.keras", "dataset.json", None),  # the control: it answers
    ("model.keras", "other_store.json", "belongs to another store"),
    ("model.keras", "not_json.json", "not a readable JSON dataset description"),
    ("model.keras", "binary.json", "not a readable JSON dataset description"),
    ("model.keras", "a_list.json", "holds list, not a dataset description (a JSON object)"
                                   ". Pass the dataset.json of the store the model was"),
    ("model.keras", "partial.json", "feature_params are not usable"),
    ("model.keras", "bad_value.json", "n_fft=-3"),
    ("model.keras", "a_folder.json", "is not a file"),
    ("no_config.keras", "dataset.json", "config.json is missing or not JSON"),
    ("garbage_config.keras", "dataset.json", "config.json is missing or not JSON"),
    ("list_config.keras", "dataset.json", "does not describe a model"),
    ("os_system.keras", "dataset.json", "cannot be loaded"),
    ("random.keras", "dataset.json", "is not a Keras 3 `.keras` file"),
    ("escape.keras", "dataset.json", "is refused before anything in it is read: its member "
                                     "'assets/../../escaped.txt' is named outside the archive"),
    ("bomb.keras", "dataset.json", "is refused before anything in it is read: its member "
                                   "'model.weights.h5' declares 83,886,080 bytes packed into"),
]


@pytest.mark.parametrize(("model", "info", "match"), CASES)
def test_bad_model_and_dataset_files_are_one_line_errors(files, model, info, match, capsys):
    from xval.cli.main import main

    code = main(["predict", str(files / model), str(files / "a.wav"), "--dataset-info",
                 str(files / info)])
    out, err = capsys.readouterr()
    if match is None:
        assert code == 0, err
        assert "a.wav" in out
        return
    assert code == 2, out + err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and match in lines[0], err
    assert not (files / "PWNED").exists() and not (files.parent / "escaped.txt").exists()


def test_a_description_found_beside_the_model_is_named_as_found(files, capsys):
    # No --dataset-info was given: the message names the dataset.json it found.
    from xval.cli.main import main

    assert main(["predict", str(files / "foreign" / "model.keras"), str(files / "a.wav")]) == 2
    err = capsys.readouterr().err
    found = str(files / "foreign" / "dataset.json")
    assert (f"{found!r} (the dataset.json found beside the model) belongs to another store"
            in err), err
    assert "--dataset-info '" not in err


def test_every_keras_loader_checks_the_archive_first(files, monkeypatch):
    from xval.core.errors import ConfigurationError
    from xval.training import loading

    monkeypatch.setattr(loading, "MAX_BYTES", 1000)
    with pytest.raises(ConfigurationError, match=r"its members unpack to [\d,]+ bytes, more "
                                                 r"than the 1,000 allowed"):
        loading.load(files / "model.keras")
    monkeypatch.setattr(loading.zipfile.ZipFile, "read",
                        lambda *a: pytest.fail("a member was read before the check"))
    with pytest.raises(ConfigurationError, match="is refused before anything in it is read"):
        loading.load(files / "bomb.keras")
    # The model commands check a file they are given first, before they look for its
    # dataset.json (a bomb beside none is named as a bomb).
    from xval.inference.models import resolve_models

    lone = files.parent / "lone"
    lone.mkdir(exist_ok=True)
    (lone / "escape.keras").write_bytes((files / "escape.keras").read_bytes())
    with pytest.raises(ConfigurationError, match=r"'assets/\.\./\.\./escaped\.txt' is named "
                                                 r"outside the archive"):
        resolve_models(lone / "escape.keras")


def test_another_stores_description_in_a_real_process(files):
    proc = _predict(files, "model.keras", "other_store.json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and "belongs to another store" in proc.stderr


def test_the_loader_registers_the_zoos_layers_in_a_process_of_its_own(tmp_path):
    """`xval.training.loading.load` reads a model with the zoo's layers in a process that
    imported nothing else (a benchmark, a user's script): it registers them itself."""
    import keras

    import architectures

    inputs = keras.Input((4, 3))
    normalised = architectures.FeatureNormalization(mean=np.zeros(3), variance=np.ones(3))
    keras.Model(inputs, keras.layers.Dense(1)(normalised(inputs))).save(tmp_path / "m.keras")
    code = ("import sys; from xval.training.loading import load; "
            "print(type(load(sys.argv[1]).layers[1]).__name__)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "FeatureNormalization"
