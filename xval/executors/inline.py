"""The inline executor: jobs one after the other in this process (CPU, tests, debugging)."""

from xval.core.errors import ConfigurationError
from xval.executors.base import Executor, run_job
from xval.executors.registry import register


@register
class InlineExecutor(Executor):
    """Runs jobs one after the other in this process (CPU, tests, debugging)."""

    name = "inline"

    @classmethod
    def create(cls, options):
        if options.gpus and len(options.gpus) > 1:
            raise ConfigurationError(
                f"--gpus {','.join(map(str, options.gpus))} needs --executor process or ray "
                "(the inline executor runs one job at a time on one device)."
            )
        return cls()

    def run(self, queue):
        while (job := queue.pop()) is not None:
            hook = None
            if self.on_epoch is not None:
                def hook(epoch, epochs, logs, job=job):
                    self.on_epoch(job, epoch, epochs, logs)
            yield run_job(job, hook)

