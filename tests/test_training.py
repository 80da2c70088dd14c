"""Training options, generator mode, transfer learning, prediction and embeddings."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import (
    ROOT,
    python_here,
    resolve,
    run_script_here,
    tiny_store,
    training_defaults,
    write_config,
    write_script,
)
from xval import Experiment, Output
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, ParameterError
from xval.training.fold import run_fold as _run_fold

DEFAULTS = training_defaults()


def run_fold(spec):
    """Runs a job and writes its model and predictions where the spec says, as the
    recorder does; returns the fold file's content."""
    from pathlib import Path

    result = _run_fold(spec)
    Path(spec["model_path"]).write_bytes(result.model_bytes)
    if spec.get("predictions_path"):
        Path(spec["predictions_path"]).write_text(result.predictions_csv)
    return result.to_dict()


def job(store, tmp_path, generator=False, fold=0, **params):
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": "", "filters": 4, "epochs": 3, "patience": 3, "batch_size": 16}
    spec.update(params)
    task = store.task_type
    return {"instance": 1, "fold": fold, "task_type": task, "generator": generator,
            "store": str(store.path), "params": resolve(1, spec, training_defaults=DEFAULTS,
                                                        task_type=task),
            "items": {"train": ["item0", "item1", "item2", "item3"], "val": ["item4"],
                      "test": ["item5"]},
            "model_path": str(tmp_path / f"m_{generator}_{fold}.keras"),
            "log_dir": str(tmp_path / "logs")}


def test_generator_matches_in_memory(store, tmp_path):
    a = run_fold(job(store, tmp_path, generator=False))
    b = run_fold(job(store, tmp_path, generator=True))
    for split in ("train", "val", "test"):
        for name in ("loss", "accuracy", "f1"):
            assert a["metrics"][split][name] == pytest.approx(b["metrics"][split][name],
                                                              abs=1e-4)
    np.testing.assert_allclose(a["history"]["loss"], b["history"]["loss"], rtol=1e-4)


def test_saved_model_is_the_best_epoch(store, tmp_path):
    import keras
    import pandas as pd

    from xval.tasks.metrics import softmax
    from xval.training.batches import fold_rows

    spec = job(store, tmp_path, epochs=6, patience=6)
    spec["predictions_path"] = str(tmp_path / "pred.csv")
    result = run_fold(spec)
    best = result["best_epoch"]
    # The evaluated model is the best epoch's: its validation loss is that epoch's.
    assert result["metrics"]["val"]["loss"] == pytest.approx(
        result["history"]["val_loss"][best - 1], rel=1e-3)
    assert result["history"]["val_loss"][best - 1] == min(result["history"]["val_loss"])
    # ...and the saved file is that model: it reproduces the written predictions.
    model = keras.saving.load_model(spec["model_path"], compile=False, safe_mode=True)
    rows = fold_rows(store, spec["items"])["test"]
    probs = softmax(model.predict(np.asarray(store.features[rows]), verbose=0))
    table = pd.read_csv(tmp_path / "pred.csv")
    np.testing.assert_allclose(probs, table[[f"p_{c}" for c in store.classes]], atol=2e-6)
    assert not list(tmp_path.glob("*.partial.keras"))


def test_generator_workers(store, tmp_path):
    result = run_fold(job(store, tmp_path, generator=True, generator_workers=2))
    assert result["status"] == "ok"


def test_clip_level_metrics_average_segment_logits(store, tmp_path):
    result = run_fold(job(store, tmp_path))
    clip = result["clip_metrics"]["test"]
    seg = result["metrics"]["test"]
    assert np.asarray(clip["confusion_matrix"]).sum() * 2 == \
        np.asarray(seg["confusion_matrix"]).sum()  # two segments per clip


def test_save_model_metric_direction_picks_best_epoch(store, tmp_path):
    result = run_fold(job(store, tmp_path, epochs=5, patience=5,
                          save_model_metric="val_accuracy"))
    curve = result["history"]["val_accuracy"]
    assert result["monitor_mode"] == "max"
    assert curve[result["best_epoch"] - 1] == max(curve)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_optimizers_train(store, tmp_path, optimizer):
    result = run_fold(job(store, tmp_path, optimizer=optimizer, epochs=2))
    assert result["status"] == "ok" and np.isfinite(result["history"]["loss"]).all()


