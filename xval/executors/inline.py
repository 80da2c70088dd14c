"""The inline executor: jobs one after the other in this process (CPU, tests, debugging)."""

from __future__ import annotations

from xval.core.errors import ConfigurationError
from xval.executors.base import Execution, Executor, JobQueue, Results, run_job
from xval.executors.registry import register


@register
class InlineExecutor(Executor):
    """Runs jobs one after the other in this process (CPU, tests, debugging)."""

    name = "inline"
    summary = "in this process, one after the other"

    @classmethod
    def create(cls, options: Execution) -> InlineExecutor:
        if options.gpus and len(options.gpus) > 1:
            raise ConfigurationError(
                f"--gpus {','.join(map(str, options.gpus))} needs --executor process or ray "
                "(the inline executor runs one job at a time on one device)."
            )
        return cls()

    def run(self, queue: JobQueue) -> Results:
        while (job := queue.pop()) is not None:
            yield run_job(job, self.job_hook(job))
