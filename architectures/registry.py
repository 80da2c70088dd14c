"""Registry of model builders, looked up by name.

A builder is a plain function `builder(input_shape, num_outputs, task_type=DEFAULT_TASK,
**kwargs)` returning a `keras.Model`, registered with `@register("name", reshaping=(...))`;
its head is `architectures.common.output_head`, which asks the task (`xval.tasks`).
"""

import inspect

_BUILDERS = {}
_RESHAPING = {}
_OUTPUTS = {}
_RESERVED = ("input_shape", "num_outputs", "task_type")


def register(name, reshaping=("conv",), outputs=("vector",)):
    """Decorator registering a model builder under `name`.

    Args:
        name: the name instances use in `architecture="..."`.
        reshaping: the `reshaping_type` values the builder accepts (conv, rnn, none).
        outputs: the kinds of output the builder makes, matched against a task's
            `output` (`xval.tasks.Task.output`): `"vector"` (one vector per row, from
            `output_head`: classification, regression), `"frames"` (one vector per frame:
            detection) or `"input"` (a reconstruction of the input: representation).
            Defaults to `("vector",)`.

    Returns:
        The decorator, which returns the builder unchanged.
    """

    def decorator(fn):
        if name in _BUILDERS:
            raise ValueError(f"An architecture named {name!r} is already registered.")
        params = list(inspect.signature(fn).parameters)
        if params[:3] != list(_RESERVED):
            raise TypeError(
                f"Builder {fn.__name__} must take {', '.join(_RESERVED)} as its first "
                f"arguments; it takes {params}."
            )
        _BUILDERS[name] = fn
        _RESHAPING[name] = tuple(reshaping)
        _OUTPUTS[name] = tuple(outputs)
        return fn

    return decorator


def names():
    """Returns the registered architecture names, sorted."""
    return sorted(_BUILDERS)


def get(name):
    """Returns the builder registered as `name`.

    Args:
        name: architecture name.

    Returns:
        The builder function.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown architecture {name!r}. Known architectures: {', '.join(names())}."
        )
    return _BUILDERS[name]


def keyword_defaults(name):
    """Returns `{keyword: default}` of a builder's own parameters (not input_shape etc.)."""
    sig = inspect.signature(get(name))
    return {
        k: p.default
        for k, p in sig.parameters.items()
        if k not in _RESERVED and p.default is not inspect.Parameter.empty
    }


def reshaping_types(name):
    """Returns the `reshaping_type` values the architecture `name` accepts."""
    get(name)
    return _RESHAPING[name]


def outputs(name):
    """Returns the kinds of output the architecture `name` makes (see `register`)."""
    get(name)
    return _OUTPUTS[name]
