"""No tensor value read back to the host inside a training step (issue 63): the counter, the
default instance and every architecture of the zoo at the package defaults, the schedule and
the loss-scale optimizer without host branches (same values as Keras's), the layers' draws
on the device (seeded, reproducible), and evaluation from the device rows. On JAX a host
read could not be traced at all: the default instance trained compiled there is
tests/test_default_backend.py's."""


import keras
import numpy as np
import pytest

import architectures
from architectures import DeviceLossScaleOptimizer, SpecAugment, TimeWarp, WarmupCosineDecay
from benchmarks.gpu import TASK_INSTANCES, fold_job, task_store
from tests.conftest import ROOT, resolve, tiny_store
from tests.test_architectures import SHAPE, SMALL  # the zoo at its smallest, as tested there
from tests.test_training import job, run_fold
from xval import tasks
from xval.config.loader import load_config
from xval.training import devices
from xval.training.device_constants import constants_on_device
from xval.training.evaluation import predict_rows
from xval.training.host_reads import count_host_reads
from xval.training.model import build_model, make_optimizer

SHIPPED = load_config(ROOT / "config.ini").training
"""The `[training]` defaults as shipped (warm-up + cosine, SpecAugment, warps, mixup...)."""

TASK_OF = {"vector": "classification", "frames": "detection", "input": "representation"}


def test_count_host_reads_sees_keras_seeded_draws(rng):
    """The counter can fail: Keras's own seeded draw reads its seed back at every step on
    torch."""

    class Noisy(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.seed_generator = keras.random.SeedGenerator(1)

        def call(self, x, training=None):
            return x + keras.random.uniform(keras.ops.shape(x), seed=self.seed_generator) \
                if training else x

    model = keras.Sequential([keras.Input((4,)), Noisy(), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = rng.normal(size=(16, 4)).astype("float32")
    with count_host_reads() as seen:
        model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0)
    assert seen.steps["train_step"] == 2
    assert seen.per_step("train_step") >= 1
    assert "random" in next(iter(seen.where.values()))
    assert keras.Model.__dict__.get("train_step") is None  # the wrappers are gone


def test_count_host_reads_sees_keras_constants_copied_to_the_device(rng):
    """The copy counter can fail: Keras's own loss reduction, metrics and optimizer copy
    Python numbers to the device at every step (on a GPU each copy waits for it); made on
    the device under `constants_on_device`, and Keras's function is back after."""
    from keras.src.backend.torch import core
    from keras.src.backend.torch import numpy as torch_numpy

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = rng.normal(size=(16, 4)).astype("float32")
    with count_host_reads() as seen:
        model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0)
    assert seen.copies_per_step() >= 3
    assert any("loss" in where for where in seen.copies), seen.copies
    original = core.convert_to_tensor
    with constants_on_device(), count_host_reads() as seen:
        assert core.convert_to_tensor is not original
        assert torch_numpy.convert_to_tensor is core.convert_to_tensor  # bound by name too
        with constants_on_device():  # re-entrant
            model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0)
        assert core.convert_to_tensor is not original
    assert seen.steps["train_step"] == 2 and dict(seen.copies) == {}
    assert core.convert_to_tensor is original and torch_numpy.convert_to_tensor is original


@pytest.mark.parametrize("value", [True, False, 0, 1, -3, 2**31, 2**40, 2**70, 1.5, -0.0,
                                   float("inf"), float("nan"), 1e300, [2, 3], (1, 2.5),
                                   [True, False], np.float32(2.0), np.arange(3)])
