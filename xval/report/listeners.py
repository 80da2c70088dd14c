"""The report as listeners of the recorder: plots after each instance, the workbook after
each instance (and at the end of a run).

A run calls, when a listener has them, before and as the recorder
(`xval.running.recorder.Recorder`) records:

- `requires` (an attribute): `(what, extra)` pairs, the optional packages the listener
  needs (`xval.core.optional.EXTRAS`), checked with every other package the run needs
  before anything trains, the dry run included;
- `on_run_begin(results_store)`: every check passed and the run is about to train (not in
  a dry run): the listener opens what it writes to, so that a tracker that cannot open
  fails first, and reads through the run's results store from then on;

- `on_fold(result, inst_dir)`: a fold's files are written (`result` a `FoldResult`);
- `on_instance(result)`: an instance's summary is written (`result` the `InstanceResult`
  the recorder read and summarised once: its folds, summary, parameters and folder);
- `on_refit(result, inst_dir)`: a final model is written;
- `on_results(results)`: the experiment's results changed and its report is due (after each
  instance's summary, and once at the end of a run that trained nothing; `results` the
  run's `ExperimentResults`, refreshed).

Listeners read what they are handed and never read the result files again.
`PlotWriter` and `WorkbookWriter` are those listeners for the instance plots and the
workbook; `xval.report.tracking.MLflowListener` is the one for MLflow. `instance_plots` and
`build_workbook` stay callable directly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xval.config.loader import Config
from xval.core.entry import describe_error
from xval.report.plots import instance_plots
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.workbook.builder import SheetError, build_workbook


class PlotWriter:
    """Writes an instance's plots (`instance_plots`) when its summary is recorded.

    The plots draw the fold records as the report reads them: a fold whose file is not
    believed is left out.

    Args:
        existing_only: redraw only the plots of instances that have some (`[report] plots =
            false`: figures an earlier run drew stay true to the folds, for the workbook
            shows them). Defaults to `False`.
    """

    def __init__(self, existing_only: bool = False) -> None:
        self.existing_only = existing_only

    def on_instance(self, result: InstanceResult) -> list[Path]:
        """Writes the plots of the instance in its folder (reading what else they draw
        through the results store).

        Returns:
            The written paths.
        """
        if self.existing_only and not result.layout.plots_dir.exists():
            return []
        return instance_plots(result)


class WorkbookWriter:
    """Rebuilds the experiment workbook (`build_workbook`) when the report is due.

    Args:
        config: the run's `Config` (selection metric, alpha), or `None` for the defaults.
        out: print function for the line saying why a rebuild failed. Defaults to `print`.
    """

    def __init__(self, config: Config | None = None,
                 out: Callable[[str], Any] = print) -> None:
        self.config = config
        self.out = out
        self.failure: str | None = None

    def on_results(self, results: ExperimentResults | str | Path) -> Path | None:
        """Rebuilds the workbook of `results` (or of a results folder); a failure (a folder
        that cannot be written, a results file that is not a record) is reported in one
        line on stderr, whatever the verbosity (`-q` included), and kept in `failure` for
        the run's exit status; it is not raised, so that it never stops a run.

        Returns:
            The workbook's path, or `None` when it was not rebuilt.
        """
        try:
            path = build_workbook(results, config=self.config)
        except SheetError as e:  # written, but some sheets hold their errors
            self.failure = str(e)
            print(f"error: {self.failure}", file=sys.stderr, flush=True)
            return None
        except Exception as e:  # noqa: BLE001  (a derived file never costs a result)
            exp_dir = results.path if isinstance(results, ExperimentResults) else results
            self.failure = (f"the workbook of {exp_dir} was not written "
                            f"({describe_error(e)}); the results are kept: fix the cause and "
                            f"rebuild it with `python -m xval report {exp_dir}`.")
            print(f"error: {self.failure}", file=sys.stderr, flush=True)
            return None
        self.failure = None
        return path
