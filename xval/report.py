"""Terminal summary table (the workbook comes from the results review)."""

from xval.results import ExperimentResults


def selection_metric(config, task_type):
    """The validation metric that selects the best instance (`[report] selection_metric`)."""
    name = config.report["selection_metric"] if config is not None else "auto"
    if name == "auto":
        return "accuracy" if task_type == "classification" else "rmse"
    return name


def _task_type(results):
    for r in results:
        for fold in r.folds:
            if fold.get("status") == "ok":
                return "classification" if "accuracy" in fold["metrics"]["test"] \
                    else "regression"
    return "classification"


def terminal_table(results, config=None, only=None):
    """A plain-text table of instances, the selected one marked with `*`.

    Args:
        results: an `ExperimentResults` or its folder.
        config: a `Config` (for the selection metric), or `None`.
        only: instance ids to show; `None` shows all.

    Returns:
        The table as a string.
    """
    if not isinstance(results, ExperimentResults):
        results = ExperimentResults(results)
    metric = selection_metric(config, _task_type(results))
    best = results.best(metric, "val")
    header = f"{'':1} {'id':>4} {'status':<9} {'val ' + metric:>18} {'test ' + metric:>18}  comment"
    lines = [header, "-" * len(header)]

    def cell(r, split):
        mean, std = r.metric(metric, split), r.metric(metric, split, stat="std")
        return "" if mean is None else f"{mean:.4f} ± {std:.4f}"

    for r in results:
        if only is not None and r.id not in only:
            continue
        mark = "*" if best is not None and r.id == best.id else " "
        comment = " / ".join(c for c in (r.params.get("comment_1", ""),
                                         r.params.get("comment_2", "")) if c)
        lines.append(f"{mark} {r.id:>4} {r.status:<9} {cell(r, 'val'):>18} "
                     f"{cell(r, 'test'):>18}  {comment}")
    if best is not None:
        lines.append(f"* selected on validation {metric}: instance {best.id}; report its test "
                     f"score {best.metric(metric, 'test'):.4f}.")
    return "\n".join(lines)
