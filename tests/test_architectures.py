"""The architecture zoo: registry, every builder trains, every documented parameter counts."""

import inspect
import re
import warnings

import keras
import numpy as np
import pytest

import architectures
from architectures import StatisticsPooling
from tests.conftest import resolve, training_defaults
from xval import Output
from xval.training.model import build_model

DEFAULTS = training_defaults()
SHAPE = (16, 12)
SMALL = {"vgg_m": {"width": 0.125, "dense_units": 16},
         "resnet_detector": {"filters": 4, "conv_blocks": 2, "units": 8},
         "fast_detector": {"filters": 4, "conv_blocks": 2, "units": 8},
         "conformer_detector": {"filters": 4, "d_model": 16, "heads": 2, "num_blocks": 1,
                                "kernel_size": 3}}


def _params(name, reshaping, **extra):
    spec = {"architecture": name, "reshaping_type": reshaping, "comment_1": "",
            "comment_2": "", **SMALL.get(name, {}), **extra}
    return resolve(1, spec, training_defaults=DEFAULTS)


CASES = [(n, r, t) for n in architectures.names() if "vector" in architectures.outputs(n)
         for r in architectures.reshaping_types(n) for t in ("classification", "regression")]


@pytest.mark.parametrize("name,reshaping,task_type", CASES)
def test_builder_trains_on_tiny_input(name, reshaping, task_type, rng):
    keras.utils.set_random_seed(0)
    params = _params(name, reshaping)
    outputs = 3 if task_type == "classification" else 1
    model = build_model(params, SHAPE, outputs, task_type, np.zeros(12, "float32"),
                        np.ones(12, "float32"))
    x = rng.normal(size=(24, *SHAPE)).astype("float32")
    y = rng.integers(0, 3, 24) if task_type == "classification" else rng.normal(size=24)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) \
        if task_type == "classification" else "mse"
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x[:4], verbose=0).shape == (4, outputs)


def _alternative(name, value):
    if isinstance(value, bool):
        return not value
    if name == "cell":
        return "lstm" if value == "gru" else "gru"
    if name == "pooling":
        return "stats" if value == "mean" else "mean"
    if name == "upsample":
        return "linear" if value == "repeat" else "repeat"
    if name == "bn_momentum":
        return 0.5
    if name == "blocks":
        return value - 1
    if isinstance(value, int):
        return value * 2 if value else 1
    if isinstance(value, float):
        return value + 0.1 if value else 0.01
    raise AssertionError(f"no alternative for {name}={value!r}")


@pytest.mark.parametrize("name", architectures.names())
def test_every_documented_parameter_changes_the_model(name):
    builder = architectures.get(name)
    defaults = architectures.keyword_defaults(name)
    doc = inspect.getdoc(getattr(builder, "func", builder))  # an alias: the builder's doc
    fixed = set(getattr(builder, "keywords", {}))  # the keywords an alias fixes
    documented = set(re.findall(r"^\s{4}(\w+):", doc.split("Args:")[1].split("Returns:")[0],
                                re.M)) - {"input_shape", "num_outputs", "task_type"} - fixed
    assert documented == set(defaults), "documented keywords must equal the signature"
    reshaping = architectures.reshaping_types(name)[0]
    shape = {"conv": (*SHAPE, 1), "rnn": SHAPE, "none": (SHAPE[0] * SHAPE[1],)}[reshaping]
    base_kwargs = SMALL.get(name, {})
    reference = builder(shape, 3, **base_kwargs).to_json()
    for key, value in defaults.items():
        value = base_kwargs.get(key, value)
        changed = builder(shape, 3, **{**base_kwargs, key: _alternative(key, value)})
        assert changed.to_json() != reference, f"{name}: {key} does not change the model"


@pytest.mark.parametrize("name", architectures.names())
def test_regularization_lambda_adds_l2_losses(name):
    reshaping = architectures.reshaping_types(name)[0]
    shape = {"conv": (*SHAPE, 1), "rnn": SHAPE, "none": (SHAPE[0] * SHAPE[1],)}[reshaping]
    kwargs = SMALL.get(name, {})
    plain = architectures.get(name)(shape, 3, **kwargs)
    regular = architectures.get(name)(shape, 3, **kwargs, regularization_lambda=0.01)
    assert len(plain.losses) == 0 and len(regular.losses) > 0
    assert float(sum(keras.ops.convert_to_numpy(v) for v in regular.losses)) > 0


