"""What an experiment script declares: its settings and its numbered instances, checked as
they are given.

`ExperimentDeclaration` holds them; `xval.running.experiment.Experiment` adds the verbs
(`run`, `refit`, `main`). The planner, runner, refit and search read a declaration and never
change it (a search's trials are lent to it for the planner and taken back).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from xval import tasks
from xval.config.space import Search
from xval.core.backend import normalize_gpu
from xval.core.constraints import InstancesOf, Interval, check, validate_params
from xval.core.errors import ConfigurationError, XvalError
from xval.core.records.ensemble import DEFAULT_WEIGHTING, WEIGHTINGS

InstanceSpec = Mapping[str, Any] | Sequence[str]
"""An instance as declared: a dict of parameters or a list of `'name=value'` strings."""

SETTINGS = ("num_repeats",)
"""The experiment settings `--set` may override (the other names are instance
parameters)."""


@dataclasses.dataclass(frozen=True)
class InstanceRange:
    """Instances `first..last` (inclusive), as the command line gives them
    (`exp1.py 3 7`); `last=None` is `first` alone.

    `Experiment.run(instances=InstanceRange(3, 7))` runs the declared instances between
    them, and refuses a range outside the declared ones.
    """

    first: int
    last: int | None = None


Selection = Iterable[int] | InstanceRange | None
"""What a run selects: instance ids, a range, or `None` (every declared instance)."""

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")


def declaration(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Runs `method`; when the experiment script itself is running (`__main__`), a
    configuration error in its declaration prints one line on stderr and exits with 2
    instead of a traceback. Imported and called from other code, it raises as usual."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except XvalError as e:
            caller = sys._getframe(1).f_globals.get("__name__")
            if caller == "__main__":
                print(f"error: {e}", file=sys.stderr)
                raise SystemExit(2) from None
            raise

    return wrapper


_COUNT = Interval(Integral, 1, None, closed="left")
_SETTINGS: dict[str, list[Any]] = {
    "description": [str], "allow_outside_data_dir": ["boolean"], "dataset": [str],
    "number": [Interval(Integral, 0, None, closed="left")], "num_folds": [_COUNT],
    "experiment_folder": [InstancesOf((str, os.PathLike), "a path string (the results "
                                      "folder)"), None],
    "overwrite_results": ["boolean"], "debug_mode": ["boolean"], "generator": ["boolean"],
    "parameters": [InstancesOf((dict, list, tuple), "a dict or a list of 'name=value' "
                               "strings applied to every instance"), None],
    "num_repeats": [_COUNT],
    "config": [InstancesOf((str, os.PathLike), "the path of a config.ini"), None],
    "preference": [InstancesOf((list, tuple), "a list of instance ids, the most preferred "
                               "first"), None],
}
"""The valid values of an experiment's settings (`xval.core.constraints`)."""


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """An instance that fuses other instances of the experiment: `experiment[3] =
    Ensemble(1, 2)`.

    It trains nothing: once its members are complete, each fold's clip scores of the
    members are averaged with equal weights (or, with `weights="validation"`, weights chosen
    on that fold's validation clips only), and scored on its test clips
    (`xval.ensembles`). It is reported, compared and selected like any instance;
    `predict` answers with its members' weighted scores.

    Args:
        *members: the ids of the instances to fuse (two at least), declared in the same
            experiment.
        weights: `"equal"` (chosen on nothing) or `"validation"` (chosen per fold on its
            validation clips, the clips whose loss chose each member's epoch: the weights
            lean towards the member most optimistic there). Defaults to `"equal"`.

    Raises:
        ConfigurationError: for fewer than two members, a member named twice or not an
            id, or an unknown `weights`.
    """

    members: tuple[int, ...]
    weights: str = DEFAULT_WEIGHTING

    @declaration
    def __init__(self, *members: int, weights: str = DEFAULT_WEIGHTING) -> None:
        for k in members:
            check("member", k, _SETTINGS["number"], label=f"Ensemble member {k!r}")
        if len(set(members)) < 2 or len(set(members)) < len(members):
            raise ConfigurationError(
                f"Ensemble{tuple(members)!r}: an ensemble fuses two different instances at "
                "least, each named once, e.g. Ensemble(1, 2).")
        if weights not in WEIGHTINGS:
            raise ConfigurationError(f"Ensemble(weights={weights!r}): expected one of "
                                     f"{', '.join(WEIGHTINGS)}.")
        object.__setattr__(self, "members", tuple(int(k) for k in members))
        object.__setattr__(self, "weights", weights)

    def __repr__(self) -> str:
        extra = "" if self.weights == DEFAULT_WEIGHTING else f", weights={self.weights!r}"
        return f"Ensemble({', '.join(map(str, self.members))}{extra})"


