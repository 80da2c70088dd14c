"""`python -m xval.executors.worker JOB.json OUT_DIR`: runs one job in a fresh process.

Writes the job's result into `OUT_DIR` (`xval.executors.transport`) for the process executor
to read back, and prints one `EPOCH_PREFIX` line per epoch for its progress display; the
driver alone writes the experiment's result files.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import xval.executors.transport as transport
from xval.core.logs import quiet_framework_logs
from xval.core.records import Job
from xval.executors.base import EPOCH_PREFIX, run_job


def progress(epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
    """Prints one epoch line for the process executor to stream."""
    print(f"{EPOCH_PREFIX}{epoch} {epochs} {json.dumps(dict(logs))}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the job of `argv` (`JOB.json OUT_DIR`); returns 0 when the fold is ok, else 1."""
    from xval.training.prepare import mark_job_process  # noqa: PLC0415  (numpy, the store)

    job_path, out_dir = list(argv or sys.argv[1:])[:2]
    mark_job_process()
    quiet_framework_logs(backend=os.environ.get("KERAS_BACKEND"))
    job = Job.from_dict(json.loads(Path(job_path).read_text(encoding="utf-8")))
    result = run_job(job, progress)
    transport.write(out_dir, result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
