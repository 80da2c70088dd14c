"""The typed records of a run: what travels between processes and what result files hold.

- `Job`: one (instance, fold) to train; `FoldResult`: what it gave (`fold_<i>.json`).
- `ParamsRecord` (`params.json`), `FoldsManifest` (`folds.json`), `InstanceSummary`
  (`summary.json`), `FinalModelRecord` (`final.json`), `TrialRecord` (`trial.json`), `NestedRecord`
  (`nested.json`), `EnsembleRecord` (`ensemble.json`), `CommandLog` of `RunCommand`s (`code/commands.json`).

Every record is a dataclass (a `Record`, `base.py`) written with `to_dict()` and read with
`from_dict()`, which checks what it reads from the field annotations, and every reader of a
result file goes through them (the one results store: `xval.core.storage`) (the files' paths come from
`xval.core.layout.ExperimentLayout`). A record carries `"format": FORMAT_VERSION`;
`from_dict` refuses a file that is not a record of its kind (no format, or a newer one
included) (a `RecordError` naming the file's problem), so that a reader never
meets a half-typed dict. Whether a well-formed fold file can be believed (its metrics finite
and in range, its model present with the recorded hash, its parameters the instance's) is
`check_fold`'s question.

Executors take `Job`s and yield `FoldResult`s; none of them writes result files: the
results store (`xval.core.storage`) does, in the driver (the run's recorder,
`xval.running.recorder`).
"""

from xval.core.records.base import (
    FORMAT_VERSION,
    LEVELS,
    SCORED_SPLITS,
    SPLITS,
    InstanceStatus,
    Metrics,
    Record,
    RecordError,
    Status,
)
from xval.core.records.command import CommandLog, RunCommand
from xval.core.records.ensemble import EnsembleRecord
from xval.core.records.final import FinalModelRecord, NestedRecord, TrialRecord
from xval.core.records.fold import LATE_EPOCH_SHARE, FoldResult, Postprocessing, check_fold
from xval.core.records.job import Job
from xval.core.records.manifest import FoldsManifest
from xval.core.records.params import ParamsRecord
from xval.core.records.summary import InstanceSummary, Stat, mean_std_ci

__all__ = ["FORMAT_VERSION", "LATE_EPOCH_SHARE", "LEVELS", "SCORED_SPLITS", "SPLITS",
           "CommandLog", "EnsembleRecord", "FinalModelRecord", "FoldResult", "FoldsManifest", "InstanceStatus",
           "InstanceSummary", "Job", "Metrics", "NestedRecord", "ParamsRecord",
           "Postprocessing", "Record", "RecordError", "RunCommand", "Stat", "Status",
           "TrialRecord", "check_fold", "mean_std_ci"]
