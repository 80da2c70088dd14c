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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from xval.running.command import run_experiment_cli
from xval.running.declaration import ExperimentDeclaration, InstanceRange, Selection
from xval.running.environment import ConfigSource, Out, run_config
from xval.running.refit import refit_instance
from xval.running.runner import RunOutcome, RunRequest, run_experiment


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
        n_repeats: the earlier name of `num_repeats`, still accepted.

    Raises:
        ConfigurationError: for a setting of the wrong type or out of range, named with its
            value and what is expected.
    """

    def main(self, argv: Sequence[str] | None = None) -> NoReturn:
        """Runs the command line (`FIRST LAST [GPU]`, options) and exits with its code: the
        command line calls `run` (or `refit`), as a Python caller does.

        Args:
            argv: the arguments; `None` reads the process's own (`python SCRIPT ...`), and
                then the process runs the engine alone (`xval.training.prepare.
                mark_job_process`: on the torch or JAX backend Keras keeps TensorFlow out,
                and the process's modules are frozen for the collector at the first fold),
                unless it is an interactive session (`%run` in IPython or Jupyter, Spyder's
                `runfile`), whose other objects are the user's.
        """
        if argv is None and not _interactive():
            from xval.training.prepare import mark_job_process  # noqa: PLC0415  (numpy)

            mark_job_process()
        sys.exit(run_experiment_cli(self, argv, run=self.run, refit=self.refit))

    def run(self, instances: Selection = None, *,
            overrides: Mapping[str, Any] | None = None, overwrite: bool | None = None,
            dry_run: bool = False, gpu: object = None, config: ConfigSource = None,
            executor: str | None = None, gpus: Sequence[object] | None = None,
            debug: bool | None = None, out: Out = print, ray_address: str | None = None,
            progress: bool = False, verbose: bool = False, search: bool = False,
            trials: int | None = None, timeout: float | None = None,
            listeners: Iterable[object] = (), inner_folds: int | None = None) -> RunOutcome:
        """Validates, then runs the selected instances.

        Every instance is resolved and every conflict with existing results is found before
        anything is written or trained (see `xval.running.planner.make_plan`); the
        scheduler then feeds the jobs to the executor and the recorder writes what comes
        back.

        Args:
            instances: instance ids, or an `InstanceRange(first, last)` (see `select`);
                `None` runs all.
            overrides: dict of `--set` values: instance parameters, and the experiment
                settings among `xval.running.declaration.SETTINGS` (`num_repeats`).
            overwrite: rerun instances with results; `None` uses `overwrite_results`.
            dry_run: print the resolved parameters and folds, write nothing.
            gpu: GPU id (`CUDA_VISIBLE_DEVICES`); `None` uses `gpu_ID`.
            config: a `Config`, a path, or `None` to find config.ini.
            executor: a registered executor (`inline`, `process`, `ray`); `None` uses
                config.ini.
            gpus: GPU ids for the process executor. Defaults to `[gpu]`.
            debug: `None` uses `debug_mode`.
            out: print function for progress. Defaults to `print`.
            ray_address: Ray cluster to join (`"auto"`, `"HOST:PORT"`); `None` starts a
                local Ray instance (with `executor="ray"`).
            progress: show a progress bar over all jobs on stderr, and say what slow
                start-up steps are running. Defaults to `False` (the command line turns it
                on unless `-q`).
            verbose: print one line per epoch, labelled with its instance and fold.
                Defaults to `False`.
            search: run the declared `search` (Optuna) instead of the declared instances;
                trials become instances numbered after them. Defaults to `False`.
            trials: with `search`, the number of trials in the study (overrides
                `n_trials`).
            timeout: with `search`, seconds after which this runner starts no new trial.
            listeners: objects told about every recorded fold and instance, e.g.
                `xval.report.tracking.MLflowListener` (see
                `xval.running.recorder.RecorderListener`).
            inner_folds: with `search`, a nested search: the study runs inside every outer
                fold on its training items only, over `inner_folds` inner folds (>= 2),
                and the chosen trial is trained on the outer training items and scored on
                the outer test items (`xval.running.nested`). `None`: a plain search.

        Returns:
            `RunOutcome` with `results` (`ExperimentResults`), `failed`, `skipped` (held by
            another runner), `exit_code`.
        """
        request = RunRequest(
            instances=instances if instances is None or isinstance(instances, InstanceRange)
            else list(instances), overrides=dict(overrides or {}), overwrite=overwrite,
            dry_run=dry_run, gpu=gpu, executor=executor, gpus=gpus, debug=debug, out=out,
            ray_address=ray_address, progress=progress, verbose=verbose, search=search,
            trials=trials, timeout=timeout, listeners=tuple(listeners),
            inner_folds=inner_folds)
        return run_experiment(self, request, run_config(config, self.config_path,
                                                        self.script))

    def refit(self, instance: int, config: ConfigSource = None, out: Out = print, *,
              executor: str | None = None, gpu: object = None,
              overrides: Mapping[str, Any] | None = None) -> Path:
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
            config: a `Config`, a path, or `None` to find config.ini.
            out: print function for progress. Defaults to `print`.
            executor: a registered executor; `None` uses config.ini.
            gpu: GPU id (`CUDA_VISIBLE_DEVICES`); `None` uses `gpu_ID`.
            overrides: `--set` values over those the run recorded (only needed for results
                written before `--set` values were recorded). Defaults to `None`.

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
                              out=out, executor=executor, gpu=gpu, overrides=overrides)


__all__ = ["Experiment", "InstanceRange", "RunOutcome"]


def _interactive() -> bool:
    """Whether this interpreter is an interactive session (a prompt, `python -i`, IPython
    or a Jupyter kernel), where a script run with `%run` shares the process with the
    user's own objects."""
    return hasattr(sys, "ps1") or bool(sys.flags.interactive) or "IPython" in sys.modules
