"""The source registry: one class per source, registered by name with `@register`.

Example (a source of your own, in any module imported before the command line runs):

```python
from preprocessing.sources import Option, Reads, Source, register, source_rows


@register
class Listing(Source):
    name = "listing"
    help = "a text file of PATH LABEL ITEM lines"
    reads = Reads("LISTING", "the listing file", kind="file")
    options = (Option("--separator", "the column separator", default=" "),)

    def read(self, paths, values):
        lines = open(paths[0]).read().splitlines()
        rows = [dict(zip(("path", "label", "item"), line.split(values["separator"])))
                for line in lines]
        return source_rows([{**row, "clip": row["path"]} for row in rows], [], paths[0])
```

`python -m preprocessing listing FILE --out STORE` then builds a store from it.
"""

from __future__ import annotations

from typing import TypeVar

from preprocessing.sources.base import Corpus, Source
from xval.core.registry import Registry

__all__ = ["SOURCES", "corpora", "get", "names", "register"]

SOURCES: Registry[Source] = Registry("source", setting="source", where="preprocessing.sources")
"""The registered sources (one instance of each class), by name, in registration order."""
_S = TypeVar("_S", bound=type[Source])


def register(cls: _S) -> _S:
    """Class decorator registering a `Source` subclass under its `name`.

    Raises:
        TypeError: when `cls` is not a `Source` subclass.
        ValueError: when the name is missing or taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise TypeError(f"register takes a Source subclass; got {cls!r}.")
    SOURCES.register(getattr(cls, "name", ""), cls())
    return cls


def get(name: str) -> Source:
    """The source registered as `name`.

    Raises:
        UnknownNameError: (a `ConfigurationError`) for an unknown name, listing the
            registered ones.
    """
    return SOURCES.get(name)


def names() -> list[str]:
    """The registered source names, in registration order."""
    return SOURCES.names()


def corpora() -> list[Source]:
    """The registered corpora (`Corpus`: `python -m xval init PATH --source NAME`)."""
    return SOURCES.find(lambda source: isinstance(source, Corpus))
