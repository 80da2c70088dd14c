"""The process executor: jobs in warm worker processes (`python -m xval.executors.worker`),
one slot per GPU (`jobs_per_gpu` slots each), each backend told to share its GPU."""

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
from xval.core.backend import backend_environment, sharing_environment
from xval.core.records import FoldResult, Job
from xval.executors.base import (
    EPOCH_PREFIX,
    Execution,
    Executor,
    JobQueue,
    Results,
    refill_first,
    worker_jobs,
)
from xval.executors.registry import register


def cpu_threads(jobs: int) -> dict[str, str]:
    """Thread counts for one of `jobs` worker processes that share this machine's cores.

    Each framework sizes its thread pools to every core; several trainings side by side then
    run many more threads than cores, and spinning OpenMP threads make that very slow (two
    2-thread torch trainings on 2 cores took 10x as long as one alone; with one thread each,
    1.8x: `git show 4619a5e:benchmarks/cpu_threads.py`). A job gets its share of the cores
    instead.

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

    A slot's worker stays warm for `WORKER_JOBS` jobs, on the CPU and on a GPU (Keras, the
    backend, CUDA and the store opened once; between jobs the worker frees what the
    framework holds: `xval.training.devices.release_memory`); a GPU worker is replaced
    after a failed job, and a TensorFlow worker with a GPU after every job (`worker_jobs`). A slot
    that frees up starts its next job before the driver records the last result
    (`refill_first`). Jobs sharing a GPU are told to share it (`sharing_environment`: no
    JAX preallocation, TensorFlow's memory growth); concurrent jobs share the cores
    (`cpu_threads`) unless the environment sets the thread counts. A CPU slot never
    inherits a GPU: the GPU `-1` hides every GPU from its worker.

    Args:
        gpus: GPU ids (strings; `"-1"` for the CPU); `[None]` for the device the workers
            inherit. Defaults to `[None]`.
        jobs_per_gpu: concurrent jobs per GPU (or on the CPU). Defaults to `1`.
        backend: Keras backend of the workers.
        inherited_gpu: a slot `None` inherits a GPU (the machine has one and no GPU was
            named): its jobs are told to share it and run as GPU jobs. Defaults to `False`.
    """

    name = "process"
    summary = ("jobs in warm worker processes, one slot per GPU (jobs_per_gpu each), each "
               "backend told to share its GPU")

    def __init__(self, gpus: Sequence[str | None] = (None,), jobs_per_gpu: int = 1,
                 backend: str | None = None, *, inherited_gpu: bool = False) -> None:
        self._slots = [g for g in (gpus or [None]) for _ in range(jobs_per_gpu)]
        self.jobs_per_gpu = jobs_per_gpu
        self.backend = backend
        self.inherited_gpu = inherited_gpu
        self._workers: dict[int, _Worker] = {}
        self._busy: set[int] = set()
        self._ending: list[threading.Thread] = []
        self._lock = threading.Lock()

    @classmethod
    def create(cls, options: Execution) -> ProcessExecutor:
        gpus = [str(g) for g in options.gpus] if options.gpus else [None]
        return cls(gpus, options.jobs_per_gpu or 1, options.backend,
                   inherited_gpu=options.inherited_gpu)

    @property
    def slots(self) -> int:
        return len(self._slots)

    def _on_gpu(self, gpu: str | None) -> bool:
        """Whether the slot's jobs run on a GPU: one named, or the one a slot `None`
        inherits where the machine has one (`inherited_gpu`)."""
        return gpu != "-1" and (gpu is not None or self.inherited_gpu)

    def _environment(self, gpu: str | None, script: str | None = None) -> dict[str, str]:
        """A slot's worker's environment: its GPU, the backend's sharing, its share of the
        cores, and with the experiment's own code (`script`) the script's folder first on
        its import path, as Python puts it for the script itself (and Ray for its
        workers), so that a module beside the script imports there too."""
        env = {**os.environ, **backend_environment(self.backend, gpu)}
        if script is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(Path(script).parent), env.get("PYTHONPATH")]))
        if self._on_gpu(gpu):  # the user's own settings win
            for key, value in sharing_environment(self.backend or env.get("KERAS_BACKEND"),
                                                  self.jobs_per_gpu).items():
                env.setdefault(key, value)
        env.update({k: v for k, v in cpu_threads(self.slots).items() if k not in os.environ})
        return env

    def _worker(self, slot: int, script: str | None = None) -> _Worker:
        """The slot's worker, started when it has none (`script`: `Job.script`)."""
        with self._lock:
            worker = self._workers.get(slot)
            if worker is None or worker.proc.poll() is not None:
                if worker is not None:
                    worker.close()
                gpu = self._slots[slot]
                worker = _Worker(self._environment(gpu, script),
                                 worker_jobs(self._on_gpu(gpu), self.backend))
                self._workers[slot] = worker
            self._busy.add(slot)
            return worker

    def _release(self, slot: int, worker: _Worker, keep: bool) -> None:
        """Retires the slot's worker unless `keep` (it ran its job to a good end) and it has
        jobs left. A retired worker ends in the background (a framework's shutdown takes
        seconds), so the slot's next job does not wait for it; `_stop_all` waits."""
        with self._lock:
            self._busy.discard(slot)
            kept = self._workers.get(slot) is worker
            if kept and keep and worker.jobs_left > 0:
                return
            if kept:
                del self._workers[slot]
            ending = threading.Thread(target=worker.close, name="xval-worker-end")
            self._ending.append(ending)
        ending.start()

    def _launch(self, job: Job, slot: int) -> FoldResult:
        with tempfile.TemporaryDirectory(prefix="xval-job-") as tmp:
            folder = Path(tmp)
            (folder / transport.JOB).write_text(json.dumps(job.to_dict()))
            worker = self._worker(slot, job.script)
            result = None
            try:
                start = worker.send(folder)
                stdout, finished = self._stream(job, worker.proc.stdout or [],
                                                f"{transport.DONE_PREFIX}{folder}\n")
                stderr = "" if finished else worker.stderr_since(start)
                if finished:
                    try:
                        result = transport.read(folder)
                    except (OSError, ValueError, KeyError, TypeError) as e:  # this fold only
                        return FoldResult.failure(job, None, message=(
                            f"the worker's result could not be read back: "
                            f"{type(e).__name__}: {e}"))
            finally:  # a GPU worker whose job failed is replaced: a CUDA error can leave
                # its context unusable for every later job
                self._release(slot, worker, result is not None
                              and (result.ok or not self._on_gpu(self._slots[slot])))
            if result is not None:
                return result
            try:  # its stdout ended: it died (its end may not be reaped yet)
                code = worker.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                code = None
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

        def refill() -> None:
            while free and (job := queue.pop()) is not None:
                slot = free.pop(0)
                running[pool.submit(self._launch, job, slot)] = slot

        try:
            while True:
                refill()
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                ended = []
                for future in done:
                    free.append(running.pop(future))
                    ended.append(future.result())
                yield from refill_first(ended, refill, queue)
        finally:
            self._stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
            with self._lock:
                ending, self._ending = self._ending, []
            for thread in ending:  # every worker has ended when `run` returns
                thread.join()
