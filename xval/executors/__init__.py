"""Executors run `Job`s and yield `FoldResult`s: inline, in worker processes, or with Ray.

Each executor is one module registered by name (`xval.executors.registry`); see
`xval.executors.base` for the contract every executor keeps.
"""

from xval.executors import base, inline, process, ray  # noqa: F401  (register the executors)
from xval.executors.base import Execution, Executor, JobQueue, run_job
from xval.executors.registry import get, make_executor, names, register

__all__ = ["Execution", "Executor", "JobQueue", "get", "make_executor", "names", "register",
           "run_job"]
