"""Compiled steps: one program per instance (statistics and schedules as variables, batches
of one shape), the compilation counted in the fold record, the persistent cache, and `auto`
choosing the backend. The default path itself (JAX) runs in subprocesses
(`test_default_backend.py`); these tests run in the suite's torch process."""

import numpy as np
import pytest

from tests.conftest import tiny_store, write_config


def test_feature_normalization_standardises_and_loads_with_its_statistics(tmp_path):
    import keras

    import architectures

    mean, variance = np.array([1.0, -2.0, 0.5], np.float32), np.array([4.0, 0.25, 1.0],
                                                                         np.float32)
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, architectures.FeatureNormalization(mean, variance)(inputs))
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    expected = (x - mean) / np.sqrt(variance)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)
    layer = model.layers[-1]
    assert [v.path.split("/")[-1] for v in layer.non_trainable_variables] == ["mean",
                                                                               "variance"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5)


@pytest.mark.parametrize("warmup, cosine", [(2, True), (0, True), (2, False)])
def test_epoch_schedule_gives_the_rates_of_keras_schedules(warmup, cosine):
    import keras

    import architectures

    steps, epochs, rate = 7, 5, 0.01
    ours = architectures.EpochSchedule(rate, epochs=epochs, warmup_epochs=warmup,
                                       cosine=cosine, steps_per_epoch=steps)
    decay = epochs * steps - warmup * steps
    if cosine and warmup:
        theirs = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=decay, warmup_target=rate, warmup_steps=warmup * steps)
    elif cosine:
        theirs = keras.optimizers.schedules.CosineDecay(rate, decay_steps=decay)
    else:
        theirs = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1, alpha=1.0, warmup_target=rate, warmup_steps=warmup * steps)
    for step in (0, 1, 6, 13, 14, 20, 34, 35, 60):
        assert float(ours(step)) == pytest.approx(float(theirs(step)), rel=1e-5, abs=1e-9)


def test_a_schedules_steps_per_epoch_and_epochs_are_variables_of_its_optimizer():
    """Another fold (its steps per epoch) or a refit (its epochs: the best epoch of the
    fold's first model) changes the variables' values, never the compiled step."""
    import keras

    import architectures

    schedule = architectures.EpochSchedule(0.01, epochs=4, warmup_epochs=1,
                                           steps_per_epoch=10)
    optimizer = schedule.attach(keras.optimizers.Adam(learning_rate=schedule))
    assert schedule.steps_per_epoch in optimizer.variables
    before = float(schedule(5))
    schedule.steps_per_epoch.assign(20.0)  # another fold: the same program, another value
    assert float(schedule(5)) == pytest.approx(before / 2)
    assert schedule.get_config()["steps_per_epoch"] == 20.0
    assert schedule.epochs in optimizer.variables
    schedule.epochs.assign(2.0)  # a refit's: the decay ends at its last step
    ends = architectures.EpochSchedule(0.01, epochs=2, warmup_epochs=1, steps_per_epoch=20)
    for step in (0, 25, 39, 40):
        assert float(schedule(step)) == pytest.approx(float(ends(step)), rel=1e-5, abs=1e-9)
    assert schedule.get_config()["epochs"] == 2.0


def _batches(n, batch, shuffle, targets=None):
    from xval.training.batches import FoldBatches

    targets = np.arange(n) if targets is None else targets
    return FoldBatches(np.arange(n, dtype=np.float32)[:, None, None], np.arange(n), targets,
                       batch_size=batch, shuffle=shuffle, seed=0, weights=None,
                       mixup_alpha=0.0, crop=0, target_fn=None, placement="host")


@pytest.mark.parametrize("n, batch", [(10, 4), (3, 8), (8, 4)])
def test_every_training_batch_is_full_and_every_row_trains_each_epoch(n, batch):
    batches = _batches(n, batch, shuffle=True)
    for _ in range(3):
        seen = [batches.batch(i) for i in range(len(batches))]
        assert {len(x) for x, *_ in seen} == {batch}
        rows = np.concatenate([x[:, 0, 0] for x, *_ in seen])
        assert set(rows.astype(int)) == set(range(n))
        batches.next_epoch()


@pytest.mark.parametrize("n, batch", [(10, 4), (3, 8), (8, 4)])
def test_evaluation_batches_are_padded_with_rows_of_weight_zero(n, batch):
    batches = _batches(n, batch, shuffle=False)
    found = [batches.batch(i) for i in range(len(batches))]
    assert {len(x) for x, *_ in found} == {batch}
    rows = np.concatenate([x[:, 0, 0] for x, *_ in found])
    weights = np.concatenate([w for *_, w in found])
    np.testing.assert_array_equal(rows[:n], np.arange(n))  # in order, then the copies
    assert (weights[n:] == 0).all()
    np.testing.assert_allclose(weights[:n], len(rows) / n)
    # Keras's mean of the batches' losses (each summed with the weights, over batch rows)
    # is the mean over the real rows.
    losses = np.random.default_rng(1).uniform(size=len(rows))
    losses[n:] = 1e6  # the copies count for nothing
    per_batch = [(losses[i:i + batch] * weights[i:i + batch]).sum() / batch
                 for i in range(0, len(rows), batch)]
    assert np.mean(per_batch) == pytest.approx(losses[:n].mean())