def test_lr_schedules(store, tmp_path):
    plateau = run_fold(job(store, tmp_path, lr_schedule="plateau", epochs=6, patience=6,
                           learning_rate=0.05))
    assert "learning_rate" in plateau["history"]
    cosine = run_fold(job(store, tmp_path, lr_schedule="cosine", epochs=2))
    assert cosine["status"] == "ok"


def test_class_weights_balance_imbalanced_labels(config, tmp_path):
    from xval.tasks.weights import balanced_weights

    y = np.array([0, 0, 0, 1])
    w = balanced_weights(y)
    assert w.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])
    assert (w * (y == 0)).sum() == pytest.approx((w * (y == 1)).sum())
    store = tiny_store(config.data_dir)
    assert run_fold(job(store, tmp_path, class_weights=True))["status"] == "ok"


JOB_PROCESS = """
import gc, sys
from xval.executors.worker import main
code = main()
print(code, "tensorflow" in sys.modules, gc.get_freeze_count() > 100_000)
"""
USER_PROCESS = """
import json, sys
import keras
from xval.core.records import Job
from xval.training.fold import run_fold
result = run_fold(Job.from_dict(json.loads(sys.argv[1])))
print("tensorflow" in sys.modules)  # not imported to seed or save the fold
from keras.src.utils.module_utils import tensorflow as lazy
from xval.training.keras_settings import tensorflow_unseen
with tensorflow_unseen():  # as during a job: a builder with TensorFlow-only layers
    seen = [lazy.available]
    import tensorflow  # imports it, and they work
    seen.append(lazy.available)
    keras.layers.StringLookup(vocabulary=["a"])
print("-".join(map(str, seen)))
keras.layers.StringLookup(vocabulary=["a", "b"])  # needs TensorFlow: still available
print(result.to_dict()["status"])
"""


