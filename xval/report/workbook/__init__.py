"""The experiment workbook (`experiment_<N>.xlsx`), one module per sheet.

Everything in it is derived from the result files (through `xval.report.results`); it can
be rebuilt at any time, and is written under a lock, atomically (`build_workbook`).

Sheets, in order: **Summary** (`summary.py`: per instance the identifying columns and the
headline metrics of the task, validation and test, the selected instance marked, a note
saying what to report, a legend), **Metrics** (`metrics.py`: every metric, train/validation/
test, segment and clip level), **Statistics** (`statistics.py`: confidence intervals,
corrected t-test against the selected instance), the sheets the tasks give as data
(`Task.sheets`, written by `registry.py`: tagging's **Labels**, each label's test AP, threshold
and support), **Ensembles** (a table sheet the ensembles add, `xval.report.additions`, when the
experiment has ensembles of instances: their weights per fold), **Folds** (`folds.py`: one row per instance and fold,
invalid folds with their reason; a `plots` column names each fold's own plots),
**Parameters** (`parameters.py`), **Search** (`search.py`, after `--search`), **Nested**
(`nested.py`, after `--search --inner-folds K`: each outer fold's chosen trial) and
**Plots** (`plots.py`: the instances' PNG plots embedded, the selected instance first).

Where to add a workbook sheet: one module + `@register_sheet`. Write a function that fills
the worksheet the builder made for it from `context.results` (an `ExperimentResults`; the
context also has `config`, `selection`, `styles` and `alpha`), decorate it with
`@register_sheet("Name", order=...)` (the built-in sheets are 10 to 70, ten apart), and
import the module before building (a module of this package is imported below; a module
outside it, e.g. an experiment script's, by whoever builds). A writer returning `False`
leaves its sheet out.

```python
from xval.report.workbook import build_workbook, register_sheet


@register_sheet("Seconds", order=45)  # after Folds
def seconds(sheet, context):
    sheet.append(["ID", "seconds"])
    for r in context.results:
        sheet.append([r.id, r.summary.seconds])


build_workbook("results/tiny/experiment_1")
```
"""

# The built-in sheets register themselves when their module is imported; a package above
# the report (the ensembles) adds its sheet as data when the entry points install it.
import xval.report.workbook.encoders  # noqa: F401  (the Encoders sheet)
from xval.report.workbook.builder import build_workbook, fill_workbook
from xval.report.workbook.cells import (
    BEST_FILL,
    FAILED_FONT,
    HEADER_FILL,
    LATE_FILL,
    PENDING_FONT,
    SELECTED_FILL,
    SELECTED_MARK,
    TIED_FILL,
    Styles,
)
from xval.report.workbook.data import data_rows
from xval.report.workbook.folds import folds_table
from xval.report.workbook.metrics import metrics_table
from xval.report.workbook.nested import nested_table
from xval.report.workbook.parameters import parameters_table
from xval.report.workbook.plots import plot_display_size, plot_files
from xval.report.workbook.registry import (
    SheetContext,
    SheetSpec,
    register_sheet,
    registered_sheets,
    unregister_sheet,
)
from xval.report.workbook.search import search_table
from xval.report.workbook.statistics import statistics_table
from xval.report.workbook.summary import summary_table

__all__ = ["BEST_FILL", "FAILED_FONT", "HEADER_FILL", "LATE_FILL", "PENDING_FONT", "SELECTED_FILL",
           "SELECTED_MARK", "TIED_FILL", "SheetContext", "SheetSpec", "Styles",
           "build_workbook", "data_rows", "fill_workbook", "folds_table",
           "metrics_table",
           "nested_table", "parameters_table", "plot_display_size", "plot_files",
           "register_sheet",
           "registered_sheets", "search_table", "statistics_table", "summary_table",
           "unregister_sheet"]
