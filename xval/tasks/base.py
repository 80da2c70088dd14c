"""The `Task` base class: everything the engine needs to know about what a model learns.

A task owns how targets are stored and fed to Keras, the output head, the loss and the
compiled metrics, the evaluation metrics of every split, the default selection metric and
which metrics are better when higher, the prediction CSV columns, what `predict` and
`evaluate` print, and the plots that differ by task. The engine asks the task registered
under the experiment's `task_type` (`xval.tasks.get(name)`) and never spells a task name.

The tasks sit low in the layers (only `xval.core` below them): they import nothing of the
engine, and Keras only inside the methods that build or compile a model (the backend is
chosen before), so `preprocessing` and `architectures` can ask a task without pulling in
the engine.
"""

import abc
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from xval.core.errors import ParameterError
from xval.core.layout import InstanceLayout
from xval.core.parameters import TrainingParams
from xval.core.records import FoldResult, InstanceSummary, Postprocessing
from xval.tasks.metrics import pool_by_clip
from xval.tasks.weights import balanced_weights

Params = Mapping[str, Any]
"""An instance's parameters (`xval.config.params.resolve`)."""
Pooled = tuple[np.ndarray, Any, Any]
"""`(clip_ids, clip_outputs, clip_targets)` of `Task.pool_by_clip`."""


class StoreView(Protocol):
    """What a task reads of a feature store (`preprocessing.store.FeatureStore`, which sits
    above the tasks and is handed in)."""

    path: Path
    meta: pd.DataFrame

    @property
    def classes(self) -> list[str]: ...


def with_context(method: Callable[..., Any], *args: Any, **context: Any) -> Any:
    """Calls a task method with the context keywords its signature accepts.

    Tasks written before a keyword existed (`evaluate(self, y_true, outputs, num_outputs)`)
    keep working: keywords they do not name are left out.

    Args:
        method: a bound task method (`evaluate`, `prediction_columns`, `predict_record`).
        *args: its positional arguments.
        **context: `params`, `frame_seconds`, `classes`, ...

    Returns:
        What the method returns.
    """
    parameters = inspect.signature(method).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        context = {k: v for k, v in context.items() if k in parameters}
    return method(*args, **context)


