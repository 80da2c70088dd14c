"""A training step never waits on the host (issue 53), checked on the CPU: the engine's
callbacks keep Keras's asynchronous dispatch on, a fold's rows on the device give the same
batches and histories as numpy batches, and no step converts a numpy array there.

The same paths on a GPU: tests/test_gpu.py (`pytest -m gpu`) and `python -m benchmarks.gpu`.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import ROOT, resolve
from xval import tasks
from xval.core.parameters import InstanceParams
from xval.core.records import Job
from xval.training import devices
from xval.training.batches import make_batches
from xval.training.normalization import normalizer

ITEMS = {"train": ["item0", "item1", "item2", "item3"], "val": ["item4"], "test": ["item5"]}


def _job(store, config, device_data_mb, **spec):
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": "", "epochs": 3, "patience": 3, "filters": 4, "batch_size": 16,
            **spec}
    params = resolve(1, spec, training_defaults=config.training)
    return Job(instance=1, fold=0, params=params, task_type="classification",
               generator=False, store=str(store.path), items=ITEMS,
               device_data_mb=device_data_mb)


def test_engine_callbacks_keep_async_dispatch_on(store, config):
    """No engine callback reads a batch's logs in the loop's thread: Keras dispatches the
    batch callbacks asynchronously (`_async_train`), so no step waits for its loss; the NaN
    stop and the Ctrl-C check are among them. TensorBoard's per-batch logs turn it off."""
    import keras

    from xval.training.fit import fold_callbacks
    from xval.training.prepare import prepare_fold

    fold = prepare_fold(_job(store, config, 2048, lr_schedule="plateau"))
    callbacks, *_ = fold_callbacks(fold, on_epoch=lambda *a: None)
    names = {type(c).__name__ for c in callbacks}
    assert {"NanStop", "InterruptCheck", "EarlyStopping", "ReduceLROnPlateau"} <= names
    assert keras.callbacks.CallbackList(callbacks)._async_train
    tensorboard = keras.callbacks.TensorBoard(log_dir="unused")
    assert not keras.callbacks.CallbackList([*callbacks, tensorboard])._async_train
    # What it was before: Keras's own TerminateOnNaN reads every batch's loss.
    assert not keras.callbacks.CallbackList([keras.callbacks.TerminateOnNaN()])._async_train


def test_nan_stop_ends_a_diverged_fit_early_and_silently(capsys):
    """Checked in Keras's callback thread, the NaN stop still ends a diverged fit within a
    few batches, and prints nothing (the fold's failure says why)."""
    import keras

    from xval.training.fit import nan_stop

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(1e30), loss="mse")
    x = np.ones((64, 3), "float32")
    history = model.fit(x, np.ones((64, 2), "float32") * 1e20, batch_size=4, epochs=30,
                        verbose=0, callbacks=[nan_stop()])
    assert len(history.history["loss"]) < 30
    assert model.optimizer.iterations.numpy() < 16 * 3
    assert capsys.readouterr().out == ""


def _all_batches(batches, epochs=2):
    out = []
    for _ in range(epochs):
        for i in reversed(range(len(batches))):  # any order: every draw is per batch
            out.append([np.asarray(a.cpu() if hasattr(a, "cpu") else a) for a in batches[i]])
        batches.on_epoch_end()
    return out


@pytest.mark.parametrize("case", ["plain", "mixup_weights", "union_weights", "crop",
                                  "autoencoder"])
