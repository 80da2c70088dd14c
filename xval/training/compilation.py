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

The cache is a part the user can trust: `cache_problem` checks the folder before anything
trains (a file, a broken symbolic link or a loop of them in its path is refused; a folder
that cannot be written, or a disk with too little space, and the run compiles without it,
saying so in one line); in the process that compiles, JAX's own warnings about the cache
never reach the user (`_CacheWarnings`): a damaged entry (or a folder standing where one
belongs) is removed, so that the program is compiled again and kept anew, and a folder
that stops taking programs (a full disk) is left for the rest of the process. What
happened is said by the driver, once per run (`cache_notes`).

Imports JAX only where its backend runs.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import shutil
import sys
import tempfile
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any

from xval.core.errors import ConfigurationError

__all__ = ["MIN_FREE_MB", "CompileCount", "cache_notes", "cache_problem", "compile_count",
           "is_compiled", "use_cache"]

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


MIN_FREE_MB = 64
"""Free space (MiB) the cache's file system must have for a run to keep programs there:
a fold's programs take 0.1-2 MiB on the CPU (`init`'s two instances on FSDD: 1 MiB), more
on a GPU."""

_KEY = "[backend] compile_cache"
_FIX = f"set {_KEY} to a folder you can write (none: keep no compiled programs)"


def cache_problem(folder: str | None) -> str | None:
    """Checks the compile cache before anything trains (a dry run too): whether this process
    can keep programs in `folder` (JAX writes them to `folder/jax`). Nothing is written.

    Args:
        folder: `[backend] compile_cache` (absolute), or `None`.

    Returns:
        `None` when it can (or `folder` is `None`), else why not, for the line
        "compiling without a persistent cache: <why>": a folder that cannot be written
        (read-only, permissions), or less than `MIN_FREE_MB` MiB free.

    Raises:
        ConfigurationError: when a file (or anything but a folder), a broken symbolic link
            or a loop of them stands in the path, naming the key and the fix.
    """
    if folder is None:
        return None
    target = Path(folder) / "jax"
    found = target
    try:
        while not os.path.lexists(found) and found.parent != found:
            found = found.parent
        is_folder = found.is_dir()
    except OSError as e:
        return f"{found} cannot be read ({e.strerror or e}); {_FIX}"
    if not is_folder and os.path.islink(found) and not os.path.exists(found):
        raise ConfigurationError(
            f"{_KEY} = {folder!r}: {found} is a broken or looping symbolic link; remove it "
            "(or point it at a folder), or set the key to another folder, or none to keep "
            "no compiled programs.")
    if not is_folder:
        raise ConfigurationError(
            f"{_KEY} = {folder!r}: {found} is a file, not a folder; give a folder (e.g. "
            "~/.cache/xval), or none to keep no compiled programs.")
    try:
        with tempfile.TemporaryFile(dir=found):
            pass
        free = shutil.disk_usage(found).free
    except OSError as e:
        return f"{found} cannot be written ({e.strerror or e}); {_FIX}"
    if free < MIN_FREE_MB << 20:
        return (f"{free / (1 << 20):.1f} MiB free in {found} (programs are kept with at least "
                f"{MIN_FREE_MB} MiB free); free space there, or {_FIX}")
    return None


_USED: list[str | None] = [None]
"""The cache folder this process uses now (`None`: none)."""
_LEFT: dict[str, str] = {}
"""Folders this process has stopped using, and why (a full disk)."""
_NOTES: dict[str, str] = {}
"""What the cache did since `cache_notes` was last called: kind -> the line saying it."""
_OFF = "compiling without a persistent cache"


def use_cache(folder: str | None) -> None:
    """Keeps compiled programs in `folder` (JAX's persistent compilation cache) from now on;
    `None`: none kept. A warm worker whose next job names another folder switches to it.
    A folder that cannot be used here (`cache_problem`: the driver's check passed on
    another machine, or the disk filled since) is not used: a note says why
    (`cache_notes`), and the job compiles without it.

    Args:
        folder: `[backend] compile_cache` (absolute), or `None`.
    """
    if folder == _USED[0] or _backend() != "jax":
        return
    if folder is not None and folder not in _LEFT:
        try:
            why = cache_problem(folder)
        except ConfigurationError as e:
            why = str(e)
        if why is not None:
            _leave(folder, why)
    if folder in _LEFT:
        folder = None
    if folder != _USED[0]:
        _switch(folder)


def _switch(folder: str | None) -> None:
    """Points JAX's persistent cache at `folder` (`None`: off)."""
    import jax  # noqa: PLC0415  (the backend, imported by Keras already)
    from jax.experimental.compilation_cache import compilation_cache  # noqa: PLC0415

    if folder is not None:
        try:
            os.makedirs(os.path.join(folder, "jax"), mode=0o700, exist_ok=True)
        except OSError as e:
            _leave(folder, f"{os.path.join(folder, 'jax')} cannot be made ({e.strerror or e}); "
                           f"{_FIX}")
            folder = None
    if folder is not None:
        _CacheWarnings.install()
        for name, value in _CACHE_SETTINGS.items():
            jax.config.update(name, value)
    _USED[0] = folder
    jax.config.update("jax_compilation_cache_dir",
                      None if folder is None else os.path.join(folder, "jax"))
    compilation_cache.reset_cache()  # JAX decides whether to use a cache once, else


def _leave(folder: str, why: str) -> None:
    """Stops using `folder` in this process, and notes why."""
    _LEFT[folder] = why
    _NOTES["off"] = f"{_OFF}: {why}"


