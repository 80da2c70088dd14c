"""`python -m xval.worker JOB.json RESULT.json`: runs one job in a fresh process."""

import json
import sys


def main(argv=None):
    job_path, out_path = (argv or sys.argv[1:])[:2]
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    from xval.results import atomic_write_json
    from xval.training import failed_result, run_fold

    try:
        result = run_fold(job)
    except Exception as e:  # reported to the driver, which records it
        result = failed_result(job, e)
    atomic_write_json(out_path, result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
