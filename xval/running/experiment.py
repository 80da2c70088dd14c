"""`Experiment`: numbered instances of parameter overrides, cross-validated over items.

Example (an experiment script):

```python
from xval import Experiment

experiment = Experiment(description="...", dataset="demo", number=1, num_folds=4)
experiment[1] = ['architecture="example_cnn"', 'reshaping_type="conv"',
                 'comment_1="lr 1e-3"', 'comment_2="baseline"', 'learning_rate=0.001']

if __name__ == "__main__":
    experiment.main()
```
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from xval.core.entry import exit_process, interactive_session
from xval.core.storage import RESULTS_STORE
from xval.running.command import run_experiment_cli
from xval.running.declaration import ExperimentDeclaration, InstanceRange, Selection
from xval.running.environment import ConfigSource, run_config
from xval.running.options import RunOptions
from xval.running.refit import refit_instance
from xval.running.runner import RunOutcome, run_experiment


class Experiment(ExperimentDeclaration):
    """An experiment: settings, plus numbered instances set with `experiment[k] = ...`.

    Args:
        description: short description (first line of the description file).
        dataset: name of the feature store under `config.ini [paths] data_dir`.
        number: experiment number `N` (results go to `<dataset>/experiment_<N>`).
        num_folds: folds over items; 1 means one train/validation/test split. Defaults to `5`.
        experiment_folder: results folder; `None` uses `config.ini [paths] results_dir`.
        overwrite_results: rerun instances that already have results. Defaults to `False`.
        debug_mode: stop at the first error with its traceback; otherwise a failing instance
            is recorded and the run goes on. Defaults to `False`.
        task_type: a task registered in `xval.tasks` (`xval.tasks.names()`). Defaults to
            `xval.tasks.DEFAULT` (classification).
        generator: stream batches from the memory-mapped store. Defaults to `False`.
        gpu_ID: GPU id, overridden by the command line. Defaults to `None` (leave as is).
        parameters: parameters applied to every instance (dict or list of strings).
        num_repeats: repeat the k-fold `num_repeats` times, each repeat with another
            shuffle of the items (repeated cross-validation: `num_folds * num_repeats`
            folds, numbered repeat by repeat); `--set num_repeats=N` overrides it. Defaults
            to `1`.
        config: path of config.ini; `None` finds it (see `xval.config.find_config`).
        allow_outside_data_dir: accept a `dataset` that leads outside data_dir (an absolute
            path or `..`). Defaults to `False`.
        preference: the order in which rows are preferred when the ranking scores cannot tell
            them apart, most preferred first (`[5, 3, 1, 2, 4]`), declared before any score
            is seen and recorded with each run (`code/commands.json`); instances it leaves
            out follow in the default order: ensembles of instances first, then the others
            by id (docs/workbook.md, "Which row is selected"). Defaults to `None` (the
            default order).

    Raises:
        ConfigurationError: for a setting of the wrong type or out of range, named with its
            value and what is expected.
    """

    def main(self, argv: Sequence[str] | None = None) -> NoReturn:
        """Runs the command line (`FIRST LAST [GPU]`, options) and exits with its code: the
        command line calls `run` (or `refit`), as a Python caller does.

        Args:
            argv: the arguments; `None` reads the process's own (`python SCRIPT ...`), and
                then the process runs the engine alone (`xval.executors.job_process.
                mark_job_process`: on the torch or JAX backend Keras keeps TensorFlow out,
                and the process's modules are frozen for the collector before the first job),
                unless it is an interactive session (`%run` in IPython or Jupyter, Spyder's
                `runfile`), whose other objects are the user's.
        """
        own = argv is None and not interactive_session()  # the process is this command's
        if own:
            from xval.executors.job_process import mark_job_process  # noqa: PLC0415

            mark_job_process()
        code = run_experiment_cli(self, argv, run=self.run, refit=self.refit)
        if own:
            exit_process(code)  # after an interrupt, JAX's threads cannot crash its end
        sys.exit(code)

    def run(self, instances: Selection = None, options: RunOptions | None = None, *,
            config: ConfigSource = None, **changes: Any) -> RunOutcome:
        """Validates, then runs the selected instances.

        Every instance is resolved and every conflict with existing results is found before
        anything is written or trained (see `xval.running.planner.make_plan`); the
        scheduler then feeds the jobs to the executor and the recorder writes what comes
        back.

        Args:
            instances: instance ids, or an `InstanceRange(first, last)` (see `select`);
                `None` runs all.
            options: what the run is asked to do (`xval.RunOptions`: `overrides`,
                `overwrite`, `dry_run`, `debug`, and the groups `executor=Execution(...)`,
                `search=SearchOptions(...)`, `output=Output(...)`). Defaults to
                `RunOptions()`.
            config: a `Config`, a path, or `None` to find config.ini.
            **changes: fields of `RunOptions` over `options` (`dry_run=True`,
                `executor="process"`, `search=True`).

        Returns:
            `RunOutcome` with `results` (`ExperimentResults`), `failed`, `skipped` (held by
            another runner), `exit_code`.

        Raises:
            TypeError: for a keyword that is no field of `RunOptions` (an option of a
                group names its group: `gpus=` -> `executor=Execution(gpus=...)`).
        """
        options = RunOptions.of(options, **changes)
        selected = instances if instances is None or isinstance(instances, InstanceRange) \
            else list(instances)
        return run_experiment(self, selected, options,
                              run_config(config, self.config_path, self.script),
                              results_store=RESULTS_STORE)  # this process's store: chosen here

    def refit(self, instance: int, options: RunOptions | None = None, *,
              config: ConfigSource = None, **changes: Any) -> Path:
        """Trains the final model of a complete instance on all its items.

        The model trains once on the train, validation and test items of fold 0 together,
        for the median of the folds' best epochs, with no validation and no early stopping,
        through the configured executor. It is saved as `instance_<k>/final.keras` with
        `final.json` (epochs, items, parameter hash, model size and hash, timings, training
        metrics); an earlier final model is replaced. `predict` then uses it by default.

        The instance is resolved as its run resolved it, with the `--set` values recorded in
        its `params.json`; when the script or config.ini now give other values, the refit
        is refused, naming each parameter with its recorded and its present value.

        Args:
            instance: the instance id.
            options: the run options it uses: `executor` (its name and GPU; `None` takes
                config.ini's and `gpu_ID`), `output` (its `out`), `overrides` (`--set`
                values over those the run recorded). Defaults to `RunOptions()`.
            config: a `Config`, a path, or `None` to find config.ini.
            **changes: fields of `RunOptions` over `options`, as for `run`.

        Returns:
            The path of `final.keras`.

        Raises:
            ConfigurationError: when the instance is not declared, or not complete.
            ResultsConflictError: when its results were made with other parameters (named,
                recorded value and present value) or folds.
            TrainingError: when the refit fails.
        """
        return refit_instance(self, instance, run_config(config, self.config_path,
                                                         self.script),
                              RunOptions.of(options, **changes), results_store=RESULTS_STORE)


__all__ = ["Experiment", "InstanceRange", "RunOutcome"]

