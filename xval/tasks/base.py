"""The `Task` declaration: a task's facts, its own parameters, and its three parts
(`xval.tasks.parts`).

A task is a `Task` subclass (in a package of `xval/tasks/`, or in an experiment's own
module) whose class attributes are its facts (what the configuration, the engine and the
report ask of it: its metrics, which are better when higher, its levels, the output its
models make), whose `parameters` are the instance parameters only it reads, and whose
`parts` are three classes holding its behaviour: `Targets`; `Head`, the loss and metrics;
`Scoring`. The engine asks the task registered under the experiment's `task_type`
(`xval.tasks.get(name)`) through these hooks and never spells a task name. What a task shows
beyond its metrics (a sheet, a figure) it gives as data (`xval.tasks.views`), which the
report renders.

Importing a task costs numpy alone, so that the configuration names the tasks and their
metrics in every command, the read-only ones included (`python -m xval report`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from xval.core.errors import ParameterError
from xval.core.parameters import TrainingParams
from xval.core.settings import Settings, off_values
from xval.tasks.parts import (
    NO_CONTEXT,
    Context,
    Head,
    Params,
    Pooled,
    Scoring,
    StoreView,
    Targets,
)
from xval.tasks.views import ClassScores, Figure, Notes, Sheet

__all__ = ["NO_CONTEXT", "Context", "Head", "Params", "Pooled", "Scoring", "StoreView",
           "Targets", "Task", "switched_off"]


def switched_off(*names: str) -> dict[str, Any]:
    """The shared training options `names`, each at the value that switches it off (declared
    with its key, `setting(off=)`): for a task's `training_defaults`."""
    off = off_values(TrainingParams)
    return {name: off[name] for name in names}