def cache_notes() -> dict[str, str]:
    """What the compile cache did in this process since the last call (and forgets it):
    `{"off": "compiling without a persistent cache: <why>"}` when a folder could not be
    used, `{"damaged": "compile cache <folder>: ..."}` when damaged programs were removed.
    A job's result carries them to the driver, which says each kind once per run."""
    notes = dict(_NOTES)
    _NOTES.clear()
    _DAMAGED[0] = 0
    return notes


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _whole(data: bytes) -> bool:
    """Whether a cache entry is a whole compressed program (zlib, or zstd where a module
    that reads it is installed: JAX writes one or the other). Random bytes, a truncated or
    a changed zlib stream are not."""
    if data.startswith(_ZSTD_MAGIC):
        reader = _zstd()
        if reader is None:
            return True  # cannot tell: JAX says so when it reads it
        try:
            reader(data)
        except Exception:  # noqa: BLE001  (each zstd module has its own error)
            return False
        return True
    try:
        return len(zlib.decompress(data)) > 4  # JAX's compile time, then the program
    except zlib.error:
        return False


def _zstd() -> Any:
    """The zstd decompression function JAX would use, or `None`."""
    try:
        from compression import zstd  # noqa: PLC0415  (Python 3.14)

        return zstd.decompress
    except ImportError:
        pass
    try:
        import zstandard  # noqa: PLC0415  (optional)
    except ImportError:
        return None
    return zstandard.ZstdDecompressor().decompress


class _CacheWarnings:
    """JAX's warnings about its persistent cache ("Error reading persistent compilation
    cache entry for 'jit_train_step': error: Error -3 while decompressing data"), handled
    instead of shown: a program that could not be read has its entries (named after the
    program: `jit_train_step-<hash>-cache`) that are not whole (or are folders) removed, so
    that JAX, which never replaces an entry, keeps the one it compiles now; one that could
    not be written (a full or read-only disk) leaves the folder for the rest of the
    process, with the entries it cut short removed. Any other warning is shown as before."""

    PATTERN = re.compile(r"Error (?P<op>reading|writing) persistent compilation cache entry "
                         r"for '(?P<name>[^']*)': (?P<error>.*)", re.DOTALL)
    installed = False

    @classmethod
    def install(cls) -> None:
        """Handles JAX's cache warnings in this process from now on (once)."""
        if cls.installed:
            return
        cls.installed = True
        # Every one reaches the handler (none is shown once and then lost, nor turned into
        # an error by `-W error`, which would fail the compilation JAX recovers from).
        warnings.filterwarnings("always", message="Error (reading|writing) persistent "
                                "compilation cache entry")
        shown = warnings.showwarning

        def showwarning(message: Warning | str, category: type[Warning], filename: str,
                        lineno: int, file: Any = None, line: str | None = None) -> None:
            found = cls.PATTERN.match(str(message))
            if found is None:
                shown(message, category, filename, lineno, file, line)
            elif _USED[0] is not None:
                cls.handle(_USED[0], found["op"], found["name"], found["error"])

        warnings.showwarning = showwarning

    @staticmethod
    def handle(folder: str, op: str, name: str, error: str) -> None:
        """Acts on one warning about the program `name` in `folder`."""
        # `name` is the program's (`jit_train_step`), or an entry's key (`jit_train_step-<hash>`)
        entries = [*Path(folder, "jax").glob(f"{glob.escape(name)}-*-cache"),
                   *Path(folder, "jax").glob(f"{glob.escape(name)}-cache")]
        try:  # a folder where an entry belongs is damaged too (JAX cannot replace it)
            damaged = [p for p in entries if p.is_dir() or not _whole(p.read_bytes())]
        except OSError as e:  # entries this process cannot read: the folder is no use here
            damaged, op, error = [], "reading the entries of", f"[Errno {e.errno}] {e.strerror}"
        if op == "reading" and not damaged:
            damaged = entries  # whole, yet not loadable: none of them can be told apart
        for path in damaged:
            for gone in (path, path.with_name(path.name[:-len("cache")] + "atime")):
                try:
                    if _folder(gone):
                        shutil.rmtree(gone)
                    else:
                        gone.unlink(missing_ok=True)
                except OSError:
                    pass
        if op != "reading":
            said = re.search(r"\[Errno \d+\] ([^:'\n]+)", error)
            what = "cannot be written" if op == "writing" else "holds entries that cannot be read"
            _leave(folder, f"{Path(folder, 'jax')} {what} "
                           f"({said[1].strip() if said else error.splitlines()[0]}); {_FIX}")
            _switch(None)
        elif damaged:
            _DAMAGED[0] += len(damaged)
            _NOTES["damaged"] = (f"compile cache {folder}: {_DAMAGED[0]} damaged program(s) "
                                 "removed; compiled again and kept anew")


_DAMAGED = [0]
"""Damaged entries removed since the notes were last taken (`cache_notes`)."""


def _folder(path: Path) -> bool:
    """Whether a folder (not a link to one) stands at `path`, where a cache entry belongs."""
    return path.is_dir() and not path.is_symlink()


def is_compiled(model: Any) -> bool:
    """Whether `model`'s steps run compiled (Keras's `jit_compile` once compiled: XLA on
    JAX and TensorFlow; eager operators on torch)."""
    return bool(getattr(model, "jit_compile", False)) and "keras" in sys.modules \
        and _backend() in ("jax", "tensorflow")
