"""The process executor: jobs in worker processes (`python -m xval.executors.worker`), one
slot per GPU; warm workers on the CPU, a fresh one for every job with a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO

import xval.executors.transport as transport
from xval.core.backend import backend_environment
from xval.core.records import FoldResult, Job
from xval.executors.base import (
    EPOCH_PREFIX,
    Executor,
    ExecutorOptions,
    JobQueue,
    Results,
    worker_jobs,
)
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


class _Worker:
    """One worker process (`python -m xval.executors.worker`) that runs jobs as it is sent them.

    Args:
        env: its environment.
        jobs: how many jobs it runs before it is retired.
    """

    def __init__(self, env: Mapping[str, str], jobs: int) -> None:
        self.stderr = tempfile.TemporaryFile("w+", prefix="xval-worker-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xval.executors.worker"], env=dict(env),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.jobs_left = jobs

    def send(self, folder: Path) -> int:
        """Hands the job in `folder` over; returns where its stderr starts."""
        self.jobs_left -= 1
        start = os.fstat(self.stderr.fileno()).st_size
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{folder}\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died: the job ends without a result, with its stderr
        return start

    def stderr_since(self, start: int) -> str:
        """What the worker wrote to stderr from `start` on."""
        self.stderr.seek(start)
        return self.stderr.read()

    def close(self) -> None:
        """Ends the process (at the end of its stdin) and waits for it."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


@register
class ProcessExecutor(Executor):
    """Runs jobs in worker processes (`python -m xval.executors.worker`), one slot per GPU.

    On the CPU a worker stays warm for `CPU_WORKER_JOBS` jobs (Keras, the backend and the
    store imported once; the Keras session is cleared after every job), as the Ray executor's
    CPU workers do. A job with a GPU runs in a fresh worker, so that the memory the
    framework holds there is returned when the job ends. Concurrent jobs share the cores
    (`cpu_threads`) unless the environment sets the thread counts.

    Args:
        gpus: GPU ids (strings); `[None]` for CPU only. Defaults to `[None]`.
        jobs_per_gpu: concurrent jobs per GPU (or on the CPU). Defaults to `1`.
        backend: Keras backend of the workers.
    """

    name = "process"
    summary = ("jobs in worker processes, warm on the CPU and fresh for every job with a GPU "
               "(whose memory is returned when the job ends)")

    def __init__(self, gpus: Sequence[str | None] = (None,), jobs_per_gpu: int = 1,
                 backend: str | None = None) -> None:
        self._slots = [g for g in (gpus or [None]) for _ in range(jobs_per_gpu)]
        self.backend = backend
        self._workers: dict[int, _Worker] = {}
        self._busy: set[int] = set()
        self._lock = threading.Lock()

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

    def _worker(self, slot: int) -> _Worker:
        """The slot's worker, started when it has none."""
        with self._lock:
            worker = self._workers.get(slot)
            if worker is None or worker.proc.poll() is not None:
                if worker is not None:
                    worker.close()
                gpu = self._slots[slot]
                worker = _Worker(self._environment(gpu), worker_jobs(gpu is not None))
                self._workers[slot] = worker
            self._busy.add(slot)
            return worker

    def _release(self, slot: int, worker: _Worker, finished: bool) -> None:
        """Retires the slot's worker when it died or ran its last job."""
        with self._lock:
            self._busy.discard(slot)
            kept = self._workers.get(slot) is worker
            if kept and finished and worker.jobs_left > 0:
                return
            if kept:
                del self._workers[slot]
        worker.close()

    def _launch(self, job: Job, slot: int) -> FoldResult:
        with tempfile.TemporaryDirectory(prefix="xval-job-") as tmp:
            folder = Path(tmp)
            (folder / transport.JOB).write_text(json.dumps(job.to_dict()))
            worker = self._worker(slot)
            finished = False
            try:
                start = worker.send(folder)
                stdout, finished = self._stream(job, worker.proc.stdout or [],
                                                f"{transport.DONE_PREFIX}{folder}\n")
                stderr = "" if finished else worker.stderr_since(start)
            finally:
                self._release(slot, worker, finished)
            result = transport.read(folder) if finished else None
            if result is not None:
                return result
            code = worker.proc.returncode
            tail = (stderr or stdout or "")[-3000:]
            return FoldResult.failure(job, None, message=(
                f"worker process exited with code {code} without a result: "
                f"{tail.strip() or '(no output)'}"))

    def _stream(self, job: Job, pipe: IO[str] | Iterable[str], done: str) -> tuple[str, bool]:
        """Reads a worker's stdout up to the line `done` (or its end): epoch lines go to
        `on_epoch`, the rest is kept.

        Returns:
            The kept lines' end, and whether `done` was read.
        """
        kept: list[str] = []
        for line in pipe:
            if line == done:
                return "".join(kept[-200:]), True
            if not line.startswith(EPOCH_PREFIX):
                kept.append(line)
            elif self.on_epoch is not None:
                try:
                    epoch, epochs, logs = line[len(EPOCH_PREFIX):].split(" ", 2)
                    self.on_epoch(job, int(epoch), int(epochs), json.loads(logs))
                except ValueError:
                    continue
        return "".join(kept[-200:]), False

    def _stop_all(self) -> None:
        """Kills the workers running a job (their job's thread then retires them) and ends
        the idle ones."""
        with self._lock:
            busy = [w for slot, w in self._workers.items() if slot in self._busy]
            idle = [w for slot, w in self._workers.items() if slot not in self._busy]
            self._workers.clear()
        for worker in busy:
            if worker.proc.poll() is None:
                worker.proc.kill()
        for worker in idle:
            worker.close()

    def run(self, queue: JobQueue) -> Results:
        free = list(range(len(self._slots)))
        running: dict[Future[FoldResult], int] = {}
        pool = ThreadPoolExecutor(len(self._slots), thread_name_prefix="xval-job")
        try:
            while True:
                while free and (job := queue.pop()) is not None:
                    slot = free.pop(0)
                    running[pool.submit(self._launch, job, slot)] = slot
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    free.append(running.pop(future))
                    yield future.result()
        finally:
            self._stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
