"""The source registry: one class per source, registered by name with `@register`.

A source of your own is a `Source` subclass (`preprocessing.sources.base`) registered in any
module imported before the command line runs; `python -m preprocessing NAME PATH ...` then
builds a store from it (`tests/test_extending.py` registers one, `Listing`).
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
    """The registered corpora (`Corpus`: `python -m xval init PATH --corpus NAME`)."""
    return SOURCES.find(lambda source: isinstance(source, Corpus))
