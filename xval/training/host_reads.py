"""Counting the reads of a tensor's value back to the host inside a training step.

On a GPU each such read (`int(t)`, `bool(t)` of an `if`, `t.item()`, `t.cpu()`...) blocks
the Python thread until the device has finished every kernel queued before it: the GPU then
idles while Python prepares the next kernels. The engine's steps make none
(docs/performance.md); `count_host_reads` checks it on any machine, the CPU included, where
the same reads happen but cost nothing.

On the torch backend (eager: every Python line of a step runs at every step) the methods of
`torch.Tensor` that return a host value are wrapped while the block runs, and counted when
called inside Keras's `train_step` or `test_step`; on a CUDA device the synchronisations
torch itself reports (`torch.cuda.set_sync_debug_mode("warn")`: a copy to the host, a
blocking allocation query...) are counted too, with where they were made. So are the
copies of host values to the device (`torch.as_tensor(1.0, device=...)`, Keras's conversion
of a Python number or a numpy array): on a CUDA device torch copies from pageable memory and
waits for the device first, so each is a wait as well, counted on the CPU too. So are the
operators whose output size or value depends on a tensor's values, which torch must read
back before it can go on (`SYNC_OPS`: `repeat_interleave` without its output size,
`nonzero`, a boolean mask as an index, `item`...), seen where torch dispatches them (a
`TorchDispatchMode` inside the step), so calls from torch's own C++ count too. JAX and
TensorFlow compile the step
(`jit_compile`, `tf.function`): a read inside it cannot run at all (it fails while the step is
traced).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from xval.training.device_constants import is_staging

READS = ("__int__", "__bool__", "__float__", "__index__", "item", "tolist", "numpy", "cpu")
"""The `torch.Tensor` methods that hand a tensor's value to Python (or copy it to the host)."""

SYNC_OPS = frozenset({
    "aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.masked_scatter",
    "aten.unique", "aten._unique", "aten._unique2", "aten.unique_dim",
    "aten.unique_consecutive", "aten.is_nonzero", "aten.equal", "aten.allclose"})
"""The torch operators that read a tensor's values back to size or return their output
(`_local_scalar_dense` is `item()`, `int()`, `bool()` of a tensor, also from C++); besides
them, `repeat_interleave` without `output_size` and an index or `index_put` with a boolean
mask (`_sync_op`)."""

STEPS = ("train_step", "test_step")
"""The Keras steps whose reads are counted."""


@dataclasses.dataclass
class HostReads:
    """What `count_host_reads` saw.

    Attributes:
        steps: step name -> how many times it ran.
        reads: `"step: method"` -> reads made inside that step (e.g. `"train_step:
            __int__"`).
        where: `"step: method"` -> the innermost project or Keras frame of the first read
            (`file:line function`), to find it.
        syncs: step name -> the CUDA synchronisations torch reported inside it (on a CUDA
            device only).
        sync_where: `"step: frames"` -> how many of those synchronisations were made there
            (the innermost project or Keras frames, outermost first), to find them.
        elsewhere: `"step: frames"` -> synchronisations torch reported during that step
            from another thread (Keras's callback thread reading the logs of the batch
            before): that thread waits, the training thread does not.
        copies: `"step: frames"` -> the host values copied to the device there
            (`torch.as_tensor` or `torch.tensor` of a value that is not a tensor, towards
            the device Keras computes on).
        sync_ops: `"step: operator"` -> the operators of `SYNC_OPS` dispatched inside that
            step (torch), wherever they were called from (`repeat_interleave` included).
        op_where: `"step: operator"` -> the innermost project or Keras frames of the first.
    """

    steps: Counter[str] = dataclasses.field(default_factory=Counter)
    reads: Counter[str] = dataclasses.field(default_factory=Counter)
    where: dict[str, str] = dataclasses.field(default_factory=dict)
    syncs: Counter[str] = dataclasses.field(default_factory=Counter)
    sync_where: Counter[str] = dataclasses.field(default_factory=Counter)
    elsewhere: Counter[str] = dataclasses.field(default_factory=Counter)
    copies: Counter[str] = dataclasses.field(default_factory=Counter)
    sync_ops: Counter[str] = dataclasses.field(default_factory=Counter)
    op_where: dict[str, str] = dataclasses.field(default_factory=dict)

    def per_step(self, step: str = "train_step") -> float:
        """Reads per call of `step` (0.0 when it never ran)."""
        total = sum(n for key, n in self.reads.items() if key.startswith(f"{step}:"))
        return total / self.steps[step] if self.steps[step] else 0.0

    def copies_per_step(self, step: str = "train_step") -> float:
        """Host values copied to the device per call of `step` (0.0 when it never ran)."""
        total = sum(n for key, n in self.copies.items() if key.startswith(f"{step}:"))
        return total / self.steps[step] if self.steps[step] else 0.0

    def sync_ops_per_step(self, step: str = "train_step") -> float:
        """Sync-prone operators (`SYNC_OPS`) per call of `step` (0.0 when it never ran)."""
        total = sum(n for key, n in self.sync_ops.items() if key.startswith(f"{step}:"))
        return total / self.steps[step] if self.steps[step] else 0.0

    def waits(self) -> dict[str, Any]:
        """Everything seen that makes a step wait, by kind (empty kinds left out): what a
        test asserts is empty."""
        kinds = {"reads": self.reads, "copies": self.copies, "sync_ops": self.sync_ops,
                 "syncs": self.sync_where}
        return {kind: dict(seen) for kind, seen in kinds.items() if seen}

    def syncs_per_step(self, step: str = "train_step") -> float:
        """CUDA synchronisations per call of `step` (0.0 when it never ran)."""
        return self.syncs[step] / self.steps[step] if self.steps[step] else 0.0