def test_torch_job_processes_leave_tensorflow_out_and_the_users_process_alone(store, tmp_path):
    """TensorFlow is installed beside torch here: Keras would import it in every job
    process to seed it and to check types when saving (about 2 s and 400 MB). A
    process-executor worker (`xval.executors.worker`: a job folder per line of stdin, its
    result written there, a done line) keeps it out; a fold run in the user's own process
    (the inline executor) does not import it either, and leaves Keras's view of TensorFlow
    as it was."""
    from importlib.util import find_spec

    from xval.core.records import Job
    from xval.executors.transport import DONE_PREFIX, JOB

    if find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: nothing to keep out")
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    spec = json.dumps(Job.from_dict(job(store, tmp_path, epochs=1)).to_dict())
    (tmp_path / JOB).write_text(spec)
    out = subprocess.run([sys.executable, "-c", JOB_PROCESS], input=f"{tmp_path}\n",
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = out.stdout.splitlines()
    # No TensorFlow; Keras's modules frozen before the job (`job_process.settle`).
    assert lines[-2:] == [f"{DONE_PREFIX}{tmp_path}", "0 False True"], out.stderr[-2000:]
    assert sum(line.startswith("xval-epoch 1 1 ") for line in lines) == 1  # its progress
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "ok" and result["predictions_csv"].startswith("row,")
    assert (tmp_path / "model.keras").stat().st_size > 0
    out = subprocess.run([sys.executable, "-c", USER_PROCESS, spec], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.split()[-3:] == ["False", "False-True", "ok"], out.stderr[-2000:]


def test_a_folds_model_is_freed_before_the_next_is_built(store, tmp_path, monkeypatch):
    """Keras models are reference cycles: only the cyclic collector frees them. The next
    fold's start collects the last fold's model, before its own is built (with automatic
    collection off here, so that only the engine's can free it)."""
    import gc
    import weakref

    import xval.training.fold as fold_module

    refs, freed = [], []

    def assemble(fold):
        freed.append([ref() is None for ref in refs])  # the earlier folds' models
        model = assemble_model(fold)
        refs.append(weakref.ref(model))
        return model

    assemble_model = fold_module.assemble_model
    monkeypatch.setattr(fold_module, "assemble_model", assemble)
    gc.disable()
    try:
        for k in range(2):
            assert run_fold(job(store, tmp_path, fold=k, epochs=1))["status"] == "ok"
    finally:
        gc.enable()
    assert freed == [[], [True]]


def test_import_paused_imports_with_the_collector_paused(monkeypatch):
    import gc

    import xval.core.backend as backend

    seen = []
    monkeypatch.setattr(backend.importlib, "import_module",
                        lambda name: seen.append((name, gc.isenabled())) or name)
    assert backend.import_paused("not_imported_yet") == "not_imported_yet"
    assert seen == [("not_imported_yet", False)] and gc.isenabled()
    assert backend.import_paused("json") == "json"  # imported: through import, not paused
    assert seen[1:] == [("json", True)]


def test_mixed_precision(store, tmp_path):
    import keras

    result = run_fold(job(store, tmp_path, mixed_precision=True, epochs=2))
    assert result["status"] == "ok"
    model = keras.saving.load_model(tmp_path / "m_False_0.keras", compile=False)
    policies = {layer.dtype_policy.name for layer in model.layers[-1].layers}
    assert "mixed_float16" in policies
    # The dataset normalisation computes in float32 (its small variances underflow float16).
    assert model.get_layer("normalization").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # restored for the next job


@pytest.mark.filterwarnings("ignore:Limiting steps_per_epoch")  # the job's own cap
def test_run_fold_restores_every_keras_setting_a_job_sets(store, tmp_path):
    """Issue 64: `keras.config.set_floatx` set by one job leaked into the next job of the
    same warm worker (the dtype policy was reset, floatx was not). A job whose builder sets
    every setter of `keras.config` leaves them as they were; the next job in the process
    trains in float32 as it would alone."""
    import keras
    from keras.src.backend.common import global_state

    import architectures
    from architectures.cnn import Filters
    from architectures.registry import ARCHITECTURES
    from xval.training.keras_settings import KERAS_SETTINGS, STATE_SETTINGS

    def sets_everything(input_shape, num_outputs, task_type, *, filters: Filters = 4):
        model = architectures.get("example_cnn")(input_shape, num_outputs, task_type,
                                                 filters=filters)
        keras.config.set_floatx("float16")
        keras.config.set_epsilon(1e-3)
        keras.config.set_image_data_format("channels_first")
        keras.config.set_dtype_policy("mixed_bfloat16")
        keras.config.set_max_epochs(1)
        keras.config.set_max_steps_per_epoch(1)
        keras.config.disable_flash_attention()
        keras.config.disable_traceback_filtering()
        keras.config.disable_interactive_logging()
        keras.config.enable_unsafe_deserialization()
        return model

    before = {name: getattr(keras.config, name)() for name in KERAS_SETTINGS}
    state = {name: global_state.get_global_attribute(name) for name in STATE_SETTINGS}
    architectures.register("test_sets_keras_settings")(sets_everything)
    try:
        first = run_fold(job(store, tmp_path, architecture="test_sets_keras_settings",
                             epochs=1, fold=0))
    finally:
        ARCHITECTURES.unregister("test_sets_keras_settings")
    assert first["status"] == "ok"
    assert {name: getattr(keras.config, name)() for name in KERAS_SETTINGS} == before
    assert {name: global_state.get_global_attribute(name) for name in STATE_SETTINGS} == state
    assert keras.src.saving.serialization_lib.in_safe_mode() is not False
    second = run_fold(job(store, tmp_path, epochs=1, fold=1))
    model = keras.saving.load_model(tmp_path / "m_False_1.keras", compile=False)
    assert second["status"] == "ok" and {w.dtype for w in model.weights} == {"float32"}
    from xval.core.errors import TrainingError
    from xval.training.keras_settings import keras_settings_kept

    backend = keras.backend.backend()
    other = "tensorflow" if backend == "jax" else "jax"
    with pytest.raises(TrainingError, match=rf"changed the Keras backend from '{backend}' to "
                                            rf"'{other}' \(keras.config.set_backend\)"):
        with pytest.MonkeyPatch.context() as patch, keras_settings_kept():
            patch.setattr(keras.backend, "backend", lambda: other)  # as set_backend would


def test_tensorboard_logs(store, tmp_path):
    pytest.importorskip("tensorflow")
    run_fold(job(store, tmp_path, tensorboard=True, epochs=1))
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))


def test_invalid_training_combinations():
    base = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "", "comment_2": ""}
    with pytest.raises(ParameterError, match="lr_schedule='step'"):
        resolve(1, {**base, "lr_schedule": "step"}, training_defaults=DEFAULTS)
    with pytest.raises(ParameterError, match="save_model_metric='val_f1'"):
        resolve(1, {**base, "save_model_metric": "val_f1"}, training_defaults=DEFAULTS)
    with pytest.raises(ParameterError, match="freeze_layers=-2"):
        resolve(1, {**base, "freeze_layers": -2, "load_model": "m.keras"},
                training_defaults=DEFAULTS)


