"""Instance parameters: parsing with `ast.literal_eval`, layering, checking and hashing.

Layers, later wins: `config.ini [training]` < experiment `parameters` < instance < `--set`."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import xval.config.embedding as embedding
import xval.config.schema as schema
from xval import tasks
from xval.config.options import FeatureFacts, check_training_options, fit_defaults
from xval.config.parsing import Spec, parse_instance
from xval.config.parsing import parse_assignment as parse_assignment
from xval.config.parsing import parse_override as parse_override
from xval.config.parsing import parse_overrides as parse_overrides
from xval.core import constraints, optional
from xval.core.constraints import InstancesOf
from xval.core.errors import ParameterError
from xval.core.hashing import json_digest
from xval.core.parameters import DATASET, MANDATORY, InstanceParams, TrainingParams
from xval.core.settings import off_values, setting_names

# Choices of the [training] keys come from the schema.
CHOICES: dict[str, tuple[str, ...]] = {
    "reshaping_type": ("conv", "rnn", "none"),
    **{name: options for name, spec in schema.SCHEMA["training"].items()
       if (options := spec.options())},
}


# The generalisation options of [training] switched off: training as it was before they
# became the defaults (`parameters=PLAIN_TRAINING` in an Experiment, or `**PLAIN_TRAINING` in
# an instance, gives the plain baseline).
# Each option's off value is declared with its key (`setting(..., off=)`).
PLAIN_TRAINING = off_values(TrainingParams)


# Names that do not change what is trained; left out of the hash and the resume check.
UNHASHED = ("comment_1", "comment_2", "verbose", "generator_workers", "tensorboard")


def _short(value: Any) -> str:
    """`repr(value)`, a huge integer shown by its number of digits."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10 ** 30 else \
        f"<an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits>"
    return text if len(text) < 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    """The name of a value's type; a type from a library with its module
    (`numpy.str_`), so that it never reads as the built-in type it resembles."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else \
        f"{kind.__module__.split('.')[0]}.{kind.__name__}"


_KINDS: tuple[tuple[type | tuple[type, ...], Any], ...] = (
    (bool, "boolean"), (int, int), (float, InstancesOf((int, float))), (str, str),
    ((list, tuple), InstancesOf((list, tuple))))
"""The type of a default -> the values of its type (an int is a float; a bool no number)."""


def _check_type(name: str, value: Any, default: Any, where: str) -> Any:
    """Returns `value` converted to the type of `default`, or raises ParameterError.

    A NumPy scalar (`np.True_`, `np.float64(0.1)`, computed in a script) counts as the
    Python value it holds (`.item()`).
    """
    if isinstance(value, np.generic):
        value = value.item()
    kind = next((c for types, c in _KINDS if isinstance(default, types)), None)
    if default is None or kind is None:
        return value
    if not constraints.satisfies(value, [kind]):
        raise ParameterError(
            f"{where}: {name}={_short(value)} is a {_type_name(value)}; expected a "
            f"{_type_name(default)} like the default {default!r}."
        )
    if isinstance(default, float):
        try:
            return float(value)
        except OverflowError:
            raise ParameterError(
                f"{where}: {name}={_short(value)} is too large for a float (beyond "
                "1.8e308); give a value in the parameter's range.") from None
    return value


class ArchitectureCatalog(Protocol):
    """What `resolve` needs to know of the registered architectures. The `architectures`
    package is one (it sits above the configuration, so it is handed in, not imported)."""

    def names(self) -> list[str]: ...

    def keyword_defaults(self, name: str) -> dict[str, Any]: ...

    def outputs(self, name: str) -> tuple[str, ...]: ...

    def reshaping_types(self, name: str) -> tuple[str, ...]: ...

    def check_keywords(self, name: str, values: dict[str, Any], where: str) -> None: ...


def resolve(instance_id: int | str, spec: Spec, *, training_defaults: Mapping[str, Any],
            architectures: ArchitectureCatalog, experiment_params: Spec | None = None,
            overrides: Mapping[str, Any] | None = None, task_type: str = tasks.DEFAULT,
            feature: FeatureFacts | None = None,
            feature_types: Callable[[str], FeatureFacts] | None = None) -> InstanceParams:
    """Resolves one instance's parameters and checks every name, type and value.

    Args:
        instance_id: the instance number (for messages).
        spec: the instance as declared (dict or list of `'name=value'` strings).
        training_defaults: `config.training` (the shared keys, and the registered tasks' own:
            an instance has its task's, `Task.parameters`).
        architectures: the architecture registry (`import architectures`; see
            `ArchitectureCatalog`).
        experiment_params: parameters the experiment applies to every instance.
        overrides: `--set` values, applied last.
        task_type: a task registered in `xval.tasks`. Defaults to `tasks.DEFAULT`.
        feature: the store's feature type when known (`preprocessing.features.get(name)`):
            bins without frequencies (MFCCs, an encoder's states:
            `FeatureType.has_frequencies`) drop a default `freq_warp` and refuse a named
            one; bins that are not neighbours (an encoder's dimensions:
            `FeatureType.neighbouring_bins`) do the same with `freq_masks`. Defaults to
            `None` (unknown). An instance whose `front_end` names features (mel, stft,
            mfcc) is checked against those instead: the model computes them.
        feature_types: the feature registry's lookup (`preprocessing.features.get`), for
            the facts of the features an instance's `front_end` computes. Defaults to
            `None` (an instance's front end is then not checked against its features).

    Returns:
        The `InstanceParams` of every parameter: the training defaults, the task's own
        parameters, the mandatory names and the architecture's keyword arguments (with
        their defaults). It is what the
        planner, the `Job` and the fold read; as a mapping, the flat dict `params.json`
        records.

    Raises:
        ParameterError: a missing mandatory name, an unknown name (with the closest valid
            ones), a wrong type or an invalid value.
    """
    where = f"instance {instance_id}"
    task = tasks.get(task_type)
    names = {*setting_names(TrainingParams), *setting_names(task.parameters)}
    training_defaults = {**task.parameters().to_dict(),
                         **{k: v for k, v in training_defaults.items() if k in names}}
    layers = instance_layers(instance_id, spec, experiment_params, overrides)
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged.update(layer)
    arch = _architecture(merged, where)
    try:
        arch_defaults = architectures.keyword_defaults(arch)
    except ValueError as e:
        raise ParameterError(f"{where}: {e}") from e
    # Only the architecture must be named: the reshaping is the builder's own (the first it
    # takes) and the two comments are free text.
    merged = {**instance_defaults(arch, architectures, keywords=False), **merged}
    valid = {**training_defaults, **arch_defaults, **dict.fromkeys(MANDATORY, ""),
             DATASET: ""}
    _check_names(layers, valid, arch, arch_defaults, where, task.name)
    values = {**training_defaults, **arch_defaults}
    for name, value in merged.items():
        values[name] = _check_type(name, value, valid[name], where)
    architectures.check_keywords(arch, values, where)  # the ranges the builder declares
    _check_values(values, where)
    params = InstanceParams.of(values)
    if params.dataset == "":
        raise ParameterError(f"{where}: dataset='': expected the name of a feature store "
                             "under config.ini [paths] data_dir, or no dataset (the "
                             "experiment's).")
    _check_architecture(params, task, architectures, where)
    if params.load_model is not None:
        params = params.replace(load_model=_model_path(params.load_model, where))
    _check_save_metric(params, task, where)
    _check_transfer_and_logs(params, where)
    if params.front_end != "none" and feature_types is not None:  # the model computes them
        feature = feature_types(params.front_end)
    params = fit_defaults(params, set(merged), task, feature)
    check_training_options(params, task, where, feature)
    task.check_params(params, where)
    return embedding.check_params(params, task, where)


EXPERIMENT_LAYER = "experiment"
"""The source of a value set by the experiment's `parameters` (see `instance_layers`)."""


def instance_layers(instance_id: int | str, spec: Spec, experiment_params: Spec | None,
                    overrides: Mapping[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """An instance's layers above `config.ini`, in order (later wins), each with the name
    that says where a value comes from: `experiment` (its `parameters`), `instance <k>`,
    `--set`.

    Raises:
        ParameterError: for a spec that does not parse.
    """
    where = f"instance {instance_id}"
    return [(EXPERIMENT_LAYER, parse_instance(experiment_params or {}, "parameters")),
            (where, parse_instance(spec, where)),
            ("--set", dict(overrides or {}))]


def instance_defaults(arch: str, architectures: ArchitectureCatalog, *,
                      keywords: bool = True) -> dict[str, Any]:
    """What an instance of `arch` has for the names that are not `[training]` keys when it
    leaves them out: the builder's reshaping (the first it takes), empty comments, and (with
    `keywords`) the architecture's keyword defaults.

    Raises:
        ValueError: for an unknown architecture (from the catalog).
    """
    out: dict[str, Any] = {"reshaping_type": architectures.reshaping_types(arch)[0],
                           "comment_1": "", "comment_2": ""}
    return {**out, **architectures.keyword_defaults(arch)} if keywords else out


def _architecture(merged: Mapping[str, Any], where: str) -> str:
    """The instance's architecture name, once every mandatory name is given."""
    if "architecture" not in merged:
        raise ParameterError(
            f"{where}: no architecture. Every instance names its architecture (the others "
            "are optional: reshaping_type defaults to the builder's, comment_1 and comment_2 "
            "to empty), e.g. {'architecture': 'audio_cnn'} or ['architecture=\"audio_cnn\"']."
        )
    arch = merged["architecture"]
    if not isinstance(arch, str):
        raise ParameterError(f"{where}: architecture={arch!r} must be a string.")
    return arch


def _check_names(layers: list[tuple[str, dict[str, Any]]], valid: Mapping[str, Any], arch: str,
                 arch_defaults: Mapping[str, Any], where: str, task: str) -> None:
    """Refuses a name that is neither a `[training]` key of the instance's task nor a
    keyword of the architecture, with the closest valid names (or the task it belongs
    to)."""
    for source, layer in layers:
        for name in layer:
            other = tasks.owner(name)
            if name not in valid and other is not None:
                raise ParameterError(
                    f"{where}: {name}={layer[name]!r} (from {source}) is a parameter of "
                    f"task_type={other!r}; this instance is {task!r}: remove it.")
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
        if name in params and not constraints.satisfies(params[name],
                                                        [constraints.StrOptions(allowed)]):
            raise ParameterError(
                f"{where}: {name}={params[name]!r} is not valid; expected one of "
                f"{', '.join(allowed)}."
            )
    for name in schema.SCHEMA["training"]:
        if name in params and name != "embedding_models":  # a list: embedding checks it
            params[name] = schema.check("training", name, params[name], style="param",
                                        prefix=f"{where}: ", error=ParameterError)


def _check_architecture(params: InstanceParams, task: tasks.Task,
                        architectures: ArchitectureCatalog, where: str) -> None:
    """The architecture makes the task's kind of output and takes the reshaping type."""
    needs, arch = task.output, params.architecture
    if needs not in architectures.outputs(arch):
        fitting = [n for n in architectures.names() if needs in architectures.outputs(n)]
        raise ParameterError(
            f"{where}: architecture {arch!r} makes {' or '.join(architectures.outputs(arch))} "
            f"outputs, but task_type {task.name!r} needs {needs} outputs; choose one of "
            f"{', '.join(fitting) or '(none registered)'}."
        )
    supported = architectures.reshaping_types(arch)
    if params.reshaping_type not in supported:
        raise ParameterError(
            f"{where}: architecture {arch!r} takes reshaping_type "
            f"{' or '.join(repr(s) for s in supported)}, not {params.reshaping_type!r}."
        )


def _check_save_metric(params: InstanceParams, task: tasks.Task, where: str) -> None:
    names = task.history_metrics
    allowed = [f"val_{m}" for m in names] + list(names)
    if params.save_model_metric not in allowed:
        raise ParameterError(
            f"{where}: save_model_metric={params.save_model_metric!r} is not recorded for a "
            f"{task.name} task; expected one of {', '.join(allowed)}."
        )


def _check_transfer_and_logs(params: InstanceParams, where: str) -> None:
    if params.freeze_layers and not params.load_model:
        raise ParameterError(
            f"{where}: freeze_layers={params.freeze_layers} needs load_model (a saved "
            ".keras model to start from)."
        )
    if params.tensorboard and optional.missing("tensorboard"):
        raise ParameterError(
            f"{where}: tensorboard=True needs {' and '.join(optional.missing('tensorboard'))} "
            "(Keras writes TensorBoard logs through tf.summary on every backend): "
            f"`{optional.EXTRAS['tensorboard'].install}`.")


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

    A key added to `[training]` after release 0.1.0 (`schema.ADDED_KEYS`) is left out
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