def test_bn_momentum_reaches_every_batch_normalization():
    model = architectures.get("vgg_mini")((*SHAPE, 1), 3, filters=2, dense_units=4,
                                          bn_momentum=0.8)
    momenta = {layer.momentum for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.8}


def test_vgg_mini_pool_is_vgg_mini_with_global_pooling_under_its_old_name():
    """One builder, two names, each fixing `global_pooling` and taking the other keywords it
    always took, so the saved parameters of both (and their hash) stay as they were."""
    keywords = {"filters": 16, "dense_units": 64, "dropout": 0.3,
                "regularization_lambda": 0.0, "bn_momentum": 0.9}
    assert architectures.keyword_defaults("vgg_mini_pool") == keywords
    assert architectures.keyword_defaults("vgg_mini") == keywords
    pooled = architectures.get("vgg_mini_pool")((*SHAPE, 1), 3, filters=2, dense_units=4)
    flat = architectures.get("vgg_mini")((*SHAPE, 1), 3, filters=2, dense_units=4)
    assert pooled.name == "vgg_mini_pool" and flat.name == "vgg_mini"
    assert pooled.count_params() != flat.count_params()
    assert any(isinstance(x, keras.layers.GlobalAveragePooling2D) for x in pooled.layers)
    assert not any(isinstance(x, keras.layers.GlobalAveragePooling2D) for x in flat.layers)


def test_register_refuses_a_fixed_keyword_the_builder_lacks():
    def builder(input_shape, num_outputs, task_type="classification", *, wide: bool = False):
        return None

    with pytest.raises(TypeError, match="fixed narrow=True is not a valid value"):
        architectures.register("fixed_wrong", fixed={"narrow": True})(builder)
    with pytest.raises(TypeError, match="fixed wide=2 is not a valid value"):
        architectures.register("fixed_wrong", fixed={"wide": 2})(builder)
    assert "fixed_wrong" not in architectures.names()


@pytest.mark.parametrize("value", [1.0, 0.0, -0.1])
def test_bn_momentum_out_of_range_is_an_error(value):
    with pytest.raises(ValueError, match=r"bn_momentum=.*expected a value in \(0, 1\)"):
        architectures.get("example_cnn")((*SHAPE, 1), 3, bn_momentum=value)


# -- keyword ranges declared with the builder (issue 25) ---------------------------------

@pytest.mark.parametrize("name,values,match", [
    ("example_cnn", {"dropout": 1.5}, r"dropout=1.5 is not valid for architecture "
                                      r"'example_cnn': expected a finite number in \[0, 1\); "
                                      r".*the default is dropout=0.2"),
    ("example_cnn", {"dropout": float("nan")}, r"dropout=nan .*in \[0, 1\)"),
    ("example_cnn", {"filters": 0}, r"filters=0 .*an integer in \[1, 2048\]"),
    ("example_cnn", {"filters": 10**6}, r"filters=1000000 .*an integer in \[1, 2048\]"),
    ("example_cnn", {"filters": 16.5}, r"filters=16.5 .*an integer"),
    ("example_cnn", {"regularization_lambda": -0.1}, r"regularization_lambda=-0.1 .*>= 0"),
    ("example_cnn", {"bn_momentum": 2.0}, r"bn_momentum=2.0 .*in \(0, 1\)"),
    ("example_cnn", {"bn_momentum": 0.0}, r"bn_momentum=0.0 .*in \(0, 1\)"),
    ("mlp", {"hidden_units": -1}, r"hidden_units=-1 .*an integer in \[1, 16384\]"),
    ("mlp", {"num_layers": 0}, r"num_layers=0 .*an integer in \[1, 32\]"),
    ("audio_cnn", {"blocks": 7}, r"blocks=7 .*an integer in \[1, 6\]"),
    ("vgg_m", {"width": 0.0}, r"width=0.0 .*in \(0, 16\]"),
    ("rnn", {"cell": "rnn"}, r"cell='rnn' .*one of 'gru', 'lstm'"),
    ("rnn", {"bidirectional": 1}, r"bidirectional=1 .*True or False"),
    ("crnn_detector", {"freq_pool": 0}, r"freq_pool=0 .*an integer in \[1, 64\]"),
])
def test_check_keywords_refuses_values_outside_the_declared_range(name, values, match):
    from xval.core.errors import ParameterError

    with pytest.raises(ParameterError, match="instance 3: " + match):
        architectures.check_keywords(name, values, "instance 3")