TRANSFER = """
from xval import Experiment

experiment = Experiment(description="transfer", dataset="two", number=1, num_folds=3,
                        parameters={{"epochs": 2, "batch_size": 16}}, config={config!r})
experiment[1] = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="t"',
                 'comment_2="frozen convs"', 'filters=4']

if __name__ == "__main__":
    experiment.main()
"""


def test_transfer_learning_from_command_line(tmp_path):
    import keras

    config_path = write_config(tmp_path)
    config = load_config(config_path)
    tiny_store(config.data_dir, "tiny", n_classes=3)
    tiny_store(config.data_dir, "two", n_classes=2, seed=5)
    source = Experiment(description="source", dataset="tiny", number=1, num_folds=3,
                        parameters={"epochs": 2, "batch_size": 16}, config=str(config_path))
    source[1] = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="s"',
                 'comment_2="s"', "filters=4"]
    source.run(config=config, output=Output(out=lambda *a: None))
    source_model = config.results_dir / "tiny" / "experiment_1" / "instance_1" / "fold_0.keras"
    script = write_script(tmp_path, TRANSFER.format(config=str(config_path)))
    proc = run_script_here(script, "--set", f"load_model={str(source_model)!r}",
                           "--set", "freeze_layers=-1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target = config.results_dir / "two" / "experiment_1" / "instance_1" / "fold_0.keras"
    old = keras.saving.load_model(source_model, compile=False)
    new = keras.saving.load_model(target, compile=False)
    assert new.output.shape[-1] == 2 and old.output.shape[-1] == 3  # head replaced
    old_convs = [la for la in old.layers[-1].layers if isinstance(la, keras.layers.Conv2D)]
    new_convs = [la for la in new.layers[-1].layers if isinstance(la, keras.layers.Conv2D)]
    assert new_convs and all(not la.trainable for la in new_convs)
    for a, b in zip(old_convs, new_convs):  # frozen: unchanged by training
        np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    params = json.loads((target.parent / "params.json").read_text())["params"]
    assert params["freeze_layers"] == -1 and params["load_model"] == str(source_model)


def test_transfer_learning_freeze_first_n(store, tmp_path):
    import keras

    first = run_fold(job(store, tmp_path, fold=0))
    assert first["status"] == "ok"
    result = run_fold(job(store, tmp_path, fold=1, load_model=str(tmp_path /
                                                                  "m_False_0.keras"),
                          freeze_layers=2))
    model = keras.saving.load_model(tmp_path / "m_False_1.keras", compile=False)
    body = [la for la in model.layers[-1].layers
            if not isinstance(la, keras.layers.InputLayer)]
    assert [la.trainable for la in body[:3]] == [False, False, True]
    assert result["status"] == "ok"
    with pytest.raises(Exception, match="freeze_layers=99 but .* has"):
        run_fold(job(store, tmp_path, fold=2, load_model=str(tmp_path / "m_False_0.keras"),
                     freeze_layers=99))


@pytest.fixture(scope="module")
def audio_experiment(tmp_path_factory):
    """A small experiment trained on a store built from audio files."""
    import librosa

    from preprocessing import build_store, feature_params, regex_source

    folder = tmp_path_factory.mktemp("audio")
    config = load_config(write_config(folder))
    audio = folder / "audio"
    audio.mkdir()
    for s, speaker in enumerate(("ann", "bob", "cat", "dan")):
        for label, freq in (("low", 300), ("high", 1200)):
            for k in range(4):
                y = 0.5 * librosa.tone(freq * (1 + 0.03 * s + 0.01 * k), sr=8000,
                                       duration=0.6)
                sf.write(audio / f"{label}_{speaker}_{k}.wav", y, 8000)
    rows, _ = regex_source(audio, r"(?P<label>[a-z]+)_(?P<item>[a-z]+)_\d+\.wav$")
    params = feature_params(config.features, sample_rate=8000, n_fft=256, hop_length=128, n_mels=16,
                            segment_seconds=0.25, segment_hop_seconds=0.25)
    build_store(rows, config.data_dir / "tones", params=params, workers=1, progress=False)
    # Two folds: the tests use fold 0's model only.
    exp = Experiment(description="tones", dataset="tones", number=1, num_folds=2,
                     parameters={"epochs": 8, "batch_size": 8, "learning_rate": 0.01},
                     config=str(config.path))
    exp[1] = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="a"',
              'comment_2="b"', "filters=4"]
    exp.run(config=config, output=Output(out=lambda *a: None))
    model = config.results_dir / "tones" / "experiment_1" / "instance_1" / "fold_0.keras"
    return model, audio


