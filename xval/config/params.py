"""Instance parameters: parsing with `ast.literal_eval`, layering, checking and hashing.

Layers, later wins: `config.ini [training]` < experiment `parameters` < instance < `--set`.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import xval.config.embedding as embedding
import xval.config.schema as schema
from xval import tasks
from xval.core.errors import ParameterError
from xval.core.hashing import json_digest

Spec = Mapping[str, Any] | Sequence[str]
"""An instance as declared: a dict, or a list of `'name=value'` strings."""

MANDATORY = ("architecture", "reshaping_type", "comment_1", "comment_2")
DATASET = "dataset"
"""The optional instance name of another feature store (on the same items) than the
experiment's: the planner sets it, resolution only checks that it is a store name."""
# Choices of the [training] keys come from the schema.
CHOICES: dict[str, tuple[str, ...]] = {
    "reshaping_type": ("conv", "rnn", "none"),
    **{name: options for name, spec in schema.SCHEMA["training"].items()
       if (options := spec.options())},
}
# The generalisation options of [training] switched off: training as it was before they
# became the defaults (`parameters=PLAIN_TRAINING` in an Experiment, or `**PLAIN_TRAINING` in
# an instance, gives the plain baseline).
PLAIN_TRAINING = {"lr_schedule": "constant", "min_epochs": 0, "warmup_epochs": 0,
                  "time_masks": 0, "freq_masks": 0, "mixup_alpha": 0.0,
                  "label_smoothing": 0.0, "freq_warp": 0.0, "time_warp": 0.0}
# Names that do not change what is trained; left out of the hash and the resume check.
UNHASHED = ("comment_1", "comment_2", "verbose", "generator_workers", "tensorboard")


def parse_assignment(text: Any, where: str = "--set") -> tuple[str, Any]:
    """Parses `'name=value'`, the value with `ast.literal_eval`.

    Args:
        text: the assignment, e.g. `'learning_rate=0.001'` or `'architecture="vgg_mini"'`.
        where: what to name in errors (e.g. `"instance 3"`).

    Returns:
        `(name, value)`.

    Raises:
        ParameterError: when there is no `=`, the name is not an identifier, or the value
            is not a Python literal.
    """
    if not isinstance(text, str):
        raise ParameterError(
            f"{where}: expected strings like 'name=value', got {type(text).__name__} {text!r}."
        )
    if "=" not in text:
        raise ParameterError(f"{where}: {text!r} is not of the form name=value.")
    name, raw = (part.strip() for part in text.split("=", 1))
    if not name.isidentifier():
        raise ParameterError(f"{where}: {name!r} in {text!r} is not a valid parameter name.")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ParameterError(
            f"{where}: the value of {name} in {text!r} is not a Python literal ({raw!r}). "
            f'Quote strings: {name}="{raw}"; numbers, True/False, None, lists and dicts are '
            "accepted as written."
        ) from e
    return name, value


def parse_instance(spec: Any, where: str) -> dict[str, Any]:
    """Turns an instance (dict, or list of `'name=value'` strings) into a dict.

    Args:
        spec: the instance as declared in the experiment script.
        where: what to name in errors.

    Returns:
        dict of parameter name to value.

    Raises:
        ParameterError: for a bad form, a repeated name or a value that is not a literal.
    """
    if isinstance(spec, dict):
        for name in spec:
            if not isinstance(name, str) or not name.isidentifier():
                raise ParameterError(f"{where}: parameter name {name!r} is not an identifier.")
        return dict(spec)
    if isinstance(spec, (list, tuple)):
        out = {}
        for text in spec:
            name, value = parse_assignment(text, where)
            if name in out:
                raise ParameterError(f"{where}: parameter {name!r} is given twice.")
            out[name] = value
        return out
    raise ParameterError(
        f"{where}: expected a dict or a list of 'name=value' strings, got "
        f"{type(spec).__name__}."
    )


def parse_override(text: str) -> tuple[str, Any]:
    """Parses a `--set name=value`: the value as a literal, or else as the text itself
    (so `--set optimizer=sgd` needs no quotes; the type check still applies).

    Returns:
        `(name, value)`.

    Raises:
        ParameterError: when there is no `=` or the name is not an identifier.
    """
    if "=" not in text:
        raise ParameterError(f"--set: {text!r} is not of the form name=value.")
    name, raw = (part.strip() for part in text.split("=", 1))
    if not name.isidentifier():
        raise ParameterError(f"--set: {name!r} in {text!r} is not a valid parameter name.")
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return name, raw


