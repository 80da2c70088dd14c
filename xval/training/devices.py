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

import gc
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from xval.core.backend import SHARING_VARIABLES
from xval.core.errors import ConfigurationError

DEVICE = "device"
"""The fold's rows are on the device; batches are gathered there."""
PINNED = "pinned"
"""Batches are gathered in numpy and copied from pinned memory without blocking."""
HOST = "host"
"""Batches are numpy arrays; Keras copies them (TensorFlow, a CPU, or generator mode)."""

T = TypeVar("T")

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


def first_jax_device() -> Any:
    """JAX's first device (JAX starts its platforms on the first call).

    Returns:
        The device.

    Raises:
        ConfigurationError: where JAX cannot start the platforms `JAX_PLATFORMS` names (a
            bare `AssertionError` for `cuda` on a machine without a GPU, a `RuntimeError`
            for a name that is not one), naming its value and the fix.
    """
    import jax  # noqa: PLC0415  (the backend, imported by Keras already)

    try:
        return jax.devices()[0]
    except (AssertionError, RuntimeError) as e:
        value = os.environ.get("JAX_PLATFORMS")
        if not value:
            raise
        why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise ConfigurationError(
            f"JAX_PLATFORMS = {value!r}: JAX could not start it ({why}); unset "
            "JAX_PLATFORMS, or set it to platforms this machine has (cpu).") from e


def accelerator() -> str | None:
    """The accelerator the backend trains on (`"cuda"`, `"gpu"`, `"tpu"`...), or `None` on
    the CPU."""
    backend = backend_name()
    if backend == "torch":
        import torch  # noqa: PLC0415  (the backend, imported by Keras already)

        return "cuda" if torch.cuda.is_available() else None
    if backend == "jax":
        platform = first_jax_device().platform
        return None if platform == "cpu" else str(platform)
    return None


DATA_SHARE = 0.5
"""The most of a job's share of its GPU's memory that its rows may take: the model, its
activations and the optimizer's state need the rest."""


def job_memory(jobs_per_gpu: int = 1) -> int | None:
    """The bytes of device memory this job may use, or `None` on the CPU.

    On torch, the memory free on the GPU now (other jobs' included), at most the GPU's
    total over `jobs_per_gpu`; on JAX, what its allocator may still take (its limit is
    already the job's share: `XLA_PYTHON_CLIENT_MEM_FRACTION`,
    `xval.core.backend.sharing_environment`). A query of the device, made once per fold,
    never inside a step.

    Args:
        jobs_per_gpu: the jobs sharing the GPU. Defaults to `1`.
    """
    if accelerator() is None:
        return None
    if backend_name() == "torch":
        import torch  # noqa: PLC0415  (the backend, imported by Keras already)

        free, total = torch.cuda.mem_get_info()
        return int(min(free, total // max(1, jobs_per_gpu)))
    stats = first_jax_device().memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))


def budget_mb(cap_mb: int, jobs_per_gpu: int = 1) -> int:
    """The most of a fold's rows, in MiB, to copy to the device: `[backend]
    device_data_mb` (`cap_mb`, an upper bound), and at most `DATA_SHARE` of this job's
    memory (`job_memory`) on a GPU.

    Args:
        cap_mb: `[backend] device_data_mb`; `0`: never.
        jobs_per_gpu: the jobs sharing the GPU. Defaults to `1`.
    """
    memory = job_memory(jobs_per_gpu) if cap_mb else None
    if memory is None:
        return int(cap_mb)
    return int(min(cap_mb, DATA_SHARE * memory / (1 << 20)))


def choose(nbytes: int, cap_mb: int, *, generator: bool, jobs_per_gpu: int = 1) -> str:
    """Where a fold's batches come from.

    Args:
        nbytes: bytes of the fold's training and validation arrays (features, targets,
            weights).
        cap_mb: `[backend] device_data_mb`: the most a job keeps on the device; `0`:
            never.
        generator: generator mode (rows streamed from the memory-mapped store).
        jobs_per_gpu: the jobs sharing the GPU (`budget_mb`). Defaults to `1`.

    Returns:
        `DEVICE`, `PINNED` or `HOST`.
    """
    backend = backend_name()
    if backend not in ("torch", "jax"):
        return HOST
    if backend == "jax" and accelerator() is None:
        return HOST  # a copy beside the numpy rows, for nothing (torch shares them)
    if not generator and cap_mb and nbytes <= budget_mb(cap_mb, jobs_per_gpu) << 20:
        return DEVICE
    return PINNED if accelerator() is not None else HOST


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is the backend's out-of-memory error (torch's
    `OutOfMemoryError`, JAX's `RESOURCE_EXHAUSTED`)."""
    if type(error).__name__ == "OutOfMemoryError":
        return True
    return "RESOURCE_EXHAUSTED" in str(error) or "out of memory" in str(error).lower()


def placed(make: Callable[[str], T], placement: str, what: str) -> tuple[T, str]:
    """`make(placement)`; when that runs out of device memory placing a fold's rows on the
    device, `make` again on the pinned path (numpy on the CPU), after one line on stderr.

    Args:
        make: `placement -> what is made` (the fold's batches, a split's outputs).
        placement: where to try first (`choose`).
        what: the fold or split, for the line (`"fold 2"`).

    Returns:
        `(what make returned, the placement it used)`.
    """
    try:
        return make(placement), placement
    except Exception as error:  # noqa: BLE001  (only the backend's out-of-memory is caught)
        if placement != DEVICE or not out_of_memory(error):
            raise
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    fallback = PINNED if accelerator() is not None else HOST
    gc.collect()
    release_memory()
    print(f"note: {what}: out of device memory copying its rows to the device ({reason}); its "
          f"batches come from {'pinned host memory' if fallback == PINNED else 'numpy'} "
          "instead (config.ini [backend] device_data_mb caps what is copied).",
          file=sys.stderr, flush=True)
    return make(fallback), fallback


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
    """Returns what the framework keeps between jobs on a GPU: torch's cached device blocks
    (`torch.cuda.empty_cache()`) and its cached pinned host blocks (the pinned path's
    staging buffers: `torch.accelerator.empty_host_cache()`), JAX's compiled executables
    (`jax.clear_caches()`). Called after the cyclic collector has freed the last fold's
    model (`collect_garbage`); nothing on the CPU or on TensorFlow (whose GPU memory is
    returned only when its process ends: its GPU jobs each run in a fresh worker).

    JAX's memory pool stays with its warm worker: it is bounded by the job's share
    (`XLA_PYTHON_CLIENT_MEM_FRACTION` when several jobs share the GPU), which no other job
    may use, and it saves the next job allocating it again."""
    if "torch" in sys.modules and backend_name() == "torch":
        import torch  # noqa: PLC0415  (imported already)

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
            empty_host = getattr(getattr(torch, "accelerator", None), "empty_host_cache",
                                 None) or getattr(torch._C, "_host_emptyCache", None)
            if empty_host is not None:
                empty_host()
    elif "jax" in sys.modules and backend_name() == "jax" and accelerator() is not None:
        import jax  # noqa: PLC0415  (imported already)

        jax.clear_caches()


def device_settings(placement: str) -> dict[str, str]:
    """What a fold records of where it trained (`FoldResult.device_settings`): where its
    batches came from and the variables that shared its GPU
    (`xval.core.backend.SHARING_VARIABLES`) that were set."""
    shared = {k: os.environ[k] for k in SHARING_VARIABLES if k in os.environ}
    return {"batches": placement, **shared}