def test_check_keywords_accepts_the_defaults_and_ignores_other_names():
    for name in architectures.names():
        architectures.check_keywords(name, {**architectures.keyword_defaults(name),
                                            "learning_rate": -5})
    architectures.check_keywords("vgg_mini", {"dense_units": 0, "dropout": 0.0})
    architectures.check_keywords("vgg_m", {"width": 2})  # an int is a valid float


def test_every_builder_declares_the_range_of_every_keyword():
    for name in architectures.names():
        assert set(architectures.keyword_domains(name)) == \
            set(architectures.keyword_defaults(name)), name


def test_register_refuses_a_keyword_without_declared_values():
    def undeclared(input_shape, num_outputs, task_type="classification", *, units=3):
        return None

    with pytest.raises(TypeError, match="keyword units declares no valid values; annotate"):
        architectures.register("test_undeclared")(undeclared)

    from architectures.keywords import Probability

    def bad_default(input_shape, num_outputs, task_type="classification", *,
                    dropout: Probability = 1.0):
        return None

    with pytest.raises(TypeError, match=r"the default dropout=1.0 is not a finite number "
                                        r"in \[0, 1\)"):
        architectures.register("test_bad_default")(bad_default)
    assert "test_undeclared" not in architectures.names()


@pytest.mark.parametrize("spec,match", [
    ({"dropout": 1.5}, r"instance 1: dropout=1.5 is not valid for architecture 'example_cnn'"),
    ({"filters": 0}, r"instance 1: filters=0 is not valid"),
    ({"regularization_lambda": -0.1}, r"regularization_lambda=-0.1 is not valid"),
    ({"bn_momentum": 2.0}, r"bn_momentum=2.0 is not valid"),
])
def test_resolve_refuses_keywords_outside_their_range(spec, match):
    from xval.core.errors import ParameterError

    with pytest.raises(ParameterError, match=match):
        _params("example_cnn", "conv", **spec)
    with pytest.raises(ParameterError, match="hidden_units=-1 is not valid"):
        _params("mlp", "none", hidden_units=-1)


def test_unknown_architecture_lists_known():
    with pytest.raises(ValueError, match=r"architecture='resnet': expected one of .*example_cnn"
                                         r".*vgg_mini.* \(the architectures registered in "
                                         r"architectures\)"):
        architectures.get("resnet")


def test_register_rejects_duplicates_and_bad_signature():
    with pytest.raises(ValueError, match="already registered"):
        architectures.register("vgg_mini")(lambda input_shape, num_outputs, task_type: None)
    with pytest.raises(TypeError, match="must take input_shape, num_outputs, task_type"):
        architectures.register("bad_one")(lambda shape, n: None)


def test_builder_invalid_values():
    with pytest.raises(ValueError, match="cell='transformer'"):
        architectures.get("rnn")(SHAPE, 3, cell="transformer")
    with pytest.raises(ValueError, match="regularization_lambda=-1"):
        architectures.get("mlp")((10,), 3, regularization_lambda=-1)
    with pytest.raises(ValueError, match="task_type='clustering'"):
        architectures.get("mlp")((10,), 3, task_type="clustering")


def test_statistics_pooling_saves_and_loads_by_name(tmp_path, rng):
    model = architectures.get("rnn")(SHAPE, 3, pooling="stats", units=8)
    assert any(isinstance(layer, StatisticsPooling) for layer in model.layers)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(2, *SHAPE)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_statistics_pooling_values():
    x = np.arange(12, dtype="float32").reshape(1, 3, 4)
    out = keras.ops.convert_to_numpy(StatisticsPooling()(x))
    np.testing.assert_allclose(out[0, :4], x[0].mean(0))
    np.testing.assert_allclose(out[0, 4:], x[0].std(0), rtol=1e-5)


def test_label_attention_pooling_reads_each_label_where_its_scores_point():
    from architectures.pooling import LabelAttentionPooling

    logits = np.array([[[1.0, -2.0], [3.0, 5.0], [-1.0, 0.0]]], "float32")  # (1, 3 blocks, 2)
    scores = np.array([[[0.0, 50.0], [50.0, 0.0], [0.0, 0.0]]], "float32")
    out = keras.ops.convert_to_numpy(LabelAttentionPooling()([logits, scores]))
    np.testing.assert_allclose(out, [[3.0, -2.0]], atol=1e-5)  # label 0 block 1, label 1 block 0
    even = keras.ops.convert_to_numpy(LabelAttentionPooling()([logits, np.zeros_like(logits)]))
    np.testing.assert_allclose(even, logits.mean(axis=1), atol=1e-6)
    with warnings.catch_warnings():  # a row of one block (a short clip): no Keras warning
        warnings.filterwarnings("error", message=".*softmax")
        one = keras.ops.convert_to_numpy(LabelAttentionPooling()([logits[:, 1:2], scores[:, :1]]))
    np.testing.assert_allclose(one, logits[:, 1], atol=1e-6)