def parse_overrides(texts: Sequence[str]) -> dict[str, Any]:
    """Parses every `--set name=value` (see `parse_override`); a name given twice is an
    error, as in an instance.

    Returns:
        dict of name to value.

    Raises:
        ParameterError: for a malformed one, or a name given twice.
    """
    out: dict[str, Any] = {}
    for text in texts:
        name, value = parse_override(text)
        if name in out:
            raise ParameterError(f"--set {name} is given twice ({name}={out[name]!r} and "
                                 f"{text!r}); give it once.")
        out[name] = value
    return out


def _short(value: Any) -> str:
    """`repr(value)`, a huge integer shown by its number of digits."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10 ** 30 else \
        f"<an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits>"
    return text if len(text) < 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_type(name: str, value: Any, default: Any, where: str) -> Any:
    """Returns `value` converted to the type of `default`, or raises ParameterError."""
    if default is None:
        return value
    ok = True
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            try:
                value = float(value)
            except OverflowError:
                raise ParameterError(
                    f"{where}: {name}={_short(value)} is too large for a float (beyond "
                    "1.8e308); give a value in the parameter's range.") from None
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    if not ok:
        raise ParameterError(
            f"{where}: {name}={_short(value)} is a {_type_name(value)}; expected a "
            f"{_type_name(default)} like the default {default!r}."
        )
    return value


class ArchitectureCatalog(Protocol):
    """What `resolve` needs to know of the registered architectures. The `architectures`
    package is one (it sits above the configuration, so it is handed in, not imported)."""

    def names(self) -> list[str]: ...

    def keyword_defaults(self, name: str) -> dict[str, Any]: ...

    def outputs(self, name: str) -> tuple[str, ...]: ...

    def reshaping_types(self, name: str) -> tuple[str, ...]: ...

    def check_keywords(self, name: str, values: dict[str, Any], where: str) -> None: ...


NO_FREQUENCY_AXIS = {"pretrained": "pretrained encoder states, whose dimensions are not "
                                    "frequencies",
                     "waveform": "audio samples fed to the model as they are (front_end="
                                 "'none')"}
"""Features without a frequency axis (frequency warping and masks are refused), and what
their rows hold."""


def resolve(instance_id: int | str, spec: Spec, *, training_defaults: Mapping[str, Any],
            architectures: ArchitectureCatalog, experiment_params: Spec | None = None,
            overrides: Mapping[str, Any] | None = None, task_type: str = tasks.DEFAULT,
            feature: str | None = None) -> dict[str, Any]:
    """Resolves one instance's parameters and checks every name, type and value.

    Args:
        instance_id: the instance number (for messages).
        spec: the instance as declared (dict or list of `'name=value'` strings).
        training_defaults: `config.training`.
        architectures: the architecture registry (`import architectures`; see
            `ArchitectureCatalog`).
        experiment_params: parameters the experiment applies to every instance.
        overrides: `--set` values, applied last.
        task_type: a task registered in `xval.tasks`. Defaults to `tasks.DEFAULT`.
        feature: the store's feature (`stft`, `mel`, `mfcc`, `cqt`, `pretrained`,
            `waveform`) when known, or the instance's `front_end` when it names one (the
            features the model computes): MFCCs have no frequency axis, so a default
            `freq_warp` is dropped and a named one refused; for `pretrained` and `waveform`
            (fed as it is) the same holds of `freq_masks`. Defaults to `None` (unknown).

    Returns:
        dict of every parameter: the training defaults, the architecture's keyword
        arguments (with their defaults) and the mandatory names.

    Raises:
        ParameterError: a missing mandatory name, an unknown name (with the closest valid
            ones), a wrong type or an invalid value.
    """
    where = f"instance {instance_id}"
    layers = [
        ("the experiment parameters", parse_instance(experiment_params or {}, "parameters")),
        (where, parse_instance(spec, where)),
        ("--set", dict(overrides or {})),
    ]
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged.update(layer)
    arch = _architecture(merged, where)
    try:
        arch_defaults = architectures.keyword_defaults(arch)
    except ValueError as e:
        raise ParameterError(f"{where}: {e}") from e
    valid = {**training_defaults, **arch_defaults, **dict.fromkeys(MANDATORY, ""),
             DATASET: ""}
    _check_names(layers, valid, arch, arch_defaults, where)
    params = {**training_defaults, **arch_defaults}
    for name, value in merged.items():
        params[name] = _check_type(name, value, valid[name], where)
    if not params.get(DATASET, "x"):
        raise ParameterError(f"{where}: dataset='': expected the name of a feature store "
                             "under config.ini [paths] data_dir, or no dataset (the "
                             "experiment's).")
    architectures.check_keywords(arch, params, where)  # the ranges the builder declares
    _check_values(params, where)
    task = tasks.get(task_type)
    _check_architecture(params, arch, task, architectures, where)
    if params.get("load_model") is not None:
        params["load_model"] = _model_path(params["load_model"], where)
    _check_save_metric(params, task, where)
    _check_transfer_and_logs(params, where)
    if params.get("front_end", "none") != "none":  # the model computes its own features
        feature = str(params["front_end"])
    _fit_defaults(params, set(merged), task, feature)
    _check_training_options(params, task, where, feature)
    task.check_params(params, where)
    return embedding.check_params(params, task, where)


def _architecture(merged: Mapping[str, Any], where: str) -> str:
    """The instance's architecture name, once every mandatory name is given."""
    missing = [name for name in MANDATORY if name not in merged]
    if missing:
        raise ParameterError(
            f"{where}: missing mandatory parameter(s) {', '.join(missing)}. Every instance "
            "names architecture, reshaping_type, comment_1 and comment_2, e.g. "
            "['architecture=\"example_cnn\"', 'reshaping_type=\"conv\"', "
            "'comment_1=\"...\"', 'comment_2=\"...\"']."
        )
    arch = merged["architecture"]
    if not isinstance(arch, str):
        raise ParameterError(f"{where}: architecture={arch!r} must be a string.")
    return arch


