"""Keras 3 cross-validation experiment manager for audio.

The public names (`from xval import Experiment, RunOptions, Search, ...`) are defined in the
layers below and loaded on first use (PEP 562): importing `xval`, or a module of a low layer
(`from xval.core.errors import ConfigurationError` in `preprocessing`), does not pull in the
engine, scikit-learn or pandas, and an experiment script can choose the backend and the GPU
before Keras is imported.

The layers, each importing only those below it (`docs/architecture.md`):

- `xval.cli`: `python -m xval` (report, compare, predict, detect, evaluate, embed, config,
  init, export);
- `xval.ensembles`: ensembles of instances, one package above the layers that run, show and
  predict them, which never import it: the entry points install it (the command lines,
  `from xval import Experiment`; elsewhere `xval.ensembles.run.install()`);
- `xval.running`: `Experiment`, its `RunOptions`, the planner, scheduler, recorder, refit and
  search;
- `xval.executors`, `xval.report`, `xval.inference`: where jobs run; the workbook, tables and
  figures; predict, detect, embed, evaluate, export;
- `xval.training`: one fold (prepare, fit, evaluate, package), model assembly, loading
  (`loading`) and reading inside a model (`layers`), embedding classifiers;
- `xval.config`: the schema derived from the typed records, `config.ini`, instance
  parameters, the search space;
- `xval.tasks`, `xval.folds`: the task registry and one package per task; the item
  splitters;
- `xval.core`: errors, typed records and parameters (`settings`, `parameters`), the results
  store (`storage`), the results-folder layout, registries, logs.
"""

from xval.core.backend import import_paused as _import_paused
from xval.core.namesakes import refuse_namesakes as _refuse_namesakes

_refuse_namesakes()  # `preprocessing`, ... taken by a namesake: one line, before anything else

# Public name -> the module that defines it.
_EXPORTS = {
    "Config": "xval.config.loader",
    "find_config": "xval.config.loader",
    "load_config": "xval.config.loader",
    "ConfigurationError": "xval.core.errors",
    "DatasetError": "xval.core.errors",
    "ParameterError": "xval.core.errors",
    "ResultsConflictError": "xval.core.errors",
    "TrainingError": "xval.core.errors",
    "XvalError": "xval.core.errors",
    "Experiment": "xval.running.experiment",
    "RunOutcome": "xval.running.experiment",
    "Ensemble": "xval.running.declaration",
    "RunOptions": "xval.running.options",
    "Execution": "xval.executors.base",
    "SearchOptions": "xval.running.options",
    "Output": "xval.running.options",
    "ItemKFold": "xval.folds",
    "MultilabelItemKFold": "xval.folds",
    "PredefinedItemSplit": "xval.folds",
    "ExperimentResults": "xval.report.results",
    "Job": "xval.core.records",
    "FoldResult": "xval.core.records",
    "Status": "xval.core.records",
    "Search": "xval.config.space",
    "Float": "xval.config.space",
    "Int": "xval.config.space",
    "Categorical": "xval.config.space",
    "PLAIN_TRAINING": "xval.config.params",
}

__all__ = sorted([*_EXPORTS, "search"])


# Public name -> a module exported under it (`from xval import search`).
_MODULES = {"search": "xval.config.space"}

# Public names whose first look-up installs the ensembles of instances, which sit above the
# layers that define them (`xval.ensembles.run.install`).
_INSTALLS = frozenset(("Experiment", "RunOutcome", "Ensemble"))


def __getattr__(name: str) -> object:
    # The engine's modules (pandas, scikit-learn, SciPy...) with the collector paused. Most
    # often at a script's top level, before its command runs: a Ctrl-C or SIGTERM there
    # ends the process with the command's line and exit status, not a traceback.
    if name in _MODULES:
        value = _import_paused(_MODULES[name], ends_script=True)
        globals()[name] = value
        return value
    if name in _EXPORTS:
        value = getattr(_import_paused(_EXPORTS[name], ends_script=True), name)
        if name in _INSTALLS:
            _import_paused("xval.ensembles.run", ends_script=True).install()
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'xval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