def test_sequence_targets_get_a_weight_per_frame():
    targets = np.zeros((5, 7, 2), np.float32)
    batches = _batches(5, 4, shuffle=False, targets=targets)
    x, y, w = batches.batch(1)
    assert w.shape == (4, 7)
    np.testing.assert_allclose(w[:1], 8 / 5)
    assert (w[1:] == 0).all()


def test_an_autoencoders_targets_get_a_weight_per_frame_of_its_input():
    """A representation store's targets are its (normalised) input, made per batch: the
    weights follow their frames, not the store's per-row targets."""
    from xval.training.batches import FoldBatches

    features = np.random.default_rng(0).normal(size=(5, 6, 3)).astype(np.float32)
    batches = FoldBatches(features, np.arange(5), np.zeros(5), batch_size=4, shuffle=False,
                          seed=0, weights=None, mixup_alpha=0.0, crop=0,
                          target_fn=lambda x: 2 * x, placement="host")
    x, y, w = batches.batch(1)
    assert y.shape == (4, 6, 3) and w.shape == (4, 6)
    assert (w[1:] == 0).all() and (w[0] == 8 / 5).all()


def test_validation_scores_are_those_of_the_rows_whatever_the_padding():
    """The loss and accuracy Keras reports on padded validation batches are those of the
    real rows, scored in one batch."""
    import keras

    from xval.training.batches import make_batches

    rng = np.random.default_rng(3)
    x = rng.normal(size=(13, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=13)
    inputs = keras.Input((4, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, kernel_regularizer="l2")(flat))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    padded = model.evaluate(make_batches(x, np.arange(13), y, batch_size=4, shuffle=False),
                            return_dict=True, verbose=0)
    whole = model.evaluate(x, y, batch_size=13, return_dict=True, verbose=0)
    assert padded["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    assert padded["accuracy"] == pytest.approx(whole["accuracy"])


def test_predictions_drop_the_padding(tmp_path):
    import keras

    from xval.training.evaluation import predict_rows

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    out = predict_rows(model, x, np.array([6, 1, 2]), batch_size=2)
    np.testing.assert_allclose(out, model.predict(x[[6, 1, 2]], verbose=0), rtol=1e-6)


def test_auto_is_jax_where_installed_and_torch_for_a_transformers_network(tmp_path):
    from xval import Experiment
    from xval.config.loader import load_config
    from xval.core.backend import default_backend
    from xval.running.planner import backend_for

    assert default_backend() == "jax"  # the test environment installs it
    config = load_config(write_config(tmp_path))
    assert config.backend.backend == "auto"
    exp = Experiment(description="b", dataset="tiny", number=1, num_folds=2)
    exp[1] = {"architecture": "mlp", "reshaping_type": "none"}
    exp[2] = {"architecture": "mlp", "reshaping_type": "none", "front_end": "hf:/models/x"}
    assert backend_for(exp, [1], config) == "auto"
    assert backend_for(exp, [1, 2], config) == "torch"
    chosen = load_config(write_config(tmp_path / "t", backend={"backend": "tensorflow"}))
    assert backend_for(exp, [1, 2], chosen) == "tensorflow"  # asked for: the plan refuses


def test_a_run_on_torch_says_its_steps_are_eager_and_what_compiles_them(monkeypatch):
    """Issue 89: one line, naming why torch runs and the fix: the backend chosen (where
    from), a transformers front end, or JAX missing (with the line that installs it)."""
    import sys

    from xval.core.optional import EXTRAS
    from xval.running.environment import eager_note

    assert eager_note("jax", "auto", "auto", None) == ""
    monkeypatch.delenv("KERAS_BACKEND")
    said = eager_note("torch", "auto", "auto", "torch")
    assert said.startswith("note: the torch backend runs each training step eagerly")
    assert "chosen by --backend. JAX, installed here, compiles them: run with --backend jax" \
        in said
    assert "chosen by config.ini [backend] backend" in eager_note("torch", "torch", "torch",
                                                                  None)
    assert "transformers front end" in eager_note("torch", "auto", "torch", None)
    monkeypatch.setitem(sys.modules, "jax", None)  # not installed
    assert eager_note("torch", "auto", "auto", None).endswith(
        f"JAX, the default, is not installed. Install it for compiled steps: "
        f"{EXTRAS['jax'].install}")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert f"chosen by KERAS_BACKEND. JAX compiles them: install it ({EXTRAS['jax'].install})" \
        in eager_note("torch", "auto", "auto", None)


def test_an_eager_fold_records_its_backend_and_no_compilation(tmp_path):
    from tests.test_training import job
    from xval.training.fold import run_fold

    result = run_fold(job(tiny_store(tmp_path), tmp_path, epochs=2))
    assert result.ok and result.backend == "torch" and result.compiled is False
    assert result.compilation == {"seconds": 0.0, "programs": 0, "cached": 0}


def test_the_compile_cache_is_a_folder_relative_to_config_ini(tmp_path):
    from xval.config.loader import load_config

    config = load_config(write_config(tmp_path, backend={"compile_cache": "cache/xla"}))
    assert config.backend.compile_cache == str((tmp_path / "cache" / "xla").resolve())
    off = load_config(write_config(tmp_path / "off", backend={"compile_cache": None}))
    assert off.backend.compile_cache is None