def _check_names(layers: list[tuple[str, dict[str, Any]]], valid: Mapping[str, Any], arch: str,
                 arch_defaults: Mapping[str, Any], where: str) -> None:
    """Refuses a name that is neither a `[training]` key nor a keyword of the architecture,
    with the closest valid names."""
    for source, layer in layers:
        for name in layer:
            if name not in valid:
                close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.6)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ParameterError(
                    f"{where}: unknown parameter {name!r} (from {source}).{hint} Valid names "
                    f"are the [training] keys of config.ini, dataset (another store on the "
                    f"same items), and the keyword arguments of architecture {arch!r}: "
                    f"{', '.join(sorted(arch_defaults))}."
                )


def _check_values(params: dict[str, Any], where: str) -> None:
    """Checks the choice-valued names and every `[training]` value against the schema."""
    for name, allowed in CHOICES.items():
        if name in params and params[name] not in allowed:
            raise ParameterError(
                f"{where}: {name}={params[name]!r} is not valid; expected one of "
                f"{', '.join(allowed)}."
            )
    for name in schema.SCHEMA["training"]:
        if name in params and name != "embedding_models":  # a list: embedding checks it
            params[name] = schema.check("training", name, params[name], style="param",
                                        prefix=f"{where}: ", error=ParameterError)


def _check_architecture(params: Mapping[str, Any], arch: str, task: tasks.Task,
                        architectures: ArchitectureCatalog, where: str) -> None:
    """The architecture makes the task's kind of output and takes the reshaping type."""
    needs = task.output
    if needs not in architectures.outputs(arch):
        fitting = [n for n in architectures.names() if needs in architectures.outputs(n)]
        raise ParameterError(
            f"{where}: architecture {arch!r} makes {' or '.join(architectures.outputs(arch))} "
            f"outputs, but task_type {task.name!r} needs {needs} outputs; choose one of "
            f"{', '.join(fitting) or '(none registered)'}."
        )
    supported = architectures.reshaping_types(arch)
    if params["reshaping_type"] not in supported:
        raise ParameterError(
            f"{where}: architecture {arch!r} takes reshaping_type "
            f"{' or '.join(repr(s) for s in supported)}, not {params['reshaping_type']!r}."
        )


def _check_save_metric(params: Mapping[str, Any], task: tasks.Task, where: str) -> None:
    metric = params["save_model_metric"]
    names = task.history_metrics
    allowed = [f"val_{m}" for m in names] + list(names)
    if metric not in allowed:
        raise ParameterError(
            f"{where}: save_model_metric={metric!r} is not recorded for a {task.name} task; "
            f"expected one of {', '.join(allowed)}."
        )