def check_preference(preference: Sequence[int] | None) -> tuple[int, ...] | None:
    """Returns `preference` as a tuple of instance ids, checked (`None` stays `None`).

    Raises:
        ConfigurationError: for an empty order, an id that is not an int >= 0, or an id
            named twice.
    """
    if preference is None:
        return None
    for k in preference:
        check("preference", k, _SETTINGS["number"], label=f"preference entry {k!r}")
    order = tuple(int(k) for k in preference)
    twice = sorted({k for k in order if order.count(k) > 1})
    if not order or twice:
        raise ConfigurationError(
            f"preference={list(preference)!r}: expected each instance id once, the most "
            "preferred first, e.g. preference=[5, 3, 1, 2, 4]"
            + (f"; {', '.join(map(str, twice))} named twice." if twice else "."))
    return order


def check_dataset(name: str, allow_outside: bool) -> str:
    """Returns `name` if it names a feature store under `[paths] data_dir` (the
    experiment's, or an instance's `dataset`).

    Raises:
        ConfigurationError: for a name that is not a string, is empty, or leads outside
            data_dir (an absolute path or `..`) unless `allow_outside`.
    """
    path = Path(check("dataset", name, [str]))
    if not name.strip() or path.name in ("", ".", ".."):
        raise ConfigurationError(
            f"dataset={name!r}: expected the name of a feature store under config.ini "
            "[paths] data_dir, e.g. 'demo'."
        )
    if not allow_outside and (path.is_absolute() or ".." in path.parts):
        raise ConfigurationError(
            f"dataset={name!r} leads outside config.ini [paths] data_dir; expected a "
            "store name under data_dir, e.g. 'demo'. Move the store there, change "
            "data_dir, or pass allow_outside_data_dir=True if this is intended."
        )
    return name


def check_gpu_setting(gpu: object) -> int | str | None:
    """Returns `gpu_ID` if it is `None` or a GPU id (`xval.core.backend.normalize_gpu`).

    Raises:
        ConfigurationError: for anything else.
    """
    try:
        normalize_gpu(gpu)
    except ConfigurationError:
        raise ConfigurationError(
            f"gpu_ID={gpu!r}: expected a GPU number such as 0 or '1', -1 or 'cpu' for "
            "the CPU, or None to leave CUDA_VISIBLE_DEVICES as it is."
        ) from None
    return gpu  # type: ignore[return-value]


def check_instance(instance_id: int, spec: object, declared: Iterable[int]) -> None:
    """Checks one `experiment[k] = spec` assignment.

    Raises:
        ConfigurationError: for an id that is not an int >= 0, a spec that is neither a dict,
            a list nor an `Ensemble`, an ensemble naming itself, or an id assigned twice.
    """
    check("id", instance_id, _SETTINGS["number"], label=f"Instance id {instance_id!r}")
    check("spec", spec, [InstancesOf((dict, list, tuple, Ensemble), "a dict or a list of "
                                     "'name=value' strings, or an Ensemble")],
          label=f"instance {instance_id}")
    if isinstance(spec, Ensemble) and instance_id in spec.members:
        raise ConfigurationError(f"instance {instance_id} = {spec!r} names itself; an "
                                 "ensemble fuses other instances.")
    if instance_id in declared:
        raise ConfigurationError(
            f"instance {instance_id} is assigned twice; each instance number is declared "
            "once. Give the second one a new number."
        )


def select_instances(declared: Sequence[int], first: int | None = None,
                     last: int | None = None,
                     instances: Iterable[int] | None = None) -> list[int]:
    """The instance ids to run, checked against the declared ones.

    Args:
        declared: the declared ids, sorted.
        first: the first id of a range; `None` (and no `instances`) selects all.
        last: the last id of the range (inclusive); `None` is `first`.
        instances: explicit ids (wins over a range), kept in their order.

    Raises:
        ConfigurationError: for ids or a range outside the declared instances.
    """
    if not declared:
        raise ConfigurationError("The experiment declares no instances.")
    if instances is not None:
        unknown = [i for i in instances if i not in declared]
        if unknown:
            raise ConfigurationError(
                f"Instance(s) {unknown} are not declared; the experiment declares "
                f"{list(declared)}."
            )
        return list(dict.fromkeys(instances))
    if first is None:
        return list(declared)
    last = first if last is None else last
    if last < first:
        raise ConfigurationError(f"Instance range {first}..{last} is empty: FIRST > LAST.")
    span = f"{declared[0]}..{declared[-1]}" if len(declared) > 1 else str(declared[0])
    if first < declared[0] or last > declared[-1]:
        raise ConfigurationError(
            f"Instance range {first}..{last} is outside the declared instances {span}."
        )
    return [i for i in declared if first <= i <= last]


