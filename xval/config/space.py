"""Hyperparameter search: Optuna proposes instances, scored on fold-averaged validation.

A search is one more source of instances. Each trial is a normal instance
(`instance_<k>/` with every file), numbered after the declared instances, cross-validated
over the experiment's item folds. The objective is the mean over folds of the validation
`[report] selection_metric` (never a test score); after each fold the trial reports the
running mean, so the pruner can stop a hopeless trial early (its finished folds are kept and it
is marked `pruned`). The study lives in the experiment folder (`search.journal`, Optuna's
journal file storage), so a search can be stopped and resumed, and several runners (one per
GPU, say) work on one study without proposing the same trial twice.

Example (in an experiment script):

```python
from xval import Experiment
from xval.config import space as search

experiment.search = search.Search(
    base={"architecture": "example_cnn", "reshaping_type": "conv",
          "comment_1": "search", "comment_2": ""},
    space={"learning_rate": search.Float(1e-4, 1e-2, log=True),
           "filters": search.Int(4, 32, step=4),
           "dropout": search.Float(0.0, 0.5)},
    n_trials=20)
```

and run it with `python experiments/expN.py --search [--trials N] [--timeout S]`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from xval.core.errors import ConfigurationError

SAMPLERS = ("tpe", "random")
_FLOAT_LIMIT = 1e15
"""Bounds a float dimension may take: beyond, a range is a typo (`1e51` for `1e-5`)."""
_INT_LIMIT = 2 ** 53
"""Bounds an integer dimension may take (exact in a float, as Optuna stores values)."""
PRUNERS = ("median", "halving", "none")
# Optuna trial states this module writes into `instance_<k>/trial.json`.
TRIAL_STATES = ("running", "complete", "pruned", "failed")


def _condition_holds(when: Mapping[str, Any] | None, values: Mapping[str, Any]) -> bool:
    for name, allowed in (when or {}).items():
        allowed = allowed if isinstance(allowed, (list, tuple)) else [allowed]
        if values.get(name) not in allowed:
            return False
    return True


@dataclasses.dataclass(frozen=True)
class Float:
    """A float parameter in `[low, high]` (`log=True`: sampled on a log scale).

    Args:
        low: lower bound. high: upper bound (> low).
        log: sample on a log scale (needs `low > 0`). Defaults to `False`.
        when: only sample this parameter when other parameters have these values, e.g.
            `{"architecture": "example_cnn"}` (a list allows several). Defaults to always.
    """

    low: float
    high: float
    log: bool = False
    when: dict[str, Any] | None = None

    def check(self, name: str) -> None:
        for bound in (self.low, self.high):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)) \
                    or not math.isfinite(bound):
                raise ConfigurationError(
                    f"search space {name}: bounds must be finite numbers, got {bound!r}."
                )
        if not self.low < self.high:
            raise ConfigurationError(
                f"search space {name}: empty range [{self.low}, {self.high}]; expected "
                "low < high."
            )
        if self.log and self.low <= 0:
            raise ConfigurationError(
                f"search space {name}: a log range must be positive, got [{self.low}, "
                f"{self.high}] (it crosses or touches zero). Use log=False or a low > 0."
            )
        if not math.isfinite(float(self.high) - float(self.low)) or \
                max(abs(self.low), abs(self.high)) > _FLOAT_LIMIT:
            raise ConfigurationError(
                f"search space {name}: bounds [{self.low}, {self.high}] are beyond "
                f"+-{_FLOAT_LIMIT:g}; give the range the parameter can take.")

    def contains(self, value: Any) -> bool:
        """Whether `value` is a number in the range."""
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and self.low <= value <= self.high

    def corners(self) -> list[Any]:
        return [float(self.low), float(self.high)]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        return f"float in [{self.low}, {self.high}]" + (" (log)" if self.log else "")


@dataclasses.dataclass(frozen=True)
class Int:
    """An integer parameter in `[low, high]` with `step` (`log=True`: log scale)."""

    low: int
    high: int
    step: int = 1
    log: bool = False
    when: dict[str, Any] | None = None

    def check(self, name: str) -> None:
        for bound in (self.low, self.high, self.step):
            if isinstance(bound, bool) or not isinstance(bound, int):
                raise ConfigurationError(
                    f"search space {name}: Int bounds and step must be integers, got "
                    f"{bound!r}; use Float for real values."
                )
        if not self.low < self.high:
            raise ConfigurationError(
                f"search space {name}: empty range [{self.low}, {self.high}]; expected "
                "low < high."
            )
        if self.step < 1:
            raise ConfigurationError(f"search space {name}: step={self.step} must be >= 1.")
        if max(abs(self.low), abs(self.high)) > _INT_LIMIT:
            raise ConfigurationError(
                f"search space {name}: bounds [{self.low}, {self.high}] are beyond "
                f"+-{_INT_LIMIT}; give the range the parameter can take.")
        if self.step > self.high - self.low:
            raise ConfigurationError(
                f"search space {name}: step={self.step} is larger than the range "
                f"[{self.low}, {self.high}], so only {self.low} could be tried; use a smaller "
                "step or a Categorical.")
        if (self.high - self.low) % self.step:
            raise ConfigurationError(
                f"search space {name}: [{self.low}, {self.high}] is not a whole number of "
                f"steps of {self.step} (Optuna would lower high to "
                f"{self.high - (self.high - self.low) % self.step}); make high - low a "
                "multiple of step.")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ConfigurationError(
                f"search space {name}: a log range needs low > 0 and step 1, got "
                f"[{self.low}, {self.high}] step {self.step}."
            )

    def contains(self, value: Any) -> bool:
        """Whether `value` is an integer of the range, on its steps."""
        return isinstance(value, int) and not isinstance(value, bool) \
            and self.low <= value <= self.high and (value - self.low) % self.step == 0

    def corners(self) -> list[Any]:
        return [self.low, self.high]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        return f"int in [{self.low}, {self.high}] step {self.step}" + \
            (" (log)" if self.log else "")


@dataclasses.dataclass(frozen=True)
class Categorical:
    """One of `choices` (strings, numbers, booleans or None)."""

    choices: tuple[Any, ...]
    when: dict[str, Any] | None = None

    def check(self, name: str) -> None:
        if not isinstance(self.choices, (list, tuple)) or not self.choices:
            raise ConfigurationError(
                f"search space {name}: expected a non-empty list of choices, got "
                f"{self.choices!r}."
            )
        for choice in self.choices:
            if not isinstance(choice, (str, int, float, bool, type(None))):
                raise ConfigurationError(
                    f"search space {name}: choice {choice!r} is not a string, number, "
                    "boolean or None."
                )
        seen: list[Any] = []
        for choice in self.choices:
            if any(type(choice) is type(c) and choice == c for c in seen):
                raise ConfigurationError(
                    f"search space {name}: choice {choice!r} is given twice; list each "
                    "choice once (a repeated one is not tried more often, it skews the "
                    "sampler).")
            seen.append(choice)

    def contains(self, value: Any) -> bool:
        """Whether `value` is one of the choices (of the same type)."""
        return any(type(value) is type(c) and value == c for c in self.choices)

    def corners(self) -> list[Any]:
        return list(self.choices)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclasses.dataclass
class Search:
    """A search declared in an experiment script.

    Args:
        base: the parameters every trial starts from (like a declared instance; must name
            `architecture` and `reshaping_type` unless the space does).
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

    def check(self, resolve: Callable[[Any, Any], dict[str, Any]]) -> None:
        """Checks the search before anything runs.

        Args:
            resolve: `(instance_id, spec) -> params`, the experiment's instance resolution
                (`xval.config.params.resolve` with its defaults and architectures bound).

        Raises:
            ConfigurationError / ParameterError: for an empty or crossing range, bounds
                beyond what a parameter can take, an integer step larger than its range or
                not dividing it, a choice given twice, an unknown parameter (for the
                architectures it applies to), a value of the wrong type, a bad budget,
                sampler, pruner, seed or `startup_trials`, an enqueued trial naming a
                parameter outside the space or a value outside its dimension.
        """
        if not isinstance(self.base, dict):
            raise ConfigurationError(f"search base: expected a dict, got {self.base!r}.")
        if not isinstance(self.space, dict) or not self.space:
            raise ConfigurationError("search space: expected a non-empty dict of name -> "
                                     "Float/Int/Categorical.")
        for name, dim in self.space.items():
            if not isinstance(dim, (Float, Int, Categorical)):
                raise ConfigurationError(
                    f"search space {name}: expected Float, Int or Categorical, got "
                    f"{type(dim).__name__}."
                )
            dim.check(name)
            if name in ("comment_1", "comment_2"):
                raise ConfigurationError(f"search space {name}: comments are not searched.")
        self._check_options()
        self._check_conditions()
        self._check_enqueue()
        # Resolve the corners of the space: every name must be a valid parameter of the
        # architectures it applies to, with a value of the right type.
        for values in self._corner_samples():
            resolve("search", {**self.base, **values, "comment_1": "search",
                               "comment_2": ""})

    def _check_options(self) -> None:
        """The budget, the sampler and the pruner, the seeds."""
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int) \
                or self.n_trials < 1:
            raise ConfigurationError(f"n_trials={self.n_trials!r}: expected an integer >= 1.")
        if self.timeout is not None and (isinstance(self.timeout, bool)
                                         or not isinstance(self.timeout, (int, float))
                                         or not math.isfinite(self.timeout)
                                         or self.timeout <= 0):
            raise ConfigurationError(
                f"timeout={self.timeout!r}: expected a finite number of seconds > 0.")
        if self.sampler not in SAMPLERS:
            raise ConfigurationError(
                f"sampler={self.sampler!r}: expected one of {', '.join(SAMPLERS)}.")
        if self.pruner not in PRUNERS:
            raise ConfigurationError(
                f"pruner={self.pruner!r}: expected one of {', '.join(PRUNERS)}.")
        for name in ("startup_trials", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name}={value!r}: expected an integer >= 0.")

    def _check_conditions(self) -> None:
        """Every `when` can hold: each parameter it names can take one of its values (a
        dimension that contains one, or the base's value of a parameter not searched)."""
        for name, dim in self.space.items():
            if dim.when is not None and not isinstance(dim.when, dict):
                raise ConfigurationError(f"search space {name}: when={dim.when!r}: expected "
                                         "a dict of parameter name -> value(s).")
            for key, allowed in (dim.when or {}).items():
                values = allowed if isinstance(allowed, (list, tuple)) else [allowed]
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
        if not isinstance(self.enqueue, (list, tuple)):
            raise ConfigurationError(f"enqueue={self.enqueue!r}: expected a list of dicts.")
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
        for context in contexts:
            for corner in (0, -1):
                values = dict(context)
                for name, dim in self.space.items():
                    if name in values:
                        continue
                    merged = {**self.base, **values}
                    if _condition_holds(dim.when, merged):
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
                raise ConfigurationError(
                    "search space: the 'when' conditions are circular among "
                    f"{', '.join(sorted(pending))}."
                )
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
            cond = f" when {dim.when}" if dim.when else ""
            out(f"  {name}: {dim.describe()}{cond}")