@pytest.mark.parametrize("builder,pooling", [("pretrained_pool", "max"),
                                             ("pretrained_pool", "label_attention"),
                                             ("pretrained_bigru", "label_attention")])
def test_tagging_heads_over_blocks_train_save_and_load(builder, pooling, tmp_path, rng):
    """The poolings added for tagging (issue 75): one logit per label, trained on 0/1
    targets, saved and loaded by name (safe mode) with the same outputs."""
    model = architectures.get(builder)(SHAPE, 4, "tagging", projection=8, hidden_units=8,
                                       pooling=pooling) if builder == "pretrained_pool" \
        else architectures.get(builder)(SHAPE, 4, "tagging", projection=8, units=4,
                                        pooling=pooling)
    assert model.output_shape == (None, 4)
    x = rng.normal(size=(16, *SHAPE)).astype("float32")
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, (rng.uniform(size=(16, 4)) < 0.4).astype("float32"), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


DETECTORS = [n for n in architectures.names() if "frames" in architectures.outputs(n)]


@pytest.mark.parametrize("name", DETECTORS)
def test_detectors_keep_the_time_resolution(name, rng):
    keras.utils.set_random_seed(0)
    reshaping = architectures.reshaping_types(name)[0]
    shape = (*SHAPE, 1) if reshaping == "conv" else SHAPE
    model = architectures.get(name)(shape, 2, **SMALL.get(name, {"units": 8}))
    x = rng.normal(size=(12, *shape)).astype("float32")
    y = (rng.uniform(size=(12, SHAPE[0], 2)) > 0.7).astype("float32")
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x[:3], verbose=0).shape == (3, SHAPE[0], 2)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"


@pytest.mark.parametrize("name", ["resnet_detector", "conformer_detector", "fast_detector"])
def test_larger_detectors_save_and_load(name, rng, tmp_path):
    model = architectures.get(name)((*SHAPE, 1), 3, **SMALL[name])
    x = rng.normal(size=(2, *SHAPE, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x),
                               atol=1e-5)
    with pytest.raises(ValueError, match="d_model=10 is not a multiple of heads=4; .*heads=5"):
        architectures.get("conformer_detector")((*SHAPE, 1), 2, d_model=10)


