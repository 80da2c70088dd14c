"""The valid values of a builder's keywords, declared in its signature.

Every keyword of a registered builder declares what it accepts in its annotation, and the
registry (`architectures.register`) reads it: `bool`, a `Literal[...]` of the accepted
strings, or an `int`/`float` annotated with a `Range`. The aliases below name the usual
ones, so that a builder reads

```python
def my_cnn(input_shape, num_outputs, task_type=DEFAULT_TASK, *, filters: Filters = 16,
           dropout: Probability = 0.3, cell: Literal["gru", "lstm"] = "gru",
           blocks: Annotated[int, Range(1, 6)] = 4): ...
```

and `architectures.check_keywords(name, values, where)` refuses `dropout=1.5`, `filters=0`,
`bn_momentum=2.0` or `cell="rnn"` before anything is trained or written.
"""

import dataclasses
import math
import typing
from typing import Annotated, Any

__all__ = ["Count", "Domain", "Filters", "Layers", "Momentum", "OptionalUnits", "Pool",
           "Probability", "Range", "Regularization", "Units", "Width", "domain_of"]


@dataclasses.dataclass(frozen=True)
class Range:
    """The interval of valid numbers: `low <= x <= high`, either end open or absent.

    Args:
        low: the lowest valid value, or `None` (unbounded). Defaults to `None`.
        high: the highest valid value, or `None`. Defaults to `None`.
        open_low: `low` itself is invalid. Defaults to `False`.
        open_high: `high` itself is invalid. Defaults to `False`.
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or not (value > self.high
                                         or (self.open_high and value == self.high))

    def text(self) -> str:
        """The interval in words: `"in [0, 1)"`, `">= 1"`."""
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else str(x)

        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.open_low else '['}{num(self.low)}, {num(self.high)}"
                    f"{')' if self.open_high else ']'}")
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.open_high else '<='} {num(self.high)}"
        return "of any value"


Probability = Annotated[float, Range(0.0, 1.0, open_high=True)]
"""A rate or probability (dropout): in `[0, 1)`."""
Momentum = Annotated[float, Range(0.0, 1.0, open_low=True, open_high=True)]
"""A momentum of moving statistics (BatchNormalization): in `(0, 1)`."""
Regularization = Annotated[float, Range(0.0)]
"""A regularisation weight (L2 lambda): `>= 0` (0: none)."""
Count = Annotated[int, Range(1, 32)]
"""A number of layers, blocks or repeats: 1 to 32."""
Layers = Count
"""A number of stacked layers: 1 to 32."""
Filters = Annotated[int, Range(1, 2048)]
"""Convolution filters (channels): 1 to 2048."""
Units = Annotated[int, Range(1, 16384)]
"""Units of a dense or recurrent layer: 1 to 16384."""
OptionalUnits = Annotated[int, Range(0, 16384)]
"""Units of an optional dense layer: 0 (no layer) to 16384."""
Pool = Annotated[int, Range(1, 64)]
"""A pooling factor: 1 (none) to 64."""
Width = Annotated[float, Range(0.0, 16.0, open_low=True)]
"""A width multiplier of a builder's layer sizes: in `(0, 16]`."""


@dataclasses.dataclass(frozen=True)
class Domain:
    """What one keyword accepts.

    Attributes:
        kind: `bool`, `int`, `float` or `str`.
        range: the valid interval of a number, or `None`.
        choices: the valid strings of a `Literal`, or `None`.
    """

    kind: type
    range: Range | None = None
    choices: tuple[str, ...] | None = None

    def expected(self) -> str:
        """What a valid value is, in words: `"an integer in [1, 2048]"`."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = {bool: "True or False", int: "an integer", float: "a finite number",
                str: "a string"}[self.kind]
        return noun if self.range is None else f"{noun} {self.range.text()}"

    def accepts(self, value: Any) -> bool:
        """Whether `value` is valid (an int is a valid float; a bool is never a number)."""
        if self.kind is bool:
            return isinstance(value, bool)
        if self.choices is not None:
            return value in self.choices
        if self.kind is str:
            return isinstance(value, str)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return self.range is None or value in self.range


def domain_of(annotation: Any) -> Domain | None:
    """The domain an annotation declares, or `None` when it declares none.

    Args:
        annotation: a keyword's annotation (with its `Annotated` extras): `bool`,
            `Literal["a", "b"]`, or `Annotated[int | float, Range(...)]`.

    Returns:
        The `Domain`, or `None` (a bare `int`, `float` or `str`, or no annotation).
    """
    if annotation is bool:
        return Domain(bool)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if all(isinstance(c, str) for c in choices):
            return Domain(str, choices=tuple(choices))
        return None
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        ranges = [e for e in extras if isinstance(e, Range)]
        if base in (int, float) and ranges:
            return Domain(base, range=ranges[0])
    return None
