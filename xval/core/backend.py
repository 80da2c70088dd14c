"""The Keras backend and the visible GPUs of a process: the one place that sets them.

Keras reads `KERAS_BACKEND` once, when it is first imported, and CUDA reads
`CUDA_VISIBLE_DEVICES` once, when the framework starts; so both are set before `import
keras`, as keras-io examples do. Every entry point (experiment scripts, `python -m xval`,
the executors' workers) calls `use_backend` first; the process executor hands the choice to
its children with `backend_environment`. A leaf module: it imports nothing of the project
but its errors, its interrupt handling and its log settings.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from types import ModuleType

from xval.core.errors import ConfigurationError
from xval.core.interrupts import deferred_interrupts
from xval.core.logs import quiet_framework_logs, quiet_native_notices
from xval.core.optional import EXTRAS

__all__ = ["AUTO", "BACKENDS", "SHARING_VARIABLES", "backend_environment", "check_backend",
           "default_backend", "import_paused", "inherited_devices", "inherited_text", "normalize_gpu",
           "sharing_environment", "use_backend"]

BACKENDS = ("tensorflow", "torch", "jax")
"""The Keras backends (`[backend] backend` in config.ini, `KERAS_BACKEND`)."""

AUTO = "auto"
"""`[backend] backend = auto`: the first installed of `_FALLBACK`."""

_FALLBACK = ("jax", "torch", "tensorflow")
"""With no backend asked for (or `auto`): the first of these that is installed. JAX
compiles a fold's steps with XLA (`xval.training.compilation`); torch runs them eagerly,
operator by operator from Python (docs/performance.md)."""


def check_backend(backend: str, source: str) -> None:
    """Refuses a Keras backend that is not one, or is not installed.

    Args:
        backend: the name.
        source: where it came from, for the message (`"KERAS_BACKEND"`).

    Raises:
        ConfigurationError: naming the backend, its source and the fix.
    """
    if backend not in BACKENDS:
        raise ConfigurationError(f"Keras backend {backend!r} (from {source}) is not one of "
                                 f"{', '.join(BACKENDS)}; choose one of them (unset "
                                 "KERAS_BACKEND to use config.ini's).")
    if importlib.util.find_spec(backend) is None:
        raise ConfigurationError(
            f"Keras backend {backend!r} (from {source}) is not installed: install it "
            f"(`{EXTRAS[backend].install}`) or choose another with KERAS_BACKEND.")


_DEVICES = "CUDA_VISIBLE_DEVICES"
_WRITTEN: dict[str, str | None] = {}
"""`"inherited"`: the `CUDA_VISIBLE_DEVICES` this process had before `use_backend` wrote
over it, and `"written"`: what it wrote, so that GPU ids keep indexing the inherited list
(a value found changed since was set by someone else: it is the inherited one then)."""


def _inherited_value() -> str | None:
    """The `CUDA_VISIBLE_DEVICES` this process inherited, as written (`None`: not set)."""
    current = os.environ.get(_DEVICES)
    if _WRITTEN and current == _WRITTEN["written"]:
        return _WRITTEN["inherited"]
    return current


def inherited_devices() -> list[str] | None:
    """The GPUs this process may use, as the `CUDA_VISIBLE_DEVICES` it inherited lists them
    (a scheduler's `"2,3"`): the entries as written (indices, or `GPU-...` UUIDs and
    `MIG-...` ids, kept as they are), up to the first one CUDA stops at (an empty or a
    negative one: `"-1"` and `""` list none). Indices are the order `CUDA_DEVICE_ORDER`
    gives, which the process and its workers inherit untouched.

    Returns:
        The entries, or `None` where it was not set (every GPU of the machine).
    """
    current = _inherited_value()
    if current is None:
        return None
    entries = []
    for entry in current.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break
        entries.append(entry)
    return entries


def normalize_gpu(gpu: object, what: str = "GPU id") -> str | None:
    """Checks a GPU id: `None`, an integer >= 0, or -1 / `"cpu"` for no GPU (the one
    grammar of GPU ids: the positional GPU, `--gpus`, an experiment's `gpu_ID`).

    Args:
        gpu: the id as given (command line or `gpu_ID`).
        what: how to name it in the error. Defaults to `"GPU id"`.

    Returns:
        `None`, or the id as a string (`"-1"` for CPU only).

    Raises:
        ConfigurationError: for anything else (`"abc"`, `1.5`, `""`).
    """
    if gpu is None:
        return None
    text = str(gpu).strip().lower()  # True and 1.0 are "True" and "1.0": no GPU number
    if not (text == "cpu" or re.fullmatch(r"-1|\d+", text)):
        raise ConfigurationError(
            f"{what} {gpu!r}: expected a GPU number (0, 1, ...) or -1 for CPU only."
        )
    return "-1" if text == "cpu" else text

def inherited_text() -> str:
    """The inherited `CUDA_VISIBLE_DEVICES` in words, for messages."""
    return f"{_DEVICES}={_inherited_value()!r} inherited"


def _visible_devices(gpu: str) -> str:
    """`CUDA_VISIBLE_DEVICES` for a GPU id: `""` (none) for `-1` or `cpu`; the id indexes
    the GPUs this process may use (`inherited_devices`).

    Raises:
        ConfigurationError: for an id past the inherited list.
    """
    gpu = str(gpu)
    if gpu in ("-1", "cpu"):
        return ""
    entries = inherited_devices()
    if entries is None or not gpu.isdigit():
        return gpu
    if int(gpu) >= len(entries):
        raise ConfigurationError(
            f"GPU {gpu}: this process may use {len(entries)} GPU(s) ({inherited_text()}"
            f"{f': ids 0..{len(entries) - 1}' if entries else ''}); give one of them, or -1 "
            "for the CPU.")
    return entries[int(gpu)]


def use_backend(backend: str | None = None, *, source: str = "config.ini [backend]",
                gpu: str | None = None, override: bool = False) -> str:
    """Sets `KERAS_BACKEND` (and `CUDA_VISIBLE_DEVICES`) before Keras is imported.

    The backend is, in this order: `backend` when `override` (a command-line choice), the
    `KERAS_BACKEND` environment variable, `backend`, then (for `None` or `"auto"`) the first
    installed of jax, torch and tensorflow (`default_backend`). Once Keras is imported a process keeps its backend and devices, so
    asking for others then is an error.

    Args:
        backend: the backend asked for (config.ini's, a command line's), or `None`.
        source: where `backend` comes from, for messages. Defaults to
            `"config.ini [backend]"`.
        gpu: a GPU id for `CUDA_VISIBLE_DEVICES` (`"-1"` hides every GPU), or `None` to
            leave it as it is. Defaults to `None`.
        override: `backend` wins over `KERAS_BACKEND`. Defaults to `False`.

    Returns:
        The backend in use.

    Raises:
        ConfigurationError: a backend that is not one or not installed, or Keras already
            imported with another backend or GPU.

    Example:

    ```python
    from xval.core.backend import use_backend

    use_backend("torch", gpu="0")  # before anything imports Keras
    import keras
    ```
    """
    if os.environ.get("KERAS_BACKEND") and not (override and backend):
        backend, source = os.environ["KERAS_BACKEND"], "KERAS_BACKEND"
    if not backend or backend == AUTO:
        backend, source = default_backend(), "the installed frameworks"
    if "keras" in sys.modules:
        _check_imported_keras(backend, gpu, source)
        return backend
    check_backend(backend, source)
    os.environ["KERAS_BACKEND"] = backend
    for key, value in sharing_environment(backend, 1).items():  # TensorFlow's memory growth
        os.environ.setdefault(key, value)
    # Keras's serializer imports TensorFlow when it is installed; keep its logs quiet.
    quiet_framework_logs(backend=backend)
    if gpu is not None:
        value = _visible_devices(gpu)
        if not (_WRITTEN and os.environ.get(_DEVICES) == _WRITTEN["written"]):
            _WRITTEN["inherited"] = os.environ.get(_DEVICES)
        _WRITTEN["written"] = value
        os.environ[_DEVICES] = value
    return backend


def default_backend() -> str:
    """The backend `auto` stands for: the first installed of jax, torch and tensorflow."""
    installed = [b for b in _FALLBACK if importlib.util.find_spec(b) is not None]
    return (installed or [_FALLBACK[0]])[0]


def import_paused(name: str, *, ends_script: bool = False) -> ModuleType:
    """Imports a module with Python's cyclic garbage collector paused, and returns it.

    Importing Keras and torch makes about 500,000 objects. While they are being made, the
    collector's thresholds are crossed again and again, and each full collection walks the
    whole, growing heap: 7 of them cost 1.2 s of the 6.7 s of CPU that `import keras` took
    on torch (2-core machine), and the import took 4.9 s with the collector paused. What an
    import makes is nearly all kept (modules, their functions and classes), and whatever
    is not is collected later; the collector is enabled again afterwards (if it was).
    Keras is imported through this where a model is built or loaded
    (`xval.training.prepare.collect_garbage`, `xval.training.loading.load`), the engine
    where `xval`'s public names are first used (`from xval import Experiment`). Keras is
    imported without what it imports unused (`_KERAS_KEEPS_OUT`: JAX on another backend,
    matplotlib's pyplot).

    A Ctrl-C (or SIGTERM) that arrives during the import is held until the import ends,
    then raised (`xval.core.interrupts.deferred_interrupts`): JAX interrupted while its
    native modules start their threads left a process that crashed on its way out.

    Args:
        name: the module, e.g. `"keras"`.
        ends_script: outside a command, such an interrupt ends the process with the
            command's line and exit status instead (`deferred_interrupts`): a script's
            `from xval import Experiment`. Defaults to `False`.

    Returns:
        The module (imported once per process, as `import` does).

    Raises:
        KeyboardInterrupt: one that arrived during the import, once it has ended (inside a
            command, or without `ends_script`).
    """
    if name in sys.modules:  # imported (or being imported by another thread: import waits)
        module = importlib.import_module(name)
    else:
        enabled = gc.isenabled()
        keep_out = _KERAS_KEEPS_OUT.get(os.environ.get("KERAS_BACKEND") or "", ()) \
            if name == "keras" else ()
        try:
            gc.disable()
            with deferred_interrupts(ends_script=ends_script), _kept_out(keep_out), \
                    _native_notices_dropped(name):
                module = _import_keras(name)
        finally:
            if enabled:
                gc.enable()
    if name == "keras":
        _quick_random_programs(module)
    return module


def _native_notices_dropped(name: str) -> contextlib.AbstractContextManager[None]:
    """`quiet_native_notices` around Keras's import on TensorFlow (its oneDNN notice, which
    no log level hides); elsewhere nothing."""
    if name == "keras" and os.environ.get("KERAS_BACKEND") == "tensorflow":
        return quiet_native_notices()
    return contextlib.nullcontext()


def _quick_random_programs(keras: ModuleType) -> None:
    """On JAX, random bits from threefry's non-partitionable form
    (`jax_threefry_partitionable = False`, JAX's default before 0.5): XLA compiles each
    `jax.random` program in about half the time (0.21 s against 0.43 s per shape on the
    CPU), and every weight shape's initializer is one (10 of the 50 programs of the tagging
    default's first fold, 5 of its 12 s of compilation; docs/performance.md). Partitioning
    random bits across devices, what the other form is for, is not something a fold does (one
    device per job). Seeded runs repeat as before; their random draws differ from those of
    releases before this setting."""
    if keras.backend.backend() != "jax":
        return
    import jax  # noqa: PLC0415  (Keras's backend: imported with it)

    if getattr(jax.config, "jax_threefry_partitionable", False):
        jax.config.update("jax_threefry_partitionable", False)


def _import_keras(name: str) -> ModuleType:
    """Imports `name`; for Keras on the backend `use_backend` chose (`KERAS_BACKEND`), an
    `ImportError` (the backend installed but broken: a half-removed or mismatched JAX, a
    missing native library) becomes a ConfigurationError naming the backend, the import's
    message and the fix.

    Args:
        name: the module, e.g. `"keras"`.

    Returns:
        The module.

    Raises:
        ConfigurationError: for an `ImportError` raised while importing Keras.
    """
    try:
        return importlib.import_module(name)
    except ImportError as e:
        backend = os.environ.get("KERAS_BACKEND")
        if name != "keras" or not backend or getattr(e, "name", None) == "keras":
            raise  # not Keras on a chosen backend, or Keras itself not installed
        fix = f" (`{EXTRAS[backend].install}`)" if backend in EXTRAS else ""
        raise ConfigurationError(
            f"Keras backend {backend!r} is installed but Keras could not import it "
            f"({type(e).__name__}: {e}): reinstall it{fix}, or choose another backend with "
            "--backend, [backend] backend in config.ini or KERAS_BACKEND.") from e


_KERAS_KEEPS_OUT = {"torch": ("jax", "matplotlib"), "tensorflow": ("jax", "matplotlib"),
                    "jax": ("matplotlib",)}
"""What `import keras` imports on each backend without using it (`_kept_out`)."""


class _KeepOut(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A finder that makes `import NAME` (and its submodules) raise `ImportError`."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        return importlib.machinery.ModuleSpec(fullname, self) if top in self.names else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        raise ImportError(f"{spec.name} is not imported with Keras on this backend")

    def exec_module(self, module: ModuleType) -> None:  # never reached: create_module raises
        raise ImportError(module.__name__)


@contextlib.contextmanager
def _kept_out(names: tuple[str, ...]) -> Iterator[None]:
    """Imports of `names` (not imported yet) fail while the block runs, and work after it.

    Keras 3.15 imports JAX whenever it is installed, whatever its backend
    (`keras.src.callbacks.orbax_checkpoint`: `try: import jax ... except ImportError`),
    and `matplotlib.pyplot` for its image galleries (`keras.src.visualization`, the same
    guard): about 0.5 s and 0.3 s of every process that imports Keras (a job worker, an
    experiment script, `predict`). The engine uses neither through Keras (its plots import
    matplotlib themselves, in the driver); a later `import jax` or `import matplotlib` in
    the process still works.
    """
    names = tuple(n for n in names if n not in sys.modules)
    if not names:
        yield
        return
    finder = _KeepOut(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def backend_environment(backend: str | None, gpu: str | None) -> dict[str, str]:
    """The variables that give a child process this backend and GPU (`use_backend`'s
    choice, handed down by the process executor).

    Args:
        backend: the backend, or `None` to leave the child's as inherited.
        gpu: the GPU id, or `None` to leave `CUDA_VISIBLE_DEVICES` as inherited.

    Returns:
        `{"KERAS_BACKEND": ..., "CUDA_VISIBLE_DEVICES": ...}`, each only when given.
    """
    env = {}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = _visible_devices(gpu)
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


SHARING_VARIABLES = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                     "TF_FORCE_GPU_ALLOW_GROWTH")
"""The variables `sharing_environment` may set (a fold records those it ran with)."""


def sharing_environment(backend: str | None, jobs_per_gpu: int) -> dict[str, str]:
    """The variables that let `jobs_per_gpu` processes of `backend` share one GPU, set
    before the framework starts in each.

    - JAX preallocates 75 % of the GPU's memory in every process: with several jobs per
      GPU, preallocation is off and each process may grow to `0.9 / jobs_per_gpu` of it
      (`XLA_PYTHON_CLIENT_MEM_FRACTION`, which caps JAX's allocator).
    - TensorFlow takes all of it unless told to grow: `TF_FORCE_GPU_ALLOW_GROWTH`.
    - Torch allocates as it goes (its cache is emptied between jobs).

    Args:
        backend: the Keras backend.
        jobs_per_gpu: the processes sharing one GPU (`[backend] jobs_per_gpu`).

    Returns:
        The variables to set (a user's own setting of one should win).
    """
    if backend == "tensorflow":
        return {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    if backend == "jax" and jobs_per_gpu > 1:
        return {"XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{min(0.75, 0.9 / jobs_per_gpu):.3f}"}
    return {}


def _check_imported_keras(backend: str, gpu: str | None, source: str) -> None:
    """Refuses a backend or GPU asked for after Keras was imported with others."""
    import keras  # noqa: PLC0415  (already imported: only its backend is read)

    if keras.backend.backend() != backend:
        raise ConfigurationError(
            f"Keras was imported with backend {keras.backend.backend()!r} before "
            f"{backend!r} was asked for (from {source}); run it in a fresh process."
        )
    if gpu is not None and os.environ.get("CUDA_VISIBLE_DEVICES") != _visible_devices(gpu):
        raise ConfigurationError(
            f"GPU {gpu} was asked for after Keras was imported; choose the GPU before "
            "importing Keras (run the experiment script directly)."
        )
