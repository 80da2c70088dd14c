"""Hyperparameter search: Optuna proposes instances, scored on fold-averaged validation.

A search is one more source of instances. Each trial is a normal instance
(`instance_<k>/` with every file), numbered after the declared instances, cross-validated
over the experiment's item folds. The objective is the mean over folds of the validation
`[report] selection_metric` (never a test score); after each fold the trial reports the
running mean, so the pruner can stop a hopeless trial early (its finished folds are kept and it
is marked `pruned`). The study lives in the experiment folder (`search.journal`, Optuna's
journal file storage), so a search can be stopped and resumed, and several runners (one per
GPU, say) work on one study without proposing the same trial twice.

Example (in an experiment script; run it with `python experiments/expN.py --search`):

```python
experiment.search = xval.Search(base={"architecture": "example_cnn"}, n_trials=20,
                                space={"learning_rate": Float(1e-4, 1e-2, log=True),
                                       "filters": Int(4, 32, step=4)})
```
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any, ClassVar

from xval.core.constraints import InstancesOf, Interval, StrOptions, check, validate_params
from xval.core.errors import ConfigurationError

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")
_FLOAT_LIMIT = 1e15  # the bounds of a float dimension: beyond, a typo (`1e51` for `1e-5`)
_INT_LIMIT = 2 ** 53  # of an integer one: exact in a float, as Optuna stores values
_WHEN = [InstancesOf(dict, "a dict of parameter name -> value(s)"), None]


def _allowed(value: Any) -> list[Any]:
    """The values a condition of `when` allows (one, or a list)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _condition_holds(when: Mapping[str, Any] | None, values: Mapping[str, Any]) -> bool:
    return all(values.get(name) in _allowed(a) for name, a in (when or {}).items())


class _Dimension:
    """What the dimensions share: their declared valid values (`_parameter_constraints`),
    checked by `check` before their own rules (`_check`); a range's rules and words."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}
    _hints: ClassVar[dict[str, str]] = {}
    when: dict[str, Any] | None
    low: Any
    high: Any
    log: bool

    def check(self, name: str) -> None:
        """Refuses a dimension that cannot be searched.

        Raises:
            ConfigurationError: naming the dimension, the value and the fix.
        """
        validate_params(self._parameter_constraints, vars(self),
                        prefix=f"search space {name}: ", hints=self._hints)
        self._check(f"search space {name}: ")

    def _check(self, where: str) -> None:
        if not self.low < self.high:
            raise ConfigurationError(f"{where}empty range [{self.low}, {self.high}]; "
                                     "expected low < high.")
        if self.log and self.low <= 0:
            raise ConfigurationError(
                f"{where}a log range must be positive, got [{self.low}, {self.high}] (it "
                "crosses or touches zero). Use log=False or a low > 0.")

    def corners(self) -> list[Any]:
        """The values a check of the space resolves: the bounds, or every choice."""
        return [self.low, self.high]

    def contains(self, value: Any) -> bool:
        """Whether `value` is a number of the range (on its steps)."""
        step = getattr(self, "step", None)
        return Interval(Integral if step else Real, self.low, self.high).is_satisfied_by(
            value) and (not step or (value - self.low) % step == 0)

    def describe(self) -> str:
        step = getattr(self, "step", None)
        return (f"{'int' if step else 'float'} in [{self.low}, {self.high}]"
                f"{f' step {step}' if step else ''}{' (log)' if self.log else ''}")


_BOUND = "; a bound beyond +-{} is a typo: give the range the parameter can take"


@dataclasses.dataclass(frozen=True)
class Float(_Dimension):
    """A float parameter in `[low, high]` (`log=True`: sampled on a log scale).

    Args:
        low: lower bound. high: upper bound (> low).
        log: sample on a log scale (needs `low > 0`). Defaults to `False`.
        when: only sample this parameter when other parameters have these values, e.g.
            `{"architecture": "example_cnn"}` (a list allows several). Defaults to always.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "low": [Interval(Real, -_FLOAT_LIMIT, _FLOAT_LIMIT)],
        "high": [Interval(Real, -_FLOAT_LIMIT, _FLOAT_LIMIT)], "log": ["boolean"],
        "when": _WHEN}
    _hints: ClassVar[dict[str, str]] = dict.fromkeys(("low", "high"), _BOUND.format("1e15"))

    low: float
    high: float
    log: bool = False
    when: dict[str, Any] | None = None

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclasses.dataclass(frozen=True)
class Int(_Dimension):
    """An integer parameter in `[low, high]` with `step` (`log=True`: log scale)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "low": [Interval(Integral, -_INT_LIMIT, _INT_LIMIT)],
        "high": [Interval(Integral, -_INT_LIMIT, _INT_LIMIT)],
        "step": [Interval(Integral, 1, None, closed="left")], "log": ["boolean"],
        "when": _WHEN}
    _hints: ClassVar[dict[str, str]] = dict.fromkeys(("low", "high"), "; Int bounds must be "
                                                     "integers" + _BOUND.format("2**53"))

    low: int
    high: int
    step: int = 1
    log: bool = False
    when: dict[str, Any] | None = None

    def _check(self, where: str) -> None:
        super()._check(where)
        if self.step > self.high - self.low:
            raise ConfigurationError(
                f"{where}step={self.step} is larger than the range [{self.low}, {self.high}], "
                f"so only {self.low} could be tried; use a smaller step or a Categorical.")
        if (self.high - self.low) % self.step:
            raise ConfigurationError(
                f"{where}[{self.low}, {self.high}] is not a whole number of steps of "
                f"{self.step} (Optuna would lower high to "
                f"{self.high - (self.high - self.low) % self.step}); make high - low a "
                "multiple of step.")
        if self.log and self.step != 1:
            raise ConfigurationError(f"{where}a log range needs step 1, got step {self.step}.")

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)


@dataclasses.dataclass(frozen=True)
class Categorical(_Dimension):
    """One of `choices` (strings, numbers, booleans or None)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "choices": [InstancesOf((list, tuple), "a non-empty list of choices")], "when": _WHEN}

    choices: tuple[Any, ...]
    when: dict[str, Any] | None = None

    def _check(self, where: str) -> None:
        if not self.choices:
            raise ConfigurationError(f"{where}expected a non-empty list of choices, got "
                                     f"{self.choices!r}.")
        for k, choice in enumerate(self.choices):
            if not isinstance(choice, (str, int, float, bool, type(None))):
                raise ConfigurationError(f"{where}choice {choice!r} is not a string, number, "
                                         "boolean or None.")
            if _among(choice, self.choices[:k]):
                raise ConfigurationError(
                    f"{where}choice {choice!r} is given twice; list each choice once (a "
                    "repeated one is not tried more often, it skews the sampler).")

    def contains(self, value: Any) -> bool:
        """Whether `value` is one of the choices (of the same type)."""
        return _among(value, self.choices)

    def corners(self) -> list[Any]:
        return list(self.choices)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