class ExperimentDeclaration:
    """An experiment's settings and its instances (see `xval.Experiment` for the
    arguments).

    Raises:
        ConfigurationError: for a setting of the wrong type or out of range, named with its
            value and what is expected.
    """

    @declaration
    def __init__(self, *, description: str, dataset: str, number: int, num_folds: int = 5,
                 experiment_folder: str | os.PathLike | None = None,
                 overwrite_results: bool = False, debug_mode: bool = False,
                 task_type: str = tasks.DEFAULT, generator: bool = False,
                 gpu_ID: int | str | None = None,
                 parameters: InstanceSpec | None = None, num_repeats: int = 1,
                 config: str | os.PathLike | None = None,
                 allow_outside_data_dir: bool = False,
                 preference: Sequence[int] | None = None) -> None:
        validate_params(_SETTINGS, locals())  # the arguments, by name
        self.description = description
        self.allow_outside_data_dir = allow_outside_data_dir
        self.dataset = check_dataset(dataset, allow_outside_data_dir)
        self.number = number
        self.num_folds = num_folds
        self.experiment_folder = experiment_folder
        self.overwrite_results = overwrite_results
        self.debug_mode = debug_mode
        self.task_type: str = str(tasks.get(task_type).name)  # an unknown name lists the known ones
        self.generator = generator
        self.gpu_ID = check_gpu_setting(gpu_ID)
        self.parameters: InstanceSpec = parameters or {}
        self.num_repeats = num_repeats
        self.config_path = config
        self.preference = check_preference(preference)
        self.instances: dict[int, InstanceSpec] = {}
        self.ensembles: dict[int, Ensemble] = {}  # instances derived from others
        self.search: Search | None = None  # run with --search
        caller = sys._getframe(2).f_code.co_filename  # the experiment script (past the wrapper)
        self.script: str | None = caller if caller and Path(caller).is_file() else None

    @declaration
    def __setitem__(self, instance_id: int, spec: InstanceSpec | Ensemble) -> None:
        check_instance(instance_id, spec, [*self.instances, *self.ensembles])
        if isinstance(spec, Ensemble):
            self.ensembles[instance_id] = spec
        else:
            self.instances[instance_id] = spec

    def __getitem__(self, instance_id: int) -> InstanceSpec | Ensemble:
        if instance_id in self.ensembles:
            return self.ensembles[instance_id]
        return self.instances[instance_id]

    def __len__(self) -> int:
        return len(self.instances) + len(self.ensembles)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(dataset={self.dataset!r}, number={self.number}, "
                f"instances={sorted([*self.instances, *self.ensembles])})")

    def select(self, first: int | None = None, last: int | None = None,
               instances: Selection = None) -> list[int]:
        """The instance ids to run, checked against the declared ones (see
        `select_instances`); `instances` may be an `InstanceRange`.

        Raises:
            ConfigurationError: for ids or a range outside the declared instances.
        """
        if isinstance(instances, InstanceRange):
            first, last, instances = instances.first, instances.last, None
        return select_instances(sorted([*self.instances, *self.ensembles]), first, last,
                                instances)

    def with_settings(self, overrides: Mapping[str, Any]
                      ) -> tuple[ExperimentDeclaration, dict[str, Any]]:
        """The declaration with the experiment settings among `overrides` applied (`--set
        num_repeats=2`: `SETTINGS`), as a copy (this one is left as declared), and the
        other overrides: the instance parameters.

        Raises:
            ConfigurationError: for a setting's bad value.
        """
        rest = {k: v for k, v in overrides.items() if k not in SETTINGS}
        if len(rest) == len(overrides):
            return self, rest
        settled = copy.copy(self)
        settled.instances = dict(self.instances)
        settled.ensembles = dict(self.ensembles)
        if "num_repeats" in overrides:
            settled.num_repeats = check("num_repeats", overrides["num_repeats"], [_COUNT])
        return settled, rest

    def check_preference(self) -> None:
        """Checks that the declared `preference` names declared instances only (before
        anything trains).

        Raises:
            ConfigurationError: naming the ids that are not declared.
        """
        declared = sorted([*self.instances, *self.ensembles])
        unknown = [k for k in self.preference or () if k not in declared]
        if unknown:
            raise ConfigurationError(
                f"preference={list(self.preference or ())!r} names instance(s) "
                f"{', '.join(map(str, unknown))}, which the experiment does not declare "
                f"(it declares {', '.join(map(str, declared)) or 'none'}); name declared "
                "instances only.")

    @property
    def first_trial_instance(self) -> int:
        """The instance a search's first trial becomes: the one after the declared ones."""
        return max([*self.instances, *self.ensembles], default=0) + 1
