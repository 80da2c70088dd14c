"""Executors run (instance, fold) jobs: inline, or one fresh process per job."""

import json
import os
import queue
import subprocess
import sys
import tempfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path


class InlineExecutor:
    """Runs jobs one after the other in this process (CPU, tests, debugging)."""

    name = "inline"

    def run(self, jobs, stop_on_error=False):
        """Yields `(job, result)` as each job ends; exceptions become failed results.

        Args:
            jobs: job dicts (see `xval.training.run_fold`).
            stop_on_error: raise the first exception instead of recording it.
        """
        from xval.training import failed_result, run_fold

        for job in jobs:
            try:
                result = run_fold(job)
            except Exception as e:  # recorded per fold: debug_mode decides what stops
                if stop_on_error:
                    raise
                result = failed_result(job, e)
            yield job, result


class ProcessExecutor:
    """Runs every job in a fresh `python -m xval.worker` process, one slot per GPU.

    Memory a framework holds is returned when each job's process ends. The driver alone
    writes result files.

    Args:
        gpus: GPU ids (strings); `[None]` for CPU only. Defaults to `[None]`.
        jobs_per_gpu: concurrent jobs per GPU. Defaults to `1`.
        backend: Keras backend of the workers.
    """

    name = "process"

    def __init__(self, gpus=(None,), jobs_per_gpu=1, backend=None):
        self.slots = [g for g in gpus for _ in range(jobs_per_gpu)]
        self.backend = backend

    def _launch(self, job, gpu):
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        if self.backend:
            env["KERAS_BACKEND"] = self.backend
        with tempfile.TemporaryDirectory(prefix="xval-job-") as tmp:
            job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
            job_path.write_text(json.dumps(job))
            proc = subprocess.run([sys.executable, "-m", "xval.worker", str(job_path),
                                   str(out_path)], env=env, capture_output=True, text=True)
            if out_path.exists():
                return json.loads(out_path.read_text())
            tail = (proc.stderr or proc.stdout)[-3000:]
            from xval.training import failed_result

            error = RuntimeError(f"worker exited with code {proc.returncode}: {tail}")
            return failed_result(job, error)

    def run(self, jobs, stop_on_error=False):
        free = queue.Queue()
        for slot in self.slots:
            free.put(slot)
        pending = list(jobs)
        running = {}
        with ThreadPoolExecutor(len(self.slots)) as pool:
            while pending or running:
                while pending and not free.empty():
                    job = pending.pop(0)
                    gpu = free.get()
                    running[pool.submit(self._launch, job, gpu)] = (job, gpu)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job, gpu = running.pop(future)
                    free.put(gpu)
                    result = future.result()
                    if stop_on_error and result["status"] != "ok":
                        pending.clear()
                        from xval.errors import TrainingError

                        raise TrainingError(
                            f"instance {job['instance']} fold {job['fold']} failed "
                            f"(debug_mode=True):\n{result.get('traceback', result['message'])}"
                        )
                    yield job, result


def make_executor(name, gpus, jobs_per_gpu, backend):
    """Returns the executor called `name` (`inline` or `process`)."""
    if name == "process":
        return ProcessExecutor(gpus or [None], jobs_per_gpu, backend)
    return InlineExecutor()