def _among(value: Any, choices: Any) -> bool:
    """Whether `value` is one of `choices`, of the same type (`1` is not `True`)."""
    return any(type(value) is type(c) and value == c for c in choices)


@dataclasses.dataclass
class Search:
    """A search declared in an experiment script.

    Args:
        base: the parameters every trial starts from (a declared instance's dict).
        space: parameter name -> `Float`, `Int` or `Categorical`.
        n_trials: trials in the study (all runners together). Defaults to `20`.
        timeout: seconds after which this runner starts no new trial. Defaults to `None`.
        sampler: `"tpe"` (default) or `"random"`, seeded with `seed`.
        pruner: `"median"` (default: stop a trial whose running mean over folds is worse
            than the median of earlier trials at the same fold), `"halving"` (successive
            halving over folds) or `"none"`.
        seed: sampler seed. Defaults to `0`.
        startup_trials: trials completed before the pruner may prune. Defaults to `3`.
        enqueue: parameter dicts to try first (e.g. the current best instance's).
    """

    base: dict[str, Any]
    space: dict[str, Float | Int | Categorical]
    n_trials: int = 20
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    startup_trials: int = 3
    enqueue: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "base": [dict], "space": [InstancesOf(dict, "a non-empty dict of name -> "
                                              "Float/Int/Categorical")],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "sampler": [StrOptions(SAMPLERS)], "pruner": [StrOptions(PRUNERS)],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "startup_trials": [Interval(Integral, 0, None, closed="left")],
        "enqueue": [InstancesOf((list, tuple), "a list of dicts")]}

    def check(self, resolve: Callable[[Any, Any], Any]) -> None:
        """Checks the search before anything runs.

        Args:
            resolve: `(instance_id, spec) -> params`, the experiment's instance resolution
                (`xval.config.params.resolve` with its defaults and architectures bound).

        Raises:
            ConfigurationError / ParameterError: for a value outside its declared ones
                (`_parameter_constraints` of the search and of each dimension), a dimension
                that cannot be searched, a condition that can never hold, an enqueued trial
                outside the space, or a corner of the space that does not resolve.
        """
        validate_params(self._parameter_constraints, vars(self))
        if not self.space:
            raise ConfigurationError("search space: expected a non-empty dict of name -> "
                                     "Float/Int/Categorical.")
        for name, dim in self.space.items():
            check(name, dim, [InstancesOf(_Dimension, "Float, Int or Categorical")],
                  label=f"search space {name}")
            dim.check(name)
            if name in ("comment_1", "comment_2"):
                raise ConfigurationError(f"search space {name}: comments are not searched.")
        self._check_conditions()
        self._check_enqueue()
        # Resolve the corners of the space: every name must be a valid parameter of the
        # architectures it applies to, with a value of the right type.
        for values in self._corner_samples():
            resolve("search", {**self.base, **values, "comment_1": "search",
                               "comment_2": ""})

    def _check_conditions(self) -> None:
        """Every `when` can hold: each parameter it names can take one of its values (a
        dimension that contains one, or the base's value of a parameter not searched)."""
        for name, dim in self.space.items():
            for key, allowed in (dim.when or {}).items():
                values = _allowed(allowed)
                other = self.space.get(key)
                if other is not None and not any(other.contains(v) for v in values):
                    found = f"the space gives {key} {other.describe()}"
                elif other is None and self.base.get(key) not in values:
                    found = (f"{key} is not searched and the base gives it "
                             f"{self.base.get(key)!r}")
                else:
                    continue
                raise ConfigurationError(
                    f"search space {name}: when={dim.when!r} can never hold ({found}), so "
                    f"{name} would never be searched; fix the condition, or the values "
                    f"{key} takes.")

    def _check_enqueue(self) -> None:
        """Every enqueued trial names dimensions of the space, with values inside them."""
        for k, trial in enumerate(self.enqueue):
            if not isinstance(trial, dict) or not trial:
                raise ConfigurationError(f"enqueue[{k}]={trial!r}: expected a dict of "
                                         "parameter values.")
            for name, value in trial.items():
                dim = self.space.get(name)
                if dim is None:
                    raise ConfigurationError(
                        f"enqueue[{k}]: {name!r} is not a dimension of the search space "
                        f"({', '.join(self.space)}); the base gives the other parameters.")
                if not dim.contains(value):
                    raise ConfigurationError(
                        f"enqueue[{k}]: {name}={value!r} is outside its dimension "
                        f"({dim.describe()}).")

    def _corner_samples(self) -> list[dict[str, Any]]:
        """Parameter dicts that take every bound of every dimension at least once, under
        every value of the categorical dimensions that others are conditional on."""
        keys = sorted({k for dim in self.space.values() for k in (dim.when or {})})
        contexts: list[dict[str, Any]] = [{}]
        for key in keys:
            dim = self.space.get(key)
            options = dim.corners() if dim is not None else [self.base.get(key)]
            contexts = [{**c, key: o} for c in contexts for o in options]
        samples = []
        for context, corner in itertools.product(contexts, (0, -1)):
            values = dict(context)
            for name, dim in self.space.items():
                if name not in values and _condition_holds(dim.when, {**self.base, **values}):
                    values[name] = dim.corners()[corner]
            samples.append(values)
        return samples

    def sample(self, trial: Any) -> dict[str, Any]:
        """The trial's parameters: the base updated with the space's suggestions (conditional
        dimensions only when their condition holds, decided in dependency order)."""
        values: dict[str, Any] = {}
        pending = dict(self.space)
        while pending:
            ready = [n for n, d in pending.items()
                     if not set(d.when or {}) & set(pending)]
            if not ready:
                raise ConfigurationError("search space: the 'when' conditions are circular "
                                         f"among {', '.join(sorted(pending))}.")
            for name in ready:
                dim = pending.pop(name)
                if _condition_holds(dim.when, {**self.base, **values}):
                    values[name] = dim.suggest(trial, name)
        return {**self.base, **values}

    def describe(self, out: Callable[[str], object], first_instance: int, metric: str,
                 direction: str) -> None:
        out(f"Search: {self.n_trials} trial(s), sampler {self.sampler} (seed {self.seed}), "
            f"pruner {self.pruner}; objective: mean over folds of validation {metric} "
            f"({direction}); trials become instances {first_instance}, "
            f"{first_instance + 1}, ...")
        out(f"  base: {self.base}")
        for name, dim in self.space.items():
            out(f"  {name}: {dim.describe()}{f' when {dim.when}' if dim.when else ''}")