def test_device_batches_equal_numpy_batches(case, rng):
    """The device path gathers, crops, mixes (mixup, label union) and weights the same rows
    as numpy, batch by batch and epoch by epoch; so does the pinned path (numpy batches,
    copied)."""
    x = rng.normal(size=(37, 20, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=37)
    kwargs = {"batch_size": 8, "shuffle": True, "seed": 5}
    if case == "mixup_weights":
        kwargs.update(mixup_alpha=0.4, weights=rng.uniform(0.5, 2, size=37))
        y = np.eye(3, dtype=np.float32)[y]
    elif case == "union_weights":
        kwargs.update(mixing=tasks.get("tagging").targets.mixing(
            InstanceParams().replace(union_mix=0.5)), weights=rng.uniform(0.5, 2, size=37))
        y = (rng.uniform(size=(37, 4)) < 0.4).astype(np.float32)
    elif case == "crop":
        kwargs.update(crop=7, mixup_alpha=0.2)
        y = np.eye(3, dtype=np.float32)[y]
    elif case == "autoencoder":
        kwargs.update(target_fn=normalizer(x.mean(axis=(0, 1)), x.var(axis=(0, 1))), crop=9)
    rows = np.arange(37)
    host = _all_batches(make_batches(x, rows, y, **kwargs))
    for placement in (devices.DEVICE, devices.PINNED):
        other = _all_batches(make_batches(x, rows, y, placement=placement, **kwargs))
        assert len(other) == len(host)
        for a, b in zip(host, other):
            assert len(a) == len(b)
            for u, v in zip(a, b):
                assert u.shape == v.shape
                np.testing.assert_allclose(u, v, rtol=0, atol=1e-6)


def test_device_rows_copy_nothing_per_step(store, config, monkeypatch):
    """A fold on the device path trains with the same history as on numpy batches (to
    1e-6), and no step hands Keras a numpy array to convert: only the fold's arrays (once)
    and each epoch's draws go to the device. Numpy batches are converted at every step."""
    from keras.src.trainers.data_adapters import data_adapter_utils

    from xval.training.fold import run_fold

    converted = []
    loader = data_adapter_utils.get_torch_dataloader

    def counting_loader(iterable):  # what Keras's torch trainer iterates over, per step
        def batches():
            for batch in iterable:
                converted.extend(a.shape for a in batch if isinstance(a, np.ndarray))
                yield batch
        return loader(batches())

    monkeypatch.setattr(data_adapter_utils, "get_torch_dataloader", counting_loader)
    histories, counts, transfers = {}, {}, {}
    for cap in (0, 2048):
        converted.clear()
        before = devices.host_transfers()
        result = run_fold(_job(store, config, cap, mixup_alpha=0.3))
        assert result.ok, result.message
        histories[cap], counts[cap] = result.history, len(converted)
        transfers[cap] = devices.host_transfers() - before
    for key, values in histories[0].items():
        np.testing.assert_allclose(histories[2048][key], values, rtol=0, atol=1e-6)
    steps = 3 * (-(-48 // 16))  # 3 epochs of 48 training rows (4 items x 12) in 16s
    assert counts[0] >= steps  # numpy batches: x and y converted by Keras at every step
    assert counts[2048] == 0
    assert transfers[0] == 0 and transfers[2048] > 0
    before = devices.host_transfers()  # four times the steps, the same copies
    assert run_fold(_job(store, config, 2048, mixup_alpha=0.3, batch_size=4)).ok
    assert devices.host_transfers() - before == transfers[2048]


def test_scoring_reuses_the_rows_fit_put_on_the_device(store, config, monkeypatch):
    """After `fit`, the training and validation splits are scored from the rows already on
    the device (no second copy of their features); only the test rows are copied, after
    the fit's cached blocks are returned (`release_memory`), and the scores are those of
    numpy batches."""
    from xval.training import package
    from xval.training.fold import run_fold

    copied, released, real_copy = [], [], devices.to_device
    monkeypatch.setattr(devices, "to_device", lambda a: copied.append(a.shape) or real_copy(a))
    real_evaluate = package.evaluate_splits

    def evaluate(*args, **kwargs):
        copied.clear()
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(package, "evaluate_splits", evaluate)
    monkeypatch.setattr(devices, "release_memory", lambda: released.append(len(copied)))
    result = run_fold(_job(store, config, 2048))
    assert result.ok and result.device_settings["batches"] == devices.DEVICE
    rows = {split: result.n_rows[split] for split in ("train", "val", "test")}
    features = [shape for shape in copied if len(shape) == 3]  # (rows, frames, bins)
    assert [shape[0] for shape in features] == [rows["test"]], (features, rows)
    assert released  # before scoring, with the fit's blocks free
    numpy_fed = run_fold(_job(store, config, 0))
    for split in ("train", "val", "test"):
        assert result.metrics[split]["loss"] == pytest.approx(
            numpy_fed.metrics[split]["loss"], abs=1e-5)


def test_placement_follows_the_cap_and_the_backend(monkeypatch):
    monkeypatch.setattr(devices, "accelerator", lambda: None)
    assert devices.choose(10 << 20, 2048, generator=False) == devices.DEVICE
    assert devices.choose(10 << 20, 5, generator=False) == devices.HOST  # too big, a CPU
    assert devices.choose(10 << 20, 0, generator=False) == devices.HOST
    assert devices.choose(10 << 20, 2048, generator=True) == devices.HOST
    monkeypatch.setattr(devices, "accelerator", lambda: "cuda")
    monkeypatch.setattr(devices, "job_memory", lambda jobs_per_gpu=1: 80 << 30)
    assert devices.choose(10 << 20, 5, generator=False) == devices.PINNED
    assert devices.choose(10 << 20, 2048, generator=True) == devices.PINNED
    monkeypatch.setattr(devices, "backend_name", lambda: "tensorflow")
    assert devices.choose(10 << 20, 2048, generator=False) == devices.HOST


def test_device_budget_follows_free_memory_and_jobs_per_gpu(monkeypatch):
    """`device_data_mb` is an upper bound: on a GPU a fold's rows take at most half of the
    job's share of its memory (the free memory, the GPU's total over jobs_per_gpu; JAX:
    what its allocator may still take)."""
    import types

    import torch

    monkeypatch.setattr(devices, "accelerator", lambda: "cuda")
    monkeypatch.setattr(devices, "backend_name", lambda: "torch")
    memory = {"free": 70 << 30, "total": 80 << 30}
    monkeypatch.setattr(torch.cuda, "mem_get_info",
                        lambda *a: (memory["free"], memory["total"]))
    assert devices.budget_mb(2048) == 2048
    assert devices.budget_mb(2048, jobs_per_gpu=64) == 640  # half of 80 GiB / 64
    assert devices.budget_mb(0) == 0
    memory["free"] = 1 << 30  # other jobs hold the rest
    assert devices.budget_mb(2048) == 512
    assert devices.choose(600 << 20, 2048, generator=False) == devices.PINNED
    assert devices.choose(500 << 20, 2048, generator=False) == devices.DEVICE
    stats = {"bytes_limit": 8 << 30, "bytes_in_use": 2 << 30}
    device = types.SimpleNamespace(memory_stats=lambda: stats)
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(devices=lambda: [device]))
    monkeypatch.setattr(devices, "backend_name", lambda: "jax")
    assert devices.budget_mb(4096, jobs_per_gpu=4) == 3072  # its limit is its share already


def test_a_fold_out_of_device_memory_falls_back_with_one_line(store, config, monkeypatch,
                                                              capsys):
    import torch

    from xval.training import batches
    from xval.training.fold import run_fold

    def full(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(batches.DeviceRows, "__init__", full)
    result = run_fold(_job(store, config, 2048))
    assert result.ok, result.message
    assert result.device_settings["batches"] == devices.HOST
    lines = [line for line in capsys.readouterr().err.splitlines() if "device memory" in line]
    assert len(lines) == 1
    assert lines[0].startswith("note: fold 0: out of device memory") and "2.00 GiB" in lines[0]
    monkeypatch.setattr(batches.DeviceRows, "__init__", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # any other error is not a fall back
        devices.placed(lambda where: make_batches(np.zeros((4, 2, 2)), np.arange(4),
                                                  np.zeros(4), batch_size=2, shuffle=False,
                                                  placement=where), devices.DEVICE, "x")


def test_release_memory_returns_cached_device_and_pinned_blocks(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(devices, "backend_name", lambda: "torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("device"))
    monkeypatch.setattr(torch.accelerator, "empty_host_cache", lambda: calls.append("pinned"))
    devices.release_memory()
    assert calls == ["device", "pinned"]


JAX_CHECK = textwrap.dedent("""
    import numpy as np
    import keras
    from xval.training import devices
    from xval.training.batches import make_batches
    from xval.core.interrupts import interrupt_check
    from xval.training.fit import nan_stop

    assert keras.backend.backend() == "jax"
    assert devices.choose(10 << 20, 2048, generator=False) == devices.HOST  # no copy on a CPU
    assert keras.callbacks.CallbackList([nan_stop(), interrupt_check()])._async_train
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(21, 10, 2)).astype("float32"), np.eye(2, dtype="float32")[
        rng.integers(0, 2, 21)]
    kw = dict(batch_size=4, shuffle=True, seed=2, mixup_alpha=0.3, crop=6)
    host, dev = make_batches(x, np.arange(21), y, **kw), make_batches(
        x, np.arange(21), y, placement=devices.DEVICE, **kw)
    for i in range(len(host)):
        for a, b in zip(host[i], dev[i]):
            np.testing.assert_allclose(a, np.asarray(b), atol=1e-6)
    print("ok")
""")


def test_jax_keeps_async_dispatch_and_device_batches():
    """The same on JAX (a backend is fixed per process: its own process)."""
    pytest.importorskip("jax")
    proc = subprocess.run([sys.executable, "-c", JAX_CHECK], capture_output=True, text=True,
                          cwd=ROOT, timeout=300,
                          env={**__import__("os").environ, "KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