def test_constants_on_device_gives_keras_values_and_dtypes(value):
    """Every Python number, short list and (unchanged) numpy value converts to what Keras's
    own conversion gives, dtype included, or fails as it does."""
    import torch
    from keras.src.backend.torch import core

    def convert(dtype):
        try:
            return core.convert_to_tensor(value, dtype=dtype)
        except (RuntimeError, OverflowError, TypeError, ValueError) as error:
            return type(error).__name__

    dtypes = [None, "float32", "float16", "bfloat16", "float64", "int8", "uint8", "int32",
              "int64", "bool"]
    expected = [convert(dtype) for dtype in dtypes]
    with constants_on_device():
        got = [convert(dtype) for dtype in dtypes]
    for dtype, want, have in zip(dtypes, expected, got, strict=True):
        if isinstance(want, str) or isinstance(have, str):
            assert want == have, dtype
        else:
            assert (want.dtype, want.shape, want.device) == (have.dtype, have.shape,
                                                             have.device), dtype
            assert torch.equal(want, have) or bool(want.isnan().all() and have.isnan().all())


def test_a_sync_in_keras_callback_thread_is_not_the_step_s():
    """On a CUDA device, a synchronisation reported from another thread during a step
    (Keras's callback thread reading the last batch's logs) is counted apart: the step does
    not wait for it. Tested on any machine with the warning torch emits."""
    import threading
    import warnings

    from xval.training.host_reads import HostReads, _in_step

    def sync():
        warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)

    def step(self):
        sync()
        other = threading.Thread(target=sync)
        other.start()
        other.join()
        warnings.warn("something else", UserWarning, stacklevel=1)

    seen = HostReads()
    with pytest.warns(UserWarning, match="something else"):
        _in_step(step, "train_step", seen, cuda=True)(None)
    assert seen.syncs_per_step() == 1 and sum(seen.elsewhere.values()) == 1
    assert "sync" in next(iter(seen.sync_where))


def test_default_instance_makes_no_host_read_in_a_step(tmp_path):
    """`init`'s audio CNN at the shipped defaults (SpecAugment, both warps, warm-up + cosine,
    mixup, label smoothing) trains and validates without one host read per step; it made 10
    per training step before."""
    from tests.conftest import tiny_store

    store = tiny_store(tmp_path / "data", shape=(32, 16))
    spec = job(store, tmp_path, epochs=2)
    spec["params"] = resolve(2, {"architecture": "audio_cnn", "reshaping_type": "conv",
                                 "comment_1": "", "comment_2": "", "filters": 4,
                                 "epochs": 2, "patience": 2, "warmup_epochs": 1},
                             training_defaults=SHIPPED)
    params = spec["params"]
    assert params["time_masks"] and params["freq_warp"] and params["time_warp"]
    assert params["lr_schedule"] == "cosine" and params["mixup_alpha"]
    with count_host_reads() as seen:
        result = run_fold(spec)
    assert result["status"] == "ok"
    assert seen.steps["train_step"] >= 4 and seen.steps["test_step"] >= 2
    assert dict(seen.reads) == {}, seen.where
    assert dict(seen.copies) == {}  # 22 per training step before: a wait each on a GPU
    again = run_fold(spec)  # the job's seed repeats every draw
    for key, values in result["history"].items():
        np.testing.assert_array_equal(again["history"][key], values)


def test_count_host_reads_sees_sync_prone_operators(rng):
    """The operator counter can fail: Keras's own `AUC(multi_label=True)` buckets with
    `segment_sum`, whose `repeat_interleave` reads its output size back at every training
    and validation step on torch; `MultiLabelAUC` counts the same buckets without it."""
    from xval.tasks.losses import MultiLabelAUC

    x = rng.normal(size=(32, 4)).astype("float32")
    y = (rng.uniform(size=(32, 3)) > 0.5).astype("float32")
    for metric, expected in ((keras.metrics.AUC(multi_label=True, from_logits=True), 2),
                             (MultiLabelAUC(from_logits=True), 0)):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[metric])
        with constants_on_device(), count_host_reads() as seen:
            model.fit(x, y, batch_size=8, epochs=1, validation_data=(x, y), verbose=0)
        assert seen.sync_ops_per_step() == expected, seen.sync_ops
        assert seen.sync_ops_per_step("test_step") == expected
    assert "segment_sum" in seen.op_where.get("train_step: aten.repeat_interleave", "") \
        or expected == 0
    import torch

    from xval.training.host_reads import HostReads, _in_step

    def step(ones):  # a boolean mask, a nonzero, and an item() from C++ (int repeats: none)
        return ones[ones > 0].sum() + int(torch.nonzero(ones).sum()) \
            + torch.repeat_interleave(ones, 2).sum()

    seen = HostReads()
    _in_step(step, "train_step", seen, cuda=False, ops=True)(torch.ones(3))
    assert dict(seen.sync_ops) == {"train_step: aten.index (boolean mask)": 1,
                                   "train_step: aten.nonzero": 1,
                                   "train_step: aten._local_scalar_dense": 1}