class Task:
    """One kind of learning problem (classification, regression, ...): its facts, and its
    three parts.

    Subclass it in a package of `xval/tasks/` (or in an experiment's own module), set the
    facts, write its parts (subclasses of `Targets`, `Head` and `Scoring`, or the ones of
    another task), and decorate the class with `@xval.tasks.register`.

    Attributes:
        name: the `task_type` naming the task in experiments, stores and results.
        parts: its `(Targets, Head, Scoring)` classes; an instance of the task holds them
            bound to it as `targets`, `head` and `scoring`.
        head_name: name of the output layer (saved models keep it).
        history_metrics: names the compiled loss and metrics take in the Keras history, so
            `save_model_metric` may be any of them (with or without `val_`).
        metric_names: the metrics `Scoring.evaluate` records for every split, in display
            order.
        metric_ranges: metric name -> `(low, high)`, the values it can take: a fold file
            recording a value outside them (or a non-finite one) is not believed
            (`xval.core.records.check_fold`).
        maximize: metric names that are better when higher (names starting with one of
            them too: `f1` covers `f1_event`); every other metric the task records is
            better when lower (`direction`).
        selection_metric: the validation metric selecting the best instance when
            `[report] selection_metric = auto`.
        headline: `(level, metric, label)` of the metrics the workbook's Summary sheet
            shows; `None`: the selection metric (see `headline_metrics`).
        has_classes: targets are class indices into the store's `classes` (or sets of
            them: `Targets.classes_in`).
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
            rows (`Scoring.choose_postprocessing`).
        training_defaults: `[training]` defaults of the task, used unless the experiment or
            the instance names them (detection's measured learning rate, the shared options
            it trains without: `switched_off`).
        parameters: the instance parameters only this task reads, a `Settings` record
            whose fields are declared with `xval.core.settings.setting` (as
            `TrainingParams` declares the shared ones): they join the `[training]` keys
            of config.ini, the schema and the reference; an instance of the task has them
            (its `InstanceParams.keywords`; the task reads them as `parameters.of(params)`)
            and an instance of another task is refused them.
        encoder_head: what `init`'s head on an encoder store (`REFIT_HEAD`) takes for this
            task on top (tagging: an L2 weight).
        figures: the per-instance figures of the task: a kind the report draws, by name
            (`xval.report.plots.FIGURES`), or a figure given as data
            (`xval.tasks.views.Figure`, each class's scores over the folds).
        sheets: the workbook sheets the task shows, given as data
            (`xval.tasks.views.Sheet`): columns, and rows per instance of the task.
        notes: the lines the task writes under the results tables (the terminal's and the
            Summary sheet's) about each of its instances (`xval.tasks.views.Notes`).
        class_scores: each class's test score per fold (`xval.tasks.views.ClassScores`),
            or `None` for a task without classes scored apart.
    """

    name: ClassVar[str] = ""
    parts: ClassVar[tuple[type[Targets], type[Head], type[Scoring]]] = (Targets, Head, Scoring)
    head_name: ClassVar[str] = "prediction"
    history_metrics: ClassVar[tuple[str, ...]] = ("loss",)
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)
    metric_ranges: ClassVar[dict[str, tuple[float, float]]] = {"loss": (0.0, math.inf)}
    maximize: ClassVar[tuple[str, ...]] = ()
    selection_metric: ClassVar[str] = "loss"
    headline: ClassVar[tuple[tuple[str, str, str], ...] | None] = None
    has_classes: ClassVar[bool] = False
    labelled_rows: ClassVar[bool] = False
    output: ClassVar[str] = "vector"
    extra_arrays: ClassVar[tuple[str, ...]] = ()
    clip_is_segment_without_clips: ClassVar[bool] = True
    level_names: ClassVar[dict[str, str]] = {"segment": "segment", "clip": "clip"}
    chosen_on_validation: ClassVar[tuple[str, ...]] = ()
    training_defaults: ClassVar[dict[str, Any]] = {}
    parameters: ClassVar[type[Settings]] = Settings
    encoder_head: ClassVar[dict[str, Any]] = {}
    figures: ClassVar[tuple[str | Figure, ...]] = ()
    sheets: ClassVar[tuple[Sheet, ...]] = ()
    notes: ClassVar[tuple[Notes, ...]] = ()
    class_scores: ClassVar[ClassScores | None] = None

    def __init__(self) -> None:
        targets, head, scoring = self.parts
        self.targets = targets(self)
        self.head = head(self)
        self.scoring = scoring(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @property
    def weights_classes(self) -> bool:
        """Whether `class_weights=True` means something for the task. Defaults to
        `has_classes` (balanced sample weights, see `Targets.sample_weights`)."""
        return self.has_classes

    def feature_defaults(self, sample_rate: int,
                         segment_seconds: float | None = None) -> dict[str, Any]:
        """`[features]` defaults of a store of the task at `sample_rate` (`segment_seconds`:
        the one the user named, or `None`), where neither the command line nor config.ini
        names them (detection's windows and frames). None here: the shared defaults."""
        return {}

    def takes_store(self, store_task_type: str) -> bool:
        """Whether an experiment of the task trains on a store written for `store_task_type`
        (its own by default; a task that learns from the rows alone takes any)."""
        return store_task_type == self.name

    def fit_defaults(self, params: Params) -> dict[str, Any]:
        """The defaults the task gives an instance, applied where the experiment, the
        instance and `--set` name none (`xval.config.options.fit_defaults`): its
        `training_defaults`, and its `chosen_on_validation` parameters unset (`None`)."""
        return {**self.training_defaults, **dict.fromkeys(self.chosen_on_validation)}

    def check_params(self, params: Params, where: str) -> None:
        """Rejects instance parameters the task cannot honour.

        Raises:
            ParameterError: naming the parameter and the fix.
        """
        if self.output == "vector":
            return
        if params.time_warp:
            raise ParameterError(
                f"{where}: time_warp={params.time_warp} moves the frames of a row, so the "
                f"per-frame or reconstruction targets of a {self.name} task would no longer "
                "line up with them; use time_warp=0.")
        if params.front_end != "none":
            raise ParameterError(
                f"{where}: front_end={params.front_end!r} is for tasks with one output per "
                f"row; task_type is {self.name!r}: use a store of {params.front_end} features "
                "and front_end='none'.")
        if params.random_crop_seconds:
            raise ParameterError(
                f"{where}: random_crop_seconds={params.random_crop_seconds:g} trains on "
                "windows shorter than the rows, so the model takes rows of any length: it "
                f"needs a task with one output per row (task_type is {self.name!r}); set "
                "random_crop_seconds=0.")

    def direction(self, metric: str) -> str | None:
        """`"max"` or `"min"`: which way a metric the task records is better (`"max"` for
        the names of `maximize` and those starting with one), or `None` for a metric it
        does not record (`metric_names`, `history_metrics`, `maximize`, or a name
        starting with one of them and `_`)."""
        own = (*self.metric_names, *self.history_metrics, *self.maximize)
        if not any(metric == name or metric.startswith(name + "_") for name in own):
            return None
        return "max" if any(metric.startswith(name) for name in self.maximize) else "min"

    def headline_metrics(self, clips: bool) -> list[tuple[str, str, str]]:
        """`(level, metric, label)` of the metrics the workbook's Summary sheet shows: the
        task's `headline`, after the clip level of its first metric when the results have
        one (files cut into segments).

        Args:
            clips: whether the results have clip-level metrics.
        """
        out = list(self.headline or [("segment", self.selection_metric,
                                      self.selection_metric)])
        _, metric, label = out[0]
        return ([("clip", metric, f"clip {label}")] if clips else []) + out