_state = threading.local()
_HIDDEN = {__file__.replace("\\", "/"), warnings.__file__.replace("\\", "/")}
"""The frames `_origin` skips: this module's and the warnings module's."""


def _origin(depth: int = 1) -> str:
    """The frames that made the read: the `depth` innermost ones outside the torch package,
    the warnings module and this module (Keras's torch backend included), outermost first."""
    import traceback  # noqa: PLC0415  (only when a read is seen)

    found = []
    for frame in reversed(traceback.extract_stack()[:-1]):  # this function's own left out
        name = frame.filename.replace("\\", "/")
        torch_own = "/torch/" in name and "/keras/" not in name
        if not torch_own and name not in _HIDDEN:
            short = "/".join(name.rsplit("/", 2)[-2:])  # e.g. torch/core.py
            found.append(f"{short}:{frame.lineno} {frame.name}")
            if len(found) == depth:
                break
    return " > ".join(reversed(found)) or "?"


def _counted(method: Callable[..., Any], name: str, seen: HostReads) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        step = getattr(_state, "step", None)
        if step is not None:
            key = f"{step}: {name}"
            seen.reads[key] += 1
            seen.where.setdefault(key, _origin())
        return method(*args, **kwargs)

    return wrapper


def _copied(function: Callable[..., Any], seen: HostReads, cuda: bool) -> Callable[..., Any]:
    """`torch.as_tensor` or `torch.tensor`, counting inside a step each host value it copies
    to the compute device (on a CUDA machine, staging on the host is not counted)."""
    import torch  # noqa: PLC0415  (the backend, imported by Keras already)

    @functools.wraps(function)
    def wrapper(data: Any, *args: Any, **kwargs: Any) -> Any:
        step = getattr(_state, "step", None)
        device = kwargs.get("device")
        if (step is not None and device is not None and not isinstance(data, torch.Tensor)
                and not (cuda and torch.device(device).type == "cpu") and not is_staging()):
            seen.copies[f"{step}: {_origin(depth=3)}"] += 1
        return function(data, *args, **kwargs)

    return wrapper


