"""The three parts of a task, each bound to its `Task` (`part.task`): `Targets` (what a
store keeps and Keras is fed), `Head` (the output layer, the loss and the compiled
metrics) and `Scoring` (the numbers of a split, and what `predict` and `evaluate` show),
and the `Context` a split is scored in.

Importing them costs numpy alone: scikit-learn and scipy are imported where a split is
scored (a task's `metrics`, `xval.tasks.detection.events`) and Keras where a head is built
(the backend is chosen by then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np

from xval.core.errors import ConfigurationError
from xval.core.parameters import TrainingParams
from xval.tasks.fusion import Fusion
from xval.tasks.metrics import pool_by_clip

if TYPE_CHECKING:
    import pandas as pd

    from xval.core.records import Postprocessing

Params = TrainingParams
"""An instance's parameters (`xval.config.params.resolve` gives an `InstanceParams`; read
them as attributes: `params.label_smoothing`)."""
Pooled = tuple[np.ndarray, Any, Any]
"""`(clip_ids, clip_outputs, clip_targets)` of `Scoring.pool_by_clip`."""
Mixing = tuple[Callable[..., Any], Callable[..., Any]]
"""`(combine, draws)` of `Targets.mixing`: `combine(x, y, w, *draws(seed, epoch, batch,
size)) -> (x, y, w)`, on numpy arrays or the backend's tensors alike."""
Folds = Sequence[Mapping[str, Sequence[str]]]
"""The items of each fold's sets (`{"train": [...], "val": [...], "test": [...]}`)."""
Normalise = TypeVar("Normalise", bound=Callable[[np.ndarray], np.ndarray])
"""The fold's normalisation of its rows (`xval.training.normalization.Normalizer`)."""


class FeatureCatalog(Protocol):
    """The feature registry (`preprocessing.features`, above the tasks, handed in): what a
    task asks of the store's feature type."""

    def get(self, name: str) -> Any: ...

    def names(self) -> list[str]: ...


class StoreView(Protocol):
    """What a task reads of a feature store (`preprocessing.store.FeatureStore`, which sits
    above the tasks and is handed in)."""

    path: Path
    meta: pd.DataFrame

    @property
    def classes(self) -> list[str]: ...


@dataclasses.dataclass(frozen=True)
class Context:
    """What scoring a split needs besides its targets and outputs.

    Attributes:
        params: the instance parameters (with a fold's post-processing choice applied), or
            `None`.
        frame_seconds: the feature hop in seconds, or `None` (unknown).
        classes: the store's class names, or `None`.
        split: the split scored (`"train"`, `"val"`, `"test"`), or `None`.
        whole_files: every row is a whole file (a store that cut no file, or recordings
            stitched from their windows).
        reference: an autoencoder's baseline row (the mean normalised training row).
        targets: an autoencoder's test targets (its normalised input), for the prediction
            columns.
        training_targets: the fold's training targets (stitched by clip where the task
            pools clips), given to `Scoring.choose_postprocessing`: what the annotations
            look like (detection's shortest gaps and events); `None` where not given.
    """

    params: Params | None = None
    frame_seconds: float | None = None
    classes: Sequence[str] | None = None
    split: str | None = None
    whole_files: bool = False
    reference: np.ndarray | None = None
    targets: np.ndarray | None = None
    training_targets: Any = None

    def replace(self, **changes: Any) -> Context:
        """A copy with `changes`."""
        return dataclasses.replace(self, **changes)


NO_CONTEXT = Context()
"""The empty `Context`: scoring without parameters, hop or classes."""


class Facts(Protocol):
    """What a part reads of its task's facts (`xval.tasks.base.Task`, which holds its parts:
    this module does not import it)."""

    @property
    def name(self) -> str: ...

    @property
    def head_name(self) -> str: ...


class Part:
    """One part of a task, bound to it: `self.task` holds its facts.

    Args:
        task: the `Task` the part belongs to.
    """

    def __init__(self, task: Facts) -> None:
        self.task = task


