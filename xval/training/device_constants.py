"""Python constants made on the device, not copied to it, while a job trains (torch backend).

Keras's torch backend turns every Python number an op meets (`ops.minimum(x, 1.0)`,
`variable + 1`, an epsilon, a learning rate, the shape tuple a loss divides by) into a
tensor with `torch.as_tensor(value, device=...)`. On a CUDA device that is a copy from
pageable host memory, and torch makes it synchronous: the Python thread waits until every
kernel queued before it has run, and the GPU then idles while Python queues the next ones.
Measured on an H200 (docs/performance.md, "On a GPU"): 22 such waits per training step of
`init`'s default instance, 9 of the plain demo CNN, 6 per validation step, each from Keras's
own ops (loss reduction, metrics, `Normalization`, the optimizer's step count) or ours.

`constants_on_device` replaces the backend's `convert_to_tensor` (and what bound it by name)
while the block runs: a Python number becomes `torch.full((), value)` on the device, a fill
kernel that takes the value as an argument, with Keras's own dtype; a short flat list or
tuple of Python numbers is staged in pinned memory and copied without waiting. Every other
input goes to Keras's function unchanged. The values and dtypes are Keras's (tested against
the original); only where the bytes come from changes. On the CPU the same path runs, so
the tests cover it. Other backends compile their steps, where a constant is part of the
program: nothing is replaced there.

Imports Keras where used: set the backend first.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["SHORT", "constants_on_device", "is_staging"]

SHORT = 64
"""The longest flat list or tuple of Python numbers staged in pinned memory (a shape, a few
constants); longer ones, and numpy arrays, go to Keras's own conversion."""

_staging = threading.local()
_lock = threading.Lock()
_depth = 0
_patched: list[tuple[Any, Callable[..., Any]]] = []


def _scalar_dtype(value: Any, dtype: Any) -> Any:
    """The torch dtype Keras's `convert_to_tensor` gives a Python number (keras 3.15)."""
    import torch  # noqa: PLC0415  (the backend, imported by Keras already)
    from keras.src.backend.config import floatx  # noqa: PLC0415
    from keras.src.backend.torch.core import to_torch_dtype  # noqa: PLC0415

    if dtype is not None:
        return to_torch_dtype(dtype)
    if isinstance(value, bool):
        return torch.bool
    if isinstance(value, int):
        return torch.int64 if value < -(2**31) or value >= 2**31 else torch.int32
    return to_torch_dtype(floatx())


def _numbers(value: Any) -> bool:
    """Whether `value` is a short flat list or tuple of Python numbers (not a tensor)."""
    return (isinstance(value, (list, tuple)) and 0 < len(value) <= SHORT
            and all(type(v) in (bool, int, float) for v in value))


def is_staging() -> bool:
    """Whether this thread is making a host tensor to copy without waiting (a copy that
    `xval.training.host_reads` does not count)."""
    return getattr(_staging, "on", False)


def _on_device(original: Callable[..., Any]) -> Callable[..., Any]:
    """`original` (Keras's `convert_to_tensor`), with Python numbers made on the device."""
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)
    import torch  # noqa: PLC0415  (the backend, imported by Keras already)
    from keras.src.backend.torch.core import get_device  # noqa: PLC0415

    def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None,
                          ragged: Any = None) -> Any:
        if not sparse and not ragged:
            if type(x) in (bool, int, float):
                with contextlib.suppress(RuntimeError, OverflowError):  # Keras's error then
                    return torch.full((), x, dtype=_scalar_dtype(x, dtype),
                                      device=get_device())
            elif _numbers(x) and torch.device(get_device()).type in ("cuda", "cpu"):
                with keras.device("cpu"):  # not on meta (Keras's shape inference) or mps
                    _staging.on = True
                    try:
                        host = original(x, dtype)
                    finally:
                        _staging.on = False
                if torch.device(get_device()).type == "cpu":
                    return host  # the host is the device
                return host.pin_memory().to(get_device(), non_blocking=True)
        return original(x, dtype=dtype, sparse=sparse, ragged=ragged)

    convert_to_tensor.__wrapped__ = original  # type: ignore[attr-defined]
    convert_to_tensor.__doc__ = original.__doc__
    return convert_to_tensor


def _install() -> None:
    """Replaces the torch backend's `convert_to_tensor` wherever a Keras module bound it."""
    from keras.src.backend.torch import core  # noqa: PLC0415

    original: Callable[..., Any] = core.convert_to_tensor
    replacement = _on_device(original)
    try:
        for name, module in list(sys.modules.items()):
            if (name == "keras" or name.startswith("keras.")) and module is not None:
                if getattr(module, "convert_to_tensor", None) is original:
                    _patched.append((module, original))
                    module.convert_to_tensor = replacement  # type: ignore[attr-defined]
    except BaseException:  # all or nothing
        _uninstall()
        raise


def _uninstall() -> None:
    """Puts Keras's own function back where `_install` replaced it. (A Keras module first
    imported inside the block may keep the replacement: it gives Keras's values.)"""
    while _patched:
        module, original = _patched.pop()
        module.convert_to_tensor = original


@contextlib.contextmanager
def constants_on_device() -> Iterator[None]:
    """Python numbers that Keras's ops meet are made on the device while the block runs
    (torch backend; elsewhere nothing changes). Re-entrant; Keras's function is back when
    the outermost block ends.

    Example:

    ```python
    with constants_on_device():
        model.fit(batches, epochs=3)  # no host-to-device copy of a constant in a step
    ```
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    global _depth
    if keras.backend.backend() != "torch":
        yield
        return
    with _lock:
        if _depth == 0:
            _install()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _uninstall()