@pytest.mark.parametrize("frames", [15, 16, 17])
def test_fast_detector_repeats_its_pooled_frames_back_to_every_input_frame(frames, rng):
    """Time pooled by 4 after the stem: one output per 4 input frames, repeated to a logit
    for every input frame (a window whose frames 4 does not divide keeps all of them)."""
    keras.utils.set_random_seed(0)
    model = architectures.get("fast_detector")((frames, 12, 1), 2, time_pool=4,
                                               **SMALL["fast_detector"])
    out = np.asarray(model.predict(rng.normal(size=(3, frames, 12, 1)).astype("float32"),
                                   verbose=0))
    assert out.shape == (3, frames, 2)
    blocks = -(-frames // 4)
    padded = np.concatenate([out, np.repeat(out[:, -1:], blocks * 4 - frames, axis=1)], 1)
    steps = padded.reshape(3, blocks, 4, 2)
    np.testing.assert_array_equal(steps, np.repeat(steps[:, :, :1], 4, axis=2))
    assert not np.allclose(steps[:, 0, 0], steps[:, 1, 0])  # the blocks differ
    unpooled = architectures.get("fast_detector")((frames, 12, 1), 2, time_pool=1,
                                                  **SMALL["fast_detector"])
    assert unpooled.output_shape == (None, frames, 2)


def test_fast_detector_linear_upsampling_interpolates_between_pooled_centres(rng, tmp_path):
    """`upsample="linear"`: the pooled logits interpolated between their frames' centres
    (frames 1.5, 5.5, 9.5 ... of a pool of 4), each end held; saved and loaded as it is."""
    from architectures.frames import RepeatFrames

    pooled = np.array([[[0.0], [4.0], [8.0]]], "float32")
    out = keras.ops.convert_to_numpy(RepeatFrames(4, mode="linear")(
        [pooled, np.zeros((1, 11, 1), "float32")]))
    np.testing.assert_allclose(out[0, :, 0], [0, 0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8])
    with pytest.raises(ValueError, match=r"mode='cubic': expected one of repeat, linear"):
        RepeatFrames(4, mode="cubic")
    model = architectures.get("fast_detector")((17, 12, 1), 2, upsample="linear",
                                               **SMALL["fast_detector"])
    x = rng.normal(size=(2, 17, 12, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x),
                               atol=1e-5)
    steps = np.diff(np.asarray(model.predict_on_batch(x))[:, 2:14], axis=1)
    assert not np.allclose(steps[:, 0::4], 0)  # no longer constant within a pooled frame


def test_detectors_refuse_other_tasks():
    assert DETECTORS == ["conformer_detector", "crnn_detector", "fast_detector",
                         "gru_detector", "pretrained_detector", "resnet_detector"]
    with pytest.raises(ValueError, match="task_type='classification'.*expected 'detection'"):
        architectures.get("gru_detector")(SHAPE, 2, task_type="classification")
    assert architectures.outputs("example_cnn") == ("vector",)


def test_a_detector_in_a_classification_experiment_is_a_parameter_error():
    from xval.core.errors import ParameterError

    with pytest.raises(ParameterError, match="crnn_detector' makes frames outputs, but "
                       "task_type 'classification' needs vector outputs; choose one of.*audio_cnn"):
        _params("crnn_detector", "conv")


def test_conv_autoencoder_reconstructs_its_input_shape(rng):
    keras.utils.set_random_seed(0)
    model = architectures.get("conv_autoencoder")((*SHAPE, 1), None, filters=4,
                                                  bottleneck_channels=3)
    x = rng.normal(size=(16, *SHAPE, 1)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, x[..., 0], epochs=3, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x[:2], verbose=0).shape == (2, *SHAPE)
    code = model.get_layer("bottleneck").output
    assert code.shape[1:] == (4, 3, 3)  # 16x12 halved twice, 3 channels
    with pytest.raises(ValueError, match="expected 'representation'"):
        architectures.get("conv_autoencoder")((*SHAPE, 1), 3, task_type="classification")


@pytest.mark.parametrize("keyword", ["dropout=1.5", "filters=0", "regularization_lambda=-0.1",
                                     "bn_momentum=2.0"])
def test_experiment_with_a_keyword_out_of_range_writes_nothing(config_path, config, store,
                                                               keyword):
    from xval import Experiment
    from xval.core.errors import ParameterError

    exp = Experiment(description="ranges", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp[1] = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="a"',
              'comment_2="b"', keyword]
    with pytest.raises(ParameterError, match=f"instance 1: {keyword} is not valid"):
        exp.run(config=config, dry_run=True, output=Output(out=lambda *a: None))
    with pytest.raises(ParameterError, match=f"instance 1: {keyword} is not valid"):
        exp.run(config=config, output=Output(out=lambda *a: None))
    assert not config.results_dir.exists()



REGISTERED = ("import keras\n"
              "names = ('SpecAugment', 'StatisticsPooling', 'LayerWeightedSum', "
              "'SpectralFrontEnd', 'AisfxNetwork', 'AisfxFrontEnd')\n"
              "print(all(keras.saving.get_registered_object('architectures>' + n) "
              "for n in names))\n")


@pytest.mark.parametrize("code", [
    # architectures first: no backend until Keras is imported, then every layer registered
    "import sys, architectures\n"
    "assert not {'keras', 'tensorflow', 'torch', 'jax'} & set(sys.modules), sys.modules\n"
    "assert architectures.keyword_defaults('vgg_mini')['filters'] == 16\n" + REGISTERED,
    # Keras first: registered by the import of architectures
    "import keras, architectures\n" + REGISTERED,
    # Keras first imported by a module of layers, in the middle of its own import
    "import architectures.front_end\n" + REGISTERED,
    "import architectures.encoders\n" + REGISTERED,
])
def test_import_architectures_registers_the_layers_once_keras_is_imported(code):
    """A builder's keywords are read without a backend, and a saved model's custom layers
    are known to Keras after `import architectures`, whichever of the two comes first.
    (On JAX, the default backend, whose import costs half of torch's: the registration
    does not depend on the backend.)"""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "True"