def test_predict_function(audio_experiment):
    from xval.inference.predict import predict_files

    model, audio = audio_experiment
    files = [audio / "high_ann_0.wav", audio / "low_dan_3.wav"]
    results = predict_files(model, files)
    assert [r["clip"]["predicted"] for r in results] == ["high", "low"]
    for r in results:
        assert len(r["segments"]) == 3  # 0.6 s in 0.25 s windows: 0, 0.25, tail at 0.35
        for s in r["segments"]:
            assert sum(s["scores"].values()) == pytest.approx(1.0)


def test_predict_command_and_other_backend(audio_experiment):
    """`predict` on this process's backend (torch; test_model_commands_use_the_configured_backend
    runs it as a real process) and in a fresh TensorFlow process: the same scores."""
    model, audio = audio_experiment
    args = ["-m", "xval", "predict", str(model), str(audio / "high_bob_1.wav"), "--format",
            "csv"]
    torch_out = python_here(*args, cwd=ROOT)
    assert torch_out.returncode == 0, torch_out.stderr
    lines = torch_out.stdout.splitlines()
    assert lines[0] == "file,level,start,predicted,high,low"
    assert lines[-1].split(",")[1:4] == ["clip", "", "high"]
    pytest.importorskip("tensorflow")
    tf_out = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                            env={**__import__("os").environ, "KERAS_BACKEND": "tensorflow"})
    assert tf_out.returncode == 0, tf_out.stderr
    a = np.array([[float(v) for v in line.split(",")[4:]] for line in lines[1:]])
    b = np.array([[float(v) for v in line.split(",")[4:]]
                  for line in tf_out.stdout.splitlines()[1:]])
    np.testing.assert_allclose(a, b, atol=1e-4)  # saved under torch, predicts under TF


