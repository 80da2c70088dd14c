"""Process pools for per-file work (feature extraction, augmentation)."""

import os
import sys
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext

from threadpoolctl import threadpool_limits

POOL_FILES = 16
"""Files per worker process below which `auto_workers` starts fewer processes, when they are
forked from a warm process (each costs a few milliseconds to start)."""
POOL_FILES_FRESH = 128
"""The same for workers started fresh (`forkserver` or `spawn`, in a process that loaded a
deep-learning framework): each imports the audio stack first, seconds of CPU."""


def auto_workers(tasks: int) -> int:
    """The processes worth starting for `tasks` files when no count was asked for (`0`:
    "all cores"): every core for a large folder, fewer for a small one, and this process
    alone below `POOL_FILES` files a worker (`POOL_FILES_FRESH` where workers start fresh),
    where starting workers costs more than it saves.

    Args:
        tasks: the files (or other per-file tasks) to process.

    Returns:
        At least 1, at most the cores.
    """
    per_worker = POOL_FILES if fork_is_safe() else POOL_FILES_FRESH
    return max(1, min(os.cpu_count() or 1, tasks // per_worker))


def seed_for(seed: int, name: str, version: int) -> int:
    """The seed of one (file, version): stable across processes, runs and worker counts.

    Args:
        seed: the base seed.
        name: the file's name (a relative path or clip id).
        version: the version number (1 for the first augmented copy, ...).

    Returns:
        An int in `[0, 2**32)`.
    """
    return (seed * 1_000_003 + zlib.crc32(name.encode()) * 101 + version) % (2**32)


def fork_is_safe() -> bool:
    """Forking a process that runs threads (a deep-learning framework, a busy BLAS pool)
    can deadlock the children: fork only a single-threaded process without torch,
    TensorFlow or JAX loaded. tqdm's monitor is a sleeping daemon thread holding no lock."""
    frameworks = {"torch", "tensorflow", "jax"} & set(sys.modules)
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.name.startswith("tqdm_monitor")]
    return not others and not frameworks and "fork" in get_all_start_methods()


PARENT_CHECK_SECONDS = 1.0
"""How often a worker checks that the process that started it is alive."""


def _exit_with_parent(parent: int) -> None:
    """Ends this worker once its parent is gone (killed with SIGKILL, which runs no
    clean-up): a worker left behind would go on writing files a rerun resumes."""
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker() -> None:
    """One BLAS/OpenMP thread per worker: the processes are the parallelism, and OpenBLAS
    threads spinning in every worker would fight over the cores. The worker ends with its
    parent (`_exit_with_parent`)."""
    threadpool_limits(1)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True,
                     name="exit-with-parent").start()


def single_threaded() -> threadpool_limits:
    """A context in which BLAS/OpenMP run one thread, as in the pool's workers.

    Work done in this process with one worker runs in it, so that its numbers are those of
    any worker count: a multi-threaded BLAS sums in another order (the mel filter bank's
    product differs by about 1e-5 dB), and a store built with `workers=1` would otherwise
    differ from the same store built with several.

    Returns:
        The context manager (`threadpoolctl.threadpool_limits(1)`).
    """
    return threadpool_limits(1)


def process_pool(workers: int,
                 warm_up: Callable[[], object] | None = None) -> ProcessPoolExecutor:
    """A `ProcessPoolExecutor` whose workers start quickly.

    With `fork` (when safe) the workers inherit this process's imported, warmed-up modules;
    otherwise `forkserver` (or `spawn`) is used, and they read the kernels `warm_up`
    compiled from numba's cache on disk: in a fresh environment each worker compiled
    librosa's STFT kernels itself, about 12 s of CPU apiece. Each worker uses one BLAS
    thread.

    Args:
        workers: number of processes.
        warm_up: callable run in this process before the workers start (imports, kernel
            compilation), or `None`.

    Returns:
        The executor.
    """
    context: BaseContext
    fork = fork_is_safe()  # as `auto_workers` counted, whatever the warm-up imports
    if warm_up is not None:
        warm_up()
    if fork:
        context = get_context("fork")
    else:
        context = get_context("forkserver" if "forkserver" in get_all_start_methods()
                              else "spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
