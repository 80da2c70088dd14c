"""The files derived from the records after the recorder writes them: the instance plots
and the workbook, as listeners of the recorder (`xval.running.recorder.RecorderListener`).

`report_listeners` is the one place a run gets them from: when `xval.report` provides its
own listener classes, they replace these two here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xval.config.loader import Config
from xval.core.errors import XvalError
from xval.core.files import read_json
from xval.core.layout import InstanceLayout
from xval.core.records import FoldResult, InstanceSummary, RecordError
from xval.report.plots import instance_plots
from xval.report.workbook import build_workbook
from xval.running.recorder import Out


class InstancePlots:
    """Draws an instance's plots (`xval.report.plots.instance_plots`) from the fold files
    its summary counts, whenever its summary is written.

    Args:
        task_type: the experiment's task; `None` infers it from the folds.
    """

    def __init__(self, task_type: str | None = None) -> None:
        self.task_type = task_type

    def on_instance(self, instance: int, summary: InstanceSummary, params: dict[str, Any],
                    inst_dir: Path) -> None:
        layout = InstanceLayout(Path(inst_dir), instance)
        folds = []
        for fold, path in layout.fold_files().items():
            if fold >= summary.num_folds or fold in summary.invalid:
                continue
            try:
                folds.append(FoldResult.from_dict(read_json(path)).to_dict())
            except (OSError, ValueError, RecordError):
                continue
        instance_plots(layout.root, folds, summary.to_dict(), task_type=self.task_type)


class Workbook:
    """Rebuilds the experiment's workbook (`xval.report.workbook.build_workbook`) whenever
    the results change; a failure is reported, not raised.

    Args:
        config: the run's `Config` (selection metric and alpha).
        out: print function for the failure line.
    """

    def __init__(self, config: Config | None, out: Out = print) -> None:
        self.config = config
        self.out = out

    def on_results(self, exp_dir: Path) -> None:
        try:
            build_workbook(exp_dir, config=self.config)
        except (XvalError, OSError) as e:
            self.out(f"workbook not rebuilt: {e}")


def report_listeners(config: Config | None, out: Out = print,
                     task_type: str | None = None) -> list[object]:
    """The listeners that keep a run's derived files up to date: plots, then the workbook.

    Args:
        config: the run's `Config`.
        out: print function.
        task_type: the experiment's task.

    Returns:
        The listeners, to come before any other (an experiment tracker may log the plots).
    """
    return [InstancePlots(task_type), Workbook(config, out)]