def test_multi_label_auc_equals_keras_auc(rng):
    """The same variables and result as Keras's `AUC(multi_label=True)`, batch by batch,
    with and without sample weights, predictions on bucket bounds and at 0 and 1
    included; its config round-trips."""
    from xval.tasks.losses import MultiLabelAUC

    y = (rng.uniform(size=(50, 4)) > 0.6).astype("float32")
    z = rng.normal(size=(50, 4)).astype("float32")
    z[:5], z[5:8], z[8:10] = 0.0, 50.0, -50.0
    for weights in (None, rng.uniform(size=50).astype("float32"),
                    rng.uniform(size=(50, 4)).astype("float32")):
        theirs = keras.metrics.AUC(multi_label=True, from_logits=True)
        ours = MultiLabelAUC(from_logits=True)
        for i in range(0, 50, 16):
            w = None if weights is None else weights[i:i + 16]
            theirs.update_state(y[i:i + 16], z[i:i + 16], w)
            ours.update_state(y[i:i + 16], z[i:i + 16], w)
            for a, b in zip(theirs.variables, ours.variables, strict=True):
                np.testing.assert_allclose(keras.ops.convert_to_numpy(b),
                                           keras.ops.convert_to_numpy(a), atol=1e-5)
        assert float(ours.result()) == pytest.approx(float(theirs.result()), abs=1e-6)
    again = MultiLabelAUC.from_config(ours.get_config())
    assert again.multi_label and again.num_thresholds == 200 and again.name == "auc"


@pytest.mark.parametrize("task", list(TASK_INSTANCES))
def test_every_task_default_instance_never_waits_in_a_step(task, tmp_path):
    """Each task's default instance (the GPU benchmark's `TASK_INSTANCES`: the package
    defaults on the task's store) trains and validates through the engine without a host
    read, a host value copied to the device, or a sync-prone operator in a step (a tagging
    step made 4 copies and 2 `repeat_interleave` with Keras's AUC)."""
    from xval.training.fold import run_fold as engine_fold

    if task in ("classification", "representation"):
        store = tiny_store(tmp_path / "data", shape=(32, 16))
    else:
        store = task_store(tmp_path / "data", task, rows=96, shape=(32, 16))
    spec = {**TASK_INSTANCES[task][1], "filters": 4, "warmup_epochs": 1}
    job = fold_job(store, spec, 2, 16, task_type=task)
    with count_host_reads() as seen:
        result = engine_fold(job)
    assert result.ok, result.message
    assert seen.steps["train_step"] >= 2 and seen.steps["test_step"] >= 1
    assert seen.waits() == {}, (seen.where, seen.op_where)


def test_tagging_label_attention_with_label_union_never_waits_in_a_step(tmp_path):
    """The tagging head over blocks with per-label attention, trained on label-union mixed
    batches gathered on the device (issue 75), makes no host read, copy or sync op in a
    step."""
    from xval.training.fold import run_fold as engine_fold

    store = task_store(tmp_path / "data", "tagging", rows=96, shape=(8, 16))
    spec = {"architecture": "pretrained_pool", "reshaping_type": "rnn", "projection": 0,
            "pooling": "label_attention", "hidden_units": 16, "union_mix": 0.5,
            "warmup_epochs": 1}
    job = fold_job(store, spec, 2, 16, task_type="tagging")
    assert job.params["union_mix"] == 0.5 and not job.params["mixup_alpha"]
    with count_host_reads() as seen:
        result = engine_fold(job)
    assert result.ok, result.message
    assert seen.steps["train_step"] >= 2 and seen.steps["test_step"] >= 1
    assert seen.waits() == {}, (seen.where, seen.op_where)


