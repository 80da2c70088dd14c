"""Where a fold's rows live while it trains: on the device, in pinned host memory, or in
numpy.

A training step on a GPU should never wait for its batch. In memory mode, a fold's training
and validation rows are copied to the device once when they fit (`[backend]
device_data_mb`), and every batch is gathered there (`xval.training.batches.DeviceRows`):
the epoch's order, crop offsets and mixup draws go to the device once per epoch, the step itself copies nothing
from the host. A fold too large for that is gathered in numpy as before and copied from
pinned (page-locked) memory without blocking, by prefetching threads (`to_device`). The
TensorFlow backend feeds Keras from numpy (its `tf.data` pipeline does its own transfers).

On the CPU the "device" is the host: on torch the device path shares the numpy arrays'
memory (no copy), and gives the same batches, so the same histories, as the numpy path.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import numpy as np

from xval.core.backend import SHARING_VARIABLES

DEVICE = "device"
"""The fold's rows are on the device; batches are gathered there."""
PINNED = "pinned"
"""Batches are gathered in numpy and copied from pinned memory without blocking."""
HOST = "host"
"""Batches are numpy arrays; Keras copies them (TensorFlow, a CPU, or generator mode)."""

_transfers = 0
"""Host-to-device copies made by this module in this process (`host_transfers`)."""
_counting = threading.Lock()  # the prefetching threads count too


def host_transfers() -> int:
    """How many arrays this process's batches have copied from the host to a backend
    tensor: the fold's arrays once, then a few per epoch on the device path; one or more per
    step on the pinned path. A counter for tests and benchmarks."""
    return _transfers


def backend_name() -> str:
    """The Keras backend of this process."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    return str(keras.backend.backend())


def accelerator() -> str | None:
    """The accelerator the backend trains on (`"cuda"`, `"gpu"`, `"tpu"`...), or `None` on
    the CPU."""
    backend = backend_name()
    if backend == "torch":
        import torch  # noqa: PLC0415  (the backend, imported by Keras already)

        return "cuda" if torch.cuda.is_available() else None
    if backend == "jax":
        import jax  # noqa: PLC0415  (the backend, imported by Keras already)

        platform = jax.devices()[0].platform
        return None if platform == "cpu" else str(platform)
    return None


def choose(nbytes: int, cap_mb: int, *, generator: bool) -> str:
    """Where a fold's batches come from.

    Args:
        nbytes: bytes of the fold's training and validation arrays (features, targets,
            weights).
        cap_mb: `[backend] device_data_mb`: the most a job keeps on the device; `0`:
            never.
        generator: generator mode (rows streamed from the memory-mapped store).

    Returns:
        `DEVICE`, `PINNED` or `HOST`.
    """
    backend = backend_name()
    if backend not in ("torch", "jax"):
        return HOST
    if backend == "jax" and accelerator() is None:
        return HOST  # a copy beside the numpy rows, for nothing (torch shares them)
    if not generator and cap_mb and nbytes <= int(cap_mb) << 20:
        return DEVICE
    return PINNED if accelerator() is not None else HOST


def to_device(array: np.ndarray) -> Any:
    """`array` as a tensor of the backend on its device.

    On a CUDA device with torch, the copy goes through pinned memory and does not block the
    calling thread; with JAX, `jax.device_put` is asynchronous. On the CPU the tensor shares
    the array's memory where the backend allows (torch).

    Args:
        array: a numpy array.

    Returns:
        A `torch.Tensor` or `jax.Array`.
    """
    global _transfers
    with _counting:
        _transfers += 1
    backend = backend_name()
    if backend == "torch":
        import torch  # noqa: PLC0415  (the backend, imported by Keras already)

        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if torch.cuda.is_available():
            return tensor.pin_memory().to("cuda", non_blocking=True)
        return tensor
    if backend == "jax":
        import jax  # noqa: PLC0415  (the backend, imported by Keras already)

        return jax.device_put(array)
    raise ValueError(f"to_device: backend {backend!r} keeps its batches in numpy.")


def release_memory() -> None:
    """Returns what the framework keeps between jobs on a GPU: torch's cached blocks
    (`torch.cuda.empty_cache()`), JAX's compiled executables (`jax.clear_caches()`). Called
    after the cyclic collector has freed the last fold's model (`collect_garbage`); nothing
    on the CPU or on TensorFlow (whose GPU memory is returned only when its process ends:
    its GPU jobs each run in a fresh worker)."""
    if "torch" in sys.modules and backend_name() == "torch":
        import torch  # noqa: PLC0415  (imported already)

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    elif "jax" in sys.modules and backend_name() == "jax" and accelerator() is not None:
        import jax  # noqa: PLC0415  (imported already)

        jax.clear_caches()


def settings(placement: str) -> dict[str, str]:
    """What a fold records of where it trained (`FoldResult.device_settings`): where its
    batches came from and the variables that shared its GPU
    (`xval.core.backend.SHARING_VARIABLES`) that were set."""
    shared = {k: os.environ[k] for k in SHARING_VARIABLES if k in os.environ}
    return {"batches": placement, **shared}
