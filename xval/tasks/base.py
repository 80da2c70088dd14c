"""The `Task` declaration: a task's facts, and its three parts (`xval.tasks.parts`).

A task is one module of this package: a `Task` subclass whose class attributes are its
facts (what the configuration, the engine and the report ask of it: its metrics, which
are better when higher, its levels, the output its models make) and whose `parts` are
three classes holding its behaviour: `Targets`; `Head`, the loss and metrics; `Scoring`.
The engine asks the task registered under the experiment's `task_type`
(`xval.tasks.get(name)`) and never spells a task name. What a task shows beyond its metrics
(a sheet, a figure) it gives as data (`xval.tasks.views`), which the report renders.

Importing a task costs numpy alone, so that the configuration names the tasks and their
metrics in every command, the read-only ones included (`python -m xval report`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from xval.core.errors import ParameterError
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
from xval.tasks.views import ClassScores, Figure, Sheet

__all__ = ["NO_CONTEXT", "Context", "Head", "Params", "Pooled", "Scoring", "StoreView",
           "Targets", "Task"]


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
            them too: `f1` covers `f1_event`); every other metric is better when lower.
        selection_metric: the validation metric selecting the best instance when
            `[report] selection_metric = auto`.
        headline: `(level, metric, label)` of the metrics the workbook's Summary sheet
            shows; `None`: the selection metric (see `headline_metrics`).
        has_classes: targets are class indices into the store's `classes` (with
            `multi_label`, sets of them).
        multi_label: a row holds a set of the store's classes (tagging): its `label` is
            the set's names joined by `xval.tasks.tagging.TAG_SEPARATOR`, the splitter
            keeps each class's share (`xval.folds.MultilabelItemKFold`) and the checks
            count rows per class, not per label text.
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
            the instance names them (detection's measured learning rate).
        own_params: `[training]` parameters only this task reads: an instance of another
            task that sets one away from its default is refused.
        encoder_head: what `init`'s head on an encoder store (`REFIT_HEAD`) takes for this
            task on top (tagging: an L2 weight).
        reconstructs: the model reconstructs its (normalised) input, so the task uses no
            labels and a store of any task will do (representation).
        scores_events: the model's frames become events, scored against annotated
            recordings (`python -m xval evaluate --annotations`; detection).
        figures: the per-instance figures of the task: a kind the report draws, by name
            (`xval.report.plots.FIGURES`), or a figure given as data
            (`xval.tasks.views.Figure`, each class's scores over the folds).
        sheets: the workbook sheets the task shows, given as data
            (`xval.tasks.views.Sheet`): columns, and rows per instance of the task.
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
    multi_label: ClassVar[bool] = False
    labelled_rows: ClassVar[bool] = False
    output: ClassVar[str] = "vector"
    extra_arrays: ClassVar[tuple[str, ...]] = ()
    clip_is_segment_without_clips: ClassVar[bool] = True
    level_names: ClassVar[dict[str, str]] = {"segment": "segment", "clip": "clip"}
    chosen_on_validation: ClassVar[tuple[str, ...]] = ()
    training_defaults: ClassVar[dict[str, Any]] = {}
    own_params: ClassVar[tuple[str, ...]] = ()
    encoder_head: ClassVar[dict[str, Any]] = {}
    reconstructs: ClassVar[bool] = False
    scores_events: ClassVar[bool] = False
    figures: ClassVar[tuple[str | Figure, ...]] = ()
    sheets: ClassVar[tuple[Sheet, ...]] = ()
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

    def check_params(self, params: Params, where: str) -> None:
        """Rejects instance parameters the task cannot honour.

        Raises:
            ParameterError: naming the parameter and the fix.
        """
        if params.time_warp and self.output != "vector":
            raise ParameterError(
                f"{where}: time_warp={params.time_warp} moves the frames of a row, so the "
                f"per-frame or reconstruction targets of a {self.name} task would no longer "
                "line up with them; use time_warp=0.")

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