@pytest.mark.parametrize("name", architectures.names())
def test_every_architecture_makes_no_host_read_in_a_step(name, rng):
    task_type = TASK_OF[architectures.outputs(name)[0]]
    reshaping = architectures.reshaping_types(name)[0]
    extra = {"mixup_alpha": 0.0, "label_smoothing": 0.0} if task_type != "classification" \
        else {}
    if task_type != "classification" or reshaping != "conv":
        extra.update(freq_warp=0.0, time_warp=0.0)  # refused where frames are targets
    params = resolve(1, {"architecture": name, "reshaping_type": reshaping, "comment_1": "",
                         "comment_2": "", "epochs": 2, "warmup_epochs": 1,
                         **SMALL.get(name, {}), **extra},
                     training_defaults=SHIPPED, task_type=task_type)
    keras.utils.set_random_seed(0)
    outputs = {"classification": 3, "detection": 2, "representation": SHAPE[1]}[task_type]
    model = build_model(params, SHAPE, outputs, task_type, np.zeros(12, "float32"),
                        np.ones(12, "float32"))
    x = rng.normal(size=(16, *SHAPE)).astype("float32")
    y = {"classification": rng.integers(0, 3, 16),
         "detection": (rng.uniform(size=(16, SHAPE[0], 2)) > 0.7).astype("float32"),
         "representation": x}[task_type]
    task = tasks.get(task_type)
    head = task.head
    model.compile(optimizer=make_optimizer(params, 2, model), loss=head.loss(params, y),
                  metrics=head.metrics(params))
    y = task.targets.for_keras(y, params, outputs)
    with constants_on_device(), count_host_reads() as seen:  # as the engine trains
        model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0)
    assert seen.steps["train_step"] == 4
    assert seen.waits() == {}, (seen.where, seen.op_where)  # no read, copy or sync op


@pytest.mark.parametrize("warmup,alpha,decay", [(10, 0.0, 30), (10, 1.0, 1), (3, 0.2, 7)])
def test_warmup_cosine_decay_equals_keras_cosine_decay(warmup, alpha, decay):
    ours = WarmupCosineDecay(0.0, decay_steps=decay, alpha=alpha, warmup_target=0.01,
                             warmup_steps=warmup)
    theirs = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=decay, alpha=alpha,
                                                    warmup_target=0.01, warmup_steps=warmup)
    for step in range(0, warmup + decay + 5):
        assert float(ours(step)) == pytest.approx(float(theirs(step)), rel=1e-6, abs=1e-9)
    assert WarmupCosineDecay.from_config(ours.get_config()).warmup_steps == warmup


def _variables(optimizer_cls, grads_per_step, **kwargs):
    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    optimizer = optimizer_cls(keras.optimizers.Adam(0.1), dynamic_growth_steps=2,
                              initial_scale=8.0, **kwargs)
    trace = []
    for grads in grads_per_step:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads],
                        dense.trainable_variables)
        trace.append([keras.ops.convert_to_numpy(v.value) for v in
                      (*dense.trainable_variables, optimizer.dynamic_scale,
                       optimizer.step_counter, optimizer.iterations)])
    return trace


def test_device_loss_scale_optimizer_equals_keras_and_skips_non_finite_steps(rng):
    kernel, bias = np.ones((3, 2), "float32"), np.ones(2, "float32")
    bad = kernel.copy()
    bad[0, 0] = np.inf
    steps = [(kernel, bias), (kernel * 2, bias), (bad, bias), (kernel, bias * np.nan),
             (kernel, bias), (kernel * 3, bias), (kernel, bias)]
    ours = _variables(DeviceLossScaleOptimizer, steps)
    theirs = _variables(keras.optimizers.LossScaleOptimizer, steps)
    for a, b in zip(ours, theirs):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-6)
    scales = [float(s[2]) for s in ours]
    assert scales == [8.0, 16.0, 8.0, 4.0, 4.0, 8.0, 8.0]  # doubled every 2 finite steps
    assert [int(s[4]) for s in ours] == [1, 2, 2, 2, 3, 4, 5]  # skipped steps do not count