class Targets(Part):
    """How a task's labels become targets, and what Keras is fed."""

    def encode(self, meta: pd.DataFrame,
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
        raise NotImplementedError

    def of_meta(self, meta: pd.DataFrame) -> np.ndarray:
        """The `target` column as the array fed to Keras, `np.ndarray [shape=(rows,)]`."""
        raise NotImplementedError

    def of_store(self, store: StoreView) -> np.ndarray:
        """The targets of every row of an opened store (`FeatureStore.targets`). Defaults
        to `of_meta(store.meta)`; a task with targets beyond `meta.csv` reads its own
        arrays (listed in `Task.extra_arrays`) here."""
        return self.of_meta(store.meta)

    def of_files(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """Targets of labelled files for `evaluate`, `np.ndarray [shape=(files,)]`.

        Raises:
            DatasetError: for labels the model cannot score.
        """
        raise NotImplementedError

    def classes_in(self, label: Any) -> list[str]:
        """The classes one row's label names: the label itself (the default); where a row
        holds a set of labels, each of them."""
        return [str(label)]

    def check_labels(self, labels: Sequence[Any], where: str) -> None:
        """Refuses rows whose labels the task cannot learn, before anything is written
        (`python -m xval init`); none by default.

        Raises:
            DatasetError: naming the rows (`where`) and the fix.
        """

    def stratify(self, store: StoreView) -> np.ndarray | None:
        """Labels the fold splitter may balance, or `None` when the task has none."""
        return None

    def num_outputs(self, store: StoreView) -> int:
        """Units of the output head for `store`. Defaults to one."""
        return 1

    def for_keras(self, y: np.ndarray, params: Params, num_outputs: int) -> np.ndarray:
        """Targets as the loss of `Head.loss(params)` takes them. Defaults to `y`."""
        return y

    def sample_weights(self, y: np.ndarray, params: Params) -> np.ndarray | None:
        """Sample weights of a fold's training rows (`y`), or `None` (the default) for
        unweighted rows."""
        return None

    def of_rows(self, normalise: Normalise) -> Normalise | None:
        """Whether a batch's targets are its rows themselves, normalised as the model's
        input is: `normalise` (the fold's normalisation, applied on the device where the
        rows are), or `None` (the default: the store's targets)."""
        return None

    def mixing(self, params: Params) -> Mixing | None:
        """The task's own mixing of the rows of a training batch, which replaces mixup
        (`mixup_alpha`), or `None` (the default)."""
        return None

    def mixer(self, params: Params, feature_params: Mapping[str, Any] | None,
              features: FeatureCatalog, seed: int
              ) -> Callable[[np.ndarray, np.ndarray, int, int], tuple[Any, Any]] | None:
        """What mixes a fold's training batches on the host, `mixer(x, y, epoch, batch) ->
        (x, y)`, or `None` (the default).

        Args:
            params: the instance parameters.
            feature_params: the store's feature parameters (`dataset.json`).
            features: the feature registry, for the facts of the store's feature type.
            seed: the fold's seed.

        Raises:
            ParameterError: for a store the task's mixing cannot mix (the planner asks
                with `seed=0` before anything trains).
        """
        return None

    def fold_checks(self, meta: pd.DataFrame, classes: Sequence[str], folds: Folds,
                    n_items: int) -> tuple[list[str], list[str]] | None:
        """The task's own data checks of a plan (the dry run's and the run's lines), as
        `(lines, warnings)`, or `None` (the default: the engine's checks of one class label
        per row).

        Args:
            meta: the store's original rows.
            classes: the store's classes.
            folds: the items of every fold.
            n_items: the number of items.
        """
        return None


class Head(Part):
    """The model's side of a task: its output layer, loss and compiled metrics. Keras is
    imported inside the methods (the backend is chosen before a model is built)."""

    def layer(self, x: Any, num_outputs: int) -> Any:
        """The final `Dense` layer, named `Task.head_name`, computing in float32 so that
        mixed precision keeps a stable loss. Override for another activation or shape."""
        from keras import layers  # noqa: PLC0415  (keras: the backend is chosen by then)

        return layers.Dense(num_outputs, dtype="float32", name=self.task.head_name)(x)

    @property
    def scores_activation(self) -> str | None:
        """The activation that turns the head's outputs into the scores an exported model
        gives (`"softmax"`, `"sigmoid"`), or `None` (the default: the outputs as they
        are)."""
        return None

    exported: ClassVar[str | None] = "(batch, outputs)"
    """What an exported model's `scores` are, in words (`python -m xval export`), or `None`
    for a head whose models are not exported (they give no one vector per row)."""

    def loss(self, params: Params, train_targets: np.ndarray | None = None) -> Any:
        """The Keras loss for the instance parameters `params`.

        Args:
            params: the instance parameters.
            train_targets: the targets of the fold's training rows (a loss weighted by
                them), or `None`.
        """
        raise NotImplementedError

    def metrics(self, params: Params) -> list[Any]:
        """The compiled Keras metrics, named as in `Task.history_metrics`."""
        raise NotImplementedError


class Scoring(Part):
    """The numbers of a task: the metrics of a split from a model's outputs (in numpy),
    the clip level, and what `predict` and `evaluate` show.

    Attributes:
        fusion: how an ensemble of instances fuses the task's clip scores
            (`xval.tasks.fusion.Fusion`), or `None` (the default) when they are not fused.
        clip_rule: how `predict` makes a clip's scores from its windows', in words (an
            exported model's metadata and card), or `None`.
        ensemble_clip_rule: the same for an ensemble of instances, from an exported
            ensemble's `member_scores`, or `None`.
    """

    fusion: ClassVar[Fusion | None] = None
    clip_rule: ClassVar[str | None] = None
    ensemble_clip_rule: ClassVar[str | None] = None

    def evaluate(self, y_true: Any, outputs: Any, num_outputs: int,
                 context: Context = NO_CONTEXT) -> dict[str, Any]:
        """Metrics of one split (the names of `Task.metric_names`, plus extras such as a
        confusion matrix), from the best model's outputs.

        Args:
            y_true: targets, `np.ndarray [shape=(n,)]`.
            outputs: model outputs, `np.ndarray [shape=(n, num_outputs)]`.
            num_outputs: units of the head.
            context: what some tasks need besides (`Context`).

        Returns:
            dict of metric name to float (JSON-ready values).
        """
        raise NotImplementedError

    def pool_by_clip(self, outputs: np.ndarray, targets: np.ndarray, clips: np.ndarray,
                     starts: Sequence[float] | np.ndarray | None = None,
                     frame_seconds: float | None = None) -> Pooled | None:
        """Clip-level outputs and targets from segment rows (outputs averaged per clip).

        Args:
            outputs: the rows' outputs.
            targets: their targets.
            clips: the clip of each row.
            starts: each row's start in its clip, seconds (detection stitches windows
                with them), or `None`.
            frame_seconds: the feature hop in seconds, or `None`.

        Returns:
            `(clip_ids, clip_outputs, clip_targets)`, see `xval.tasks.metrics.pool_by_clip`;
            or `None` when the task has no clip level.
        """
        return pool_by_clip(outputs, targets, clips)

    def overlap_windows(self, features: np.ndarray, targets: np.ndarray, clips: np.ndarray,
                        starts: Sequence[float] | None, context: Context = NO_CONTEXT
                        ) -> Any | None:
        """Rows read besides the stored ones at evaluation, scored only at the clip level
        (windows between a recording's windows).

        Args:
            features: the split's rows, `np.ndarray [shape=(rows, ...)]`.
            targets: their targets.
            clips: the clip of each row.
            starts: each row's start in its clip, seconds, or `None`.
            context: the instance parameters and the feature hop.

        Returns:
            An object with `features`, `targets`, `clips` and `starts` (e.g.
            `xval.tasks.detection.overlap.Windows`), or `None` (the default: none).
        """
        return None

    def choose_postprocessing(self, y_true: Any, outputs: Any, num_outputs: int,
                              context: Context = NO_CONTEXT
                              ) -> Postprocessing | None:
        """Post-processing chosen on a fold's validation rows (never its test rows).

        Training calls it with the validation rows' targets and outputs (stitched by clip
        where the task pools clips), and the training rows' targets in
        `context.training_targets`, before any split is scored; the choice is applied to
        the parameters every split is then scored with, recorded in the fold record and
        used by the fold's model at inference.

        Returns:
            A `xval.core.records.Postprocessing`, or `None` (the default: nothing to choose).
        """
        return None

    def prediction_columns(self, outputs: np.ndarray, classes: Sequence[str],
                           context: Context = NO_CONTEXT) -> dict[str, Any]:
        """Columns of `predictions_fold_<i>.csv` after row, item, clip, label, target.

        Returns:
            dict of column name to values (`predicted` first).
        """
        raise NotImplementedError

    def predict_record(self, outputs: np.ndarray, starts: Sequence[float],
                       classes: Sequence[str],
                       context: Context = NO_CONTEXT
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """What `python -m xval predict` reports for one file.

        Args:
            outputs: the file's segment outputs, `np.ndarray [shape=(segments, k)]`.
            starts: start of each segment (seconds).
            classes: the store's class names.
            context: the instance parameters and the feature hop.

        Returns:
            `(segments, clip)`: a list of `{"start", "scores"}` and `{"scores", "predicted"}`.
        """
        raise NotImplementedError

    def fold_plot_data(self, y_true: np.ndarray, outputs: np.ndarray, meta: pd.DataFrame,
                       context: Context = NO_CONTEXT) -> dict[str, Any] | None:
        """What the task's per-fold figures draw, taken from one fold's test rows: written
        as `plot_data_fold_<i>.json` beside the fold file, read by `xval.report.plots`.

        Returns:
            A JSON-ready dict, or `None` (the default: no per-fold figure).
        """
        return None

    def evaluation_level(self, y_true: np.ndarray, outputs: np.ndarray,
                         classes: Sequence[str]) -> dict[str, Any]:
        """The metrics `evaluate` shows for one level (clip or segment), as a dict."""
        raise NotImplementedError

    def clip_thresholds(self, chosen: Mapping[str, Any],
                        classes: Sequence[str]) -> list[float] | None:
        """Each class's threshold on a clip's scores, from the post-processing the folds
        chose (`chosen`: parameter name -> value, a per-class value as `{class: value}`), for
        the model card's program; `None` (the default) where a clip's scores decide alone."""
        return None

    def event_rules(self, params: Mapping[str, Any] | None) -> Any:
        """What turns a recording's frame probabilities into events (`python -m xval
        detect`, `evaluate --annotations`): an object with `events(activity, frame_seconds,
        classes, duration_s=...)`, from instance parameters (with the folds' choice
        applied, `Postprocessing.apply`).

        Raises:
            ConfigurationError: for a task whose models find no events (the default).
        """
        raise ConfigurationError(
            f"these are {self.task.name} models, which find no events: `detect` and "
            "`evaluate --annotations` take a model whose task turns frames into events; use "
            "`python -m xval predict` or `evaluate` on labelled files with them.")

    def reading_hop(self, params: Mapping[str, Any] | None) -> float:
        """The hop between the windows a new recording is read through (`detect`), as a
        fraction of the window, from instance parameters. Defaults to `1.0` (side by
        side)."""
        return 1.0

    def recording_activity(self, outputs: np.ndarray, starts: Sequence[float],
                           frame_seconds: float) -> np.ndarray:
        """One recording's frame probabilities, `np.ndarray [shape=(frames, classes)]`, from
        its windows' outputs starting at `starts` (seconds), for a task with `event_rules`."""
        raise NotImplementedError(f"a {self.task.name} model finds no events")

    def score_recordings(self, events: pd.DataFrame, found: Mapping[str, Mapping[str, Any]],
                         classes: list[str], durations: Mapping[str, float],
                         grid: Mapping[str, int]) -> dict[str, Any]:
        """The metrics of whole annotated recordings (`events`: the annotation), from what
        `detect` found in each (`found`), for a task with `event_rules`.

        Args:
            events: the annotation's rows (`file`, `onset_s`, `offset_s`, `label`).
            found: each file's `detect_files` result.
            classes: the model's classes.
            durations: each file's duration in seconds.
            grid: the store's frame grid (`sample_rate`, `hop_length`).
        """
        raise NotImplementedError(f"a {self.task.name} model finds no events")

    def format_level(self, data: dict[str, Any]) -> list[str]:
        """Text lines of one level of an evaluation."""
        return [", ".join(f"{k} {v:.4f}" for k, v in data.items())]

    def level_records(self, level: str, data: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
        """`(level, label, metric, value)` rows of one level for `evaluate --format csv`."""
        return [(level, "", k, v) for k, v in data.items()]
