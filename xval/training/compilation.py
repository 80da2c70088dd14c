"""Compiled steps: the persistent cache of compiled programs, and what a fold compiled.

On JAX (and TensorFlow with XLA) Keras compiles a model's training, validation and
prediction steps into programs that run without Python between operators. The engine keeps
them the same for every fold of an instance: the statistics and schedules that differ
between folds are variables, not constants of the program
(`architectures.FeatureNormalization`, `architectures.EpochSchedule`), and every batch has
the same shape (`xval.training.batches.FoldBatches`). A fold after the first then finds its
programs compiled already, in the persistent cache (`[backend] compile_cache`), which also
serves later runs and the other worker processes. `CompileCount` counts, per fold, the
seconds spent tracing and compiling and the programs compiled anew (cache misses).

Imports JAX only where its backend runs.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from typing import Any

__all__ = ["CompileCount", "compile_count", "is_compiled", "use_cache"]

_CACHE_SETTINGS = {"jax_persistent_cache_min_compile_time_secs": 0.0,
                   "jax_persistent_cache_min_entry_size_bytes": -1}
"""Every program is kept, also the small ones of eager operations (initializers, metric
results): a new worker process or a second run compiles nothing, and loading one is
quicker than compiling it."""


@dataclasses.dataclass(frozen=True)
class CompileCount:
    """Compilation in this process so far (JAX), or the difference of two counts.

    Attributes:
        seconds: tracing, lowering and compiling (or loading from the cache) the programs.
        programs: programs compiled by XLA (not found in any cache).
        cached: programs loaded from the persistent cache instead.
    """

    seconds: float = 0.0
    programs: int = 0
    cached: int = 0

    def __sub__(self, other: CompileCount) -> CompileCount:
        return CompileCount(self.seconds - other.seconds, self.programs - other.programs,
                            self.cached - other.cached)

    def to_dict(self) -> dict[str, Any]:
        """`{"seconds": ..., "programs": ..., "cached": ...}` (seconds rounded to ms)."""
        return {"seconds": round(self.seconds, 3), "programs": self.programs,
                "cached": self.cached}


_DURATIONS = ("/jax/core/compile/jaxpr_trace_duration",
              "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")
_COMPILES = "/jax/core/compile/backend_compile_duration"
_HITS = "/jax/compilation_cache/cache_hits"


class _Counter:
    """JAX's monitoring events, summed (listeners are registered once per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds = 0.0
        self.compiles = 0
        self.hits = 0
        self.listening = False

    def listen(self) -> None:
        if self.listening:
            return
        import jax  # noqa: PLC0415  (the backend, imported by Keras already)

        jax.monitoring.register_event_duration_secs_listener(self._duration)
        jax.monitoring.register_event_listener(self._event)
        self.listening = True

    def _duration(self, event: str, duration_secs: float, **_: str | int) -> None:
        if event in _DURATIONS:
            with self.lock:
                self.seconds += duration_secs
                self.compiles += event == _COMPILES

    def _event(self, event: str, **_: str | int) -> None:
        if event == _HITS:
            with self.lock:
                self.hits += 1

    def count(self) -> CompileCount:
        with self.lock:
            return CompileCount(self.seconds, self.compiles - self.hits, self.hits)


_COUNTER = _Counter()


def _backend() -> str:
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    return str(keras.backend.backend())


def compile_count() -> CompileCount:
    """What this process has compiled so far (all zero off JAX). The first call starts the
    count: call it before the fold's model is built."""
    if _backend() != "jax":
        return CompileCount()
    _COUNTER.listen()
    return _COUNTER.count()


_USED: list[str | None] = [None]
"""The cache folder this process uses now (`None`: none)."""


def use_cache(folder: str | None) -> None:
    """Keeps compiled programs in `folder` (JAX's persistent compilation cache) from now on;
    `None`: none kept. A warm worker whose next job names another folder switches to it.

    Args:
        folder: `[backend] compile_cache` (absolute), or `None`.
    """
    if folder == _USED[0] or _backend() != "jax":
        return
    import jax  # noqa: PLC0415  (the backend, imported by Keras already)
    from jax.experimental.compilation_cache import compilation_cache  # noqa: PLC0415

    _USED[0] = folder
    if folder is not None:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for name, value in _CACHE_SETTINGS.items():
            jax.config.update(name, value)
    jax.config.update("jax_compilation_cache_dir",
                      None if folder is None else os.path.join(folder, "jax"))
    compilation_cache.reset_cache()  # JAX decides whether to use a cache once, else


def is_compiled(model: Any) -> bool:
    """Whether `model`'s steps run compiled (Keras's `jit_compile` once compiled: XLA on
    JAX and TensorFlow; eager operators on torch)."""
    return bool(getattr(model, "jit_compile", False)) and "keras" in sys.modules \
        and _backend() in ("jax", "tensorflow")
