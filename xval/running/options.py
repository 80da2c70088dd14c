"""`RunOptions`: what a run is asked to do, one object shared by the command line,
`Experiment.run` (and `refit`) and the runner.

Each option is declared once, as a field: its default, its valid values, and for the
command line its flag and help (`xval.core.arguments.option`); the experiment script's
parser is built from the fields (`add_flags`) and read back into the object (`from_args`).
Every rule between options is checked by the objects when they are made (`Execution`:
`ray_address` with the `ray` executor; `Output`: `quiet` or `verbose`, the MLflow target;
`RunOptions.for_refit`: what a refit cannot do), so a Python caller meets the same
refusals as the command line. The options are grouped as Optuna groups a study's sampler,
pruner and storage: where the jobs run (`Execution`, `xval.executors.base`, which the
executors are given too), the search (`SearchOptions`: the declared `Search` is run, trials
become instances) and what the run says (`Output`); the rest are the run's own
(`overrides`, `overwrite`, `dry_run`, `debug`).

Example:

```python
from xval.running.options import Execution, Output, SearchOptions

experiment.run([1, 2], executor=Execution("process", gpus=[0, 1]),
               output=Output(progress=True))
experiment.run(search=SearchOptions(trials=20, timeout=3600), dry_run=True)
```
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from xval.config.params import parse_overrides
from xval.core.arguments import option, option_of
from xval.core.constraints import Interval, check_options
from xval.core.errors import ConfigurationError, ParameterError
from xval.executors.base import Execution
from xval.report.tracking import DEFAULT_FOLDER, MLflowListener, tracking_uri
from xval.running.declaration import ExperimentDeclaration

__all__ = ["REFIT_ALONE", "Execution", "Output", "RunOptions", "SearchOptions", "add_flags",
           "from_args"]

Out = Callable[..., None]
"""A print function for progress lines (`print`, or `lambda *a: None` to be quiet)."""

REFIT_ALONE = ("--refit K takes no instance range, --instances, --dry-run, --overwrite, "
               "--mlflow or --search: it refits one complete instance (a declared one or a "
               "finished search trial) with the parameters its run recorded (--set values "
               "included).")
"""Why a refit is refused with a selection or options it cannot take (the command line's
selection, `RunOptions.for_refit`)."""

_INNER = " (the inner k-fold of an outer fold needs two folds at least), e.g. --inner-folds 3"
_POSITIVE = [Interval(Real, 0, None, closed="neither"), None]
_BOOLEAN = ["boolean"]
"""A switch: `True` or `False` (a string such as `"no"` is refused, not read as true)."""


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """Run the experiment's declared `search` (Optuna) instead of its instances: trials
    become instances numbered after the declared ones.

    Args:
        trials: the number of trials in the study (overrides the search's `n_trials`).
        timeout: seconds after which this runner starts no new trial.
        inner_folds: a nested search: the study runs inside every outer fold on its
            training items only, over `inner_folds` inner folds (>= 2), and the chosen
            trial is trained on the outer training items and scored on the outer test items
            (`xval.running.nested`). `None`: a plain search.

    Raises:
        ConfigurationError: for `trials` or `timeout` not > 0, `inner_folds` below 2.
    """

    trials: int | None = option(None, "with --search: trials in the study (overrides "
                                "n_trials)", flags=("--trials",), constraints=_POSITIVE,
                                type=int, metavar="N")
    timeout: float | None = option(None, "with --search: start no new trial after S seconds",
                                   flags=("--timeout",), constraints=_POSITIVE, type=float,
                                   metavar="S")
    inner_folds: int | None = option(
        None, "with --search: a nested search, the study run inside every outer fold on its "
        "training items over K inner folds; the chosen trial is scored on the outer test "
        "items", flags=("--inner-folds",), hint=_INNER, type=int, metavar="K",
        constraints=[Interval(Integral, 2, None, closed="left"), None])

    def __post_init__(self) -> None:
        check_options(self)


def _silent(*args: object) -> None:
    del args


@dataclasses.dataclass(frozen=True)
class Output:
    """What the run says and to whom.

    Args:
        out: print function for progress lines. Defaults to `print`.
        progress: a progress bar over all jobs on stderr, and what slow start-up steps are
            running. Defaults to `False` (the command line turns it on unless `-q`).
        verbose: one line per epoch, labelled with its instance and fold. Defaults to
            `False`.
        listeners: objects told about every recorded fold and instance, e.g.
            `xval.report.tracking.MLflowListener` (see
            `xval.running.recorder.RecorderListener`). Defaults to none.
        quiet: no progress bar and no progress lines (`out` prints nothing, `progress` is
            off; errors still show). Defaults to `False`.
        mlflow: log the run to MLflow: a folder or a tracking URI
            (`xval.report.tracking.tracking_uri`), as an `MLflowListener` the run adds to
            `listeners`; `None`: not. Defaults to `None`.

    Raises:
        ConfigurationError: for `progress`, `verbose` or `quiet` that is not a bool, for
            `quiet` with `verbose`, or an `mlflow` that is neither a
            folder nor a tracking URI.
    """

    out: Out = print
    progress: bool = option(False, constraints=_BOOLEAN)
    verbose: bool = option(False, "one line per epoch, labelled with instance and fold; "
                           "TensorFlow's own log lines too", flags=("-v", "--verbose"),
                           action="store_true", constraints=_BOOLEAN)
    listeners: Sequence[object] = ()
    quiet: bool = option(False, "no progress bar and no progress lines (errors still show)",
                         flags=("-q", "--quiet"), action="store_true", constraints=_BOOLEAN)
    mlflow: str | None = option(None, "log runs to MLflow: a folder (default: mlruns in the "
                                "current directory) or a tracking URI; give it last or as "
                                "--mlflow=URI", flags=("--mlflow",), nargs="?",
                                const=DEFAULT_FOLDER, metavar="URI")

    def __post_init__(self) -> None:
        check_options(self)
        if self.quiet and self.verbose:
            raise ConfigurationError("Give -q/--quiet or -v/--verbose, not both.")
        if self.quiet:
            object.__setattr__(self, "out", _silent)
            object.__setattr__(self, "progress", False)
        if self.mlflow is not None:
            tracking_uri(self.mlflow)  # refused now, not when the run connects

    def with_mlflow(self) -> Output:
        """The output with `mlflow` as its `MLflowListener` (after the caller's)."""
        if self.mlflow is None:
            return self
        return dataclasses.replace(self, mlflow=None,
                                   listeners=[*self.listeners, MLflowListener(self.mlflow)])


_GROUPS: dict[str, type] = {"executor": Execution, "search": SearchOptions, "output": Output}
"""The options' groups: `RunOptions` field -> its class."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What a run is asked to do (see `xval.Experiment.run`).

    Args:
        overrides: `--set` values: instance parameters, and the experiment settings among
            `xval.running.declaration.SETTINGS` (`num_repeats`). Defaults to none.
        overwrite: rerun instances with results; `None` takes the declaration's
            `overwrite_results`.
        dry_run: print the plan (the folds, what each instance sets), write nothing.
            Defaults to `False`.
        debug: stop at the first error with its traceback; `None` takes the declaration's
            `debug_mode`.
        executor: where the jobs run (`Execution`; a name is `Execution(name)`).
        search: run the declared search (`SearchOptions`; `True` is `SearchOptions()`),
            or `None`: the declared instances.
        output: what the run says (`Output`).

    Raises:
        TypeError: for a group that is not its class.
        ConfigurationError: for `overwrite`, `dry_run` or `debug` that is not a bool
            (`None` too for the two that take the declaration's).
        ParameterError: for `overrides` that is not a mapping (a `--set` text).
    """

    overrides: Mapping[str, Any] = option(
        factory=dict, help="override a parameter in every selected instance (repeatable)",
        flags=("--set",), action="append", metavar="NAME=VALUE", parse=parse_overrides)
    overwrite: bool | None = option(None, "rerun selected instances that already have "
                                    "results", flags=("--overwrite",), action="store_true",
                                    constraints=[*_BOOLEAN, None])
    dry_run: bool = option(False, "validate, print the folds and what each instance sets, "
                           "train nothing", flags=("--dry-run",), action="store_true",
                           constraints=_BOOLEAN)
    debug: bool | None = option(None, "stop at the first error with its traceback",
                                flags=("--debug",), action="store_true",
                                constraints=[*_BOOLEAN, None])
    executor: Execution = dataclasses.field(default_factory=Execution)
    search: SearchOptions | None = option(None, "run the experiment's Optuna search (trials "
                                          "become instances)", flags=("--search",),
                                          action="store_true")
    output: Output = dataclasses.field(default_factory=Output)

    def __post_init__(self) -> None:
        check_options(self)  # `dry_run="no"` would be a dry run: a bool, or refused
        if isinstance(self.executor, str) or self.executor is None:
            object.__setattr__(self, "executor", Execution(self.executor))
        if isinstance(self.search, bool):
            object.__setattr__(self, "search", SearchOptions() if self.search else None)
        if self.overrides is not None and not isinstance(self.overrides, Mapping):
            raise ParameterError(
                f"overrides={self.overrides!r}: expected a dict of parameter names to values, "
                f"got {type(self.overrides).__name__}; pass e.g. overrides={{'epochs': 2}} "
                "(what the command line's --set epochs=2 gives).")
        object.__setattr__(self, "overrides", dict(self.overrides or {}))
        for name, cls in _GROUPS.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                raise TypeError(f"{name}={value!r}: expected {_article(cls.__name__)}"
                                f"{' or its name' if cls is Execution else ''}"
                                f"{' or a bool' if cls is SearchOptions else ''}.")

    @classmethod
    def of(cls, options: RunOptions | None = None, **changes: Any) -> RunOptions:
        """`options` (or the defaults) with `changes`, fields of `RunOptions`.

        Raises:
            TypeError: for a name that is no field: an option of a group names its group
                (`gpus=` -> `executor=Execution(gpus=...)`), another the closest fields.
        """
        for name, value in changes.items():
            if name in _names(cls):
                continue
            group = next((g for g, kind in _GROUPS.items() if name in _names(kind)), None)
            if group is not None:
                raise TypeError(f"run() got {name}={value!r}, an option of {group}: pass "
                                f"{group}={_GROUPS[group].__name__}({name}={value!r}).")
            close = difflib.get_close_matches(name, _all_names(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise TypeError(f"run() got an unexpected keyword argument {name!r}.{hint}")
        return dataclasses.replace(options or cls(), **changes)

    def settled(self, experiment: ExperimentDeclaration
                ) -> tuple[ExperimentDeclaration, RunOptions]:
        """The declaration with the experiment settings among the overrides applied
        (`--set num_repeats=2`), and the options with the other overrides and the
        declaration's settings where they are `None` (`overwrite_results`, `gpu_ID`,
        `debug_mode`): the one place that says so."""
        experiment, overrides = experiment.with_settings(self.overrides)
        settled = dataclasses.replace(
            self, overrides=overrides, output=self.output.with_mlflow(),
            overwrite=experiment.overwrite_results if self.overwrite is None
            else self.overwrite,
            debug=experiment.debug_mode if self.debug is None else self.debug)
        if self.executor.gpu is None:
            settled = dataclasses.replace(settled, executor=dataclasses.replace(
                self.executor, gpu=experiment.gpu_ID))
        return experiment, settled

    def for_refit(self) -> RunOptions:
        """The options, when a refit can take them: it trains one model, so it takes no
        `dry_run`, `overwrite`, `search` or `output.mlflow` (`Experiment.refit` and
        `--refit K` alike).

        Raises:
            ConfigurationError: `REFIT_ALONE`.
        """
        if self.dry_run or self.overwrite or self.search is not None or self.output.mlflow:
            raise ConfigurationError(REFIT_ALONE)
        return self


def _article(name: str) -> str:
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _all_names() -> list[str]:
    return sorted(_names(RunOptions).union(*(_names(kind) for kind in _GROUPS.values())))


def _without_search(given: Mapping[str, Any]) -> str:
    """Why the command line's options of the search are refused without `--search`."""
    if "inner_folds" in given:
        return (f"--inner-folds {given['inner_folds']} goes with --search (it runs the search "
                "nested in every outer fold); add --search, or leave --inner-folds out.")
    return "--trials and --timeout go with --search."


def _flagged(cls: type) -> list[tuple[str, dataclasses.Field[Any]]]:
    """`(group, field)` of every option of `cls` and its groups that has a flag, in
    declaration order (a group's options after the group's own flag, where it is
    declared)."""
    out: list[tuple[str, dataclasses.Field[Any]]] = []
    for field in dataclasses.fields(cls):
        if option_of(field).get("flags"):
            out.append(("", field))
        if field.name in _GROUPS:
            out += [(field.name, f) for f in dataclasses.fields(_GROUPS[field.name])
                    if option_of(f).get("flags")]
    return out


def _dest(field: dataclasses.Field[Any]) -> str:
    flag = option_of(field)["flags"][-1]
    return flag.lstrip("-").replace("-", "_")


def add_flags(parser: argparse.ArgumentParser, *, positional: bool) -> None:
    """Adds the flags of the run options to an experiment script's parser.

    Args:
        parser: the parser.
        positional: add the positional options (the GPU, after the caller's own
            positionals) rather than the flags.
    """
    for _, field in _flagged(RunOptions):
        declared = option_of(field)
        flags = declared["flags"]
        if flags[0].startswith("-") == positional:
            continue
        kwargs = dict(declared["argparse"])
        if kwargs.get("action") == "store_true" and field.default is None:
            kwargs["default"] = None  # not given: the declaration's setting
        if callable(kwargs.get("choices")):
            kwargs["choices"] = kwargs["choices"]()  # a registry's names, now
        parser.add_argument(*flags, help=declared["help"], **kwargs)


def from_args(args: argparse.Namespace, **output: Any) -> RunOptions:
    """The run options a parsed command line gives (see `add_flags`).

    Args:
        args: the parsed arguments.
        **output: the `Output` fields the command line sets itself (`out`, `progress`).

    Raises:
        ConfigurationError: for options of the search without `--search`, and every rule
            the objects check (`Execution`, `Output`, `SearchOptions`).
    """
    values: dict[str, dict[str, Any]] = {"": {}, **{group: {} for group in _GROUPS}}
    for group, field in _flagged(RunOptions):
        value = getattr(args, _dest(field))
        parse = option_of(field)["parse"]
        if value is not None and value is not False:
            values[group][field.name] = parse(value) if parse else value
    search = values[""].pop("search", False)
    if values["search"] and not search:
        raise ConfigurationError(_without_search(values["search"]))
    return RunOptions(**values[""], executor=Execution(**values["executor"]),
                      search=SearchOptions(**values["search"]) if search else None,
                      output=Output(**values["output"], **output))
