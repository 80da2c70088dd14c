"""The valid values of a builder's keywords, declared in its signature.

Every keyword of a registered builder declares what it accepts in its annotation, and the
registry (`architectures.register`) reads it: `bool`, a `Literal[...]` of the accepted
strings, or an `int`/`float` annotated with an `Interval`. The aliases below name the usual
ones, so that a builder reads

```python
def my_cnn(input_shape, num_outputs, task_type=DEFAULT_TASK, *, filters: Filters = 16,
           dropout: Probability = 0.3, cell: Literal["gru", "lstm"] = "gru",
           blocks: Annotated[int, Interval(Integral, 1, 6)] = 4): ...
```

and `architectures.check_keywords(name, values, where)` refuses `dropout=1.5`, `filters=0`,
`bn_momentum=2.0` or `cell="rnn"` before anything is trained or written.
"""

import dataclasses
import typing
from numbers import Integral, Real
from typing import Annotated, Any

from xval.core.constraints import Interval, StrOptions

__all__ = ["Count", "Filters", "Interval", "Layers", "Momentum", "OptionalUnits", "Pool",
           "Probability", "Regularization", "Units", "Width", "constraints_of"]


Probability = Annotated[float, Interval(Real, 0.0, 1.0, closed="left")]
"""A rate or probability (dropout): in `[0, 1)`."""
Momentum = Annotated[float, Interval(Real, 0.0, 1.0, closed="neither")]
"""A momentum of moving statistics (BatchNormalization): in `(0, 1)`."""
Regularization = Annotated[float, Interval(Real, 0.0, None)]
"""A regularisation weight (L2 lambda): `>= 0` (0: none)."""
Count = Annotated[int, Interval(Integral, 1, 32)]
"""A number of layers, blocks or repeats: 1 to 32."""
Layers = Count
"""A number of stacked layers: 1 to 32."""
Filters = Annotated[int, Interval(Integral, 1, 2048)]
"""Convolution filters (channels): 1 to 2048."""
Units = Annotated[int, Interval(Integral, 1, 16384)]
"""Units of a dense or recurrent layer: 1 to 16384."""
OptionalUnits = Annotated[int, Interval(Integral, 0, 16384)]
"""Units of an optional dense layer: 0 (no layer) to 16384."""
Pool = Annotated[int, Interval(Integral, 1, 64)]
"""A pooling factor: 1 (none) to 64."""
Width = Annotated[float, Interval(Real, 0.0, 16.0, closed="right")]
"""A width multiplier of a builder's layer sizes: in `(0, 16]`."""


def constraints_of(annotation: Any) -> list[Any] | None:
    """The valid values an annotation declares, as constraints (`xval.core.constraints`),
    or `None` when it declares none.

    Args:
        annotation: a keyword's annotation (with its `Annotated` extras): `bool`,
            `Literal["a", "b"]`, or `Annotated[int | float, Interval(...)]`.

    Returns:
        `["boolean"]`, `[StrOptions(...)]` or `[Interval(...)]`; `None` for a bare `int`,
        `float` or `str`, or no annotation.
    """
    if annotation is bool:
        return ["boolean"]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        return [StrOptions(choices)] if all(isinstance(c, str) for c in choices) else None
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        kind = {int: Integral, float: Real}.get(base)
        found = [e for e in extras if isinstance(e, Interval)]
        return [dataclasses.replace(found[0], type=kind)] if found and kind else None
    return None
