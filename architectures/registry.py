"""Registry of model builders, looked up by name.

A builder is a plain function `builder(input_shape, num_outputs, task_type=DEFAULT_TASK, *,
**keywords)` returning a `keras.Model`, registered with `@register("name", reshaping=(...))`;
its head is `architectures.common.output_head`, which asks the task (`xval.tasks`). Every
keyword declares its valid values in its annotation (`architectures.keywords`: `Probability`,
`Filters`, `Literal[...]`, ...), and `check_keywords` refuses an instance's value outside them
before anything is trained.
"""

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from architectures.keywords import constraints_of
from xval.core import constraints
from xval.core.errors import ParameterError
from xval.core.registry import Registry

Builder = Callable[..., Any]
"""`builder(input_shape, num_outputs, task_type, **keywords) -> keras.Model`."""

_RESERVED = ("input_shape", "num_outputs", "task_type")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A registered model builder.

    Attributes:
        name: the name instances give as `architecture="..."`.
        builder: the function.
        reshaping: the `reshaping_type` values it accepts.
        outputs: the kinds of output it makes (`Task.output`).
        domains: keyword -> its declared valid values (constraints, see
            `xval.core.constraints`).
    """

    name: str
    builder: Builder
    reshaping: tuple[str, ...]
    outputs: tuple[str, ...]
    domains: Mapping[str, list[Any]]


ARCHITECTURES: Registry[Architecture] = Registry("architecture", setting="architecture",
                                                 where="architectures", sort=True)
"""The registered architectures, by name."""


def _keyword_hints(fn: Builder) -> dict[str, Any]:
    """The evaluated annotations of a builder's parameters, as `typing.get_type_hints` gives
    them; the return annotation is left alone (a builder annotates `-> "keras.Model"`
    without importing Keras)."""
    annotations = {k: v for k, v in getattr(fn, "__annotations__", {}).items()
                   if k != "return"}
    return typing.get_type_hints(types.SimpleNamespace(__annotations__=annotations),
                                 globalns=getattr(inspect.unwrap(fn), "__globals__", {}),
                                 include_extras=True)


def _domains(name: str, fn: Builder) -> dict[str, list[Any]]:
    """The declared domain of every keyword of a builder, checked against its default."""
    hints = _keyword_hints(fn)
    out = {}
    for key, parameter in inspect.signature(fn).parameters.items():
        if key in _RESERVED:
            continue
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY \
                or parameter.default is inspect.Parameter.empty:
            raise TypeError(f"Builder {fn.__name__} ({name!r}): {key} must be a keyword-only "
                            "argument with a default (after `*`).")
        domain = constraints_of(hints.get(key))
        if domain is None:
            raise TypeError(
                f"Builder {fn.__name__} ({name!r}): keyword {key} declares no valid values; "
                "annotate it with bool, a Literal of its strings, or an int or float "
                "Annotated with an Interval (architectures.keywords: Probability, Momentum, "
                "Regularization, Count, Filters, Units, OptionalUnits, Pool, Width).")
        if not constraints.satisfies(parameter.default, domain):
            raise TypeError(f"Builder {fn.__name__} ({name!r}): the default {key}="
                            f"{parameter.default!r} is not {constraints.describe(domain)}.")
        out[key] = domain
    return out


def register(name: str, reshaping: tuple[str, ...] = ("conv",),
             outputs: tuple[str, ...] = ("vector",), *,
             fixed: Mapping[str, Any] | None = None) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder under `name`.

    Args:
        name: the name instances use in `architecture="..."`.
        reshaping: the `reshaping_type` values the builder accepts (conv, rnn, none).
        outputs: the kinds of output the builder makes, matched against a task's
            `output` (`xval.tasks.Task.output`): `"vector"` (one vector per row, from
            `output_head`: classification, regression), `"frames"` (one vector per frame:
            detection) or `"input"` (a reconstruction of the input: representation).
            Defaults to `("vector",)`.
        fixed: keywords the name fixes: `name` builds with them and takes the others (an
            alias, e.g. `vgg_mini_pool` is `vgg_mini` with `global_pooling=True`). Defaults
            to none.

    Returns:
        The decorator, which returns the builder unchanged.

    Raises:
        ValueError: when the name is taken.
        TypeError: when the builder does not take `input_shape, num_outputs, task_type`
            first, or a keyword has no default or declares no valid values (see
            `architectures.keywords`), or its default is not one of them, or `fixed` names
            another or a value outside it.
    """

    def decorator(fn: Builder) -> Builder:
        ARCHITECTURES.check_free(name)
        params = list(inspect.signature(fn).parameters)
        if params[:3] != list(_RESERVED):
            raise TypeError(
                f"Builder {fn.__name__} must take {', '.join(_RESERVED)} as its first "
                f"arguments; it takes {params}."
            )
        domains = _domains(name, fn)
        for key, value in (fixed or {}).items():
            if key not in domains or not constraints.satisfies(value, domains.pop(key)):
                raise TypeError(f"Builder {fn.__name__} ({name!r}): fixed {key}={value!r} is "
                                "not a valid value of one of its keywords.")
        builder = functools.partial(fn, **fixed) if fixed else fn
        ARCHITECTURES.register(name, Architecture(name, builder, tuple(reshaping),
                                                  tuple(outputs), domains))
        return fn

    return decorator


def names() -> list[str]:
    """Returns the registered architecture names, sorted."""
    return ARCHITECTURES.names()


def get(name: str) -> Builder:
    """Returns the builder registered as `name`.

    Args:
        name: architecture name.

    Returns:
        The builder function.

    Raises:
        UnknownNameError: (a `ValueError`) for an unknown name, listing the known ones.
    """
    return ARCHITECTURES.get(name).builder


def keyword_defaults(name: str) -> dict[str, Any]:
    """Returns `{keyword: default}` of a builder's own parameters (not input_shape etc., nor
    those its name fixes)."""
    sig = inspect.signature(get(name))
    domains = ARCHITECTURES.get(name).domains
    return {k: p.default for k, p in sig.parameters.items() if k in domains}


def keyword_domains(name: str) -> dict[str, list[Any]]:
    """Returns `{keyword: constraints}`: the valid values every keyword of `name` declares
    (see `xval.core.constraints`)."""
    return dict(ARCHITECTURES.get(name).domains)


def check_keywords(name: str, values: Mapping[str, Any], where: str = "") -> None:
    """Refuses keyword values outside what the builder `name` declares.

    Args:
        name: a registered architecture.
        values: parameter name -> value; the names that are not keywords of the builder
            (training parameters, say) are left alone.
        where: put before the message, e.g. `"instance 3"`. Defaults to `""`.

    Raises:
        ValueError: for an unknown architecture.
        ParameterError: for the first keyword whose value is outside its declared domain,
            naming the parameter, the value, the valid values and the default.
    """
    prefix = f"{where}: " if where else ""
    defaults = keyword_defaults(name)
    for key, domain in keyword_domains(name).items():
        if key in values:
            constraints.check(
                key, values[key], domain, prefix=prefix, error=ParameterError,
                label=f"{key}={values[key]!r} is not valid for architecture {name!r}",
                hint=f"; use a value within it (the default is {key}={defaults[key]!r})")


def reshaping_types(name: str) -> tuple[str, ...]:
    """Returns the `reshaping_type` values the architecture `name` accepts."""
    return ARCHITECTURES.get(name).reshaping


def outputs(name: str) -> tuple[str, ...]:
    """Returns the kinds of output the architecture `name` makes (see `register`)."""
    return ARCHITECTURES.get(name).outputs
