"""The results store: every read and write of an experiment's result files
(`ResultsStore`, the process's `RESULTS_STORE`), as Optuna's `BaseStorage` is for trials.

- `store`: `ResultsStore`, `RESULTS_STORE`: the experiment and instance files, written and
  read as sealed record files, and the cache of what was read or written.
- `checks`: whether a fold file can be believed (`FoldCheck`), and what reading an
  instance folder gives (`InstanceFolds`, `InstanceFiles`, the task's `TaskRules`).
- `models`: fold models checked against the records that name them.
"""

from xval.core.hashing import FOLD_FIX
from xval.core.storage.checks import (
    EditedCheck,
    FoldCheck,
    InstanceFiles,
    InstanceFolds,
    RulesOf,
    TaskRules,
)
from xval.core.storage.models import check_fold_file, check_fold_models
from xval.core.storage.store import MANIFEST_FIX, RESULTS_STORE, ResultsStore

__all__ = ["FOLD_FIX", "MANIFEST_FIX", "RESULTS_STORE", "EditedCheck", "FoldCheck",
           "InstanceFiles", "InstanceFolds", "ResultsStore", "RulesOf", "TaskRules",
           "check_fold_file", "check_fold_models"]
