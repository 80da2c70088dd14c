"""The training options fitted to an instance (`fit_defaults`: the `[training]` defaults of
the generalisation options adapted to its epochs, task and features) and checked between
themselves (`check_training_options`), when `xval.config.params.resolve` resolves it."""

from __future__ import annotations

from typing import Any, Protocol

from xval import tasks
from xval.core.errors import ParameterError
from xval.core.parameters import InstanceParams, TrainingParams
from xval.core.settings import off_values


class FeatureFacts(Protocol):
    """What `resolve` needs to know of the store's feature type. A registered
    `preprocessing.features.FeatureType` is one (the feature registry sits above the
    configuration, so the store's type is handed in, not imported)."""

    @property
    def name(self) -> str: ...

    @property
    def has_frequencies(self) -> bool: ...

    @property
    def neighbouring_bins(self) -> bool: ...


CLASSES_ONLY = ("label_smoothing", "freq_warp", "time_warp")
"""The options whose defaults are for tasks with classes (`fit_defaults`)."""


def _off(names: tuple[str, ...]) -> dict[str, Any]:
    """`names` -> the value that switches each off (declared with its key, `setting(off=)`)."""
    off = off_values(TrainingParams)
    return {name: off[name] for name in names}


def fit_defaults(params: InstanceParams, explicit: set[str], task: tasks.Task,
                 feature: FeatureFacts | None = None) -> InstanceParams:
    """Adapts the generalisation options that come from `[training]` defaults (not named by
    the experiment, the instance or `--set`) to the instance, instead of refusing it: a
    default `min_epochs` is at most `epochs // 2` and a default `warmup_epochs` at most
    `epochs // 5`; a default warm-up is dropped under `lr_schedule="plateau"`; a default
    `label_smoothing` and default frequency and time warping are dropped for a task without
    classes (a warp may change a numeric target), except the frequency warp of a task whose
    targets are frames (detection: it moves no event); a default `freq_warp` is dropped for a
    store of MFCCs, and default `freq_warp` and `freq_masks` for a store of pretrained
    encoder states (their dimensions are not frequencies, nor neighbours); the task's own
    defaults come last (`Task.fit_defaults`: its `training_defaults`, its
    `chosen_on_validation` parameters unset, `None`: chosen per fold on the validation
    rows). Values the instance names are checked as given (`check_training_options`,
    `Task.check_params`).

    Returns:
        The parameters with the adapted defaults.
    """
    fitted: dict[str, Any] = dict(
        min_epochs=min(params.min_epochs, params.epochs // 2),
        warmup_epochs=0 if params.lr_schedule == "plateau"
        else min(params.warmup_epochs, params.epochs // 5))
    if not task.has_classes:
        # Label smoothing needs classes; a warp of pitch or tempo may change a numeric target
        # (a speaker's age, a speaking rate), so default warps are for classes only. Frame
        # targets keep the frequency warp: it moves no event in time (docs/results.md).
        fitted.update(_off(tuple(n for n in CLASSES_ONLY
                                 if n != "freq_warp" or task.output != "frames")))
    # A warp of the frequency axis needs frequencies, a frequency mask neighbouring bins,
    # and a time warp rows of one length (a random crop is the time augmentation).
    if feature is not None and not feature.has_frequencies:
        fitted.update(_off(("freq_warp",)))
    if feature is not None and not feature.neighbouring_bins:
        fitted.update(_off(("freq_masks",)))
    if params.random_crop_seconds:
        fitted.update(_off(("time_warp",)))
    fitted.update(task.fit_defaults(params))
    return params.replace(**{k: v for k, v in fitted.items() if k not in explicit})


def _check_feature(params: TrainingParams, where: str, feature: FeatureFacts | None
                   ) -> None:
    """Refuses frequency warping on bins without frequencies (MFCCs, an encoder's states),
    and frequency masks on bins that are not neighbours (an encoder's dimensions)."""
    if feature is None:
        return
    if params.freq_warp and not feature.has_frequencies:
        raise ParameterError(
            f"{where}: freq_warp={params.freq_warp} warps the frequency axis, but the "
            f"dataset's features ({feature.name!r}) have no frequency axis (their bins have "
            "no centre frequencies); use freq_warp=0, or a store of a feature type with "
            "frequencies.")
    if params.freq_masks and not feature.neighbouring_bins:
        raise ParameterError(
            f"{where}: freq_masks={params.freq_masks} acts on a frequency axis, but the "
            f"dataset's features ({feature.name!r}) have dimensions that are neither "
            "frequencies nor neighbours; use freq_masks=0 (time masks and time_warp are "
            "fine).")


def check_training_options(params: TrainingParams, task: tasks.Task, where: str,
                            feature: FeatureFacts | None = None) -> None:
    """Cross-parameter checks of warm-up, min_epochs, label smoothing, frequency warping and
    refit_with_val (the task's own: `Task.check_params`)."""
    _check_feature(params, where, feature)
    if params.random_crop_seconds and params.time_warp:
        raise ParameterError(
            f"{where}: time_warp={params.time_warp} needs rows of a fixed length, but "
            f"random_crop_seconds={params.random_crop_seconds} makes the model take any "
            "length; use time_warp=0 (the random crop shifts the rows in time already).")
    epochs = params.epochs
    for name, value in (("min_epochs", params.min_epochs), ("warmup_epochs",
                                                            params.warmup_epochs)):
        if value >= epochs:
            raise ParameterError(
                f"{where}: {name}={value} but epochs={epochs}; {name} must be smaller "
                f"than epochs (raise epochs or lower {name})."
            )
    if params.warmup_epochs and params.lr_schedule == "plateau":
        raise ParameterError(
            f"{where}: warmup_epochs={params.warmup_epochs} needs lr_schedule 'constant' "
            "or 'cosine' ('plateau' changes the learning rate itself); set warmup_epochs=0 "
            "or another lr_schedule."
        )
    if params.refit_with_val and params.embeds:
        raise ParameterError(
            f"{where}: refit_with_val=True and embedding_classifier="
            f"{params.embedding_classifier!r} cannot be combined (the classifier is fitted "
            "on the first model's embeddings, and its C chosen on the validation rows the "
            "refit trains on); set one of them off."
        )
    if params.class_weights and not task.weights_classes:
        weighted = " or ".join(f"task_type={n!r}" for n in tasks.names()
                               if tasks.get(n).weights_classes)
        raise ParameterError(f"{where}: class_weights=True needs {weighted}.")
    if params.label_smoothing and not task.has_classes:
        raise ParameterError(
            f"{where}: label_smoothing={params.label_smoothing} needs a task with classes "
            f"(task_type is {task.name!r}); set label_smoothing=0."
        )
