"""The process executor's worker: `python -m xval.executors.worker` runs jobs one after
another in one process.

It reads one hand-over folder per line of stdin (the folder holds `job.json`), runs that
job, writes its result into the folder (`xval.executors.transport`) and prints
`transport.DONE_PREFIX FOLDER`, then frees what the job left (its model, the framework's
GPU cache) while the driver records the result; it exits at the end of stdin. It prints
one `EPOCH_PREFIX` line per epoch for the executor's progress display; the driver alone
writes the experiment's result files.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import xval.executors.transport as transport
from xval.core.backend import import_paused
from xval.core.interrupts import exit_process
from xval.core.logs import quiet_framework_logs
from xval.core.records import Job


def progress(epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
    """Prints one epoch line for the process executor to stream."""
    from xval.executors.base import EPOCH_PREFIX  # noqa: PLC0415  (imported by `main`)

    print(f"{EPOCH_PREFIX}{epoch} {epochs} {json.dumps(dict(logs))}", flush=True)


def main() -> int:
    """Runs the jobs whose folders stdin names, one per line, until stdin ends; returns 0."""
    # The engine (pandas, SciPy, scikit-learn...), with the collector paused.
    import_paused("xval.executors.base")
    from xval.executors.base import run_job  # noqa: PLC0415  (imported above)
    from xval.executors.job_process import mark_job_process  # noqa: PLC0415  (imported above)
    from xval.training.prepare import collect_garbage  # noqa: PLC0415  (imported above)

    mark_job_process()
    quiet_framework_logs(backend=os.environ.get("KERAS_BACKEND"))
    for line in sys.stdin:
        folder = Path(line.rstrip("\n"))
        job = Job.from_dict(json.loads((folder / transport.JOB).read_text(encoding="utf-8")))
        result = run_job(job, progress)
        transport.write(folder, result)
        del result  # its model's bytes
        print(f"{transport.DONE_PREFIX}{folder}", flush=True)
        collect_garbage()  # while the driver records: the GPU memory back before the next
    return 0


if __name__ == "__main__":
    exit_process(main())