def _sync_op(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The name of torch operator `func` when it is one that reads values back
    (`SYNC_OPS`, `repeat_interleave` without `output_size`, a boolean mask as an index),
    else `None`."""
    name = str(func.overloadpacket) if hasattr(func, "overloadpacket") else str(func)
    if name in SYNC_OPS:
        return name
    if name == "aten.repeat_interleave" and kwargs.get("output_size") is None \
            and getattr(func, "_overloadname", "") in ("Tensor", "self_Tensor"):
        return name  # its output size is the sum of the repeats: read back
    if name in ("aten.index", "aten.index_put", "aten.index_put_") and len(args) > 1:
        masks = [i for i in args[1] or () if getattr(i, "dtype", None) is not None
                 and str(i.dtype) in ("torch.bool", "torch.uint8")]
        return f"{name} (boolean mask)" if masks else None
    return None


def _dispatch_counter(seen: HostReads, name: str) -> Any:
    """A `TorchDispatchMode` counting `_sync_op`s as step `name`'s."""
    from torch.utils._python_dispatch import TorchDispatchMode  # noqa: PLC0415  (torch)

    class SyncOps(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                               kwargs: dict[str, Any] | None = None) -> Any:
            op = _sync_op(func, args, kwargs or {})
            if op is not None:
                key = f"{name}: {op}"
                seen.sync_ops[key] += 1
                seen.op_where.setdefault(key, _origin(depth=3))
            return func(*args, **(kwargs or {}))

    return SyncOps()


def _in_step(method: Callable[..., Any], name: str, seen: HostReads, cuda: bool,
             ops: bool = False) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_state, "step", None)
        _state.step = name
        seen.steps[name] += 1
        try:
            with _dispatch_counter(seen, name) if ops else contextlib.nullcontext():
                return _synced(method, name, seen, cuda)(*args, **kwargs)
        finally:
            _state.step = outer

    return wrapper


def _synced(method: Callable[..., Any], name: str, seen: HostReads, cuda: bool
            ) -> Callable[..., Any]:
    """`method`, counting the CUDA synchronisations torch reports while it runs (on a CUDA
    device; else `method` itself)."""
    if not cuda:
        return method

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():  # every sync seen; the others filtered as set
            warnings.filterwarnings("always", message=".*synchroniz")
            shown = warnings.showwarning
            thread = threading.get_ident()

            def show(message: Any, *rest: Any, **kwargs: Any) -> None:
                if "synchroniz" not in str(message):
                    shown(message, *rest, **kwargs)  # not ours to swallow
                elif threading.get_ident() != thread:  # the callback thread waits
                    seen.elsewhere[f"{name}: {_origin(depth=3)}"] += 1
                else:  # the step waits: counted where it is made
                    seen.syncs[name] += 1
                    seen.sync_where[f"{name}: {_origin(depth=3)}"] += 1

            warnings.showwarning = show
            return method(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def count_host_reads() -> Iterator[HostReads]:
    """Counts the host reads made inside Keras's `train_step` and `test_step` while the
    block runs (set the backend and import Keras first).

    Example:

    ```python
    with count_host_reads() as seen:
        model.fit(x, y, epochs=1)
    assert seen.per_step("train_step") == 0, seen.where
    ```

    Returns:
        A `HostReads`, filled as the block runs.
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    seen = HostReads()
    patched: list[tuple[Any, str, Any]] = []
    torch: Any = None
    if keras.backend.backend() == "torch":
        torch = importlib.import_module("torch")  # the backend, imported by Keras already
    cuda = torch is not None and torch.cuda.is_available()
    mode = torch.cuda.get_sync_debug_mode() if cuda else 0
    try:
        for step in STEPS:
            original = keras.Model.__dict__.get(step)
            patched.append((keras.Model, step, original))
            setattr(keras.Model, step, _in_step(getattr(keras.Model, step), step, seen, cuda,
                                                ops=torch is not None))
        if torch is not None:
            for name in READS:
                patched.append((torch.Tensor, name, torch.Tensor.__dict__.get(name)))
                setattr(torch.Tensor, name, _counted(getattr(torch.Tensor, name), name, seen))
            for name in ("as_tensor", "tensor"):
                patched.append((torch, name, getattr(torch, name)))
                setattr(torch, name, _copied(getattr(torch, name), seen, cuda))
        if cuda:
            torch.cuda.set_sync_debug_mode("warn")
        yield seen
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode(mode)
        for owner, name, original in reversed(patched):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