class Task(abc.ABC):
    """One kind of learning problem (classification, regression, ...).

    Subclass it in one module of `xval/tasks/`, set the class attributes, implement the
    abstract methods, and decorate the class with `@xval.tasks.register`.

    Attributes:
        name: the `task_type` naming the task in experiments, stores and results.
        head_name: name of the output layer (saved models keep it).
        history_metrics: names the compiled loss and metrics take in the Keras history, so
            `save_model_metric` may be any of them (with or without `val_`).
        metric_names: the metrics `evaluate` records for every split, in display order.
        metric_ranges: metric name -> `(low, high)`, the values it can take: a fold file
            recording a value outside them (or a non-finite one) is not believed
            (`xval.core.records.check_fold`).
        maximize: metric names that are better when higher (names starting with one of
            them too: `f1` covers `f1_event`); every other metric is better when lower.
        selection_metric: the validation metric selecting the best instance when
            `[report] selection_metric = auto`.
        has_classes: targets are class indices into the store's `classes`.
        labelled_rows: every row carries a class label (the store's `label` column) that an
            embedding classifier (`xval.embeddings`) can learn, whatever the targets are.
        output: the kind of model output the task needs, matched against what an
            architecture makes (`architectures.register(..., outputs=...)`): `"vector"`
            (one vector per row), `"frames"` (one per frame) or `"input"` (a
            reconstruction).
        extra_arrays: names of the per-row arrays a store of this task keeps beside
            `features.npy` (given to `write_store(arrays=...)`, ordered like the rows).
        clip_is_segment_without_clips: a fold without clip metrics has its segment
            metrics at the clip level too (one segment per clip: the same scores). `False`
            where the two levels score differently (detection: windows against stitched
            recordings), so a fold without clip metrics has no clip level.
        level_names: what the segment and clip levels are called in the terminal table
            (detection: windows and recordings).
        chosen_on_validation: `[training]` parameters that, unless the experiment or the
            instance names them, are unset (`None`) and chosen per fold on the validation
            rows (`choose_postprocessing`).
        training_defaults: `[training]` defaults of the task, used unless the experiment or
            the instance names them (detection's measured learning rate).
        reconstructs: the model reconstructs its (normalised) input, so the task uses no
            labels and a store of any task will do (representation).
        scores_events: the model's frames become events, scored against annotated
            recordings (`python -m xval evaluate --annotations`; detection).
    """

    name: str = ""
    head_name: str = "prediction"
    history_metrics: tuple[str, ...] = ("loss",)
    metric_names: tuple[str, ...] = ("loss",)
    metric_ranges: dict[str, tuple[float, float]] = {"loss": (0.0, math.inf)}
    maximize: tuple[str, ...] = ()
    selection_metric: str = "loss"
    has_classes: bool = False
    labelled_rows: bool = False
    output: str = "vector"
    extra_arrays: tuple[str, ...] = ()
    clip_is_segment_without_clips: bool = True
    level_names: dict[str, str] = {"segment": "segment", "clip": "clip"}
    chosen_on_validation: tuple[str, ...] = ()
    training_defaults: dict[str, Any] = {}
    reconstructs: bool = False
    scores_events: bool = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def feature_defaults(self, sample_rate: int,
                         segment_seconds: float | None = None) -> dict[str, Any]:
        """`[features]` defaults of a store of the task at `sample_rate` (`segment_seconds`:
        the one the user named, or `None`), where neither the command line nor config.ini
        names them (detection's windows and frames). None here: the shared defaults."""
        return {}

    # -- targets ---------------------------------------------------------------------------

    @abc.abstractmethod
    def encode_targets(self, meta: pd.DataFrame,
                       classes: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
        """Adds the `target` column a store keeps for every row.

        Args:
            meta: `pandas.DataFrame` of the store's rows, with a `label` column.
            classes: the class names given by the caller, or `None`.

        Returns:
            `(meta, classes)`: the table with `target`, and the store's class list.

        Raises:
            DatasetError: for labels the task cannot use.
        """

    @abc.abstractmethod
    def targets(self, meta: pd.DataFrame) -> np.ndarray:
        """The `target` column as the array fed to Keras, `np.ndarray [shape=(rows,)]`."""

    def labels_of(self, y: np.ndarray, classes: Sequence[str] | None) -> list[Any]:
        """Labels of one item's rows from the original API's `targets[item]` array.

        Args:
            y: `np.ndarray [shape=(n,)]` (or `(n, classes)` one-hot rows).
            classes: the class names given by the caller, or `None`.

        Returns:
            A list of `n` labels for `meta.csv`.
        """
        return list(np.asarray(y).tolist())

    def store_targets(self, store: StoreView) -> np.ndarray:
        """The targets of every row of an opened store (`FeatureStore.targets`). Defaults
        to `targets(store.meta)`; a task with targets beyond `meta.csv` reads its own
        arrays (listed in `extra_arrays`) here."""
        return self.targets(store.meta)

    def stratify_labels(self, store: StoreView) -> np.ndarray | None:
        """Labels the fold splitter may balance, or `None` when the task has none."""
        return None

    def num_outputs(self, store: StoreView) -> int:
        """Units of the output head for `store`. Defaults to one."""
        return 1

    def keras_targets(self, y: np.ndarray, params: Params, num_outputs: int) -> np.ndarray:
        """Targets as the loss of `loss(params)` takes them (see `classification`)."""
        return y

    def check_params(self, params: Params, where: str) -> None:
        """Rejects instance parameters the task cannot honour.

        Raises:
            ParameterError: naming the parameter and the fix.
        """
        params = TrainingParams.of(params)
        if params.time_warp and self.output != "vector":
            raise ParameterError(
                f"{where}: time_warp={params.time_warp} moves the frames of a row, so the "
                f"per-frame or reconstruction targets of a {self.name} task would no longer "
                "line up with them; use time_warp=0.")

    @property
    def weights_classes(self) -> bool:
        """Whether `class_weights=True` means something for the task. Defaults to
        `has_classes` (balanced sample weights, see `sample_weights`)."""
        return self.has_classes

    def sample_weights(self, y: np.ndarray, params: Params) -> np.ndarray | None:
        """Sample weights of a fold's training rows.

        Args:
            y: the training rows' targets (as `store_targets` gives them).
            params: the instance parameters.

        Returns:
            `np.ndarray [shape=(rows,)]`, or `None` for unweighted rows. Defaults to
            scikit-learn's "balanced" weights (`xval.tasks.weights.balanced_weights`) when
            `params.class_weights` is set and the task has classes; `None` otherwise.
        """
        params = TrainingParams.of(params)
        if not (params.class_weights and self.has_classes):
            return None
        return balanced_weights(y)

    # -- model -----------------------------------------------------------------------------

    def output_head(self, x: Any, num_outputs: int) -> Any:
        """The final `Dense` layer, named `head_name`, computing in float32 so that mixed
        precision keeps a stable loss. Override for another activation or shape."""
        from keras import layers  # noqa: PLC0415  (keras: the backend is chosen by then)

        return layers.Dense(num_outputs, dtype="float32", name=self.head_name)(x)

    @abc.abstractmethod
    def loss(self, params: Params) -> Any:
        """The Keras loss for the instance parameters `params` (a dict; read optional
        names with `params.get(name, default)`).

        A task whose loss depends on the fold's training data names the keyword
        `train_targets` too (`loss(self, params, *, train_targets=None)`): training passes
        the targets of the fold's training rows (see `with_context`)."""

    @abc.abstractmethod
    def keras_metrics(self, params: Params) -> list[Any]:
        """The compiled Keras metrics, named as in `history_metrics`."""

    # -- evaluation ------------------------------------------------------------------------

    @abc.abstractmethod
    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 **context: Any) -> dict[str, Any]:
        """Metrics of one split (the names of `metric_names`, plus extras such as a
        confusion matrix), from the best model's outputs in numpy.

        Args:
            y_true: targets, `np.ndarray [shape=(n,)]`.
            outputs: model outputs, `np.ndarray [shape=(n, num_outputs)]`.
            num_outputs: units of the head.
            **context: what some tasks need besides: `params` (the instance parameters),
                `frame_seconds` (the feature hop in seconds), `classes`.

        Returns:
            dict of metric name to float (JSON-ready values).
        """

    def pool_by_clip(self, outputs: np.ndarray, targets: np.ndarray,
                     clips: np.ndarray) -> Pooled | None:
        """Clip-level outputs and targets from segment rows (outputs averaged per clip).

        A task may also accept the keywords `starts` (each row's start in its clip, seconds)
        and `frame_seconds` (see `with_context`): detection stitches windows with them.

        Returns:
            `(clip_ids, clip_outputs, clip_targets)`, see `xval.metrics.pool_by_clip`; or
            `None` when the task has no clip level.
        """
        return pool_by_clip(outputs, targets, clips)

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        """`(level, metric, label)` of the metrics the workbook's Summary sheet shows.

        Args:
            clips: whether the results have clip-level metrics (files cut into segments).
        """
        out = [("segment", self.selection_metric, self.selection_metric)]
        return ([("clip", self.selection_metric, f"clip {self.selection_metric}")]
                if clips else []) + out

    # -- outputs ---------------------------------------------------------------------------

    @abc.abstractmethod
    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           **context: Any) -> dict[str, Any]:
        """Columns of `predictions_fold_<i>.csv` after row, item, clip, label, target.

        Returns:
            dict of column name to values (`predicted` first).
        """

    @abc.abstractmethod
    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str],
                       **context: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """What `python -m xval predict` reports for one file.

        Args:
            outputs: the file's segment outputs, `np.ndarray [shape=(segments, k)]`.
            starts: start of each segment (seconds).
            classes: the store's class names.

        Returns:
            `(segments, clip)`: a list of `{"start", "scores"}` and `{"scores", "predicted"}`.
        """

    def choose_postprocessing(self, y_true: Any, outputs: Any, num_outputs: int,
                              **context: Any) -> Postprocessing | None:
        """Post-processing chosen on a fold's validation rows (never its test rows).

        Training calls it with the validation rows' targets and outputs (stitched by clip
        where the task pools clips) before any split is scored; the choice is applied to
        the parameters every split is then scored with, recorded in the fold record and
        used by the fold's model at inference.

        Args:
            y_true: the validation rows' targets.
            outputs: the model's outputs on them.
            num_outputs: units of the output head.
            **context: as for `evaluate` (`params`, `frame_seconds`, `classes`).

        Returns:
            A `xval.core.records.Postprocessing`, or `None` (the default: nothing to choose).
        """
        return None

    def fold_plot_data(self, y_true: np.ndarray, outputs: np.ndarray, meta: pd.DataFrame,
                       **context: Any) -> dict[str, Any] | None:
        """What the task's per-fold plots draw, taken from one fold's test rows.

        Training calls it after evaluating the best model; the recorder writes what it
        returns as `plot_data_fold_<i>.json` beside the fold file, and `plots` reads it.

        Args:
            y_true: the test rows' targets.
            outputs: the best model's test outputs, `np.ndarray`.
            meta: the test rows of the store's `meta.csv` (`pandas.DataFrame`).
            **context: as for `evaluate` (`params`, `frame_seconds`, `classes`).

        Returns:
            A JSON-ready dict, or `None` (the default: no per-fold plot).
        """
        return None

    def plots(self, layout: InstanceLayout, folds: Sequence[FoldResult],
              summary: InstanceSummary) -> list[Path]:
        """Writes the task's own plots of one instance into its `plots/` folder.

        Args:
            layout: the instance folder's paths (`layout.plots_dir`, `layout.plot_data(i)`,
                `layout.predictions(i)`).
            folds: the instance's fold records (those believed).
            summary: the instance's summary.

        Returns:
            list of written paths. Defaults to none.
        """
        return []

    # -- python -m xval evaluate -----------------------------------------------------------

    @abc.abstractmethod
    def file_targets(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """Targets of labelled files for `evaluate`, `np.ndarray [shape=(files,)]`.

        Raises:
            DatasetError: for labels the model cannot score.
        """

    @abc.abstractmethod
    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        """The metrics `evaluate` shows for one level (clip or segment), as a dict."""

    def format_level(self, data: dict[str, Any]) -> list[str]:
        """Text lines of one level of an evaluation."""
        return [", ".join(f"{k} {v:.4f}" for k, v in data.items())]

    def level_records(self, level: str, data: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
        """`(level, label, metric, value)` rows of one level for `evaluate --format csv`."""
        return [(level, "", k, v) for k, v in data.items()]