def _check_transfer_and_logs(params: Mapping[str, Any], where: str) -> None:
    if params["freeze_layers"] and not params["load_model"]:
        raise ParameterError(
            f"{where}: freeze_layers={params['freeze_layers']} needs load_model (a saved "
            ".keras model to start from)."
        )
    if params["tensorboard"]:
        missing = [m for m in ("tensorflow", "tensorboard")
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise ParameterError(
                f"{where}: tensorboard=True needs {' and '.join(missing)} (Keras writes "
                "TensorBoard logs through tf.summary on every backend): "
                "`pip install -e '.[tensorboard]'`."
            )


def _fit_defaults(params: dict[str, Any], explicit: set[str], task: tasks.Task,
                  feature: str | None = None) -> None:
    """Adapts the generalisation options that come from `[training]` defaults (not named by
    the experiment, the instance or `--set`) to the instance, instead of refusing it: a
    default `min_epochs` is at most `epochs // 2` and a default `warmup_epochs` at most
    `epochs // 5`; a default warm-up is dropped under `lr_schedule="plateau"`; a default
    `label_smoothing` and default frequency and time warping are dropped for a task without
    classes (a warp may change a numeric target), and default SpecAugment, mixup and warps
    for tasks whose outputs are not one vector per row (detection, representation: the
    defaults were measured on classification); a default `freq_warp` is dropped for a store of
    MFCCs, and default `freq_warp` and `freq_masks` for a store of pretrained encoder states
    (their dimensions are not frequencies, nor neighbours); the task's own `training_defaults`
    replace the shared ones, and its `chosen_on_validation` parameters are unset (`None`:
    chosen per fold on the validation rows). Values the instance names are checked as given
    (`_check_training_options`)."""
    epochs = params["epochs"]
    for name, share in (("min_epochs", 2), ("warmup_epochs", 5)):
        if name not in explicit:
            params[name] = min(params.get(name, 0), epochs // share)
    if "warmup_epochs" not in explicit and params["lr_schedule"] == "plateau":
        params["warmup_epochs"] = 0
    if not task.has_classes:
        # Label smoothing needs classes; a warp of pitch or tempo may change a numeric target
        # (a speaker's age, a speaking rate), so default warps are for classes only.
        for name in ("label_smoothing", "freq_warp", "time_warp"):
            if name not in explicit:
                params[name] = 0.0
    if task.output != "vector":
        for name, off in (("time_masks", 0), ("freq_masks", 0), ("mixup_alpha", 0.0),
                          ("freq_warp", 0.0), ("time_warp", 0.0)):
            if name not in explicit:
                params[name] = off
    _feature_defaults(params, explicit, feature)
    _task_defaults(params, explicit, task)


def _feature_defaults(params: dict[str, Any], explicit: set[str], feature: str | None) -> None:
    """Drops the default warps and masks the features cannot take: `freq_warp` without a
    frequency axis (MFCCs, pretrained states, raw samples), `freq_masks` for the last two,
    `time_warp` on rows of any length (`random_crop_seconds`)."""
    if feature in ("mfcc", *NO_FREQUENCY_AXIS) and "freq_warp" not in explicit:
        params["freq_warp"] = 0.0
    if feature in NO_FREQUENCY_AXIS and "freq_masks" not in explicit:
        params["freq_masks"] = 0
    if params.get("random_crop_seconds") and "time_warp" not in explicit:
        params["time_warp"] = 0.0  # rows of any length: a crop is the time augmentation


def _check_pretrained(params: Mapping[str, Any], where: str, feature: str | None) -> None:
    """Refuses frequency warping and frequency masks on a store of pretrained encoder states
    (`feature = pretrained`), whose dimensions are neither frequencies nor neighbours, and on
    raw audio fed as it is (`feature = waveform`, `front_end = none`): one sample per row."""
    if feature not in NO_FREQUENCY_AXIS:
        return
    holds = NO_FREQUENCY_AXIS[feature]
    for name in ("freq_warp", "freq_masks"):
        if params.get(name, 0):
            raise ParameterError(
                f"{where}: {name}={params[name]} acts on a frequency axis, but the dataset "
                f"holds {holds} (feature={feature!r}), which has none; use {name}=0 (time "
                "masks and time_warp are fine).")


def _task_defaults(params: dict[str, Any], explicit: set[str], task: tasks.Task) -> None:
    """The task's own `training_defaults` in place of the shared ones, and its
    `chosen_on_validation` parameters unset (`None`: chosen per fold on the validation
    rows), for every name the experiment and the instance leave out."""
    defaults = {**task.training_defaults, **dict.fromkeys(task.chosen_on_validation)}
    params.update({k: v for k, v in defaults.items() if k not in explicit})


def _check_training_options(params: Mapping[str, Any], task: tasks.Task, where: str,
                            feature: str | None = None) -> None:
    """Cross-parameter checks of warm-up, min_epochs, label smoothing, frequency warping and
    refit_with_val."""
    _check_pretrained(params, where, feature)
    if params.get("freq_warp", 0.0) and feature == "mfcc":
        raise ParameterError(
            f"{where}: freq_warp={params['freq_warp']} warps the frequency axis, but the "
            "dataset holds MFCCs (cepstral coefficients have no frequency axis); use "
            "freq_warp=0, or a store of stft, mel or cqt features.")
    if params.get("random_crop_seconds") and params.get("time_warp"):
        raise ParameterError(
            f"{where}: time_warp={params['time_warp']} needs rows of a fixed length, but "
            f"random_crop_seconds={params['random_crop_seconds']} makes the model take any "
            "length; use time_warp=0 (the random crop shifts the rows in time already).")
    epochs = params["epochs"]
    for name in ("min_epochs", "warmup_epochs"):
        if params.get(name, 0) >= epochs:
            raise ParameterError(
                f"{where}: {name}={params[name]} but epochs={epochs}; {name} must be smaller "
                f"than epochs (raise epochs or lower {name})."
            )
    if params.get("warmup_epochs", 0) and params["lr_schedule"] == "plateau":
        raise ParameterError(
            f"{where}: warmup_epochs={params['warmup_epochs']} needs lr_schedule 'constant' "
            "or 'cosine' ('plateau' changes the learning rate itself); set warmup_epochs=0 "
            "or another lr_schedule."
        )
    if params.get("refit_with_val") and params.get("embedding_classifier", "none") != "none":
        raise ParameterError(
            f"{where}: refit_with_val=True and embedding_classifier="
            f"{params['embedding_classifier']!r} cannot be combined (the classifier is fitted "
            "on the first model's embeddings, and its C chosen on the validation rows the "
            "refit trains on); set one of them off."
        )
    if params.get("class_weights") and not task.weights_classes:
        weighted = " or ".join(f"task_type={n!r}" for n in tasks.names()
                               if tasks.get(n).weights_classes)
        raise ParameterError(f"{where}: class_weights=True needs {weighted}.")
    if params.get("label_smoothing", 0) and not task.has_classes:
        raise ParameterError(
            f"{where}: label_smoothing={params['label_smoothing']} needs a task with classes "
            f"(task_type is {task.name!r}); set label_smoothing=0."
        )


def _model_path(value: str, where: str) -> str:
    """`load_model` as an absolute path to an existing `.keras` file (relative paths are
    resolved against the current directory)."""
    path = Path(value).expanduser()
    absolute = path if path.is_absolute() else Path.cwd() / path
    said = "" if path.is_absolute() else f" (relative paths are resolved against the " \
        f"current directory: {absolute})"
    if absolute.suffix != ".keras":
        raise ParameterError(
            f"{where}: load_model={value!r}: expected a .keras file saved by Keras 3 (legacy "
            f".h5 and SavedModel folders are not loaded){said}."
        )
    if not absolute.is_file():
        raise ParameterError(
            f"{where}: load_model={value!r} does not exist{said}. Give the path of a "
            "fold_<i>.keras file, or none to train from scratch."
        )
    return os.path.normpath(absolute)


def params_hash(params: Mapping[str, Any]) -> str:
    """Returns the SHA-256 of the parameters that change what is trained.

    A key added to `[training]` after the first release (`schema.ADDED_KEYS`) is left out
    while it holds the value that trains as before it existed, so adding a key changes no
    existing instance's hash (MLflow runs, for one, are matched by it)."""
    added = schema.ADDED_KEYS["training"]
    kept = {k: v for k, v in params.items()
            if k not in UNHASHED and not (k in added and v == added[k])}
    return json_digest(kept)


def edited_params(params: Mapping[str, Any], recorded_hash: str) -> str:
    """Why a recorded parameter set cannot be believed, or `""`: its parameters no longer
    hash to the hash recorded with them (the file was edited after it was written).

    Args:
        params: the recorded parameters (`params.json` `params`).
        recorded_hash: the hash recorded with them.
    """
    content = params_hash(params)
    if content == recorded_hash:
        return ""
    return (f"was edited after it was written: its parameters hash to {content[:12]}, not to "
            f"the recorded {str(recorded_hash)[:12]}")


def differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names whose values differ between two resolved parameter dicts (hashed names only).

    A key added after the old parameters were recorded (`schema.ADDED_KEYS`) counts as its
    neutral value there, so results made before it existed do not differ by its absence.
    """
    added = schema.ADDED_KEYS["training"]
    names = sorted((set(old) | set(new)) - set(UNHASHED))
    return [n for n in names
            if old.get(n, added.get(n, "<absent>")) != new.get(n, added.get(n, "<absent>"))]