@pytest.fixture(scope="module")
def without_tensorflow(tmp_path_factory):
    """A command prefix that runs Python as on the torch-only install `make run` creates:
    the installed packages minus TensorFlow (links to every other entry of site-packages,
    and `python -S` so the real site-packages is not added)."""
    import site

    packages = next(p for p in map(__import__("pathlib").Path, site.getsitepackages())
                    if (p / "keras").is_dir())
    folder = tmp_path_factory.mktemp("torch_only")
    for entry in packages.iterdir():
        if not entry.name.lower().startswith(("tensorflow", "tensorboard", "_distutils")):
            (folder / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{folder}"
    probe = subprocess.run([sys.executable, "-S", "-c", "import importlib.util as u; "
                            "print(u.find_spec('tensorflow'), u.find_spec('keras') is not None)"],
                           capture_output=True, text=True, env=env)
    assert probe.stdout.split() == ["None", "True"], probe.stderr
    return [sys.executable, "-S", "-m", "xval"], env


@pytest.mark.parametrize("command", ["predict", "embed"])
def test_model_commands_use_the_configured_backend(command, audio_experiment, tmp_path,
                                                   without_tensorflow):
    model, audio = audio_experiment
    prefix, env = without_tensorflow
    config = write_config(tmp_path, backend={"backend": "torch"})
    extra = ["--layer", "global_average_pooling2d", "--out", str(tmp_path / "e.npy")] \
        if command == "embed" else []
    proc = subprocess.run([*prefix, command, str(model), str(audio / "high_ann_0.wav"),
                           "--config", str(config), *extra],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "tensorflow" not in proc.stderr.lower()
    bad = write_config(tmp_path / "tf", backend={"backend": "tensorflow"})
    proc = subprocess.run([*prefix, command, str(model), str(audio / "high_ann_0.wav"),
                           "--config", str(bad), *extra],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: Keras backend 'tensorflow' (from [backend] of {bad}) is not installed: "
        f"install it (`pip install -e '{ROOT}[tensorflow]'`) or choose another with "
        "KERAS_BACKEND."]


def test_legacy_h5_models_are_refused(tmp_path, audio_experiment, store):
    import keras

    from xval.core.errors import ConfigurationError
    from xval.training.loading import load

    model, audio = audio_experiment
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ConfigurationError, match="not a Keras 3 `.keras` file.*Legacy HDF5"):
        load(h5)
    renamed = tmp_path / "fake.keras"
    renamed.write_bytes(h5.read_bytes())
    with pytest.raises(ConfigurationError, match="not a Keras 3 `.keras` file"):
        load(renamed)
    assert isinstance(load(model), keras.Model)
    proc = python_here("-m", "xval", "predict", h5, audio / "high_ann_0.wav",
                       "--dataset-info", model.parent.parent / "dataset.json", cwd=ROOT)
    assert proc.returncode == 2 and "Legacy HDF5" in proc.stderr
    with pytest.raises(Exception, match="legacy .h5"):  # as a transfer-learning start: at resolve
        run_fold(job(store, tmp_path, fold=1, load_model=str(h5)))


def test_predict_missing_model_and_info(tmp_path, audio_experiment):
    _, audio = audio_experiment
    proc = python_here("-m", "xval", "predict", tmp_path / "x.keras",
                       audio / "high_bob_1.wav", cwd=ROOT)
    assert proc.returncode == 2 and "x.keras' does not exist" in proc.stderr


def test_embed_command(audio_experiment, tmp_path):
    model, audio = audio_experiment
    out = tmp_path / "emb.npy"
    # In this process (python_here); embed's own process: the backend test above.
    proc = python_here("-m", "xval", "embed", model, audio / "high_ann_0.wav",
                       audio / "low_ann_0.wav", "--layer", "global_average_pooling2d",
                       "--out", out, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    emb = np.load(out)
    assert emb.shape == (6, 8)  # 3 segments per file, 2 * filters channels
    assert (tmp_path / "emb.csv").read_text().splitlines()[0] == "file,segment,start"
    bad = python_here("-m", "xval", "embed", model, audio / "high_ann_0.wav", "--layer",
                      "nope", "--out", tmp_path / "other.npy", cwd=ROOT)
    assert bad.returncode == 2 and "No layer named 'nope'" in bad.stderr


MEMORY = """
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
from xval.config.loader import load_config
from tests.conftest import resolve
from xval.training.fold import run_fold
defaults = load_config(sys.argv[2]).training
spec = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "", "comment_2": "",
        "hidden_units": 8, "num_layers": 1, "epochs": 1, "batch_size": 512}
items = {"train": [f"item{i}" for i in range(8)], "val": ["item8"], "test": ["item9"]}
job = {"instance": 1, "fold": 0, "task_type": "classification",
       "generator": sys.argv[3] == "generator", "store": sys.argv[1],
       "params": resolve(1, spec, training_defaults=defaults), "items": items,
       "model_path": sys.argv[4]}
import threading, time

def anonymous_mib():
    # Anonymous memory only: pages of the memory-mapped store are file-backed and
    # reclaimable, which is the point of streaming from it.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) // 1024

peak, done = [0], threading.Event()

def watch():
    while not done.is_set():
        peak[0] = max(peak[0], anonymous_mib())
        time.sleep(0.005)

# Warm up first: importing Keras and torch (and TensorFlow, which Keras's saving imports
# when installed) takes hundreds of MiB that have nothing to do with the store.
import numpy as np, keras
warm = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
warm.compile("adam", "mse")
warm.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)
warm.save(sys.argv[4] + ".warm.keras")
base = anonymous_mib()
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
run_fold(job)
done.set()
watcher.join()
print(peak[0] - base)
"""


@pytest.mark.slow
def test_generator_peak_memory_does_not_grow_with_store(tmp_path):
    import pandas as pd

    from preprocessing.store import write_store

    if not os.path.exists("/proc/self/status"):
        pytest.skip("measures anonymous memory through /proc (Linux)")
    n_items, per_item, shape = 10, 400, (64, 64)  # 16 KiB per row, 62 MiB in all
    path = tmp_path / "features.npy"
    array = np.lib.format.open_memmap(path, "w+", np.float32, (n_items * per_item, *shape))
    rng = np.random.default_rng(0)
    for i in range(n_items):
        array[i * per_item:(i + 1) * per_item] = rng.normal(size=(per_item, *shape))
    array.flush()
    del array
    meta = pd.DataFrame({"item": np.repeat([f"item{i}" for i in range(n_items)], per_item),
                         "label": np.tile(["a", "b"], n_items * per_item // 2)})
    store = write_store(tmp_path / "big", str(path), meta)
    script = tmp_path / "memory.py"
    script.write_text(MEMORY)
    config = write_config(tmp_path / "cfg")
    peaks = {}
    for mode in ("memory", "generator"):
        out = subprocess.run([sys.executable, str(script), str(store.path), str(config), mode,
                              str(tmp_path / f"{mode}.keras")], capture_output=True, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                 filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
        assert out.returncode == 0, out.stderr
        peaks[mode] = int(out.stdout.strip().splitlines()[-1])  # anonymous MiB over baseline
    train_mib = 8 * per_item * 64 * 64 * 4 / 2**20  # 50 MiB of training rows
    # Both modes pay the same fixed cost (the framework's buffers during fit, predict and
    # save); only the in-memory fold also holds the training rows. Streamed, it does not.
    # That cost moves by about 15 MiB between runs on a loaded machine (a fresh clone's
    # suite measured 188 and 150 MiB: 38 of the 50), so the margin is half the rows: a
    # generator that held them would come out near 0.
    assert peaks["memory"] - peaks["generator"] > 0.5 * train_mib, peaks


def test_load_model_is_checked_when_the_run_is_planned(store, tmp_path):
    """Issue 25: a `load_model` that is not a model, that takes rows of another shape, or has
    fewer layers than `freeze_layers` is refused by --dry-run, before any folder is written
    (it used to fail mid-training after the results folder was written)."""
    first = run_fold(job(store, tmp_path, fold=0))
    assert first["status"] == "ok"
    model = tmp_path / "m_False_0.keras"
    junk = tmp_path / "junk.keras"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    config = load_config(write_config(tmp_path / "project"))
    tiny_store(config.data_dir, "tiny")  # rows (8, 6), as `store`'s
    tiny_store(config.data_dir, "wide", shape=(8, 5))
    cases = [("tiny", junk, 0, r"instance 1: load_model '.*junk.keras' is not a Keras 3"),
             ("wide", model, 0, r"takes rows of shape \(8, 6.*the store's rows are \(8, 5\)"),
             ("tiny", model, 99, "freeze_layers=99 but m_False_0.keras has")]
    for dataset, path, freeze, match in cases:
        exp = Experiment(description="transfer", dataset=dataset, number=1, num_folds=3,
                         parameters={"epochs": 2, "batch_size": 16}, config=str(config.path))
        exp[1] = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="t"',
                  'comment_2=""', "filters=4", f"load_model={str(path)!r}",
                  f"freeze_layers={freeze}"]
        with pytest.raises(ConfigurationError, match=match):
            exp.run(config=config, dry_run=True, output=Output(out=lambda *a: None))
    assert not config.results_dir.exists()


def test_embed_takes_an_instance_folder_as_predict_does(audio_experiment, tmp_path):
    """Issue 38: `embed` takes what `predict` takes. An instance folder of two fold models
    without final.keras: one model is needed (--fold names it); a `.keras` file as before;
    a final.keras is used by default."""
    import shutil

    from xval.core.errors import ConfigurationError
    from xval.inference.embed import embed_files

    model, audio = audio_experiment
    inst = model.parent
    files = [audio / "high_ann_0.wav"]
    direct, _ = embed_files(model, files, "global_average_pooling2d")
    by_fold, index = embed_files(inst, files, "global_average_pooling2d", fold=0)
    np.testing.assert_allclose(by_fold, direct, rtol=1e-6)
    assert [row["segment"] for row in index] == [0, 1, 2]
    with pytest.raises(ConfigurationError, match=r"holds 2 fold models and no final.keras; "
                                                 r".*--fold I \(one of \[0, 1\]\)"):
        embed_files(inst, files, "global_average_pooling2d")
    shutil.copytree(inst.parent, tmp_path / "experiment_1")
    copy = tmp_path / "experiment_1" / "instance_1"
    shutil.copy(copy / "fold_1.keras", copy / "final.keras")  # as a refit leaves one
    final, _ = embed_files(copy, files, "global_average_pooling2d")
    np.testing.assert_allclose(final, embed_files(inst / "fold_1.keras", files,
                                                  "global_average_pooling2d")[0], rtol=1e-6)
    out = tmp_path / "emb.npy"
    proc = python_here("-m", "xval", "embed", inst, audio / "high_ann_0.wav", "--fold", "1",
                       "--layer", "global_average_pooling2d", "--out", out, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert np.load(out).shape == (3, 8)
