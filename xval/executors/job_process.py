"""The life of a process that runs the engine's jobs alone: a process-executor worker, a Ray
task's worker, an experiment script run from the shell (`mark_job_process`). Before its first
job (`settle`, called by `xval.executors.base.run_job`) it keeps TensorFlow out of Keras on
another backend and freezes what it holds for the collector. A process of the user's own
(a notebook, `Experiment.run` from their code) is left as it is. A job whose architecture or
task this process does not know imports the experiment script that defines them
(`import_own_code`)."""

from __future__ import annotations

import gc
import importlib.util
import re
import sys
from pathlib import Path

import architectures
from xval import tasks
from xval.core.backend import import_paused
from xval.core.records import Job

__all__ = ["import_own_code", "is_job_process", "keep_tensorflow_out", "mark_job_process",
           "settle"]

_JOB_PROCESS = False
"""Whether this process runs jobs alone (`mark_job_process`)."""
_SETTLED = False
"""Whether this job process has settled (`settle`)."""


def mark_job_process() -> None:
    """Declares this process one that only runs the engine, so that `settle` may keep
    TensorFlow out of Keras and freeze the process's modules."""
    global _JOB_PROCESS
    _JOB_PROCESS = True


def is_job_process() -> bool:
    """Whether `mark_job_process` declared this process one that runs jobs alone."""
    return _JOB_PROCESS


def settle() -> None:
    """Before a job: the first time in a process marked by `mark_job_process`, Keras
    imported (the collector paused, `xval.core.backend.import_paused`), TensorFlow kept out
    of Keras on another backend, then what the process holds frozen for the collector.

    Keras seeds TensorFlow whenever it is installed (for `tf.data`, which the engine does not
    use), and checks for TensorFlow types when it saves a model: on the torch or JAX backend
    with TensorFlow installed beside it, every process that trained paid about 2 s of CPU and
    400 MB to import it. Here Keras's first seeding runs with the import failing, which Keras
    remembers as "TensorFlow not available" for the life of the process (its TensorFlow-only
    layers, such as `StringLookup`, refuse to build there); every fold seeds itself after.

    A full collection walks every object the process holds: about 0.3 s of CPU per fold on 2
    cores with torch and Keras imported. The modules and what lives as long as the process
    move to the collector's permanent generation (`gc.freeze()`), so that each fold's
    collection (`xval.training.prepare.collect_garbage`) walks only what came after. No
    model, store or batch exists yet.
    """
    global _SETTLED
    if not _JOB_PROCESS or _SETTLED:
        return
    _SETTLED = True
    import_paused("keras")
    keep_tensorflow_out()
    gc.collect()
    gc.freeze()


def keep_tensorflow_out() -> None:
    """On a backend other than TensorFlow, with TensorFlow not yet imported: Keras's first
    seeding with the import failing, so that Keras counts TensorFlow unavailable for the
    life of the process (`settle`)."""
    import keras  # noqa: PLC0415  (imported by settle, with the collector paused)

    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        return
    sys.modules["tensorflow"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        keras.utils.set_random_seed(0)  # each fold seeds its own before any draw
    finally:
        sys.modules.pop("tensorflow", None)


def import_own_code(job: Job) -> None:
    """Imports the experiment script of `job` (`Job.script`) where its architecture or task
    is not registered in this process: a worker process or a Ray task, for a builder or a
    task defined in the experiment's folder, which register themselves when the script is
    imported (its `if __name__ == "__main__":` part does not run). Once per process; a
    script that fails to import fails the job, with its error."""
    if job.script is None or (job.params.architecture in architectures.names()
                              and job.task_type in tasks.names()):
        return
    name = "_xval_script_" + re.sub(r"\W", "_", Path(job.script).stem)
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, job.script)
    if spec is None or spec.loader is None:
        raise ImportError(f"{job.script}: not a Python file to import the experiment's own "
                          "architecture or task from")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
