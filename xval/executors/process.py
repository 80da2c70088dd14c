"""The process executor: every job in a fresh `python -m xval.executors.worker` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO

import xval.executors.transport as transport
from xval.core.backend import backend_environment
from xval.core.records import FoldResult, Job
from xval.executors.base import EPOCH_PREFIX, Executor, ExecutorOptions, JobQueue, Results
from xval.executors.registry import register


def cpu_threads(jobs: int) -> dict[str, str]:
    """Thread counts for one of `jobs` worker processes that share this machine's cores.

    Each framework sizes its thread pools to every core; several trainings side by side then
    run many more threads than cores, and spinning OpenMP threads make that very slow (two
    2-thread torch trainings on 2 cores took 10x as long as one alone; with one thread each,
    1.8x: `benchmarks/cpu_threads.py`). A job gets its share of the cores instead.

    Args:
        jobs: concurrent worker processes.

    Returns:
        `OMP_NUM_THREADS` (torch, oneDNN) and TensorFlow's `TF_NUM_INTRAOP_THREADS`, each the
        cores usable by this process divided by `jobs` (at least 1); `{}` for one job.
    """
    if jobs <= 1:
        return {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    share = str(max(1, cores // jobs))
    return {"OMP_NUM_THREADS": share, "TF_NUM_INTRAOP_THREADS": share}


@register
class ProcessExecutor(Executor):
    """Runs every job in a fresh `python -m xval.executors.worker` process, one slot per GPU.

    Memory a framework holds (GPU memory included) is returned when each job's process ends.
    Concurrent jobs share the cores (`cpu_threads`) unless the environment sets the thread
    counts.

    Args:
        gpus: GPU ids (strings); `[None]` for CPU only. Defaults to `[None]`.
        jobs_per_gpu: concurrent jobs per GPU (or on the CPU). Defaults to `1`.
        backend: Keras backend of the workers.
    """

    name = "process"
    summary = ("a fresh process per (instance, fold) job; memory held by the framework is "
               "returned when each job ends")

    def __init__(self, gpus: Sequence[str | None] = (None,), jobs_per_gpu: int = 1,
                 backend: str | None = None) -> None:
        self._slots = [g for g in (gpus or [None]) for _ in range(jobs_per_gpu)]
        self.backend = backend
        self._procs: dict[tuple[int, int], subprocess.Popen] = {}
        self._procs_lock = threading.Lock()

    @classmethod
    def create(cls, options: ExecutorOptions) -> ProcessExecutor:
        return cls(list(options.gpus or [None]), options.jobs_per_gpu, options.backend)

    @property
    def slots(self) -> int:
        return len(self._slots)

    def _environment(self, gpu: str | None) -> dict[str, str]:
        env = {**os.environ, **backend_environment(self.backend, gpu)}
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # several jobs may share a GPU
        env.update({k: v for k, v in cpu_threads(self.slots).items() if k not in os.environ})
        return env

    def _launch(self, job: Job, gpu: str | None) -> FoldResult:
        with tempfile.TemporaryDirectory(prefix="xval-job-") as tmp:
            folder = Path(tmp)
            (folder / "job.json").write_text(json.dumps(job.to_dict()))
            with open(folder / "stderr.txt", "w+") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "xval.executors.worker", str(folder / "job.json"),
                     str(folder)],
                    env=self._environment(gpu), stdout=subprocess.PIPE, stderr=err, text=True)
                with self._procs_lock:
                    self._procs[job.key] = proc
                try:
                    stdout = self._stream(job, proc.stdout or [])
                    proc.wait()
                finally:
                    with self._procs_lock:
                        self._procs.pop(job.key, None)
                err.seek(0)
                stderr = err.read()
            result = transport.read(folder)
            if result is not None:
                return result
            tail = (stderr or stdout or "")[-3000:]
            return FoldResult.failure(job, None, message=(
                f"worker process exited with code {proc.returncode} without a result: "
                f"{tail.strip() or '(no output)'}"))

    def _stream(self, job: Job, pipe: IO[str] | Iterable[str]) -> str:
        """Reads a worker's stdout: epoch lines go to `on_epoch`, the rest is kept."""
        kept = []
        for line in pipe:
            if not line.startswith(EPOCH_PREFIX):
                kept.append(line)
            elif self.on_epoch is not None:
                try:
                    epoch, epochs, logs = line[len(EPOCH_PREFIX):].split(" ", 2)
                    self.on_epoch(job, int(epoch), int(epochs), json.loads(logs))
                except ValueError:
                    continue
        return "".join(kept[-200:])

    def _stop_all(self) -> None:
        with self._procs_lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    def run(self, queue: JobQueue) -> Results:
        free = list(self._slots)
        running: dict[Future[FoldResult], str | None] = {}
        pool = ThreadPoolExecutor(len(self._slots), thread_name_prefix="xval-job")
        try:
            while True:
                while free and (job := queue.pop()) is not None:
                    gpu = free.pop(0)
                    running[pool.submit(self._launch, job, gpu)] = gpu
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    free.append(running.pop(future))
                    yield future.result()
        finally:
            self._stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