def test_mixed_precision_wraps_the_optimizer_once(store, tmp_path):
    spec = job(store, tmp_path, epochs=1, mixed_precision=True)
    optimizer = make_optimizer(spec["params"], 4)
    assert isinstance(optimizer, DeviceLossScaleOptimizer)
    with count_host_reads() as seen:
        result = run_fold(spec)
    assert result["status"] == "ok" and dict(seen.reads) == {}, seen.where


def _masks(layer, x):
    return keras.ops.convert_to_numpy(layer(x, training=True)) == 0


def test_layer_draws_repeat_with_their_seed_or_the_global_one():
    x = np.ones((32, *SHAPE), dtype="float32")
    first = _masks(SpecAugment(seed=5, time_mask_fraction=0.3), x)
    assert (first == _masks(SpecAugment(seed=5, time_mask_fraction=0.3), x)).all()
    assert (first != _masks(SpecAugment(seed=6, time_mask_fraction=0.3), x)).any()
    keras.utils.set_random_seed(3)
    unseeded = _masks(SpecAugment(time_mask_fraction=0.3), x)
    keras.utils.set_random_seed(3)
    assert (unseeded == _masks(SpecAugment(time_mask_fraction=0.3), x)).all()
    layer = TimeWarp(max_warp=0.2, seed=1)
    ramp = np.tile(np.arange(SHAPE[0], dtype="float32")[None, :, None], (32, 1, SHAPE[1]))
    layer.build(ramp.shape)
    warped = keras.ops.convert_to_numpy(layer(ramp, training=True))
    assert len({round(float(r[-1, 0]), 3) for r in warped}) > 3  # rows draw several rates


def test_spec_augment_mask_widths_are_uniform_as_before():
    """Each time mask's width is uniform over 0..widest: the mean masked frames per row is
    close to `masks * widest / 2` (fewer where two masks overlap)."""
    layer = SpecAugment(time_masks=1, time_mask_fraction=0.5, freq_masks=0, seed=0)
    x = np.ones((4000, 20, 4), dtype="float32")
    widths = _masks(layer, x).all(axis=2).sum(axis=1)
    assert set(np.unique(widths)) == set(range(11))  # 0..10 frames, every width drawn
    assert widths.mean() == pytest.approx(5.0, abs=0.2)
    counts = np.bincount(widths, minlength=11)
    assert counts.min() > 4000 / 11 * 0.7


def test_predict_rows_from_the_device_equals_numpy(store, rng):
    keras.utils.set_random_seed(0)
    params = resolve(1, {"architecture": "example_cnn", "reshaping_type": "conv",
                         "comment_1": "", "comment_2": "", "filters": 4},
                     training_defaults=SHIPPED)
    shape = store.features.shape[1:]
    model = build_model(params, shape, 3, "classification", np.zeros(shape[-1], "float32"),
                        np.ones(shape[-1], "float32"))
    features = np.array(store.features, dtype=np.float32)
    rows = rng.permutation(len(features))[:50]
    before = devices.host_transfers()
    on_device = predict_rows(model, features, rows, 16, devices.DEVICE)
    # The rows, their targets and weights (an unshuffled split's padding weighs 0) once,
    # then the epoch's order and row indices.
    assert devices.host_transfers() - before == 5
    np.testing.assert_allclose(on_device, predict_rows(model, features, rows, 16), rtol=1e-5)
    assert on_device.shape == (50, 3)


def test_constants_on_device_leaves_keras_shape_inference_alone():
    """Keras infers output shapes on torch's "meta" device: a short list met there is
    converted by Keras's own function (no pinned memory, which needs an accelerator)."""
    from keras.src.backend.torch import core

    with constants_on_device(), core.device_scope("meta"):
        assert core.convert_to_tensor.__wrapped__ is not None  # the block's function
        tensor = core.convert_to_tensor([1.0, 2.0])
    assert tensor.device.type == "meta" and tuple(tensor.shape) == (2,)
