"""`python -m xval.worker JOB.json OUT_DIR`: runs one job in a fresh process.

Writes `OUT_DIR/result.json` (the `FoldResult` with its test predictions and plot data) and
`OUT_DIR/model.keras` (the best model) for the process executor to read back; the driver
alone writes the experiment's result files.
"""

import json
import os
import sys
from pathlib import Path


def main(argv=None):
    job_path, out_dir = (argv or sys.argv[1:])[:2]
    from xval.logs import quiet_framework_logs

    quiet_framework_logs(backend=os.environ.get("KERAS_BACKEND"))
    from xval.executors import EPOCH_PREFIX, _run_job
    from xval.jobs import Job
    from xval.results import atomic_write_bytes, atomic_write_json

    job = Job.from_dict(json.loads(Path(job_path).read_text(encoding="utf-8")))
    def progress(epoch, epochs, logs):
        print(f"{EPOCH_PREFIX}{epoch} {epochs} {json.dumps(logs)}", flush=True)

    result = _run_job(job, progress)
    out_dir = Path(out_dir)
    if result.model_bytes is not None:
        atomic_write_bytes(out_dir / "model.keras", result.model_bytes)
    atomic_write_json(out_dir / "result.json", result.to_transport())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
